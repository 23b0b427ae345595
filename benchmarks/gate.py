"""What hostile bodies cost the real server: ``python -m benchmarks.gate [--mb 300] [--code DIR]``.

Issue 8 found that an unauthenticated 300 MB JSON grew the server by 884 MB before its 401, that
no body had a size limit, that a 400 KB import of bad rows was answered with 11.7 MB of errors,
and that deep JSON, a huge CSV cell and malformed JSON without a key were a 500 or a 422 before
the 401. This runner starts the service as it is deployed (``benchmarks.harness.server.serve``:
uvicorn, one worker, SQLite in a temp directory, one tenant) and sends each of those requests
over a raw socket, so the client can stop sending the moment an answer arrives, as a
well-behaved client does (a refused body should not have to be uploaded first).

Per request it prints the answer's status, how many body bytes the client got out before the
answer (or before the server closed the connection), the seconds until the answer, the answer's
size, and how much the server's peak resident memory (``VmHWM``) rose. ``--code DIR`` serves a
different checkout (e.g. ``git archive <commit> | tar -x -C DIR``) for a before/after comparison;
the database is migrated and seeded by this checkout, so both must share the schema.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from api.db import migrate
from api.db.engine import make_engine, make_session_factory
from api.keys import tenants
from api.settings import Environment, Settings
from benchmarks.harness import server
from benchmarks.harness.databases import sqlite_url

CHUNK = 1 << 20  # the client sends the big bodies a MiB at a time


@dataclass
class Outcome:
    case: str
    status: int | None  # None: the connection closed without an answer the client could read
    sent: int
    seconds: float
    answer_bytes: int
    peak_growth_mib: float


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssPeak:
    """The most resident memory ``pid`` had while the block ran, sampled every 5 ms (the
    kernel's own high-water mark never comes down, so it shows only a request's new record)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = self.peak = _rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_kib(self.pid))

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_kib(self.pid))

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.before) / 1024


def _request(
    port: int,
    path: str,
    headers: dict[str, str],
    *,
    body: bytes = b"",
    stream_bytes: int = 0,
    chunked: bool = False,
) -> tuple[int | None, int, float, int]:
    """POST ``body`` (or ``stream_bytes`` of ``[``, a MiB at a time, stopping as soon as the
    server answers or closes); the status, body bytes sent, seconds and answer size."""
    total = stream_bytes or len(body)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)}
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in (headers | framing).items()
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    started = time.perf_counter()
    sent = 0
    try:
        sock.sendall(head.encode() + b"\r\n")
        piece = b"[" * CHUNK
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # an answer (or a close) before the body was out: stop sending
            data = body[sent : sent + CHUNK] if body else piece[: min(CHUNK, total - sent)]
            framed = b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
            try:
                sock.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(data)
        if chunked and sent >= total:
            # The server may have answered and closed as the last chunk went out.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"0\r\n\r\n")
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                got = sock.recv(65536)
                if not got:
                    break
                answer += got
            head_end = answer.find(b"\r\n\r\n")
            if head_end < 0:
                return None, sent, time.perf_counter() - started, 0
            lines = answer[:head_end].decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = next(
                (
                    int(v)
                    for k, _, v in (ln.partition(":") for ln in lines[1:])
                    if k.lower() == "content-length"
                ),
                None,
            )
            payload = answer[head_end + 4 :]
            while length is None or len(payload) < length:
                got = sock.recv(1 << 20)
                if not got:
                    break
                payload += got
        except ConnectionResetError:
            return None, sent, time.perf_counter() - started, 0
        return status, sent, time.perf_counter() - started, len(payload)
    finally:
        sock.close()


def _bad_import(rows: int = 6_000) -> bytes:
    """An agents import of ``rows`` rows, each wrong in five fields."""
    row = {"id": "", "team": "", "capacity": "x", "timezone": 1, "skills": 1}
    return json.dumps([row] * rows).encode()


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    stream_bytes: int = 0
    chunked: bool = False


def cases(mb: int, key: str) -> list[Case]:
    json_type = {"Content-Type": "application/json"}
    auth = {"Authorization": f"Bearer {key}"}
    size = mb * 1024 * 1024
    bad = _bad_import()
    deep = b"[" * 100_000 + b"]" * 100_000
    return [
        Case(
            f"no key, {mb} MB JSON, Content-Length",
            "/v1/agents/import",
            json_type,
            stream_bytes=size,
        ),
        Case(
            f"no key, {mb} MB JSON, chunked",
            "/v1/agents/import",
            json_type,
            stream_bytes=size,
            chunked=True,
        ),
        Case(
            f"admin, {mb} MB import, Content-Length",
            "/v1/agents/import",
            json_type | auth,
            stream_bytes=size,
        ),
        Case(
            f"admin, {mb} MB plain write, chunked",
            "/v1/teams",
            json_type | auth,
            stream_bytes=size,
            chunked=True,
        ),
        Case(
            f"admin, {len(bad) // 1024} KB import of bad rows",
            "/v1/agents/import",
            json_type | auth,
            bad,
        ),
        Case(
            "admin, JSON nested 100,000 deep (import)", "/v1/agents/import", json_type | auth, deep
        ),
        Case("admin, JSON nested 100,000 deep (plain)", "/v1/teams", json_type | auth, deep),
        Case(
            "admin, CSV with a 200 KB cell",
            "/v1/teams/import",
            {"Content-Type": "text/csv"} | auth,
            b"id,name\nt1," + b"x" * 200_000 + b"\n",
        ),
        Case("no key, malformed JSON", "/v1/teams", json_type, b"{not json"),
    ]


@contextlib.contextmanager
def serve(url: str, code: Path, log: Path) -> Iterator[tuple[int, int]]:
    """The service of checkout ``code`` under uvicorn in a subprocess: its port and pid."""
    with server.serve(url, workers=1, log=log, code=code) as (base, pid):
        yield int(base.rsplit(":", 1)[1]), pid


def run(mb: int, code: Path) -> list[Outcome]:
    """Every case against a fresh server (memory a request took and did not give back to the
    system must not hide the next request's)."""
    with tempfile.TemporaryDirectory(prefix="sb-gate-") as tmp:
        url = sqlite_url(Path(tmp))
        migrate.upgrade(url)
        engine = make_engine(Settings(database_url=url, environment=Environment.TEST))
        with make_session_factory(engine)() as session:
            _, key = tenants.create(session=session, name="Bench", now=datetime.now(UTC))
            session.commit()
        engine.dispose()
        outcomes = []
        for case in cases(mb, key):
            with serve(url, code, Path(tmp) / "server.log") as (port, pid), RssPeak(pid) as rss:
                status, sent, seconds, answer = _request(
                    port,
                    case.path,
                    case.headers,
                    body=case.body,
                    stream_bytes=case.stream_bytes,
                    chunked=case.chunked,
                )
            outcomes.append(Outcome(case.name, status, sent, seconds, answer, rss.growth_mib))
        return outcomes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="size of the big bodies, MiB")
    parser.add_argument(
        "--code",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the checkout to serve (default: this one)",
    )
    args = parser.parse_args(argv)
    outcomes = run(args.mb, args.code.resolve())
    print(f"code: {args.code}   load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    columns = ("status", 6), ("body sent", 12), ("seconds", 8), ("answer", 10), ("peak RSS +", 11)
    print(f"{'request':<44} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for o in outcomes:
        status = "closed" if o.status is None else str(o.status)
        print(
            f"{o.case:<44} {status:>6} {o.sent:>12,} {o.seconds:>8.3f} {o.answer_bytes:>10,} "
            f"{o.peak_growth_mib:>8.1f} MiB"
        )


if __name__ == "__main__":
    main()
