"""A planner's report of simulated runs: one self-contained HTML page, CSV and Excel exports.

:func:`write_report` takes the runs of a baseline and of its scenarios (replications of each,
numbered alike: replication ``r`` of every scenario saw the same arrivals) and writes:

- ``report.html``: one file with everything inside (charts are PNGs embedded as base64 data
  URIs; no script, no external stylesheet, font or image), so it can be mailed or archived.
  Baseline and scenarios side by side with paired deltas and their 95 % intervals; deltas with
  error bars; staffing against demand per interval, and as an average day (weekdays and
  weekends apart); SLA compliance per interval (pooled into longer steps on long runs); backlog
  over time; per-interval, per-agent and per-skill tables. Times are the world's local time.
- ``kpis.csv``: one row per scenario and KPI: mean, std, 95 % interval across replications,
  and the paired delta to the baseline with its interval (empty for the baseline).
- ``intervals.csv``: one row per scenario and interval, each figure the mean across
  replications (UTC start and local start).
- ``report.xlsx``: sheets Overall, Intervals, Agents, Skills.

Same runs in, same bytes out: the CSVs always; the HTML and the workbook too (PNG metadata
without the software version, the workbook's dates and its zip entries' times fixed).

Demand in agent-equivalents ("workload") is the effort of the tickets arriving in an interval
per minute of that interval: read from the runs when their tickets carry ``effort_minutes``,
else the expectation of the world's demand (volume profiles' rate times effort, history
efforts, both scaled and shaped as :mod:`scenarios.arrivals` does on average).
"""

from __future__ import annotations

import base64
import io
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from scenarios.kpis import (
    EXTRA_COLUMNS,
    HIGHER_IS_BETTER,
    KPI_COLUMNS,
    Comparison,
    RunKpis,
    Summary,
    compare,
    measure,
    summarize,
)
from scenarios.model import World
from scenarios.results import RunResult

FIXED_DATE = datetime(2000, 1, 1)  # noqa: DTZ001 (openpyxl writes naive dates as UTC)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# KPI -> (label, unit, how a value reads). Units: "n" counts, "min" minutes, "%" shares.
LABELS: dict[str, tuple[str, str]] = {
    "tickets_created": ("Tickets created", "n"),
    "tickets_resolved": ("Tickets resolved", "n"),
    "first_response_minutes_p50": ("First response p50", "min"),
    "first_response_minutes_p90": ("First response p90", "min"),
    "first_response_minutes_mean": ("First response mean", "min"),
    "resolution_minutes_p50": ("Resolution p50", "min"),
    "resolution_minutes_p90": ("Resolution p90", "min"),
    "resolution_minutes_mean": ("Resolution mean", "min"),
    "backlog": ("Backlog at the end", "n"),
    "oldest_ticket_age_minutes": ("Oldest open ticket's age at the end", "min"),
    "open_unassigned": ("Open unassigned at the end", "n"),
    "sla_first_response_compliance": ("SLA first response", "%"),
    "sla_resolution_compliance": ("SLA resolution", "%"),
    "sla_overall_compliance": ("SLA overall", "%"),
    "reassignments": ("Reassignments", "n"),
    "assignments": ("Assignments", "n"),
    "abandoned": ("Abandoned (hung up)", "n"),
    "occupancy": ("Occupancy", "%"),
    "calls_booked": ("Calls booked", "n"),
    "calls_at_risk": ("Calls at risk at the end", "n"),
    "call_reassignments": ("Call reassignments", "n"),
    "agents_scheduled": ("Agents scheduled (average)", "n"),
    "agents_available": ("Agents available (average)", "n"),
    "agents_busy": ("Agents busy (average)", "n"),
    "workload_agents": ("Workload, agent-equivalents (average)", "n"),
}
# The deltas chart: what a planner asks about first.
DELTA_KPIS = (
    "first_response_minutes_p50", "first_response_minutes_p90", "resolution_minutes_p50",
    "resolution_minutes_p90", "sla_overall_compliance", "backlog", "oldest_ticket_age_minutes",
    "reassignments", "abandoned", "occupancy",
)  # fmt: skip
INTERVAL_TABLE = (
    ("tickets_created", "Created"), ("tickets_resolved", "Resolved"),
    ("first_response_minutes_p50", "1st resp. p50 (min)"),
    ("first_response_minutes_p90", "1st resp. p90 (min)"),
    ("resolution_minutes_p50", "Resol. p50 (min)"), ("backlog", "Backlog"),
    ("oldest_ticket_age_minutes", "Oldest (min)"), ("open_unassigned", "Unassigned"),
    ("sla_overall_compliance", "SLA"), ("reassignments", "Reassign."), ("occupancy", "Occup."),
    ("agents_available", "Agents avail."), ("workload_agents", "Workload (agents)"),
)  # fmt: skip
DIRECTION = {"occupancy": "higher: busier agents"}
# Deltas that are neither good nor bad in themselves (more work arrived, more agents rostered).
NEUTRAL = frozenset({
    "tickets_created", "tickets_resolved", "assignments", "calls_booked", "agents_scheduled",
    "agents_available", "agents_busy", "workload_agents", "occupancy",
})  # fmt: skip
BASE_COLOR = "#333333"
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    kpis_csv: Path
    intervals_csv: Path
    xlsx: Path


@dataclass(frozen=True)
class _Scenario:
    name: str
    world: World | None
    zone: ZoneInfo
    summary: Summary
    comparison: Comparison | None  # None: the baseline
    intervals: pd.DataFrame  # summary.intervals with workload filled and local times
    color: str


# --- demand ------------------------------------------------------------------------------


def expected_workload(world: World, starts: pd.Series, interval_minutes: int) -> np.ndarray:
    """Expected effort arriving per interval, in agent-equivalents (minutes of work per minute).

    Volume rows: ``per_hour * effort_minutes`` at their local hour (and weekday), times the
    demand's ``scale`` and the hour's ``shape``; history: the efforts of the tickets created in
    the interval, times ``scale`` and ``shape``."""
    zone = ZoneInfo(world.timezone)
    local = pd.to_datetime(starts, utc=True).dt.tz_convert(zone)
    hours = local.dt.hour.to_numpy()
    weekdays = local.dt.day_of_week.to_numpy()
    per_hour = np.zeros((7, 24))  # effort minutes arriving per hour, by local weekday and hour
    for row in world.demand.volume:
        days = range(7) if row.weekday is None else (row.weekday,)
        for d in days:
            per_hour[d, row.hour] += row.per_hour * row.effort_minutes
    shape = np.ones(24)
    for hour, factor in world.demand.shape.items():
        shape[hour] = factor
    work = per_hour[weekdays, hours] * interval_minutes / 60.0
    if world.demand.history:
        first = pd.Timestamp(pd.to_datetime(starts, utc=True).iloc[0]).value
        step = interval_minutes * 60 * 10**9
        history = np.zeros(len(starts))
        for t in world.demand.history:
            k = (pd.Timestamp(t.created_at).value - first) // step
            if 0 <= k < len(starts):
                history[k] += t.effort_minutes
        work = work + history
    return np.asarray(work * world.demand.scale * shape[hours] / interval_minutes, dtype=float)


# --- tables --------------------------------------------------------------------------------


def _prepare(
    results: Mapping[str, Sequence[RunResult]], baseline: str, worlds: Mapping[str, World]
) -> list[_Scenario]:
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not among the results {list(results)}")
    order = [baseline, *(name for name in results if name != baseline)]
    measured: dict[str, list[RunKpis]] = {}
    for name in order:
        if not results[name]:
            raise ValueError(f"scenario {name!r} has no runs")
        measured[name] = [measure(run) for run in results[name]]
    out: list[_Scenario] = []
    for i, name in enumerate(order):
        summary = summarize(measured[name])
        world = worlds.get(name)
        zone = ZoneInfo(world.timezone if world is not None else "UTC")
        intervals = summary.intervals.copy()
        if world is not None and intervals["workload_agents"].isna().all():
            # The runs carry no efforts: the world's expected demand stands in (no interval:
            # an expectation, not a measurement).
            minutes = summary.runs[0].interval_minutes
            intervals["workload_agents"] = expected_workload(
                world, intervals["interval_start"], minutes
            )
            overall = summary.overall.copy()
            overall.loc["workload_agents", "mean"] = float(intervals["workload_agents"].mean())
            summary = replace(summary, overall=overall)
        local = pd.to_datetime(intervals["interval_start"], utc=True).dt.tz_convert(zone)
        intervals.insert(1, "local_start", local)
        comparison = None if name == baseline else compare(measured[baseline], measured[name])
        if comparison is not None and out:
            base_work = _row(out[0].summary.overall, "workload_agents")["mean"]
            work = _row(summary.overall, "workload_agents")["mean"]
            if math.isnan(_row(comparison.overall, "workload_agents")["delta_mean"]):
                table = comparison.overall.copy()
                table.loc["workload_agents", "baseline_mean"] = base_work
                table.loc["workload_agents", "scenario_mean"] = work
                table.loc["workload_agents", "delta_mean"] = work - base_work
                comparison = replace(comparison, overall=table)
        color = BASE_COLOR if name == baseline else COLORS[(i - 1) % len(COLORS)]
        out.append(_Scenario(name, world, zone, summary, comparison, intervals, color))
    return out


def _overall_table(scenarios: list[_Scenario]) -> pd.DataFrame:
    rows = []
    for s in scenarios:
        for kpi in (*KPI_COLUMNS, *EXTRA_COLUMNS):
            est = _row(s.summary.overall, kpi)
            delta = _row(s.comparison.overall, kpi) if s.comparison is not None else None
            note = s.summary.note if s.comparison is None else s.comparison.note
            rows.append({
                "scenario": s.name,
                "kpi": kpi,
                "replications": len(s.summary.replications),
                "mean": est["mean"],
                "std": est["std"],
                "ci_low": est["ci_low"],
                "ci_high": est["ci_high"],
                "delta_mean": math.nan if delta is None else delta["delta_mean"],
                "delta_ci_low": math.nan if delta is None else delta["delta_ci_low"],
                "delta_ci_high": math.nan if delta is None else delta["delta_ci_high"],
                "pairs": 0 if delta is None else int(delta["n"]),
                "note": note,
            })  # fmt: skip
    return pd.DataFrame(rows)


def _intervals_table(scenarios: list[_Scenario]) -> pd.DataFrame:
    frames = []
    for s in scenarios:
        df = s.intervals.copy()
        df.insert(0, "scenario", s.name)
        df["interval_start"] = df["interval_start"].map(_iso)
        df["interval_end"] = df["interval_end"].map(_iso)
        df["local_start"] = df["local_start"].map(_iso)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _side_by_side(
    scenarios: list[_Scenario], attr: str, key: str, keep: Sequence[str]
) -> pd.DataFrame:
    frames = []
    for s in scenarios:
        df = getattr(s.summary, attr).copy()
        df.insert(0, "scenario", s.name)
        frames.append(df)
    both = pd.concat(frames, ignore_index=True)
    out: pd.DataFrame = both[["scenario", key, *keep]]
    return out


def _row(df: pd.DataFrame, kpi: str) -> dict[str, float]:
    """A KPI's row of an estimates table as plain floats."""
    values: Any = df.loc[kpi]
    return {str(k): float(v) for k, v in values.items()}


def _float(value: Any) -> float:
    return float(value)


def _iso(value: Any) -> str:
    return pd.Timestamp(value).isoformat()


def _csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


# --- charts --------------------------------------------------------------------------------


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _time_axis(ax: Any, zone: ZoneInfo) -> None:
    locator = mdates.AutoDateLocator(tz=zone, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    # Days read "Mon 23" (a planner thinks in weekdays), hours "14:00".
    formats = ["%Y", "%b", "%a %d", "%H:%M", "%H:%M", "%S.%f"]
    zero_formats = ["", "%Y", "%b", "%a %d", "%H:%M", "%H:%M"]
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
            locator, tz=zone, formats=formats, zero_formats=zero_formats
        )
    )
    ax.grid(True, axis="both", alpha=0.3)


def _x(s: _Scenario) -> list[Any]:
    return [ts.to_pydatetime() for ts in s.intervals["local_start"]]


def _edges(s: _Scenario) -> tuple[list[Any], list[Any]]:
    """Interval starts plus the last end (a step drawn ``post`` then shows the last interval),
    and the interval ends (where figures "at the interval end" belong)."""
    ends = [
        ts.to_pydatetime()
        for ts in pd.to_datetime(s.intervals["interval_end"], utc=True).dt.tz_convert(s.zone)
    ]
    return [*_x(s), ends[-1]], ends


def _steps(values: pd.Series) -> np.ndarray:
    """Per-interval values with the last repeated (to pair with :func:`_edges`' starts)."""
    v = values.to_numpy(dtype=float)
    return np.append(v, v[-1:]) if v.size else v


def _window(ax: Any, scenarios: list[_Scenario]) -> None:
    starts, _ = _edges(scenarios[0])
    ax.set_xlim(starts[0], starts[-1])


def _label(s: _Scenario) -> str:
    return f"{s.name} (baseline)" if s.comparison is None and "baseline" not in s.name else s.name


def _staffing_chart(scenarios: list[_Scenario]) -> str:
    n = len(scenarios)
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.7 * n + 0.8), sharex=True, squeeze=False)
    top = max(
        max(s.intervals["agents_available"].max(), s.intervals["workload_agents"].max(), 1)
        for s in scenarios
    )
    arrivals_top = max(max(s.intervals["tickets_created"].max(), 1) for s in scenarios)
    for ax, s in zip(axes[:, 0], scenarios, strict=True):
        x, _ = _edges(s)
        iv = s.intervals
        right = ax.twinx()
        right.step(x, _steps(iv["tickets_created"]), where="post", color="#888888", lw=0.9,
                   alpha=0.8, label="tickets arriving (right axis)")  # fmt: skip
        right.set_ylim(0, arrivals_top * 1.25)
        right.set_ylabel("tickets / interval", color="#666666")
        right.tick_params(axis="y", colors="#666666")
        right.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5, integer=True))
        ax.set_zorder(right.get_zorder() + 1)
        ax.patch.set_visible(False)
        available = _steps(iv["agents_available"])
        ax.fill_between(x, available, step="post", color=s.color, alpha=0.2,
                        label="agents available")  # fmt: skip
        ax.step(x, available, where="post", color=s.color, lw=1.3)
        ax.step(x, _steps(iv["agents_scheduled"]), where="post", color=s.color, lw=1, ls=":",
                label="agents scheduled")  # fmt: skip
        ax.step(x, _steps(iv["workload_agents"]), where="post", color="#e6550d", lw=1.8,
                label="workload (agent-equivalents)")  # fmt: skip
        ax.set_ylim(0, top * 1.3)
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6, integer=True))
        ax.set_ylabel("agents")
        ax.set_title(_label(s), loc="left", fontsize=11, fontweight="bold")
        _time_axis(ax, s.zone)
        _window(ax, scenarios)
        if ax is axes[0, 0]:
            handles = ax.get_legend_handles_labels()
            extra = right.get_legend_handles_labels()
            ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left",
                      fontsize=8, ncol=4, framealpha=0.95)  # fmt: skip
    axes[-1, 0].set_xlabel(f"local time ({scenarios[0].zone.key})")
    fig.suptitle("Staffing against demand per interval", fontsize=13, x=0.01, ha="left")
    fig.tight_layout()
    return _png(fig)


def _day_profile_chart(scenarios: list[_Scenario]) -> str:
    """The average day: agents available and workload by local time of day, weekdays and
    weekends apart (a multi-week run's per-interval chart is too dense to read shifts from)."""
    parts = (("Mon–Fri", range(5)), ("Sat–Sun", range(5, 7)))
    present = [
        (title, days)
        for title, days in parts
        if any(s.intervals["local_start"].dt.day_of_week.isin(list(days)).any() for s in scenarios)
    ]
    fig, axes = plt.subplots(
        1, len(present), figsize=(11, 3.9), sharey=True, squeeze=False, layout="constrained"
    )
    for ax, (title, days) in zip(axes[0], present, strict=True):
        profiles = []
        for s in scenarios:
            local = s.intervals["local_start"]
            keep = local.dt.day_of_week.isin(list(days)).to_numpy()
            hours = (local.dt.hour + local.dt.minute / 60.0).to_numpy()[keep]
            frame = pd.DataFrame({
                "h": hours,
                "available": s.intervals["agents_available"].to_numpy()[keep],
                "work": s.intervals["workload_agents"].to_numpy()[keep],
            })  # fmt: skip
            mean = frame.groupby("h", sort=True).mean()
            step = s.summary.runs[0].interval_minutes / 60.0
            x = [*mean.index.to_numpy(dtype=float), float(mean.index.max()) + step]
            profiles.append((s, x, mean))
        same_work = all(
            len(m) == len(profiles[0][2])
            and np.allclose(m["work"], profiles[0][2]["work"], equal_nan=True)
            for _, _, m in profiles
        )
        for s, x, mean in profiles:
            ax.step(x, _steps(mean["available"]), where="post", color=s.color, lw=1.6,
                    label=f"{_label(s)}: agents available")  # fmt: skip
            if not same_work:
                ax.step(x, _steps(mean["work"]), where="post", color=s.color, lw=1.2, ls="--",
                        label=f"{_label(s)}: workload")  # fmt: skip
        if same_work:
            _, x, mean = profiles[0]
            ax.step(x, _steps(mean["work"]), where="post", color="#e6550d", lw=1.6, ls="--",
                    label="workload arriving (the same in every scenario)")  # fmt: skip
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
        ax.set_xlim(0, 24)
        ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)], fontsize=8)
        ax.set_xlabel(f"local time of day ({scenarios[0].zone.key})")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0, 0].set_ylabel("agents (workload: agent-equivalents)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=8,
               frameon=False)  # fmt: skip
    fig.suptitle(
        "The average day: agents available (solid) against workload arriving (dashed)",
        fontsize=13, x=0.01, ha="left",
    )  # fmt: skip
    return _png(fig)


MAX_SLA_STEPS = 360  # beyond this many intervals the SLA chart pools them (a month of 30 min)


def _sla_chart(scenarios: list[_Scenario]) -> str:
    """Compliance per interval; a long run's intervals are pooled (met and breached summed, so
    the rate stays met / counted) into groups of ``k`` so the line stays readable."""
    fig, ax = plt.subplots(figsize=(11, 4.2), layout="constrained")
    longest = max(len(s.intervals) for s in scenarios)
    k = 1
    while longest / k > MAX_SLA_STEPS:
        k *= 2
    minutes = scenarios[0].summary.runs[0].interval_minutes * k
    for s in scenarios:
        iv = s.intervals
        met = (iv["sla_first_response_met"] + iv["sla_resolution_met"]).to_numpy(float)
        breached = (iv["sla_first_response_breached"] + iv["sla_resolution_breached"]).to_numpy(
            float
        )
        groups = np.arange(len(iv)) // k
        met_k = np.bincount(groups, weights=met)
        counted_k = met_k + np.bincount(groups, weights=breached)
        rate = np.where(counted_k > 0, met_k / np.where(counted_k > 0, counted_k, 1), np.nan)
        starts, _ = _edges(s)
        x = [*starts[:-1][::k], starts[-1]]
        y = np.append(rate, rate[-1:]) * 100
        ax.step(x, y, where="post", color=s.color, lw=1.6 if s.comparison is None else 1.2,
                label=_label(s))  # fmt: skip
    per = f"per {minutes // 60} h" if minutes % 60 == 0 else f"per {minutes} min"
    ax.set_title(f"SLA compliance {per} (first response and resolution deadlines)",
                 loc="left", fontsize=13)  # fmt: skip
    ax.set_ylim(-2, 102)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter())
    ax.set_ylabel("deadlines met")
    ax.set_xlabel(f"local time ({scenarios[0].zone.key})")
    _time_axis(ax, scenarios[0].zone)
    _window(ax, scenarios)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(scenarios), fontsize=9,
              frameon=False)  # fmt: skip
    return _png(fig)


def _backlog_chart(scenarios: list[_Scenario]) -> str:
    fig, ax = plt.subplots(figsize=(11, 4.2), layout="constrained")
    for s in scenarios:
        _, ends = _edges(s)
        ax.plot(ends, s.intervals["backlog"], color=s.color, lw=1.6, label=_label(s))
        ax.plot(ends, s.intervals["open_unassigned"], color=s.color, lw=1, ls="--")
    ax.plot([], [], color="#555555", lw=1, ls="--", label="of which unassigned (dashed)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6, integer=True))
    ax.set_ylabel("open tickets")
    ax.set_xlabel(f"local time ({scenarios[0].zone.key})")
    ax.set_title("Backlog over time (open tickets at each interval's end)", loc="left",
                 fontsize=13)  # fmt: skip
    _time_axis(ax, scenarios[0].zone)
    _window(ax, scenarios)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(scenarios) + 1, fontsize=9,
              frameon=False)  # fmt: skip
    return _png(fig)


def _deltas_chart(scenarios: list[_Scenario]) -> str | None:
    others = [s for s in scenarios if s.comparison is not None]
    if not others:
        return None
    cols = 5
    rows = math.ceil(len(DELTA_KPIS) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(12, 1.0 + rows * (0.45 * len(others) + 1.4)), squeeze=False
    )
    for ax, kpi in zip(axes.flat, DELTA_KPIS, strict=False):
        label, unit = LABELS[kpi]
        scale = 100.0 if unit == "%" else 1.0
        shown_unit = "pp" if unit == "%" else ("min" if unit == "min" else "")
        ys = np.arange(len(others))[::-1]
        reach = [0.0]
        for y, s in zip(ys, others, strict=True):
            row = _row(s.comparison.overall, kpi)  # type: ignore[union-attr]
            mean = row["delta_mean"] * scale
            low, high = row["delta_ci_low"] * scale, row["delta_ci_high"] * scale
            err = None if math.isnan(low) else [[mean - low], [high - mean]]
            reach += [v for v in (mean, low, high) if not math.isnan(v)]
            ax.barh(y, 0 if math.isnan(mean) else mean, color=s.color, alpha=0.75, height=0.6)
            if err is not None:
                ax.errorbar(mean, y, xerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ys, [s.name for s in others] if ax in axes[:, 0] else [""] * len(others),
                      fontsize=8)  # fmt: skip
        better = DIRECTION.get(
            kpi, "higher is better" if kpi in HIGHER_IS_BETTER else "lower is better"
        )
        title = f"{label}\nΔ {shown_unit} ({better})" if shown_unit else f"{label}\nΔ ({better})"
        ax.set_title(title, fontsize=8.5)
        ax.tick_params(axis="x", labelsize=8)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_ylim(-0.7, len(others) - 0.3)
        span = max(reach) - min(reach)
        if span > 1e-12:
            ax.set_xlim(min(reach) - 0.08 * span, max(reach) + 0.08 * span)  # 0 in sight
        else:
            ax.set_xlim(-1, 1)
            ax.text(0.5, 0.5, "no change", transform=ax.transAxes, ha="center", va="center",
                    fontsize=9, color="#666666", bbox={"fc": "white", "ec": "none"})  # fmt: skip
    for ax in list(axes.flat)[len(DELTA_KPIS) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Change against the baseline (mean of paired replications, bars: 95 % interval)",
        fontsize=12, x=0.01, ha="left",
    )  # fmt: skip
    fig.tight_layout()
    return _png(fig)


# --- html ----------------------------------------------------------------------------------


def _fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "%":
        return f"{value * 100:.1f} %"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if unit == "n" and value == round(value):
        return f"{round(value)}"
    return f"{value:,.1f}"


def _fmt_delta(value: float, unit: str) -> str:
    if math.isnan(value):
        return "–"
    if unit == "%":
        return f"{value * 100:+.1f} pp"
    if unit == "n" and value == round(value):
        return f"{value:+,.0f}"
    return f"{value:+,.1f}"


def _verdict(kpi: str, row: Mapping[str, float]) -> str:
    """'better' / 'worse' when the whole interval is on one side of 0, else ''."""
    low, high = row["delta_ci_low"], row["delta_ci_high"]
    if math.isnan(low) or math.isnan(high) or low <= 0 <= high:
        return ""
    up = low > 0
    good = up if kpi in HIGHER_IS_BETTER else not up
    if kpi in NEUTRAL:
        return "changed"
    return "better" if good else "worse"


def _overview_rows(scenarios: list[_Scenario]) -> list[dict[str, Any]]:
    rows = []
    for kpi in (*KPI_COLUMNS, "agents_available", "workload_agents"):
        label, unit = LABELS[kpi]
        cells = []
        for s in scenarios:
            est = _row(s.summary.overall, kpi)
            ci = (
                ""
                if math.isnan(est["ci_low"])
                else f"{_fmt(est['ci_low'], unit)} … {_fmt(est['ci_high'], unit)}"
            )
            cell: dict[str, Any] = {"value": _fmt(est["mean"], unit), "ci": ci}
            if s.comparison is not None:
                row = _row(s.comparison.overall, kpi)
                cell["delta"] = _fmt_delta(row["delta_mean"], unit)
                cell["delta_ci"] = (
                    ""
                    if math.isnan(row["delta_ci_low"])
                    else f"{_fmt_delta(row['delta_ci_low'], unit)} … "
                    f"{_fmt_delta(row['delta_ci_high'], unit)}"
                )
                cell["verdict"] = _verdict(kpi, row)
            cells.append(cell)
        shown_unit = {"min": "minutes", "%": "", "n": ""}[unit]
        rows.append({"label": label, "unit": shown_unit, "cells": cells})
    return rows


def _interval_rows(s: _Scenario) -> list[list[str]]:
    out = []
    for _, row in s.intervals.iterrows():
        cells = [pd.Timestamp(row["local_start"]).strftime("%a %d %b %H:%M")]
        for col, _title in INTERVAL_TABLE:
            unit = LABELS[col][1]
            cells.append(_fmt(float(row[col]), unit))
        out.append(cells)
    return out


def _world_facts(s: _Scenario) -> dict[str, str]:
    runs = s.summary.runs
    w = s.world
    facts = {
        "replications": str(len(runs)),
        "seed": ", ".join(sorted({str(r.seed) for r in runs})),
        "interval": f"{runs[0].interval_minutes} min",
    }
    if w is not None:
        facts |= {
            "start": w.start.astimezone(s.zone).strftime("%a %d %b %Y %H:%M %Z"),
            "days": str(w.days),
            "agents": str(len(w.agents)),
            "routing": w.routing.policy,
            "time zone": w.timezone,
        }
    return facts


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("scenarios", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _html(scenarios: list[_Scenario], baseline: str) -> str:
    agent_cols = [s.name for s in scenarios]
    agents: dict[str, dict[str, str]] = {}
    teams: dict[str, str] = {}
    for s in scenarios:
        for row in s.summary.agents.itertuples(index=False):
            agents.setdefault(str(row.agent), {})[s.name] = _fmt(_float(row.occupancy), "%")
            teams[str(row.agent)] = str(row.team)
    skills: dict[str, dict[str, str]] = {}
    for s in scenarios:
        for row in s.summary.skills.itertuples(index=False):
            skills.setdefault(str(row.skill), {})[s.name] = (
                f"{_fmt(_float(row.occupancy), '%')} ({_fmt(_float(row.agents), 'n')} agents)"
            )
    charts = {
        "staffing": _staffing_chart(scenarios),
        "day": _day_profile_chart(scenarios),
        "sla": _sla_chart(scenarios),
        "backlog": _backlog_chart(scenarios),
        "deltas": _deltas_chart(scenarios),
    }
    notes = [f"{s.name}: {s.summary.note}" for s in scenarios if s.summary.note]
    notes += [
        f"{s.name}: {s.comparison.note}" for s in scenarios if s.comparison and s.comparison.note
    ]
    return (
        _environment()
        .get_template("report.html")
        .render(
            title=f"What-if report: {baseline}"
            + (f" vs {', '.join(s.name for s in scenarios[1:])}" if len(scenarios) > 1 else ""),
            baseline=baseline,
            scenarios=[
                {
                    "name": s.name,
                    "color": s.color,
                    "facts": _world_facts(s),
                    "is_baseline": s.comparison is None,
                    "zone": s.zone.key,
                    "interval_rows": _interval_rows(s),
                }
                for s in scenarios
            ],
            overview=_overview_rows(scenarios),
            interval_headers=[title for _, title in INTERVAL_TABLE],
            charts=charts,
            notes=notes,
            agent_names=agent_cols,
            agents=[(a, teams[a], agents[a]) for a in sorted(agents)],
            skills=[(k, skills[k]) for k in sorted(skills)],
        )
    )


# --- xlsx ----------------------------------------------------------------------------------


def _sheet(wb: Workbook, title: str, df: pd.DataFrame, *, first: bool = False) -> None:
    ws = wb.active if first else wb.create_sheet()
    assert ws is not None
    ws.title = title
    ws.append([str(c) for c in df.columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in df.itertuples(index=False):
        ws.append([_cell(v) for v in row])
    ws.freeze_panes = "A2"
    for i, col in enumerate(df.columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(str(col)) + 2))


def _cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _write_xlsx(path: Path, sheets: Sequence[tuple[str, pd.DataFrame]]) -> None:
    wb = Workbook()
    for i, (title, df) in enumerate(sheets):
        _sheet(wb, title, df, first=i == 0)
    wb.properties.creator = "switchboard scenarios"
    wb.properties.created = FIXED_DATE
    wb.properties.modified = FIXED_DATE
    buf = io.BytesIO()
    wb.save(buf)
    # The zip entries carry the moment of writing: rewrite them with a fixed one.
    with (
        zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src,
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" on save
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + FIXED_DATE.strftime("%Y-%m-%dT%H:%M:%SZ").encode() + rb"\g<2>",
                    data,
                )
            dst.writestr(fixed, data)


# --- entry point ---------------------------------------------------------------------------


def write_report(
    results: Mapping[str, Sequence[RunResult]],
    out_dir: str | Path,
    *,
    baseline: str,
    worlds: Mapping[str, World],
) -> ReportFiles:
    """Write report.html, kpis.csv, intervals.csv and report.xlsx into ``out_dir`` (created if
    missing) for ``results`` (scenario name -> its replications; ``baseline`` names the one the
    others are compared with, paired by replication). ``worlds`` (scenario name -> World) give
    the time zone of the charts and tables, and the expected demand when the runs carry no
    ticket efforts; a scenario without one is drawn in UTC."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scenarios = _prepare(results, baseline, worlds)
    overall = _overall_table(scenarios)
    intervals = _intervals_table(scenarios)
    agents = _side_by_side(
        scenarios, "agents", "agent",
        ("team", "skills", "scheduled_minutes", "available_minutes", "busy_minutes", "occupancy"),
    )  # fmt: skip
    skills = _side_by_side(
        scenarios, "skills", "skill", ("agents", "available_minutes", "busy_minutes", "occupancy")
    )
    files = ReportFiles(
        html=out / "report.html",
        kpis_csv=out / "kpis.csv",
        intervals_csv=out / "intervals.csv",
        xlsx=out / "report.xlsx",
    )
    _csv(overall, files.kpis_csv)
    _csv(intervals, files.intervals_csv)
    _write_xlsx(
        files.xlsx,
        [("Overall", overall), ("Intervals", intervals), ("Agents", agents), ("Skills", skills)],
    )
    files.html.write_text(_html(scenarios, baseline), encoding="utf-8")
    return files
