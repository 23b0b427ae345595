"""``switchboard serve --workers N``: the listening socket is bound as TCP (so every accepted
connection gets TCP_NODELAY), the database is migrated and the demo seeded once, in the parent,
and the workers answer kept-alive requests without the delayed-ACK stall."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from api import serve
from api.cli import main
from api.db.models import Tenant
from tests.api.conftest import truncate_all

ROOT = Path(__file__).resolve().parents[3]
WORKERS = 2
# Linux delays an ACK by at least 40 ms: a response stalled behind Nagle's algorithm takes
# >= 40 ms, one sent at once ~1 ms. Halfway between is a test of NODELAY, not of speed.
STALL_SIGNATURE_S = 0.040
FAST_S = 0.020
# Outside the test environment every worker starts a pool of solve processes (4 by default) and
# imports the app in each, seconds of CPU per process on this machine: the servers here keep the
# pool, at one process, since what they test is serving (the pool has tests/api/solve/ and the
# process-pool tests in test_rate_limits.py). Measured, a --workers 2 start until idle: 6
# processes and 8-9 s of CPU instead of 12 and 15 s.
SERVE_ENV = {
    "PYTHONUNBUFFERED": "1",
    "SWITCHBOARD_ENVIRONMENT": "development",
    "SWITCHBOARD_SOLVE_WORKERS": "1",
}


# --- the socket ----------------------------------------------------------------------------


def test_bound_socket_is_tcp_and_accepted_connections_get_nodelay() -> None:
    """Checked on the server side, deterministically: asyncio's own loop (the one that skips
    TCP_NODELAY for a socket of protocol 0) accepts a connection on :func:`serve.bind`'s socket
    and the accepted socket has TCP_NODELAY set."""
    sock = serve.bind("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    assert serve.base_url(sock) == f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            try:
                return await asyncio.wait_for(accepted, 10)
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    with sock:
        assert asyncio.run(accept_one()) != 0


def test_serve_refuses_a_taken_port_before_touching_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "never.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--database-url", f"sqlite:///{database}"])
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not database.exists()  # neither migrated nor seeded


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_workers_must_be_a_positive_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--workers", value])
    assert exc.value.code == 2
    assert "--workers" in capsys.readouterr().err


# --- the real thing: two worker processes ---------------------------------------------------


@dataclass
class Running:
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def _serving(args: list[str], log: Path, *, timeout: float = 90.0) -> Iterator[Running]:
    """``switchboard serve ARGS`` in a process group of its own, until every worker started;
    stopped with SIGINT (as Ctrl-C would) and required to exit cleanly."""
    env = {**os.environ, **SERVE_ENV}
    cmd = [sys.executable, "-m", "api.cli", "serve", *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            text = log.read_text(errors="replace")
            if text.count("Application startup complete.") >= WORKERS:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start (exit {proc.poll()}):\n{text}")
            time.sleep(0.2)
        found = re.search(r"Switchboard running on http://127\.0\.0\.1:(\d+)", text)
        assert found, text
        yield Running(port=int(found[1]), log=log)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:  # only on failure: take the workers down with the supervisor
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _keep_alive_timings(port: int, n: int = 8) -> list[float]:
    """Seconds each of ``n`` sequential GET /healthz took on one kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    timings = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b'{"status":"ok"}'
            assert response.getheader("connection", "keep-alive") != "close"
            timings.append(time.perf_counter() - started)
    finally:
        conn.close()
    return timings


def test_two_workers_answer_kept_alive_requests_without_the_delayed_ack_stall(
    tmp_path: Path,
) -> None:
    # asyncio's loop, not uvloop: uvloop sets TCP_NODELAY itself and would hide the trap.
    args = ["--port", "0", "--workers", str(WORKERS), "--loop", "asyncio", "--no-access-log"]
    args += ["--database-url", f"sqlite:///{tmp_path / 'serve.db'}"]
    with _serving(args, tmp_path / "serve.log") as server:
        timings = _keep_alive_timings(server.port)
    # The first request on a connection is fast either way (quick-ACK mode); the stall shows
    # from the second on, on every response. The median of those is robust to a busy machine.
    later = timings[1:]
    shown = ", ".join(f"{t * 1000:.1f}" for t in timings)
    assert statistics.median(later) < FAST_S, (
        f"kept-alive responses took {shown} ms: >= {STALL_SIGNATURE_S * 1000:.0f} ms each is "
        "the delayed-ACK stall of a listening socket bound without IPPROTO_TCP"
    )


def test_demo_with_several_workers_migrates_and_seeds_once(
    db_engine: Engine, db_url: str, tmp_path: Path
) -> None:
    truncate_all(db_engine)
    args = ["--port", "0", "--workers", str(WORKERS), "--demo", "--database-url", db_url]
    with _serving(args, tmp_path / "demo.log") as server:
        with Session(db_engine) as session:
            assert session.scalar(select(func.count()).select_from(Tenant)) == 1
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for _ in range(4):  # both workers reach the database (likely; either would do)
                conn.request("GET", "/readyz")
                response = conn.getresponse()
                assert response.status == 200, response.read()
                response.read()
        finally:
            conn.close()
        output = server.output()
    assert output.count("These keys are shown once") == 1
    # Several workers on SQLite work, but queue for its one writer: the operator is told.
    assert ("SQLite has one writer" in output) is db_url.startswith("sqlite")
    assert f"API docs at http://127.0.0.1:{server.port}/docs" in output
    assert output.count("Started server process") == WORKERS
    with Session(db_engine) as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 1


# --- the front door: make serve, twice -----------------------------------------------------

KEYS_LINE = "These keys are shown once"


def _request(port: int, method: str, path: str, key: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class DemoStart:
    output: str
    port: int
    keys: dict[str, str]
    reused: bool
    accepting_at_keys: bool


@contextlib.contextmanager
def _demo_server(database: Path, log: Path, *, timeout: float = 90.0) -> Iterator[DemoStart]:
    """``switchboard serve --port 0 --demo`` (one worker) until it printed the keys; at the
    moment the keys line shows, a connection to the port is tried at once."""
    env = {**os.environ, **SERVE_ENV}
    cmd = [sys.executable, "-m", "api.cli", "serve", "--port", "0", "--demo"]
    cmd += ["--database-url", f"sqlite:///{database}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        port: int | None = None
        while True:
            text = log.read_text(errors="replace")
            if port is None and (found := re.search(r"running on http://127\.0\.0\.1:(\d+)", text)):
                port = int(found[1])
            if port is not None and KEYS_LINE in text:
                with socket.socket() as probe:
                    probe.settimeout(1)
                    accepting = probe.connect_ex(("127.0.0.1", port)) == 0
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no keys printed (exit {proc.poll()}):\n{text}")
            time.sleep(0.01)
        time.sleep(0.2)  # the rest of the instructions
        text = log.read_text(errors="replace")
        keys = dict(re.findall(r"^  (admin|helpdesk|planner) +(\S+)$", text, re.MULTILINE))
        yield DemoStart(text, port, keys, "reused" in text.split(KEYS_LINE)[0], accepting)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_make_serve_twice_prints_keys_once_serving_and_reuses_the_demo_tenant(
    tmp_path: Path,
) -> None:
    database = tmp_path / "switchboard.db"
    with _demo_server(database, tmp_path / "first.log") as first:
        # Printed when the port accepts connections, after the app started and answered.
        assert first.accepting_at_keys, first.output
        startup = first.output.index("Application startup complete.")
        answered = first.output.index('"GET /healthz HTTP/1.1" 200')
        assert startup < answered < first.output.index(KEYS_LINE), first.output
        assert first.output.count(KEYS_LINE) == 1
        assert not first.reused
        assert set(first.keys) == {"admin", "helpdesk", "planner"}
        # The README's first curl, as written.
        status, body = _request(
            first.port, "POST", "/v1/tickets/DEMO-1/assign", first.keys["helpdesk"]
        )
        assert status == 200, body
        assert b'"agent":"' in body, body

    with _demo_server(database, tmp_path / "second.log") as second:
        assert second.accepting_at_keys and second.reused, second.output
        assert set(second.keys.values()).isdisjoint(first.keys.values())
        for role in ("admin", "helpdesk", "planner"):
            assert _request(second.port, "GET", "/v1/agents", first.keys[role])[0] == 401
            assert _request(second.port, "GET", "/v1/agents", second.keys[role])[0] == 200
        status, body = _request(
            second.port, "POST", "/v1/tickets/DEMO-1/assign", second.keys["helpdesk"]
        )
        assert status == 200, body

    engine = create_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Tenant)) == 1
    finally:
        engine.dispose()


def test_the_ready_probe_waits_for_an_answer_and_gives_up_when_told() -> None:
    """A bound socket that does not listen refuses: no announcement until ``stop``."""
    import threading

    with serve.bind("127.0.0.1", 0) as sock:
        host, port = serve.probe_address(sock)
        stop = threading.Event()
        timer = threading.Timer(0.3, stop.set)
        # The clock starts before the timer does: the 0.3 s run from the timer's own start, so
        # reading the clock after it could make the wait look up to that gap short (0.2997 s
        # seen in CI on a loaded machine).
        started = time.monotonic()
        timer.start()
        assert serve.wait_until_serving(host, port, stop) is False
        assert time.monotonic() - started >= 0.3
    with serve.bind("0.0.0.0", 0) as sock:
        assert serve.probe_address(sock) == ("127.0.0.1", sock.getsockname()[1])
