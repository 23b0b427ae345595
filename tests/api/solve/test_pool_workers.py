"""Solve workers die with the server process that started them.

A server killed outright (``kill -9``, the OOM killer, a container stopped without grace) never
runs its pool's shutdown, and a process pool's workers do not notice their parent is gone: they
stayed, each holding the solver's imports (~80 MB), forever. The test suite alone left hundreds
of them on this machine (23 GB) until a CI run was killed for memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# A stand-in for a server process: a warmed solve pool of two worker processes, then waiting.
_SERVER = """
import time
from api.settings import Settings
from api.solve.pool import SolvePool
pool = SolvePool.from_settings(Settings(solve_workers=2, solve_executor="process"))
pool.warm()
print("warm", flush=True)
time.sleep(600)
"""


def _workers_of(parent: int) -> list[int]:
    """The pool's worker processes among ``parent``'s children (not its resource tracker)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().split(")")[-1].split()[1])
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(proc.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its (new) parent to reap it.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_workers_exit_when_their_server_is_killed() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "warm"
        deadline = time.monotonic() + 60
        while len(workers := _workers_of(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2, workers
        time.sleep(1.5)  # past the workers' start-up: they are idle, waiting for work
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in workers if _alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)  # leave the machine clean even when the test fails
    assert left == [], "solve workers outlived their server"
