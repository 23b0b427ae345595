"""Erlang B, C and A against published values, closed forms, an independent birth-death
solution, and at 5,000 offered Erlangs; staffing's inverse, occupancy cap and shrinkage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.erlang import (
    agents_needed,
    asa,
    erlang_a,
    erlang_b,
    erlang_c,
    occupancy,
    offered_load,
    service_level,
)


def test_worked_example_call_centre_helper() -> None:
    """Call Centre Helper, "Erlang C formula — made simple with an easy worked example"
    (callcentrehelper.com), quoted in issue 13: 100 calls in 30 minutes, 180 s average
    handling, 80 % answered in 20 s: 10 Erlangs, 14 agents, service level 88.8 %, 20 scheduled at
    30 % shrinkage. P(wait) 17.4 %, ASA 7.8 s and occupancy 71.4 % follow from the same
    formulas (C e.g. as computed in that article's steps)."""
    assert offered_load(100, 1800, 180) == pytest.approx(10.0)
    s = agents_needed(100, 1800, 180, 0.8, 20, shrinkage=0.3)
    assert (s.agents, s.scheduled) == (14, 20)
    assert s.service_level == pytest.approx(0.888, abs=5e-4)
    assert s.asa == pytest.approx(7.8, abs=0.05)
    assert s.occupancy == pytest.approx(0.714, abs=5e-4)
    assert erlang_c(14, 10.0) == pytest.approx(0.1741, abs=5e-5)
    # 13 agents miss the target: 14 is the fewest
    assert service_level(13, 100, 1800, 180, 20) < 0.8 <= service_level(14, 100, 1800, 180, 20)


def test_erlang_c_published_table_values() -> None:
    """The CRAN package ErlangC 0.1.0 (Damonsoul, 2024) prints, in its README, the worked
    example at 14 agents (P(wait) 0.1741319, service level 0.88835, ASA 7.83593701177724 s,
    occupancy 0.7142857) and its staffing search's first row, 11 agents (P(wait) 0.6821182,
    service level 0.3896138)."""
    assert erlang_c(14, 10.0) == pytest.approx(0.1741319, abs=1e-7)
    assert service_level(14, 100, 1800, 180, 20) == pytest.approx(0.88835, abs=1e-5)
    assert asa(14, 100, 1800, 180) == pytest.approx(7.83593701177724, rel=1e-12)
    assert occupancy(14, 100, 1800, 180) == pytest.approx(0.7142857, abs=1e-7)
    assert erlang_c(11, 10.0) == pytest.approx(0.6821182, abs=1e-7)
    assert service_level(11, 100, 1800, 180, 20) == pytest.approx(0.3896138, abs=1e-7)


def test_erlang_c_published_closed_forms() -> None:
    """M/M/1: P(wait) = rho; M/M/2: P(wait) = 2 rho^2 / (1 + rho) (per-server load rho), e.g.
    Harchol-Balter, *Performance Modeling and Design of Computer Systems* (2013), ch. 14 (the
    M/M/k chapter): M/M/2 at A = 1 Erlang waits 1/3 of the time."""
    for rho in (0.1, 0.5, 0.9):
        assert erlang_c(1, rho) == pytest.approx(rho, rel=1e-12)
        assert erlang_c(2, 2 * rho) == pytest.approx(2 * rho**2 / (1 + rho), rel=1e-12)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)


def test_erlang_b_table_value() -> None:
    """Any Erlang B table (e.g. in Iversen, *Teletraffic Engineering and Network Planning*, the
    ITU-D/ITC handbook): 10 circuits carry 4.461 Erlangs at 1 % blocking, 5.084 at 2 %."""
    assert erlang_b(10, 4.461) == pytest.approx(0.01, abs=2e-5)
    assert erlang_b(10, 5.084) == pytest.approx(0.02, abs=2e-5)
    assert erlang_b(0, 3.0) == 1.0


def test_erlang_c_at_5000_erlangs_is_finite_and_monotone() -> None:
    cs = np.array([erlang_c(n, 5000.0) for n in range(5001, 5301)])
    assert np.all(np.isfinite(cs)) and np.all((cs > 0) & (cs < 1))
    assert np.all(np.diff(cs) < 0)
    assert erlang_c(5000, 5000.0) == 1.0  # unstable: everyone waits
    s = agents_needed(5000 * 1800 / 180, 1800, 180, 0.8, 20)
    assert 5000 < s.agents < 5100 and s.service_level >= 0.8
    assert math.isfinite(s.asa)


def _birth_death(n: int, lam: float, mu: float, theta: float) -> tuple[float, float]:
    """P(wait) and P(abandon) of M/M/n+M from its truncated chain, solved directly."""
    k = np.arange(0, n + 4000)
    death = np.minimum(k, n) * mu + np.maximum(k - n, 0) * theta
    log_pi = np.concatenate(([0.0], np.cumsum(np.log(lam) - np.log(death[1:]))))
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()
    p_wait = float(pi[n:].sum())
    p_ab = float((np.maximum(k - n, 0) * theta * pi).sum() / lam)
    return p_wait, p_ab


@pytest.mark.parametrize(
    ("agents", "calls", "patience"),
    [(14, 100, 60.0), (11, 100, 60.0), (8, 100, 30.0), (3, 100, 600.0), (120, 1300, 90.0)],
)
def test_erlang_a_matches_the_birth_death_chain(agents: int, calls: int, patience: float) -> None:
    r = erlang_a(agents, calls, 1800, 180, patience, 20)
    p_wait, p_ab = _birth_death(agents, calls / 1800, 1 / 180, 1 / patience)
    assert r.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert r.abandonment == pytest.approx(p_ab, rel=1e-9)
    # Mandelbaum & Zeltyn (2005), §4.6: P(Ab) = theta E[W]
    assert r.mean_wait == pytest.approx(r.abandonment * patience)
    assert 0 < r.service_level < 1 and 0 < r.occupancy < 1


def test_erlang_a_tends_to_erlang_c_as_patience_grows() -> None:
    r = erlang_a(14, 100, 1800, 180, 1e7, 20)
    assert r.p_wait == pytest.approx(erlang_c(14, 10.0), abs=1e-5)
    assert r.service_level == pytest.approx(service_level(14, 100, 1800, 180, 20), abs=1e-5)
    assert r.asa == pytest.approx(asa(14, 100, 1800, 180), rel=1e-4)
    assert r.abandonment < 1e-6


def test_erlang_a_at_5000_erlangs() -> None:
    calls = 5000 * 1800 / 180
    for n in (4000, 5000, 5100):
        r = erlang_a(n, calls, 1800, 180, 60, 20)
        assert all(math.isfinite(v) for v in (r.p_wait, r.service_level, r.abandonment, r.asa))
    # overloaded by a quarter, about a fifth hang up (fluid limit 1 - 1/rho)
    assert erlang_a(4000, calls, 1800, 180, 60, 20).abandonment == pytest.approx(0.2, abs=1e-3)
    s = agents_needed(calls, 1800, 180, 0.9, 20, patience_s=60)
    assert s.service_level >= 0.9 and s.abandonment < 0.1


@settings(max_examples=30, deadline=None)
@given(
    calls=st.floats(1, 2000),
    aht=st.floats(20, 900),
    target=st.floats(0.5, 0.95),
    target_s=st.floats(0, 120),
    patience=st.none() | st.floats(5, 600),
)
def test_agents_needed_is_the_inverse_of_service_level(
    calls: float, aht: float, target: float, target_s: float, patience: float | None
) -> None:
    s = agents_needed(calls, 1800, aht, target, target_s, patience_s=patience)

    def sl(n: int) -> float:
        if patience is None:
            return service_level(n, calls, 1800, aht, target_s)
        return erlang_a(n, calls, 1800, aht, patience, target_s).service_level

    assert sl(s.agents) == pytest.approx(s.service_level)
    assert sl(s.agents) >= target - 1e-12
    if s.agents > 1:
        assert sl(s.agents - 1) < target


def test_occupancy_cap_and_shrinkage() -> None:
    plain = agents_needed(100, 1800, 180, 0.8, 20)
    capped = agents_needed(100, 1800, 180, 0.8, 20, max_occupancy=0.6)
    assert plain.agents == 14
    assert capped.agents == 17 and capped.occupancy <= 0.6  # ceil(10 / 0.6)
    assert occupancy(17, 100, 1800, 180) == pytest.approx(10 / 17)
    assert agents_needed(100, 1800, 180, 0.8, 20, max_occupancy=0.9).agents == 14
    a = agents_needed(100, 1800, 180, 0.8, 20, patience_s=60, max_occupancy=0.6)
    assert a.occupancy <= 0.6 and a.abandonment > 0
    for shrink, scheduled in ((0.0, 14), (0.3, 20), (0.35, 22), (0.5, 28)):
        assert agents_needed(100, 1800, 180, 0.8, 20, shrinkage=shrink).scheduled == scheduled


def test_no_calls_needs_no_agents() -> None:
    s = agents_needed(0, 1800, 180, 0.8, 20, shrinkage=0.3)
    assert (s.agents, s.scheduled, s.service_level) == (0, 0, 1.0)
    assert erlang_c(3, 0.0) == 0.0 and service_level(1, 0, 1800, 180, 20) == 1.0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: erlang_c(-1, 3.0), "agents"),
        (lambda: erlang_c(2.5, 3.0), "agents"),  # type: ignore[arg-type]
        (lambda: erlang_b(3, -1.0), "erlangs"),
        (lambda: erlang_c(3, float("nan")), "erlangs"),
        (lambda: service_level(3, 10, 0, 180, 20), "interval_s"),
        (lambda: service_level(3, 10, 1800, -5, 20), "aht_s"),
        (lambda: service_level(3, -10, 1800, 180, 20), "calls"),
        (lambda: service_level(3, 10, 1800, 180, -1), "target_s"),
        (lambda: agents_needed(100, 1800, 180, 1.0, 20), "target_sl"),
        (lambda: agents_needed(100, 1800, 180, 0.0, 20), "target_sl"),
        (lambda: agents_needed(100, 1800, 180, 0.8, 20, shrinkage=1.0), "shrinkage"),
        (lambda: agents_needed(100, 1800, 180, 0.8, 20, max_occupancy=0), "max_occupancy"),
        (lambda: agents_needed(100, 1800, 180, 0.8, 20, patience_s=0), "patience_s"),
        (lambda: erlang_a(0, 100, 1800, 180, 60, 20), "agents"),
    ],
)
def test_bad_arguments_name_the_argument(call: object, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()  # type: ignore[operator]
