"""What a solve worker does first: lower its CPU priority below the server's, before it imports
anything, and see to it that it exits with the server that started it.

Kept apart and nearly import-free (``os``, ``threading``, ``time``): a solve worker runs
:func:`start` as its pool initializer first thing after it is spawned, and the solver's imports
alone are seconds of CPU.

On Linux the worker asks for ``SCHED_IDLE``: it runs only on CPU time that nothing else of
normal priority wants, so a solve never takes a time slice from a request. With ``nice`` +10
alone the kernel still gives each solve a slice every scheduling period, a stall another
tenant's requests see while solves run (figures: benchmarks/README.md, Noisy neighbour).
Elsewhere, or where the call is refused, ``nice`` is what it gets.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

NICE_INCREMENT = 10  # how much lower a solve process's priority is where SCHED_IDLE is not had
PARENT_CHECK_SECONDS = 1.0  # how soon a worker notices its server is gone


def start(parent: int) -> None:
    """A solve worker's initializer: :func:`background`, then :func:`exit_with` ``parent``."""
    background()
    exit_with(parent)


def background() -> None:
    """Make this process yield the CPU to everything of normal priority."""
    os.nice(NICE_INCREMENT)  # also the weight among SCHED_IDLE peers, and the fallback
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):  # refused (a container's policy): nice it is
            os.sched_setscheduler(0, idle, os.sched_param(0))


def exit_with(parent: int) -> None:
    """Exit this process once ``parent`` (the server that spawned it) is gone.

    A pool's workers do not notice on their own: a server killed outright (``kill -9``, the OOM
    killer, a container stopped without grace) never runs the pool's shutdown, and its idle
    workers, each holding the solver's imports, stayed forever. A daemon thread watches for the
    worker being re-parented. (``PR_SET_PDEATHSIG`` is no substitute: it fires when the *thread*
    that spawned the worker ends, and the pool spawns from short-lived threads.)
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)  # no cleanup to run: the worker holds nothing but its imports

    if os.getppid() != parent:
        os._exit(0)  # the server died while this worker started
    threading.Thread(target=watch, name="exit-with-server", daemon=True).start()
