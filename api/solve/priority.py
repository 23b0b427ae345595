"""Lowering a worker process's CPU priority below the server's, before it imports anything.

Kept apart and import-free (``os`` only): a solve worker runs this as its pool initializer
first thing after it is spawned, and the solver's imports alone are seconds of CPU.

On Linux the worker asks for ``SCHED_IDLE``: it runs only on CPU time that nothing else of
normal priority wants, so a solve never takes a time slice from a request. With ``nice`` +10
alone the kernel still gives each solve a slice every scheduling period, a stall another
tenant's requests see while solves run (figures: benchmarks/README.md, Noisy neighbour).
Elsewhere, or where the call is refused, ``nice`` is what it gets.
"""

from __future__ import annotations

import contextlib
import os

NICE_INCREMENT = 10  # how much lower a solve process's priority is where SCHED_IDLE is not had


def background() -> None:
    """Make this process yield the CPU to everything of normal priority."""
    os.nice(NICE_INCREMENT)  # also the weight among SCHED_IDLE peers, and the fallback
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is not None:
        with contextlib.suppress(OSError):  # refused (a container's policy): nice it is
            os.sched_setscheduler(0, idle, os.sched_param(0))
