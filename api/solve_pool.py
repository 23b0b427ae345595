"""The bounded pool that runs ``POST /v1/solve`` off the request threads.

A solve is CPU-bound OR-Tools work of up to ``solve_max_seconds`` (30 s). Run in FastAPI's
shared thread pool (40 threads), 40 concurrent solves from one tenant held every thread, and
the GIL, so other tenants' cheap requests waited seconds. Here a solve is admitted only while

* the tenant runs fewer than ``solve_max_per_tenant`` solves — else **429**, and
* the pool runs fewer than ``solve_workers`` in all — else **503**,

and is refused at once otherwise: nothing queues, so nothing queues without bound. Both answers
carry ``Retry-After``: when the earliest of the solves holding the slot reaches its time limit.

By default the pool is processes (``solve_executor``): the solver's Python (mapping, list
scheduling, checking) holds the GIL, so threads would still take the interpreter from the
request handlers; worker processes run at a lower CPU priority (``nice`` +10), so on a busy
machine the kernel serves requests first and gives solves what is left. They are started on
first use (``spawn``: nothing of the server's threads or connections is inherited) and kept.
The caps are per server process: with N uvicorn workers, N times as many solves run at once.

A slot is given back when the solve ends, not when its request does: a client that disconnects
does not free a slot its solve still occupies.
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

T = TypeVar("T")

NICE_INCREMENT = 10  # how much lower a solve process's CPU priority is than the server's
_MARGIN_SECONDS = 1.0  # a solve ends a little after its time limit (checking, serializing)


def _lower_priority() -> None:
    """Initializer of each worker process: let request serving win the CPU."""
    os.nice(NICE_INCREMENT)


class SolvePool:
    """Admission (per tenant and in all) in front of an executor made on first use."""

    def __init__(self, *, workers: int, per_tenant: int, processes: bool) -> None:
        self.workers = workers
        self.per_tenant = per_tenant
        self.processes = processes
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        # tenant -> the (monotonic) times its running solves reach their time limits
        self._running: dict[str, list[float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> SolvePool:
        return cls(
            workers=settings.solve_workers,
            per_tenant=settings.solve_max_per_tenant,
            processes=settings.solve_in_processes,
        )

    def running(self, tenant_id: str | None = None) -> int:
        """Solves in progress: of one tenant, or of all."""
        with self._lock:
            if tenant_id is not None:
                return len(self._running.get(tenant_id, ()))
            return sum(len(v) for v in self._running.values())

    async def run(
        self, *, tenant_id: str, seconds: float, fn: Callable[..., T], **kwargs: Any
    ) -> T:
        """``fn(**kwargs)`` in the pool, or TooManyRequests / Overloaded at once. ``seconds`` is
        how long it may take (the solve's time limit): what Retry-After is computed from."""
        now = time.monotonic()
        deadline = now + seconds + _MARGIN_SECONDS
        with self._lock:
            mine = self._running.get(tenant_id, [])
            if len(mine) >= self.per_tenant:
                wait = _seconds_until(min(mine), now)
                raise TooManyRequests(
                    f"this tenant already runs {len(mine)} concurrent solve"
                    f"{'s' if len(mine) != 1 else ''}, its limit; retry in {wait} s",
                    retry_after=wait,
                )
            everyone = [d for ds in self._running.values() for d in ds]
            if len(everyone) >= self.workers:
                wait = _seconds_until(min(everyone), now)
                raise Overloaded(f"every solver is busy; retry in {wait} s", retry_after=wait)
            self._running.setdefault(tenant_id, []).append(deadline)
        try:
            future: Future[T] = self._pool().submit(fn, **kwargs)
        except BrokenProcessPool:
            self._release(tenant_id, deadline)
            self._discard_broken()
            raise Overloaded("the solver pool is restarting; retry", retry_after=1) from None
        except BaseException:
            self._release(tenant_id, deadline)
            raise
        future.add_done_callback(lambda _: self._release(tenant_id, deadline))
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the executor is unusable from now on.
            self._discard_broken()
            raise Overloaded("the solve was interrupted; retry", retry_after=1) from None

    def _release(self, tenant_id: str, deadline: float) -> None:
        with self._lock:
            mine = self._running.get(tenant_id)
            if mine is not None:
                mine.remove(deadline)
                if not mine:
                    del self._running[tenant_id]

    def _pool(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if self.processes:
                    self._executor = ProcessPoolExecutor(
                        max_workers=self.workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_lower_priority,
                    )
                else:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self.workers, thread_name_prefix="solve"
                    )
            return self._executor

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
