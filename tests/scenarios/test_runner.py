"""scenarios.runner: one task per (world, replication), results in task order, the same seeded
results on every backend (serial, a spawned process pool, a Dask LocalCluster)."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from scenarios import runner
from scenarios.inputs import baseline_from_dict
from scenarios.model import World
from scenarios.results import RunResult

TABLES = ("tickets", "moves", "agents", "calls")


def tiny_baseline(name: str = "tiny") -> dict[str, Any]:
    """A day of one small team: e-mail and chat (patience, so abandonments draw), shrinkage
    (absence draws), the production router. ~60 tickets: a replication simulates in well under
    a second."""
    shift = [{"days": ["mon"], "start": "08:00", "end": "16:00"}]
    return {
        "name": name,
        "start": "2026-03-23T00:00:00+01:00",
        "days": 1,
        "timezone": "Europe/Berlin",
        "interval_minutes": 60,
        "skills": ["net", "en"],
        "teams": [{"id": "t1", "scope": "borrow"}],
        "agents": [
            {
                "id": f"a{i}",
                "team": "t1",
                "skills": {"net": 1 + i % 2, "en": 3},
                "timezone": "Europe/Berlin",
                "capacity": 4,
                "shrinkage": 0.2,
                "channel_capacity": {"chat": 1},
                "shifts": shift,
            }
            for i in range(3)
        ],
        "demand": {
            "volume": [
                {
                    "team": "t1",
                    "channel": ch,
                    "hour": h,
                    "per_hour": rate,
                    "skills": {"net": 1},
                    "effort_minutes": effort,
                    "effort_cv": 0.5,
                }
                for h in range(8, 16)
                for ch, rate, effort in (("email", 4.0, 20.0), ("chat", 3.0, 8.0))
            ]
        },
        "sla": [{"priority": "normal", "first_response_minutes": 60, "resolution_minutes": 240}],
        "routing": {"policy": "production", "reoptimize_minutes": 60, "patience_minutes": 5},
    }


@pytest.fixture(scope="module")
def world() -> World:
    return baseline_from_dict(tiny_baseline())


def _same(a: list[RunResult], b: list[RunResult]) -> None:
    assert [(r.world, r.seed, r.replication) for r in a] == [
        (r.world, r.seed, r.replication) for r in b
    ]
    for x, y in zip(a, b, strict=True):
        for table in TABLES:
            pd.testing.assert_frame_equal(getattr(x, table), getattr(y, table))


def test_a_world_pickles(world: World) -> None:
    """Tasks cross process boundaries: the world (read-only mappings and all) must pickle."""
    again = pickle.loads(pickle.dumps(world))
    assert again == world
    assert dict(again.agents[0].skills) == {"net": 1, "en": 3}


@pytest.fixture(scope="module")
def serial(world: World) -> list[RunResult]:
    seen: list[tuple[int, int]] = []
    fractions: list[tuple[int, float]] = []
    runs = runner.run_replications(
        world,
        seed=11,
        replications=3,
        backend="serial",
        progress=lambda done, total: seen.append((done, total)),
        task_progress=lambda i, f: fractions.append((i, f)),
    )
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    _follows_each_task(fractions, 3)
    return runs


def _follows_each_task(fractions: list[tuple[int, float]], tasks: int) -> None:
    """Every task reported its simulated-time progress, rising within [0, 1]."""
    assert {i for i, _ in fractions} == set(range(tasks))
    for index in range(tasks):
        mine = [f for i, f in fractions if i == index]
        assert mine == sorted(mine) and mine[0] >= 0.0 and mine[-1] <= 1.0


def test_replications_are_numbered_and_differ(serial: list[RunResult]) -> None:
    assert [r.replication for r in serial] == [0, 1, 2]
    assert {r.seed for r in serial} == {11}
    assert len(serial[0].tickets) > 20
    # Independent streams: the arrivals differ between replications.
    assert not serial[0].tickets["created_at"].equals(serial[1].tickets["created_at"])


def test_the_backends_give_identical_results(world: World, serial: list[RunResult]) -> None:
    """The same (world, seed, replication) gives the same tables in this process, in spawned
    worker processes and on a Dask cluster of two worker processes, whatever order the tasks
    finish in; the progress callback counts every task once."""
    seen: list[tuple[int, int]] = []
    fractions: list[tuple[int, float]] = []
    pooled = runner.run_replications(
        world,
        seed=11,
        replications=3,
        workers=2,
        progress=lambda done, total: seen.append((done, total)),
        task_progress=lambda i, f: fractions.append((i, f)),
    )
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    _same(serial, pooled)
    # The workers' simulated-time progress reaches this process (over the pool's queue).
    _follows_each_task(fractions, 3)

    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        seen.clear()
        on_dask = runner.run_replications(
            world,
            seed=11,
            replications=3,
            backend=client,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    _same(serial, on_dask)


def test_run_worlds_pairs_every_world_with_every_replication(world: World) -> None:
    """Two worlds share seed and replication numbers (common random numbers): the same
    arrivals, and one result list per world in the order given."""
    smaller = baseline_from_dict({**tiny_baseline("b"), "agents": tiny_baseline()["agents"][:2]})
    fractions: list[float] = []
    out = runner.run_worlds(
        {"b": smaller, "a": world},
        seed=5,
        replications=2,
        backend="serial",
        run_progress=fractions.append,  # one run at a time (the service's job worker)
    )
    assert fractions and all(0.0 <= f <= 1.0 for f in fractions)
    assert list(out) == ["b", "a"]
    assert [r.replication for r in out["a"]] == [0, 1]
    for x, y in zip(out["a"], out["b"], strict=True):
        pd.testing.assert_series_equal(x.tickets["created_at"], y.tickets["created_at"])


def test_bad_arguments_are_refused(world: World) -> None:
    with pytest.raises(ValueError, match="replications"):
        runner.run_replications(world, seed=1, replications=0, backend="serial")
    with pytest.raises(ValueError, match="seed"):
        runner.run_replications(world, seed=-1, replications=1, backend="serial")
    with pytest.raises(ValueError, match="backend"):
        runner.run_replications(world, seed=1, replications=1, backend="threads")  # type: ignore[arg-type]
    assert runner.run_tasks([], backend="serial") == []


@pytest.fixture
def no_dask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    yield


@pytest.mark.usefixtures("no_dask")
def test_dask_without_the_extra_names_it() -> None:
    with pytest.raises(runner.MissingExtraError, match=r"pip install -e '\.\[distributed\]'"):
        runner.dask_client("tcp://127.0.0.1:1")
