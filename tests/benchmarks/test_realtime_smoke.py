"""Smoke test of the real-time benchmark's enterprise preset (``python -m benchmarks.realtime
--scale``), so its runner cannot rot unnoticed: the same code path at a tiny size. No timing
is asserted; the naive loop's quality check is, since it is exact."""

from __future__ import annotations

import pytest

from benchmarks import realtime


def test_the_scale_preset_runs_tiny_and_reports_what_it_measures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--scale", "--agents", "80", "--skills", "40", "--tickets", "60"]
    assert realtime.main([*argv, "--naive-sample", "30"]) == 0
    out = capsys.readouterr().out
    assert "80 agents x 40 skills, 60 tickets (enterprise generator, seed 7" in out
    for row in ("assign (pure)", "assign (with commits)", "with_loads", "naive per-agent"):
        assert row in out
    assert "RealtimeIndex.build peak" in out and "process peak RSS" in out
    assert "decisions that differ in quality: 0 of 30" in out
    assert "load average" in out


def test_the_enterprise_generator_is_what_its_docstring_says() -> None:
    p = realtime.generate_enterprise(seed=1, n_agents=200, n_skills=120, n_tickets=100)
    assert len(p.agents) == 200 and len(p.skill_ids) == 120
    assert len({a.team for a in p.agents}) > 20
    assert len({a.timezone for a in p.agents}) == len(realtime.ZONES)
    for a in p.agents:
        languages = [s for s in a.skills if s.startswith("lang:")]
        assert 1 <= len(languages) <= 3 and 1 <= a.skills["tier"] <= 3
        assert 3 <= len(a.skills) - len(languages) - 1 <= 35
    assert all(1 <= len(t.required_skills) <= 3 for t in p.tickets)


def test_sizes_are_refused_for_the_shared_instance() -> None:
    with pytest.raises(SystemExit):
        realtime.main(["--agents", "10"])
