"""Smoke tests of the what-if planning benchmarks, so their runners cannot rot unnoticed: each
runs tiny with its own code and prints what its figures are made of. No timing is asserted."""

from __future__ import annotations

import pytest

from benchmarks import scenario_calls, scenario_engines, scenarios


def test_the_simulation_benchmark_runs_a_tiny_floor(capsys: pytest.CaptureFixture[str]) -> None:
    assert scenarios.main(["--days", "1", "--agents", "6", "--per-day", "60"]) == 0
    out = capsys.readouterr().out
    assert "1 days, 6 agents" in out and "events/s" in out and "load average after" in out


def test_the_erlang_check_prints_the_simulated_and_the_formulas_service_levels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = scenarios.main(["--erlang", "2000"])
    out = capsys.readouterr().out
    assert code in (0, 1)  # 2,000 calls are too few to hold the tolerance; 300,000 are
    assert "Erlang C: 14 agents" in out and "Erlang A: 13 agents" in out
    assert "largest service-level difference" in out


def test_the_engine_comparison_runs_both_engines(capsys: pytest.CaptureFixture[str]) -> None:
    assert scenario_engines.main(["--calls", "3000", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "SimPy" in out and "heap EventLoop" in out


def test_the_calls_benchmark_runs_on_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    scenario_calls.main(["--days", "1"])
    assert capsys.readouterr().out
