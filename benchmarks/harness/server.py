"""The real service in a subprocess, as it is deployed (uvicorn, loopback only), served from this
checkout or from another source tree (a checkout of an earlier commit, for a before/after
comparison in one sitting)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from benchmarks.harness.cpu import cpu_of, process_tree
from benchmarks.harness.routes import HEALTH_PATH

REPO_ROOT = Path(__file__).resolve().parents[2]

# The service as ``switchboard serve --workers N`` runs it (``api.serve.run``), with settings read
# once from the environment and no access log. ``api.serve`` binds the listening socket as TCP
# itself: uvicorn's own ``--workers N`` binds it without ``IPPROTO_TCP`` and, on asyncio's loop,
# every keep-alive response then waits ~40 ms for the client's delayed ACK (Kludex/uvicorn#3149).
# It names only the service's public entry point, never this package: another source tree may
# lay its benchmarks out differently.
_LAUNCH = (
    "import sys; from api.serve import run; from api.settings import Settings; "
    "sys.exit(run(Settings(), host='127.0.0.1', port={port}, workers={workers}, "
    "log_level='warning', access_log=False))"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    database_url: str,
    *,
    workers: int,
    log: Path,
    env_extra: dict[str, str] | None = None,
    code: Path | None = None,
) -> Iterator[tuple[str, int]]:
    """The service under uvicorn in a subprocess; yields its base URL and pid once it answers
    and its start-up work is over. ``env_extra`` adds settings (``SWITCHBOARD_DB_POOL_SIZE``,
    ...); ``code`` serves another source tree (a before/after run) instead of this one, with
    this interpreter and its installed dependencies: the tree goes first on ``PYTHONPATH`` (and
    is the working directory), so its ``api`` and ``solver`` shadow this checkout's editable
    install, in the server and in the solve pool processes it spawns."""
    port = free_port()
    root = code or REPO_ROOT
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SWITCHBOARD_ENVIRONMENT": "development",
        # Background work would compete for the same cores; it is not what is measured.
        "SWITCHBOARD_JOBS_WORKER": "false",
        "SWITCHBOARD_WEBHOOK_DELIVERER": "false",
        **(env_extra or {}),
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-c", _LAUNCH.format(port=port, workers=workers)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, timeout=60.0, log=log)
        _settle(proc.pid)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _settle(pid: int, *, timeout: float = 30.0, busy: float = 0.05) -> None:
    """Wait until ``pid``'s process tree is idle (under ``busy`` of a core over 0.5 s).

    The server answers before its start-up is over: the solve pool spawns its processes and
    imports the app in them in the background (``SolvePool.warm``), seconds of CPU on this
    machine that the first run's server CPU would otherwise count (measured: 5.2 ms per
    assignment at 8 clients against 1.1 at 32 in the same run)."""
    deadline = time.monotonic() + timeout
    before = sum(cpu_of(process_tree(pid)).values())
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(cpu_of(process_tree(pid)).values())
        if now - before < busy * 0.5:
            return
        before = now


def _wait_ready(base: str, proc: subprocess.Popen[bytes], *, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + HEALTH_PATH, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {HEALTH_PATH} within {timeout:.0f} s; see {log}")


def commit_of(rev: str, repo: Path = REPO_ROOT) -> str:
    """The full commit id ``rev`` names in ``repo`` (SystemExit when it names none)."""
    found = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise SystemExit(f"{rev!r} names no commit of {repo}")
    return found.stdout.strip()


@contextlib.contextmanager
def source_tree(rev: str, repo: Path = REPO_ROOT) -> Iterator[Path]:
    """A checkout of commit ``rev`` of ``repo`` in a temp directory (a detached ``git
    worktree``: no branch is made or moved), removed with its worktree entry afterwards."""
    commit = commit_of(rev, repo)
    with tempfile.TemporaryDirectory(prefix="switchboard-tree-") as tmp:
        tree = Path(tmp) / commit[:12]
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(tree), commit],
            check=True,
            capture_output=True,
        )
        try:
            yield tree
        finally:
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )


def describe_checkout(repo: Path = REPO_ROOT) -> str:
    """This checkout as a report names it: its commit, and whether files differ from it."""
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"this checkout ({head or 'no git'}{', with uncommitted changes' if dirty else ''})"
