"""The batch benchmark's ``--huge`` and ``--scale`` runners at a tiny size, in this process, so
their code (instance overrides, who-takes-what, plain OR-Tools, the tables) cannot rot."""

from __future__ import annotations

import io

from rich.console import Console

from benchmarks.solver import HugeRun, run_huge, run_huge_one, run_scale

TINY = {"n_agents": 40, "n_tickets": 300, "n_teams": 4, "n_skills": 40}


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_huge_who_takes_what_matches_plain_or_tools() -> None:
    r = run_huge_one(3, TINY)
    assert isinstance(r, HugeRun)
    assert (r.agents, r.tickets) == (40, 300)
    assert 0 < r.pairs < r.arcs
    assert r.flow_cost == r.plain_cost
    assert r.total_s == r.build_s + r.flow_s + r.repair_s
    assert 0 < r.base_mib <= r.peak_mib <= r.plain_peak_mib


def test_huge_runner_prints_both_parts() -> None:
    console, out = _console()
    assert run_huge(console, 1, 0.3, TINY, inline=True) == 0
    text = out.getvalue()
    assert "40 agents × 300 tickets" in text
    assert "equal optima" in text
    assert "optimize, limit 0.3 s" in text
    assert " 0 violation(s)" in text


def test_scale_runner_at_a_tiny_size() -> None:
    console, out = _console()
    run_scale(console, 2, [0.3], {"n_agents": 30, "n_tickets": 200}, inline=True)
    text = out.getvalue()
    assert "30 agents × 200 tickets" in text
    assert "who takes what (exact, median of 3)" in text
