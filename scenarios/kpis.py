"""KPIs of simulated runs, with the definitions of the service's ``/v1/kpis`` (api/kpis/service.py).

A planner compares what the simulation says with what the live dashboard shows, so every figure
here is named as :mod:`api.kpis.schemas` names it and counted the way
:func:`api.kpis.service._tally` counts it, read off the tables of a
:class:`scenarios.results.RunResult` instead of ticket history. The run is cut into intervals of
``run.interval_minutes`` from ``run.start`` (the last one clipped at ``run.end``); a figure is
counted in the interval ``[a, b)`` in which its moment falls, so intervals add up to the whole
run and nothing is counted twice. "Now" (the service's cutoff) is ``run.end``: the simulation
knows nothing after it.

- **tickets_created** / **tickets_resolved**: ``created_at`` / ``resolved_at`` in the interval.
- **first_response_minutes_p50/_p90/_mean**: from ``created_at`` to ``first_response_at`` (work
  started: the simulated equivalent of the first status change out of ``new``), for first
  responses in the interval. **resolution_minutes_*** likewise, to ``resolved_at``, for
  resolutions in the interval. Percentiles interpolate linearly between ranks (numpy's
  default: p50 of 10, 20, 30, 40 is 25); NaN when there is none.
- **backlog** at the interval end ``b``: tickets created before ``b`` and not resolved (nor
  abandoned: the customer hung up, nothing is left to work) before ``b`` -- a ticket resolved
  exactly at ``b`` is still open at ``b``, as the service's status replay has it.
  **open_unassigned**: of those, the ones no agent held at ``b`` (holder = the ``to_agent`` of
  the ticket's last move before ``b``; no move yet: the team's queue).
  **oldest_ticket_age_minutes**: age at ``b`` of the oldest ticket in that backlog (0 when the
  backlog is empty, so it averages and plots; the service has no such figure).
- **SLA compliance** per deadline (first response against ``first_response_due``, resolution
  against ``resolution_due``; a ticket without the deadline is not counted): *met* counted in
  the interval of the response/resolution when it came at or before its deadline; *breached*
  counted in the interval in which the deadline passed without it (before ``run.end``), whether
  it came later or never. Compliance = met / (met + breached), NaN when none; **overall** pools
  both deadlines' met and breached.
- **assignments**: moves from the queue to an agent (``from_agent`` None); **reassignments**:
  moves away from an agent (``from_agent`` set: to another agent or back to the queue), as the
  service counts ``assigned`` / ``reassigned`` history events. Note this is ``moves``, not the
  ticket table's ``reassignments`` column (agent to agent only).
- **abandoned**: live customers who hung up (``abandoned_at``) in the interval.
- **occupancy**: busy minutes / available minutes of the agents (``agents`` table rows whose
  ``interval_start`` falls in the interval); NaN when nobody was available. Per agent and per
  skill (every agent holding the skill, at any level) over the whole run in
  :attr:`RunKpis.agents` / :attr:`RunKpis.skills`.
- **calls_booked**: calls whose ``booked_at`` is in the interval. **calls_at_risk** at ``b``:
  calls booked before ``b``, not started by ``b``, at risk (``at_risk_at``) since before ``b``
  (the table keeps no moment a call was covered again, so once at risk it counts until its
  start; the service clears ``at_risk_since`` when an agent is found).
  **call_reassignments**: a call's ``rebinds`` (the table keeps no moment for each) are counted
  in the interval of the call's start (the last interval when it starts after the run).

Beside the KPIs, each interval carries what the report's staffing chart needs: agents
scheduled / available / busy in agent-equivalents (minutes / interval length), the SLA met and
breached counts (so pooled compliance can be recomputed), and ``workload_agents`` (effort of
the tickets created in the interval per interval minute) when the tickets table carries an
``effort_minutes`` column (NaN otherwise; :mod:`scenarios.report` then estimates it from the
world's demand).

Across replications, :func:`summarize` gives mean, sample standard deviation and a 95 %
Student-t confidence interval per KPI (NaN values, e.g. a compliance with no deadline, are left
out; fewer than two values: no interval, and :attr:`Summary.note` says so). :func:`compare`
pairs a scenario's runs with the baseline's by replication number -- with common random numbers
they saw the same arrivals -- and gives the mean paired delta and its interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import stats

from scenarios.results import RunResult

KPI_COLUMNS = (
    "tickets_created", "tickets_resolved", "first_response_minutes_p50",
    "first_response_minutes_p90", "first_response_minutes_mean", "resolution_minutes_p50",
    "resolution_minutes_p90", "resolution_minutes_mean", "backlog", "oldest_ticket_age_minutes",
    "open_unassigned", "sla_first_response_compliance", "sla_resolution_compliance",
    "sla_overall_compliance", "reassignments", "assignments", "abandoned", "occupancy",
    "calls_booked", "calls_at_risk", "call_reassignments",
)  # fmt: skip
EXTRA_COLUMNS = (
    "agents_scheduled", "agents_available", "agents_busy", "workload_agents",
    "sla_first_response_met", "sla_first_response_breached", "sla_resolution_met",
    "sla_resolution_breached",
)  # fmt: skip
INTERVAL_COLUMNS = ("interval_start", "interval_end", *KPI_COLUMNS, *EXTRA_COLUMNS)
AGENT_KPI_COLUMNS = (
    "agent", "team", "skills", "scheduled_minutes", "available_minutes", "busy_minutes",
    "occupancy",
)  # fmt: skip
SKILL_KPI_COLUMNS = ("skill", "agents", "available_minutes", "busy_minutes", "occupancy")
CONFIDENCE = 0.95
# Higher is better for these; the report colours deltas with it.
HIGHER_IS_BETTER = frozenset({
    "tickets_resolved", "sla_first_response_compliance", "sla_resolution_compliance",
    "sla_overall_compliance",
})  # fmt: skip

_NS_PER_MINUTE = 60 * 10**9
_NEVER = np.iinfo(np.int64).max  # a moment that never comes sorts after every real one


def _ns(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTC nanoseconds since the epoch and a mask of the moments that came (not NaT)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    times = pd.to_datetime(values, utc=True).dt.tz_convert(None).dt.as_unit("ns")
    mask = times.notna().to_numpy()
    ns = times.to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
    ns[~mask] = _NEVER
    return ns, mask


def _as_ns(moment: datetime) -> int:
    return int(pd.Timestamp(moment).tz_convert("UTC").as_unit("ns").value)


@dataclass(frozen=True)
class RunKpis:
    """The KPIs of one run: per interval, over the whole run, per agent and per skill."""

    world: str
    seed: int
    replication: int
    interval_minutes: int
    intervals: pd.DataFrame  # INTERVAL_COLUMNS, one row per interval
    overall: dict[str, float]  # KPI_COLUMNS and EXTRA_COLUMNS over [start, end)
    agents: pd.DataFrame  # AGENT_KPI_COLUMNS, sorted by agent
    skills: pd.DataFrame  # SKILL_KPI_COLUMNS, sorted by skill


class _Grid:
    """Intervals ``[edges[k], ends[k])`` of ``step`` ns from ``start``, the last clipped at
    ``end``."""

    def __init__(self, start: int, end: int, step: int) -> None:
        count = max(1, -(-(end - start) // step))
        self.start, self.end, self.step, self.count = start, end, step, count
        self.edges = start + step * np.arange(count, dtype=np.int64)
        self.ends = np.minimum(self.edges + step, end)

    def bucket(self, ns: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interval index of each moment, and which moments fall inside the run."""
        inside = mask & (ns >= self.start) & (ns < self.end)
        idx = np.zeros(len(ns), dtype=np.int64)
        idx[inside] = (ns[inside] - self.start) // self.step
        return idx, inside

    def count_in(
        self, ns: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        idx, inside = self.bucket(ns, mask)
        w = None if weights is None else weights[inside]
        return np.bincount(idx[inside], weights=w, minlength=self.count).astype(np.float64)

    def open_at_ends(self, low: np.ndarray, high: np.ndarray, *, closed: bool = True) -> np.ndarray:
        """How many of the spans hold at each interval end ``b``: ``low < b <= high``
        (``closed``) or ``low < b < high``."""
        first = np.searchsorted(self.ends, low, side="right")
        last = np.searchsorted(self.ends, high, side="right" if closed else "left")
        keep = first < last
        diff = np.zeros(self.count + 1, dtype=np.int64)
        np.add.at(diff, first[keep], 1)
        np.add.at(diff, last[keep], -1)
        return np.cumsum(diff[:-1]).astype(np.float64)


def _durations(
    grid: _Grid, at: np.ndarray, mask: np.ndarray, since: np.ndarray
) -> dict[str, np.ndarray]:
    idx, inside = grid.bucket(at, mask)
    minutes = (at[inside] - since[inside]) / _NS_PER_MINUTE
    out = {name: np.full(grid.count, np.nan) for name in ("p50", "p90", "mean")}
    if minutes.size:
        frame = pd.DataFrame({"k": idx[inside], "m": minutes})
        groups = frame.groupby("k", sort=True)["m"]
        keys = np.asarray(groups.mean().index, dtype=np.int64)
        out["mean"][keys] = groups.mean().to_numpy()
        out["p50"][keys] = groups.quantile(0.5).to_numpy()
        out["p90"][keys] = groups.quantile(0.9).to_numpy()
    return out


def _sla(
    grid: _Grid, due: np.ndarray, due_ok: np.ndarray, at: np.ndarray, at_ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    met = due_ok & at_ok & (at <= due)
    breached = due_ok & ~met & (due < grid.end)
    return grid.count_in(at, met), grid.count_in(due, breached)


def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _oldest(grid: _Grid, created: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Age in minutes at each interval end of the oldest ticket open then (0: none open).

    Open at ``b``: ``created < b <= done``. Among the tickets with ``done >= b`` (a suffix of
    them sorted by ``done``) the one created first is the oldest open at ``b`` if it was created
    before ``b``; if even it was not, none was. So a suffix minimum answers every ``b`` at once.
    """
    ages = np.zeros(grid.count)
    if created.size == 0:
        return ages
    order = np.argsort(done, kind="stable")
    done_sorted = done[order]
    suffix_min = np.minimum.accumulate(created[order][::-1])[::-1]
    suffix_min = np.append(suffix_min, _NEVER)
    first = np.searchsorted(done_sorted, grid.ends, side="left")
    oldest = suffix_min[first]
    some = oldest < grid.ends
    ages[some] = (grid.ends[some] - oldest[some]) / _NS_PER_MINUTE
    return ages


def _table(run: RunResult, grid: _Grid) -> pd.DataFrame:
    t, mv, ag, calls = run.tickets, run.moves, run.agents, run.calls
    created, created_ok = _ns(t["created_at"])
    first, first_ok = _ns(t["first_response_at"])
    resolved, resolved_ok = _ns(t["resolved_at"])
    abandoned, _ = _ns(t["abandoned_at"])
    fr_due, fr_due_ok = _ns(t["first_response_due"])
    res_due, res_due_ok = _ns(t["resolution_due"])
    minutes = grid.step / _NS_PER_MINUTE
    lengths = (grid.ends - grid.edges) / _NS_PER_MINUTE
    cols: dict[str, np.ndarray] = {}
    cols["tickets_created"] = grid.count_in(created, created_ok)
    cols["tickets_resolved"] = grid.count_in(resolved, resolved_ok)
    for name, at, ok in (("first_response", first, first_ok), ("resolution", resolved,
                                                                 resolved_ok)):  # fmt: skip
        for stat, values in _durations(grid, at, ok, created).items():
            cols[f"{name}_minutes_{stat}"] = values

    done = np.minimum(resolved, abandoned)  # _NEVER when neither came
    cols["backlog"] = grid.open_at_ends(created[created_ok], done[created_ok])
    cols["oldest_ticket_age_minutes"] = _oldest(grid, created[created_ok], done[created_ok])
    held = np.zeros(grid.count)
    if len(mv):
        at, _ = _ns(mv["at"])
        ticket_ids = mv["ticket"].astype(object).to_numpy()
        order = np.lexsort((np.arange(len(mv)), ticket_ids.astype(str)))
        ticket_sorted = ticket_ids[order]
        at_sorted = at[order]
        next_at = np.full(len(mv), _NEVER, dtype=np.int64)
        same = ticket_sorted[1:] == ticket_sorted[:-1]
        next_at[:-1][same] = at_sorted[1:][same]
        # Each move's ticket's end, in integer ns (a float detour would round the moments).
        ids = pd.Index(t["id"].astype(object).to_numpy())
        first_of_id = ~ids.duplicated()
        where = ids[first_of_id].get_indexer(pd.Index(ticket_sorted))
        ticket_done = np.where(where >= 0, done[first_of_id][where], _NEVER)
        to_agent = mv["to_agent"].to_numpy(dtype=object)[order]
        holds = pd.notna(to_agent)
        high = np.minimum(next_at, ticket_done)
        held = grid.open_at_ends(at_sorted[holds], high[holds])
        from_ok = pd.notna(mv["from_agent"].to_numpy(dtype=object))
        to_ok = pd.notna(mv["to_agent"].to_numpy(dtype=object))
        mv_ok = np.ones(len(mv), dtype=bool)
        cols["reassignments"] = grid.count_in(at, mv_ok & from_ok)
        cols["assignments"] = grid.count_in(at, mv_ok & ~from_ok & to_ok)
    else:
        cols["reassignments"] = cols["assignments"] = np.zeros(grid.count)
    cols["open_unassigned"] = cols["backlog"] - held

    fr_met, fr_breached = _sla(grid, fr_due, fr_due_ok, first, first_ok)
    res_met, res_breached = _sla(grid, res_due, res_due_ok, resolved, resolved_ok)
    cols["sla_first_response_compliance"] = _rate(fr_met, fr_met + fr_breached)
    cols["sla_resolution_compliance"] = _rate(res_met, res_met + res_breached)
    cols["sla_overall_compliance"] = _rate(fr_met + res_met, fr_met + res_met + fr_breached +
                                           res_breached)  # fmt: skip
    aband, aband_ok = _ns(t["abandoned_at"])
    cols["abandoned"] = grid.count_in(aband, aband_ok)

    slot, slot_ok = _ns(ag["interval_start"])
    busy = grid.count_in(slot, slot_ok, ag["busy_minutes"].to_numpy(np.float64))
    available = grid.count_in(slot, slot_ok, ag["available_minutes"].to_numpy(np.float64))
    scheduled = grid.count_in(slot, slot_ok, ag["scheduled_minutes"].to_numpy(np.float64))
    cols["occupancy"] = _rate(busy, available)

    booked, booked_ok = _ns(calls["booked_at"])
    call_start, call_start_ok = _ns(calls["start"])
    risk, risk_ok = _ns(calls["at_risk_at"])
    cols["calls_booked"] = grid.count_in(booked, booked_ok)
    risky = booked_ok & risk_ok & call_start_ok
    cols["calls_at_risk"] = grid.open_at_ends(
        np.maximum(booked, risk)[risky], call_start[risky], closed=False
    )
    rebinds = calls["rebinds"].fillna(0).to_numpy(np.float64) if len(calls) else np.zeros(0)
    clipped = np.minimum(call_start, grid.end - 1)
    cols["call_reassignments"] = grid.count_in(clipped, call_start_ok, rebinds)

    cols["agents_scheduled"] = scheduled / lengths
    cols["agents_available"] = available / lengths
    cols["agents_busy"] = busy / lengths
    if "effort_minutes" in t.columns:
        effort = pd.to_numeric(t["effort_minutes"], errors="coerce").fillna(0).to_numpy(float)
        cols["workload_agents"] = grid.count_in(created, created_ok, effort) / minutes
    else:
        cols["workload_agents"] = np.full(grid.count, np.nan)
    cols["sla_first_response_met"] = fr_met
    cols["sla_first_response_breached"] = fr_breached
    cols["sla_resolution_met"] = res_met
    cols["sla_resolution_breached"] = res_breached

    out = pd.DataFrame({
        "interval_start": pd.to_datetime(grid.edges, utc=True),
        "interval_end": pd.to_datetime(grid.ends, utc=True),
    })  # fmt: skip
    for name in (*KPI_COLUMNS, *EXTRA_COLUMNS):
        out[name] = np.asarray(cols[name], dtype=np.float64)
    return out


def _per_agent(agents: pd.DataFrame) -> pd.DataFrame:
    if agents.empty:
        return pd.DataFrame(columns=list(AGENT_KPI_COLUMNS))
    sums = agents.groupby("agent", sort=True).agg(
        team=("team", "first"),
        skills=("skills", "first"),
        scheduled_minutes=("scheduled_minutes", "sum"),
        available_minutes=("available_minutes", "sum"),
        busy_minutes=("busy_minutes", "sum"),
    )
    sums["occupancy"] = _rate(
        sums["busy_minutes"].to_numpy(float), sums["available_minutes"].to_numpy(float)
    )
    return sums.reset_index()[list(AGENT_KPI_COLUMNS)]


def _skills_of(text: object) -> list[str]:
    if not isinstance(text, str) or not text:
        return []
    return [part.split(":", 1)[0] for part in text.split(";") if part]


def _per_skill(per_agent: pd.DataFrame) -> pd.DataFrame:
    rows = [
        (skill, row.agent, row.available_minutes, row.busy_minutes)
        for row in per_agent.itertuples(index=False)
        for skill in _skills_of(row.skills)
    ]
    if not rows:
        return pd.DataFrame(columns=list(SKILL_KPI_COLUMNS))
    df = pd.DataFrame(rows, columns=["skill", "agent", "available_minutes", "busy_minutes"])
    sums = df.groupby("skill", sort=True).agg(
        agents=("agent", "nunique"),
        available_minutes=("available_minutes", "sum"),
        busy_minutes=("busy_minutes", "sum"),
    )
    sums["occupancy"] = _rate(
        sums["busy_minutes"].to_numpy(float), sums["available_minutes"].to_numpy(float)
    )
    return sums.reset_index()[list(SKILL_KPI_COLUMNS)]


def measure(run: RunResult) -> RunKpis:
    """The KPIs of one run (definitions in the module docstring)."""
    start, end = _as_ns(run.start), _as_ns(run.end)
    if end <= start:
        raise ValueError(f"run {run.world!r}: end {run.end} is not after start {run.start}")
    step = run.interval_minutes * _NS_PER_MINUTE
    intervals = _table(run, _Grid(start, end, step))
    whole = _table(run, _Grid(start, end, end - start))
    overall = {name: float(whole[name].iloc[0]) for name in (*KPI_COLUMNS, *EXTRA_COLUMNS)}
    agents = _per_agent(run.agents)
    return RunKpis(
        world=run.world,
        seed=run.seed,
        replication=run.replication,
        interval_minutes=run.interval_minutes,
        intervals=intervals,
        overall=overall,
        agents=agents,
        skills=_per_skill(agents),
    )


# --- across replications -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Estimate:
    """Mean of ``n`` values, their sample standard deviation and a Student-t interval
    (NaN when ``n < 2``: one value says nothing about the spread)."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float], confidence: float = CONFIDENCE) -> Estimate:
        data = np.asarray([v for v in values if v is not None and not math.isnan(v)], float)
        n = int(data.size)
        if n == 0:
            return cls(math.nan, math.nan, math.nan, math.nan, 0)
        mean = float(data.mean())
        if n < 2:
            return cls(mean, math.nan, math.nan, math.nan, n)
        std = float(data.std(ddof=1))
        half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
        return cls(mean, std, mean - half, mean + half, n)


def _kpis(runs: Sequence[RunResult | RunKpis]) -> list[RunKpis]:
    return [r if isinstance(r, RunKpis) else measure(r) for r in runs]


def _estimates(per_run: list[dict[str, float]], names: Sequence[str]) -> pd.DataFrame:
    rows = {}
    for name in names:
        e = Estimate.of(values.get(name, math.nan) for values in per_run)
        rows[name] = (e.mean, e.std, e.ci_low, e.ci_high, e.n)
    out = pd.DataFrame.from_dict(
        rows, orient="index", columns=["mean", "std", "ci_low", "ci_high", "n"]
    )
    out.index.name = "kpi"
    return out


def _note(count: int) -> str:
    if count == 0:
        return "no replications"
    if count == 1:
        return "one replication: no confidence interval (it needs at least two)"
    return ""


@dataclass(frozen=True)
class Summary:
    """One world's KPIs across its replications.

    ``overall``: index = KPI, columns mean, std, ci_low, ci_high, n (replications with a value);
    ``intervals``: INTERVAL_COLUMNS, each figure the mean across replications (NaN left out);
    ``agents`` / ``skills``: the per-agent / per-skill tables, minutes and occupancy averaged."""

    world: str
    replications: tuple[int, ...]
    overall: pd.DataFrame
    intervals: pd.DataFrame
    agents: pd.DataFrame
    skills: pd.DataFrame
    note: str
    runs: tuple[RunKpis, ...]


def _mean_table(frames: list[pd.DataFrame], key: str, first: Sequence[str] = ()) -> pd.DataFrame:
    if not frames or all(f.empty for f in frames):
        return frames[0].copy() if frames else pd.DataFrame()
    both = pd.concat(frames, ignore_index=True)
    numeric = [c for c in both.columns if c != key and c not in first]
    agg: dict[str, str] = {c: "first" for c in first}
    agg.update({c: "mean" for c in numeric})
    out = both.groupby(key, sort=True).agg(agg).reset_index()
    return out[list(frames[0].columns)]


def summarize(runs: Sequence[RunResult | RunKpis]) -> Summary:
    """Mean, standard deviation and 95 % confidence interval of every KPI across ``runs``
    (replications of one world; the summary takes the first run's world name)."""
    kpis = _kpis(runs)
    if not kpis:
        raise ValueError("summarize needs at least one run")
    kpis.sort(key=lambda k: k.replication)
    overall = _estimates([k.overall for k in kpis], (*KPI_COLUMNS, *EXTRA_COLUMNS))
    intervals = _mean_table([k.intervals for k in kpis], "interval_start", ("interval_end",))
    return Summary(
        world=kpis[0].world,
        replications=tuple(k.replication for k in kpis),
        overall=overall,
        intervals=intervals,
        agents=_mean_table([k.agents for k in kpis], "agent", ("team", "skills")),
        skills=_mean_table([k.skills for k in kpis], "skill"),
        note=_note(len(kpis)),
        runs=tuple(kpis),
    )


@dataclass(frozen=True)
class Comparison:
    """A scenario against the baseline, paired by replication number.

    ``overall``: index = KPI; columns baseline_mean, scenario_mean, delta_mean, delta_std,
    delta_ci_low, delta_ci_high, n (pairs with both values). ``pairs``: one row per
    replication and KPI (replication, kpi, baseline, scenario, delta)."""

    baseline: str
    scenario: str
    replications: tuple[int, ...]
    overall: pd.DataFrame
    pairs: pd.DataFrame
    note: str


def compare(
    baseline_runs: Sequence[RunResult | RunKpis], scenario_runs: Sequence[RunResult | RunKpis]
) -> Comparison:
    """Paired deltas (scenario - baseline) per KPI: replication ``r`` of the scenario against
    replication ``r`` of the baseline (same seed: the same arrivals, so the noise cancels).
    Replications present on one side only are left out (named in ``note``)."""
    base = {k.replication: k for k in _kpis(baseline_runs)}
    scen = {k.replication: k for k in _kpis(scenario_runs)}
    common = sorted(set(base) & set(scen))
    if not common:
        raise ValueError(
            f"no replication in common to pair: baseline {sorted(base)}, scenario {sorted(scen)}"
        )
    names = (*KPI_COLUMNS, *EXTRA_COLUMNS)
    pair_rows = []
    for r in common:
        for name in names:
            b, s = base[r].overall[name], scen[r].overall[name]
            pair_rows.append((r, name, b, s, s - b))
    pairs = pd.DataFrame(pair_rows, columns=["replication", "kpi", "baseline", "scenario", "delta"])
    rows = {}
    for name in names:
        sel = pairs[pairs["kpi"] == name]
        eb = Estimate.of(sel["baseline"])
        es = Estimate.of(sel["scenario"])
        ed = Estimate.of(sel["delta"])
        rows[name] = (eb.mean, es.mean, ed.mean, ed.std, ed.ci_low, ed.ci_high, ed.n)
    overall = pd.DataFrame.from_dict(
        rows,
        orient="index",
        columns=[
            "baseline_mean", "scenario_mean", "delta_mean", "delta_std", "delta_ci_low",
            "delta_ci_high", "n",
        ],
    )  # fmt: skip
    overall.index.name = "kpi"
    unpaired = sorted((set(base) | set(scen)) - set(common))
    notes = [n for n in (_note(len(common)),) if n]
    if unpaired:
        notes.append(f"replications without a pair left out: {unpaired}")
    if any(base[r].seed != scen[r].seed for r in common):
        notes.append("seeds differ: paired by replication, but without common random numbers")
    any_base, any_scen = next(iter(base.values())), next(iter(scen.values()))
    return Comparison(
        baseline=any_base.world,
        scenario=any_scen.world,
        replications=tuple(common),
        overall=overall,
        pairs=pairs,
        note="; ".join(notes),
    )
