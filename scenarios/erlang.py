"""Erlang B, C and A: live-call staffing for one skill, stable for thousands of agents.

The queue these formulas describe is the one :mod:`scenarios.callcentre` simulates: calls arrive
as a Poisson process, wait in one FIFO queue for ``agents`` identical agents, and are handled in
exponentially distributed times (mean ``aht_s``). Erlang C assumes callers wait forever
(M/M/c); Erlang A lets each caller hang up after an exponentially distributed patience (mean
``patience_s``; M/M/c+M, Palm's model). Planners think in *calls per interval* and seconds, so
every function here takes those; the offered load is ``erlangs = calls / interval_s * aht_s``.

Numerics. The textbook form of Erlang C (``A**N / N!`` over a sum of such terms) overflows a
float near 170 agents. Here Erlang B comes from its recursion
``B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1))``, every step of which stays in [0, 1], and Erlang C
from B: ``C = N B / (N - A (1 - B))``. At 5,000 offered Erlangs this is 5,000 multiply-adds
and exact to rounding. Erlang A's queue part is the incomplete gamma function (Garnett,
Mandelbaum & Reiman), evaluated in log space through ``scipy.special`` (``gammaln`` and
``gammainc``) where it cannot underflow, and as its convergent series where it could.

Service level is the share of *offered* calls answered within ``target_s``: a caller who hangs
up, sooner or later, counts as missed. ASA (average speed of answer) is the mean wait of the
calls that were answered.

References
----------
- A. K. Erlang (1917), "Solution of some problems in the theory of probabilities of significance
  in automatic telephone exchanges"; the B recursion e.g. in Cooper, *Introduction to Queueing
  Theory* (2nd ed., 1981), §4.
- C. Palm (1943/1946), the M/M/n+M queue ("Erlang A").
- O. Garnett, A. Mandelbaum, M. Reiman (2002), "Designing a call center with impatient
  customers", *Manufacturing & Service Operations Management* 4(3): 208-227 — the closed forms
  with ``A(x, y) = x e^y y^-x gamma(x, y)`` used in :func:`erlang_a`.
- A. Mandelbaum, S. Zeltyn (2005), "The Palm/Erlang-A queue, with applications to call centers"
  (Technion) — the performance measures, and ``P(Ab) = theta E[W]``.
- Call Centre Helper, "Erlang C formula — made simple with an easy worked example": 100 calls per
  30 minutes, 180 s handling, 80 % in 20 s → 14 agents, 88.8 %, 20 scheduled at 30 % shrinkage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammainc, gammaln, logsumexp

# The search for the staffing level never looks past this many agents: a planner's interval
# beyond it is a typo (calls per hour entered as per second), not a call centre.
MAX_AGENTS = 1_000_000
_TOL = 1e-12


@dataclass(frozen=True, slots=True)
class Staffing:
    """Agents on the phones for a target, and what they achieve.

    ``agents`` answer calls; ``scheduled`` is what the roster needs once shrinkage (breaks,
    meetings, absence) takes its share: ``ceil(agents / (1 - shrinkage))``. ``asa`` is in
    seconds. ``abandonment`` is Erlang A's share of callers who hang up (0 for Erlang C);
    ``erlangs`` the offered load."""

    agents: int
    scheduled: int
    service_level: float
    occupancy: float
    asa: float
    abandonment: float = 0.0
    erlangs: float = 0.0


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Erlang A (M/M/c+M) at one staffing level.

    ``p_wait``: share of callers who find every agent busy; ``service_level``: share of offered
    calls answered within the target; ``abandonment``: share who hang up; ``asa``: mean wait of
    answered calls (s); ``mean_wait``: mean time in queue over all callers, abandoned ones until
    they hang up (s) — ``abandonment * patience_s`` (Mandelbaum & Zeltyn); ``occupancy``: busy
    share of the agents (the load actually carried over the agents)."""

    p_wait: float
    service_level: float
    abandonment: float
    asa: float
    mean_wait: float
    occupancy: float


# -- argument checks -------------------------------------------------------------------------


def _count(name: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return int(value)


def _number(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, not {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, not {value!r}")
    if positive and x <= 0:
        raise ValueError(f"{name} must be greater than 0, not {value!r}")
    if x < 0:
        raise ValueError(f"{name} must not be negative, not {value!r}")
    return x


def _share(name: str, value: object, *, low_open: bool, high_open: bool) -> float:
    x = _number(name, value)
    low_ok = x > 0 if low_open else x >= 0
    high_ok = x < 1 if high_open else x <= 1
    if not (low_ok and high_ok):
        lo = "(0" if low_open else "[0"
        hi = "1)" if high_open else "1]"
        raise ValueError(f"{name} must be in {lo}, {hi}, not {value!r}")
    return x


def offered_load(calls: float, interval_s: float, aht_s: float) -> float:
    """Offered Erlangs: the mean number of calls in progress if every one were answered at once."""
    c = _number("calls", calls)
    i = _number("interval_s", interval_s, positive=True)
    h = _number("aht_s", aht_s, positive=True)
    return c / i * h


# -- Erlang B and C --------------------------------------------------------------------------


def _erlang_b(agents: int, erlangs: float) -> float:
    b = 1.0
    for n in range(1, agents + 1):
        ab = erlangs * b
        b = ab / (n + ab)
    return b


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability of ``agents`` servers offered ``erlangs`` with no queue (M/M/c/c)."""
    n = _count("agents", agents)
    a = _number("erlangs", erlangs)
    return _erlang_b(n, a)


def _erlang_c_from_b(n: int, a: float, b: float) -> float:
    if n <= a:
        return 1.0
    return n * b / (n - a * (1.0 - b))


def erlang_c(agents: int, erlangs: float) -> float:
    """Probability that a caller has to wait (M/M/c). 1 when ``agents <= erlangs``: the queue
    then grows without bound and everyone waits."""
    n = _count("agents", agents)
    a = _number("erlangs", erlangs)
    if a == 0:
        return 0.0
    return _erlang_c_from_b(n, a, _erlang_b(n, a))


def _sl_c(n: int, a: float, c: float, aht_s: float, target_s: float) -> float:
    if n <= a:
        return 0.0
    return max(0.0, 1.0 - c * math.exp(-(n - a) * target_s / aht_s))


def _asa_c(n: int, a: float, c: float, aht_s: float) -> float:
    if n <= a:
        return math.inf
    return c * aht_s / (n - a)


def service_level(
    agents: int, calls_per_interval: float, interval_s: float, aht_s: float, target_s: float
) -> float:
    """Erlang C share of calls answered within ``target_s``: ``1 - C e^{-(N-A) t / AHT}``
    (0 when the queue is unstable)."""
    n = _count("agents", agents)
    a = offered_load(calls_per_interval, interval_s, aht_s)
    t = _number("target_s", target_s)
    if a == 0:
        return 1.0
    return _sl_c(n, a, _erlang_c_from_b(n, a, _erlang_b(n, a)), aht_s, t)


def asa(agents: int, calls_per_interval: float, interval_s: float, aht_s: float) -> float:
    """Erlang C average speed of answer in seconds, ``C AHT / (N - A)`` (inf when unstable)."""
    n = _count("agents", agents)
    a = offered_load(calls_per_interval, interval_s, aht_s)
    if a == 0:
        return 0.0
    return _asa_c(n, a, _erlang_c_from_b(n, a, _erlang_b(n, a)), aht_s)


def occupancy(agents: int, calls_per_interval: float, interval_s: float, aht_s: float) -> float:
    """Share of agent time on calls, ``A / N`` (1 when the queue is unstable; 0 with 0 agents
    and no calls)."""
    n = _count("agents", agents)
    a = offered_load(calls_per_interval, interval_s, aht_s)
    if n == 0:
        return 1.0 if a > 0 else 0.0
    return min(1.0, a / n)


# -- Erlang A --------------------------------------------------------------------------------
#
# With x = N mu / theta and y = lambda / theta (mu = 1/AHT, theta = 1/patience), the stationary
# probabilities above N agents busy are pi_{N+m} = pi_N y^m Gamma(x+1) / Gamma(x+m+1), whose sum
# over m >= 0 is pi_N A(x, y) with A(x, y) = x e^y y^-x gamma(x, y) = 1F1(1; x+1; y) (gamma the
# lower incomplete gamma function). Everything below is a ratio of such sums.


def _log_a(x: float, y: float) -> float:
    """log A(x, y). For ``y >= x`` the regularized ``gammainc(x, y)`` is at least about 1/2, so
    ``log A = log Gamma(x+1) + y - x log y + log P(x, y)`` loses nothing; below, P(x, y) can
    underflow, and the series ``sum_m y^m Gamma(x+1)/Gamma(x+m+1)`` (terms shrink by at least
    ``y/x`` each) is summed in log space instead."""
    if y <= 0.0:
        return 0.0
    if y >= x:
        return float(gammaln(x + 1.0) + y - x * math.log(y) + math.log(gammainc(x, y)))
    m = np.arange(1, int(60 + 40 * math.sqrt(x + 1.0)), dtype=float)
    log_terms = np.concatenate(([0.0], np.cumsum(math.log(y) - np.log(x + m))))
    return float(logsumexp(log_terms))


def _queue_weights(x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    """The distribution of ``m`` (callers already waiting) seen by a caller who has to wait:
    ``w_m ∝ y^m / Gamma(x+m+1)``, over a window holding all but a negligible part of its mass
    (mode ``max(0, y - x)``, spread about ``sqrt(y)``)."""
    mode = max(0.0, y - x)
    half = 40.0 * math.sqrt(max(x, y) + 1.0) + 60.0
    lo = max(0, int(mode - half))
    m = np.arange(lo, int(mode + half) + 1, dtype=float)
    log_w = m * math.log(y) - gammaln(x + m + 1.0)  # y > 0: erlang_a returns early at no load
    w = np.exp(log_w - logsumexp(log_w))
    return m, w


def erlang_a(
    agents: int,
    calls_per_interval: float,
    interval_s: float,
    aht_s: float,
    patience_s: float,
    target_s: float,
) -> ErlangA:
    """Erlang A (Palm's M/M/c+M): P(wait), service level, abandonment, ASA and occupancy.

    Garnett, Mandelbaum & Reiman (2002), with ``E = erlang_b(N, A)``, ``rho = A / N``:

    - ``P(wait) = A(x,y) E / (1 + (A(x,y) - 1) E)``;
    - ``P(abandon) = P(wait) (1 - 1/rho + 1/(rho A(x,y)))``;
    - the offered wait of a waiting caller: ``P(V > t | wait) = P(x, y u) / P(x, y)``,
      ``u = e^{-theta t}`` (P the regularized lower incomplete gamma), so the share answered
      within t is ``1 - P(wait) + P(wait) (x / y) (P(x+1, y) - P(x+1, y u)) / P(x, y)``.

    The mean wait of answered calls has no closed form in incomplete gammas: a caller who finds
    ``m`` waiting is answered with probability ``x / (x+m+1)`` after a mean
    ``(psi(x+m+2) - psi(x+1)) / theta`` (psi the digamma function); it is summed over the
    queue-length distribution such callers see.
    """
    n = _count("agents", agents, minimum=1)
    a = offered_load(calls_per_interval, interval_s, aht_s)
    patience = _number("patience_s", patience_s, positive=True)
    t = _number("target_s", target_s)
    if a == 0:
        return ErlangA(0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    theta = 1.0 / patience
    x = n * patience / aht_s  # N mu / theta
    y = a * patience / aht_s  # lambda / theta
    rho = a / n
    e = _erlang_b(n, a)
    log_a = _log_a(x, y)
    if e == 0.0:
        p_wait = 0.0
    else:
        # 1 / (1 + (1 - E) / (E A)), in logs: A can be astronomically large
        r = math.log1p(-e) - math.log(e) - log_a
        p_wait = 1.0 / (1.0 + math.exp(r)) if r < 700 else 0.0
    m, w = _queue_weights(x, y)
    if y >= x:
        ab_given_wait = 1.0 - 1.0 / rho + math.exp(-log_a) / rho
    else:  # the closed form cancels when rho < 1; the sum does not
        ab_given_wait = float(np.dot(w, (m + 1.0) / (x + m + 1.0)))
    served_given_wait = 1.0 - ab_given_wait
    # answered within t among those who wait: (x/(x+1)) [A(x+1,y) - A(x+1,yu) u^{x+1}
    # e^{y(1-u)}] / A(x,y), the GMR expression rewritten with A so nothing underflows
    u = math.exp(-theta * t)
    if u >= 1.0:
        within_given_wait = 0.0
    else:
        late = 0.0
        if u > 0.0:
            log_late = _log_a(x + 1.0, y * u) + (x + 1.0) * math.log(u) + y * (1.0 - u) - log_a
            late = x / (x + 1.0) * math.exp(min(log_late, 0.0))
        within_given_wait = min(served_given_wait, max(0.0, served_given_wait - late))
    sl = (1.0 - p_wait) + p_wait * within_given_wait
    abandonment = p_wait * ab_given_wait
    # mean wait of answered calls: P(wait) E[W; answered | wait] / P(answered)
    served = x / (x + m + 1.0)
    waited = (digamma(x + m + 2.0) - digamma(x + 1.0)) / theta
    served_wait = float(np.dot(w, served * waited))
    answered = 1.0 - abandonment
    asa_s = p_wait * served_wait / answered if answered > 0 else math.inf
    return ErlangA(
        p_wait=p_wait,
        service_level=sl,
        abandonment=abandonment,
        asa=asa_s,
        mean_wait=abandonment * patience,
        occupancy=min(1.0, a * answered / n),
    )


# -- staffing --------------------------------------------------------------------------------


def _scheduled(agents: int, shrinkage: float) -> int:
    # ceil(14 / 0.7) is 20, but 14 / 0.7 is 20.000000000000004 in floats
    return math.ceil(agents / (1.0 - shrinkage) - 1e-9)


def agents_needed(
    calls: float,
    interval_s: float,
    aht_s: float,
    target_sl: float,
    target_s: float,
    *,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
    patience_s: float | None = None,
) -> Staffing:
    """The fewest agents whose service level reaches ``target_sl`` (share answered within
    ``target_s``) and whose occupancy stays at or under ``max_occupancy``, by Erlang C, or by
    Erlang A when ``patience_s`` is given; plus the roster size at ``shrinkage``.

    Both conditions only get easier with more agents, so the answer is the first agent count
    that meets them. Erlang C steps up from the stable minimum with the B recursion carried
    along (one pass, O(N)); Erlang A bisects between powers of two.
    """
    a = offered_load(calls, interval_s, aht_s)
    sl_target = _share("target_sl", target_sl, low_open=True, high_open=True)
    t = _number("target_s", target_s)
    occ_cap = (
        None
        if max_occupancy is None
        else _share("max_occupancy", max_occupancy, low_open=True, high_open=False)
    )
    shrink = _share("shrinkage", shrinkage, low_open=False, high_open=True)
    patience = None if patience_s is None else _number("patience_s", patience_s, positive=True)
    if a == 0:
        return Staffing(0, 0, 1.0, 0.0, 0.0, 0.0, 0.0)
    if patience is None:
        return _needed_c(a, aht_s, sl_target, t, occ_cap, shrink)
    return _needed_a(calls, interval_s, aht_s, patience, sl_target, t, occ_cap, shrink, a)


def _needed_c(
    a: float,
    aht_s: float,
    sl_target: float,
    t: float,
    occ_cap: float | None,
    shrink: float,
) -> Staffing:
    floor_n = math.floor(a) + 1  # the fewest agents with a stable queue
    if occ_cap is not None:
        floor_n = max(floor_n, math.ceil(a / occ_cap - 1e-9))
    b = 1.0
    n = 0
    while n < MAX_AGENTS:
        n += 1
        ab = a * b
        b = ab / (n + ab)
        if n < floor_n:
            continue
        c = _erlang_c_from_b(n, a, b)
        sl = _sl_c(n, a, c, aht_s, t)
        if sl >= sl_target - _TOL:
            return Staffing(
                agents=n,
                scheduled=_scheduled(n, shrink),
                service_level=sl,
                occupancy=a / n,
                asa=_asa_c(n, a, c, aht_s),
                erlangs=a,
            )
    raise ValueError(f"more than {MAX_AGENTS} agents needed for {a:.0f} Erlangs: check calls")


def _needed_a(
    calls: float,
    interval_s: float,
    aht_s: float,
    patience: float,
    sl_target: float,
    t: float,
    occ_cap: float | None,
    shrink: float,
    a: float,
) -> Staffing:
    def ok(n: int) -> tuple[bool, ErlangA]:
        r = erlang_a(n, calls, interval_s, aht_s, patience, t)
        meets = r.service_level >= sl_target - _TOL
        if occ_cap is not None:
            meets = meets and r.occupancy <= occ_cap + _TOL
        return meets, r

    lo, hi = 0, 1  # ok(lo) is False (0 agents answer nothing), ok(hi) to be found
    while True:
        good, _ = ok(hi)
        if good:
            break
        lo, hi = hi, hi * 2
        if hi > MAX_AGENTS:
            raise ValueError(
                f"more than {MAX_AGENTS} agents needed for {a:.0f} Erlangs: check calls"
            )
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid)[0]:
            hi = mid
        else:
            lo = mid
    r = ok(hi)[1]
    return Staffing(
        agents=hi,
        scheduled=_scheduled(hi, shrink),
        service_level=r.service_level,
        occupancy=r.occupancy,
        asa=r.asa,
        abandonment=r.abandonment,
        erlangs=a,
    )
