"""Run many simulations: replications of a world, scenarios side by side, a sweep's grid.

Every (world, replication) pair is one task, and a task is plain picklable data: the
:class:`~scenarios.model.World` and two ints (seed, replication). A replication's random streams
depend on nothing but those (:mod:`scenarios.rng`), so a task gives the same result wherever it
runs, and the results come back in task order whatever order the tasks finish in. Three
backends run the tasks:

- ``"process"`` (the default): a local :class:`concurrent.futures.ProcessPoolExecutor` of
  ``workers`` processes (default ``os.cpu_count()``), started with ``spawn`` so it is safe
  whatever threads the caller runs (a progress bar's refresher, a web server's pool) and
  behaves the same on every platform;
- ``"serial"``: in this process, one after the other (no start-up cost);
- a ``dask.distributed.Client``: the same tasks on a Dask cluster (the optional extra
  ``pip install -e '.[distributed]'``; :func:`dask_client` connects and names the extra when it
  is missing). Each distinct world is scattered to the cluster once, not once per replication.

``progress(done, total)`` is called in the caller's thread as tasks finish, and once with
``(0, total)`` before the first. ``task_progress(index, fraction)`` (serial and process
backends) follows each task through its simulated time: the workers send their simulator's
progress over a queue the pool's processes inherit, and the caller's thread reads it between
completions, so a long run moves a progress bar before its first replication is done.
``run_progress(fraction)`` is the same without the index (for a caller that follows one run at
a time, as on the serial backend).

All scenarios of a comparison or a sweep run with the same seed and replication numbers, so
replication ``r`` of every scenario draws the same arrivals: their deltas are paired (common
random numbers, see :mod:`scenarios.rng`).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from scenarios.model import World
from scenarios.results import RunResult

if TYPE_CHECKING:
    from scenarios.spec import Sweep

Progress = Callable[[int, int], None]
TaskProgress = Callable[[int, float], None]
LocalBackend = Literal["process", "serial"]
DISTRIBUTED_EXTRA = "pip install -e '.[distributed]'"


class ClusterClient(Protocol):
    """What the runner uses of a ``dask.distributed.Client``."""

    def submit(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...

    def scatter(self, data: Any, *, hash: bool = ...) -> Any: ...

    def close(self) -> Any: ...


Backend = LocalBackend | ClusterClient


class MissingExtraError(ImportError):
    """The Dask backend was asked for without the optional extra installed."""


@dataclass(frozen=True, slots=True)
class Task:
    """One replication of one world: all a worker process needs, and nothing else."""

    world: World
    seed: int
    replication: int


def run_task(task: Task, progress: Callable[[float], None] | None = None) -> RunResult:
    """Simulate one task (module level, so a spawned process or a Dask worker finds it by
    name); ``progress`` gets the fraction of its simulated time done."""
    from scenarios.sim import simulate

    return simulate(task.world, seed=task.seed, replication=task.replication, progress=progress)


# In a pool's worker process: where to send (task index, fraction) messages (set by _init).
_progress_queue: Any = None


def _init(messages: Any) -> None:
    global _progress_queue
    _progress_queue = messages


def _pool_task(index: int, task: Task) -> RunResult:
    messages = _progress_queue
    if messages is None:
        return run_task(task)
    return run_task(task, lambda fraction: messages.put((index, fraction)))


def _run_on(world: World, seed: int, replication: int) -> RunResult:
    """A Dask task: ``world`` arrives as the scattered copy."""
    return run_task(Task(world, seed, replication))


def dask_client(address: str) -> ClusterClient:
    """A client of the Dask scheduler at ``address`` (``tcp://host:8786``), or a clear error
    naming the optional extra when Dask is not installed."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise MissingExtraError(
            f"running on a Dask cluster needs the optional extra: {DISTRIBUTED_EXTRA} ({exc})"
        ) from None
    client: ClusterClient = Client(address)  # type: ignore[no-untyped-call]
    return client


def run_tasks(
    tasks: Sequence[Task],
    *,
    backend: Backend = "process",
    workers: int | None = None,
    progress: Progress | None = None,
    task_progress: TaskProgress | None = None,
    run_progress: Callable[[float], None] | None = None,
) -> list[RunResult]:
    """Run ``tasks``; the results in the same order (see the module docstring for the
    callbacks; ``task_progress`` and ``run_progress`` are not called on Dask)."""
    tasks = list(tasks)
    if run_progress is not None:
        task_progress = _both(task_progress, run_progress)
    total = len(tasks)
    if progress is not None:
        progress(0, total)
    if not tasks:
        return []
    if isinstance(backend, str):
        if backend == "serial":
            return _serial(tasks, progress, task_progress)
        if backend == "process":
            return _process_pool(tasks, workers, progress, task_progress)
        raise ValueError(f"backend must be 'process', 'serial' or a Dask client, not {backend!r}")
    if not callable(getattr(backend, "submit", None)):
        raise TypeError(f"backend must be 'process', 'serial' or a Dask client, not {backend!r}")
    return _dask(tasks, backend, progress)


def run_replications(
    world: World,
    *,
    seed: int,
    replications: int,
    backend: Backend = "process",
    workers: int | None = None,
    progress: Progress | None = None,
    task_progress: TaskProgress | None = None,
    run_progress: Callable[[float], None] | None = None,
) -> list[RunResult]:
    """Replications ``0 .. replications - 1`` of ``world`` with ``seed``, in that order."""
    _check(seed, replications)
    tasks = [Task(world, seed, r) for r in range(replications)]
    return run_tasks(
        tasks,
        backend=backend,
        workers=workers,
        progress=progress,
        task_progress=task_progress,
        run_progress=run_progress,
    )


def run_worlds(
    worlds: Mapping[str, World],
    *,
    seed: int,
    replications: int,
    backend: Backend = "process",
    workers: int | None = None,
    progress: Progress | None = None,
    task_progress: TaskProgress | None = None,
    run_progress: Callable[[float], None] | None = None,
) -> dict[str, list[RunResult]]:
    """Each named world's replications, every (world, replication) pair one task of one pool,
    all with the same seed (common random numbers). Keys in the order given."""
    _check(seed, replications)
    names = list(worlds)
    tasks = [Task(worlds[name], seed, r) for name in names for r in range(replications)]
    results = run_tasks(
        tasks,
        backend=backend,
        workers=workers,
        progress=progress,
        task_progress=task_progress,
        run_progress=run_progress,
    )
    return {
        name: results[i * replications : (i + 1) * replications] for i, name in enumerate(names)
    }


def run_sweep(
    sweep: Sweep,
    *,
    seed: int | None = None,
    replications: int | None = None,
    backend: Backend = "process",
    workers: int | None = None,
    progress: Progress | None = None,
    task_progress: TaskProgress | None = None,
    run_progress: Callable[[float], None] | None = None,
) -> dict[str, list[RunResult]]:
    """Every grid point's replications, keyed by scenario name in the sweep's order. ``seed``
    and ``replications`` default to the sweep's."""
    worlds = {scenario.name: scenario.world() for scenario in sweep.scenarios}
    return run_worlds(
        worlds,
        seed=sweep.seed if seed is None else seed,
        replications=sweep.replications if replications is None else replications,
        backend=backend,
        workers=workers,
        progress=progress,
        task_progress=task_progress,
        run_progress=run_progress,
    )


def _both(each: TaskProgress | None, run: Callable[[float], None]) -> TaskProgress:
    def call(index: int, fraction: float) -> None:
        if each is not None:
            each(index, fraction)
        run(fraction)

    return call


def _check(seed: int, replications: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, not {seed!r}")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise ValueError(f"replications must be a whole number >= 1, not {replications!r}")


def _serial(
    tasks: list[Task], progress: Progress | None, task_progress: TaskProgress | None
) -> list[RunResult]:
    results = []
    for done, task in enumerate(tasks, 1):
        index = done - 1
        each = None if task_progress is None else lambda f, i=index: task_progress(i, f)
        results.append(run_task(task, each))
        if progress is not None:
            progress(done, len(tasks))
    return results


def _process_pool(
    tasks: list[Task],
    workers: int | None,
    progress: Progress | None,
    task_progress: TaskProgress | None,
) -> list[RunResult]:
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    size = min(workers or os.cpu_count() or 1, len(tasks))
    results: list[RunResult | None] = [None] * len(tasks)
    context = multiprocessing.get_context("spawn")
    messages = context.SimpleQueue() if task_progress is not None else None
    pool = ProcessPoolExecutor(
        max_workers=size, mp_context=context, initializer=_init, initargs=(messages,)
    )

    def relay() -> None:
        while messages is not None and task_progress is not None and not messages.empty():
            index, fraction = messages.get()
            task_progress(index, fraction)

    try:
        pending: dict[Future[RunResult], int] = {
            pool.submit(_pool_task, i, task): i for i, task in enumerate(tasks)
        }
        done = 0
        while pending:
            timeout = None if messages is None else 0.2
            finished, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            relay()
            for future in finished:
                results[pending.pop(future)] = future.result()
                done += 1
                if progress is not None:
                    progress(done, len(tasks))
    finally:
        # On an error (or Ctrl-C) the tasks not started are dropped, not run to no purpose.
        pool.shutdown(wait=True, cancel_futures=True)
        if messages is not None:
            messages.close()
    return _all(results)


def _dask(tasks: list[Task], client: ClusterClient, progress: Progress | None) -> list[RunResult]:
    # One scattered copy per distinct world (tasks of one world share the object).
    scattered: dict[int, Any] = {}
    for task in tasks:
        if id(task.world) not in scattered:
            scattered[id(task.world)] = client.scatter(task.world, hash=False)
    finished: queue.SimpleQueue[int] = queue.SimpleQueue()
    futures = []
    for i, task in enumerate(tasks):
        future = client.submit(
            _run_on, scattered[id(task.world)], task.seed, task.replication, pure=False
        )
        future.add_done_callback(lambda _f, i=i: finished.put(i))
        futures.append(future)
    results: list[RunResult | None] = [None] * len(tasks)
    try:
        for done in range(1, len(tasks) + 1):
            i = finished.get()
            results[i] = futures[i].result()  # raises the task's error, if it failed
            if progress is not None:
                progress(done, len(tasks))
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
    return _all(results)


def _all(results: list[RunResult | None]) -> list[RunResult]:
    out = [r for r in results if r is not None]
    if len(out) != len(results):
        raise RuntimeError("a task returned no result")
    return out
