"""The bounded pool that runs ``POST /v1/solve`` off the request threads.

A solve is CPU-bound OR-Tools work of up to ``solve_max_seconds`` (30 s). Run in FastAPI's
shared thread pool (40 threads), 40 concurrent solves from one tenant would hold every thread,
and the GIL, and other tenants' cheap requests would wait seconds. Here a solve is admitted
only while

* the tenant runs fewer than ``solve_max_per_tenant`` solves — else **429**, and
* the pool runs fewer than ``solve_workers`` in all — else **503**,

and is refused at once otherwise: nothing queues, so nothing queues without bound. Both answers
carry ``Retry-After``: when the earliest of the solves holding the slot reaches its time limit.

By default the pool is processes (``solve_executor``): the solver's Python (mapping, list
scheduling, checking) holds the GIL, so threads would still take the interpreter from the
request handlers; worker processes run at the lowest CPU priority (:mod:`api.solve.priority`:
``SCHED_IDLE`` on Linux, else ``nice`` +10), so on a busy machine the kernel serves requests
first and gives solves what is left. They are started with
the app (:meth:`SolvePool.warm`, in the background; ``spawn``: nothing of the server's threads
or connections is inherited) and kept: solves on a thread pool capped the same way still
delay another tenant's reads by seconds, in processes by milliseconds (figures:
benchmarks/README.md, Noisy neighbour). The caps are per server process: with N uvicorn
workers, N times as many solves run at once.

The slot is taken by a dependency of the route, before FastAPI validates the body: a refused
solve costs no validation of a problem that may hold 20,000 tickets. It is given back when the
solve ends, not when its request does: a client that disconnects does not free a slot its solve
still occupies.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from api.errors import Overloaded, TooManyRequests
from api.settings import Settings
from api.solve import priority

T = TypeVar("T")

_MARGIN_SECONDS = 1.0  # a solve ends a little after its time limit (checking, serializing)


def _preload() -> None:
    """Warm-up task: import the solver and its mapping now, not during the first solve."""
    import api.solve.service  # noqa: F401


class Slot:
    """A place in the pool, taken before the request's body is even validated (a refused solve
    costs no parsing) and given back when its solve ends, or at once if it never starts."""

    __slots__ = ("deadline", "started", "tenant_id")

    def __init__(self, tenant_id: str, deadline: float) -> None:
        self.tenant_id = tenant_id
        self.deadline = deadline  # monotonic: when the solve holding it reaches its time limit
        self.started = False


class SolvePool:
    """Admission (per tenant and in all) in front of an executor made when first needed."""

    def __init__(self, *, workers: int, per_tenant: int, processes: bool) -> None:
        self.workers = workers
        self.per_tenant = per_tenant
        self.processes = processes
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        self._slots: dict[str, list[Slot]] = {}  # tenant -> its slots taken

    @classmethod
    def from_settings(cls, settings: Settings) -> SolvePool:
        return cls(
            workers=settings.solve_workers,
            per_tenant=settings.solve_max_per_tenant,
            processes=settings.solve_in_processes,
        )

    def running(self, tenant_id: str | None = None) -> int:
        """Slots taken: by one tenant, or by all."""
        with self._lock:
            if tenant_id is not None:
                return len(self._slots.get(tenant_id, ()))
            return sum(len(v) for v in self._slots.values())

    def reserve(self, *, tenant_id: str, seconds: float) -> Slot:
        """A slot for one solve of at most ``seconds``, or TooManyRequests / Overloaded at
        once. Give it back with :meth:`release` unless :meth:`run` took it."""
        now = time.monotonic()
        with self._lock:
            mine = self._slots.get(tenant_id, [])
            if len(mine) >= self.per_tenant:
                wait = _seconds_until(min(s.deadline for s in mine), now)
                plural = "s" if len(mine) != 1 else ""
                raise TooManyRequests(
                    f"this tenant already runs {len(mine)} concurrent solve{plural}, its "
                    f"limit; retry in {wait} s",
                    retry_after=wait,
                )
            everyone = [s.deadline for slots in self._slots.values() for s in slots]
            if len(everyone) >= self.workers:
                wait = _seconds_until(min(everyone), now)
                raise Overloaded(f"every solver is busy; retry in {wait} s", retry_after=wait)
            slot = Slot(tenant_id, now + seconds + _MARGIN_SECONDS)
            self._slots.setdefault(tenant_id, []).append(slot)
            return slot

    def release(self, slot: Slot) -> None:
        """Give ``slot`` back (again is harmless)."""
        with self._lock:
            mine = self._slots.get(slot.tenant_id)
            if mine is not None and slot in mine:
                mine.remove(slot)
                if not mine:
                    del self._slots[slot.tenant_id]

    async def run(self, slot: Slot, *, seconds: float, fn: Callable[..., T], **kwargs: Any) -> T:
        """``fn(**kwargs)`` in the pool on ``slot``, which is given back when it ends (not when
        the awaiting request does). ``seconds`` is its time limit, for Retry-After."""
        slot.deadline = time.monotonic() + seconds + _MARGIN_SECONDS
        try:
            future: Future[T] = self._pool().submit(fn, **kwargs)
        except BrokenProcessPool:
            self._discard_broken()
            raise Overloaded("the solver pool is restarting; retry", retry_after=1) from None
        slot.started = True
        future.add_done_callback(lambda _: self.release(slot))
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the executor is unusable from now on.
            self._discard_broken()
            raise Overloaded("the solve was interrupted; retry", retry_after=1) from None

    def _pool(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if self.processes:
                    self._executor = ProcessPoolExecutor(
                        max_workers=self.workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        # api.solve.priority imports next to nothing: the worker lowers its
                        # priority before it imports anything (the imports are seconds of CPU),
                        # and exits once this process is gone, however it went.
                        initializer=priority.start,
                        initargs=(os.getpid(),),
                    )
                else:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self.workers, thread_name_prefix="solve"
                    )
            return self._executor

    def warm(self) -> None:
        """Start the worker processes and their imports in the background (a no-op for
        threads), so the first solves after a start do not pay for them."""
        if self.processes:
            pool = self._pool()
            for _ in range(self.workers):
                pool.submit(_preload)

    def _discard_broken(self) -> None:
        with self._lock:
            broken, self._executor = self._executor, None
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop taking work; solves in progress finish in their workers (at most their time
        limit), queued ones — there are none by construction — would be cancelled."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def _seconds_until(deadline: float, now: float) -> int:
    return max(1, math.ceil(deadline - now))
