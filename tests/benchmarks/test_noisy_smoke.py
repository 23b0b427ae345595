"""Smoke test of ``benchmarks.noisy_neighbour``: the whole benchmark, tiny — a real server,
tenant A's flood from its own process, tenant B's probe — so it cannot rot unnoticed. No
latency is asserted (the machine is shared); what is asserted is that every phase measured
something and that the protected server answered A's excess with 429s, never an error."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from rich.console import Console

from benchmarks import noisy_neighbour as nn


@pytest.mark.slow  # ~30 s: two server and three client processes start
def test_the_benchmark_runs_tiny_and_the_flood_is_refused() -> None:
    console = Console(file=open("/dev/null", "w"))  # noqa: SIM115 - closed with the console
    try:
        phases = nn.measure(
            phase_seconds=0.6,
            flood_clients=8,
            solvers=3,
            solve_seconds=0.5,
            rate_limit=100,
            burst=10,
            configs=[nn.PROTECTED],
            console=console,
            settle_seconds=0.2,
        )
    finally:
        console.file.close()
    assert [p.name for p in phases] == ["quiet", "cheap", "solves"]
    for p in phases:
        assert len(p.latencies) > 0 and not np.isnan(p.p(99))
        # B (~70/s at most) stays under its own tenant's limit: never refused.
        assert set(p.b_counts) == {"200"}, p.b_counts
    cheap, solves = phases[1], phases[2]
    # 8 connections looping against 100/s: most of A's reads are refused, none fails.
    assert cheap.a_counts["429"] > 0 and set(cheap.a_counts) <= {"200", "429"}, cheap.a_counts
    assert solves.a_counts.total() > 0
    assert set(solves.a_counts) <= {"200", "429", "503"}, solves.a_counts
    assert nn.results_table(phases).row_count == 3


def test_limiter_cost_measures_the_memory_bucket() -> None:
    cost = nn.limiter_cost(200)
    assert cost["memory"] > 0


def test_results_table_marks_the_target() -> None:
    quiet = nn.Phase("protected", "quiet", np.full(100, 10.0), Counter({"200": 100}))
    fine = nn.Phase("protected", "cheap", np.full(100, 15.0), Counter({"200": 100}))
    slow = nn.Phase("protected", "solves", np.full(100, 30.0), Counter({"200": 100}))
    table = nn.results_table([quiet, fine, slow])
    ratios = list(table.columns[5].cells)
    assert ratios == ["1.00x", "1.50x [green]ok[/]", "3.00x [red]over[/]"]
