"""Capability booking: Switchboard's engine against the market's rule, and the scale targets.

    python -m benchmarks.booking [--seed 7] [--agents 150] [--requests 3000] [--quick]

Part 1 simulates two weeks for a seeded organisation whose capabilities share agents
("networking-DE-tier2", "networking-tier2", "billing-DE"): customers arrive and book the open
slot nearest to the time they want; disruptions arrive (sick days announced that morning, new
meetings, shift swaps announced a day or two ahead); Switchboard binds agents just in time
(every 30 minutes, two hours ahead), the market binds at booking. Printed for both: calls
booked, calls that turned out uncoverable, reassignments after booking, calls per agent, and the
time per slot query and per booking.

Part 2 is the scale case of issue 3: 500 agents, 2,000 booked calls, open slots of one
capability over 14 days at 15-minute granularity, admission re-checks, JIT of 500 calls.

Figures only: timings on a shared 2-core machine vary; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from rich.console import Console
from rich.table import Table

from solver.booking_baseline import baseline_book, baseline_disrupt, baseline_open_slots
from solver.capability import (
    BookingState,
    BusyAdded,
    Capability,
    Change,
    ShiftAdded,
    ShiftRemoved,
    Slot,
)
from solver.jit import assign_due, disrupt
from solver.problem import Agent, Interval
from solver.slots import BookingIndex, advance, book, find_slots, index_of, validate_calls, witness

T0 = datetime(2026, 3, 23, tzinfo=UTC)  # a Monday; Europe moves to summer time on 29 March
DAYS = 14
LEAD = timedelta(hours=2)
TICK = timedelta(minutes=30)

# team, zone, skills (lo, hi); every team also has a tier 1-3.
TEAMS: tuple[tuple[str, str, dict[str, tuple[int, int]]], ...] = (
    ("net-de", "Europe/Berlin", {"networking": (2, 5), "lang:de": (3, 5), "lang:en": (2, 4)}),
    ("net-en", "Europe/London", {"networking": (2, 5), "lang:en": (3, 5)}),
    ("net-us", "America/New_York", {"networking": (2, 5), "lang:en": (3, 5)}),
    ("bill-de", "Europe/Berlin", {"billing": (2, 5), "lang:de": (3, 5), "lang:en": (2, 4)}),
    ("bill-en", "Europe/Dublin", {"billing": (2, 5), "lang:en": (3, 5), "networking": (1, 3)}),
    (
        "general",
        "Europe/Berlin",
        {"networking": (1, 4), "billing": (1, 3), "lang:de": (2, 5), "lang:en": (2, 5)},
    ),
)

CAPABILITIES = (
    Capability(
        "networking-DE-tier2",
        requirements={"networking": 3, "lang:de": 3, "tier": 2},
        call_minutes=30,
        buffer_minutes=10,
    ),
    Capability(
        "networking-tier2",
        requirements={"networking": 3, "tier": 2},
        call_minutes=30,
        buffer_minutes=10,
    ),
    Capability(
        "billing-DE",
        requirements={"billing": 2, "lang:de": 3},
        call_minutes=20,
        buffer_minutes=5,
    ),
)
CAPABILITY_MIX = (0.35, 0.4, 0.25)
CUSTOMER_ZONES = ("Europe/Berlin", "Europe/Vienna", "Europe/London", "America/New_York")


def make_agents(
    rng: np.random.Generator, n: int, start: datetime = T0, days: int = DAYS
) -> list[Agent]:
    """A seeded organisation: six teams in four zones, local 8-hour shifts, some meetings."""
    agents = []
    for i in range(n):
        team, tzname, skills = TEAMS[i % len(TEAMS)]
        tz = ZoneInfo(tzname)
        sk = {
            s: int(rng.integers(lo, hi + 1))
            for s, (lo, hi) in skills.items()
            if rng.random() < 0.95
        }
        sk["tier"] = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
        begin = int(rng.choice([7, 8, 9, 10, 12]))
        off = set(rng.choice(7, size=2, replace=False).tolist()) if rng.random() < 0.3 else {5, 6}
        shifts: list[Interval] = []
        busy: list[Interval] = []
        first = start.astimezone(tz).date() - timedelta(days=1)
        for d in range(days + 3):
            day = first + timedelta(days=d)
            if day.weekday() in off:
                continue
            s = datetime(day.year, day.month, day.day, begin, tzinfo=tz)
            shifts.append(Interval(s, s + timedelta(hours=8)))
            for _ in range(int(rng.integers(0, 3))):
                ms = s + timedelta(minutes=15 * int(rng.integers(0, 30)))
                busy.append(Interval(ms, ms + timedelta(minutes=int(rng.choice([30, 45, 60])))))
        agents.append(
            Agent(
                f"ag{i:04d}",
                team,
                skills=sk,
                shifts=tuple(shifts),
                busy=tuple(busy),
                timezone=tzname,
            )
        )
    return agents


@dataclass(frozen=True)
class Request:
    arrival: datetime
    capability_id: str
    desired: datetime
    tz: str
    ticket_id: str
    owner: str | None


@dataclass(frozen=True)
class Disruption:
    announced: datetime
    kind: str
    changes: tuple[Change, ...]


def make_requests(
    rng: np.random.Generator, agents: Sequence[Agent], n: int, start: datetime = T0
) -> list[Request]:
    out = []
    for i in range(n):
        arrival = start + timedelta(minutes=int(rng.integers(0, (DAYS - 2) * 24 * 60)))
        cap = CAPABILITIES[int(rng.choice(len(CAPABILITIES), p=CAPABILITY_MIX))]
        tzname = CUSTOMER_ZONES[int(rng.integers(0, len(CUSTOMER_ZONES)))]
        tz = ZoneInfo(tzname)
        ahead = int(rng.integers(0, 4))
        day = (arrival.astimezone(tz) + timedelta(days=ahead)).date()
        hour = float(rng.normal(12.5, 2.5))
        desired_local = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(
            minutes=15 * round(min(max(hour, 7.0), 19.0) * 4)
        )
        desired = max(desired_local.astimezone(UTC), arrival + timedelta(hours=2))
        desired = min(desired, start + timedelta(days=DAYS) - timedelta(hours=1))
        owner = agents[int(rng.integers(0, len(agents)))].id if rng.random() < 0.6 else None
        out.append(Request(arrival, cap.id, desired, tzname, f"T{i:05d}", owner))
    return sorted(out, key=lambda r: r.arrival)


def make_disruptions(
    rng: np.random.Generator, agents: Sequence[Agent], n: int, start: datetime = T0
) -> list[Disruption]:
    out = []
    by_team: dict[str, list[Agent]] = {}
    for a in agents:
        by_team.setdefault(a.team, []).append(a)
    for _ in range(n):
        a = agents[int(rng.integers(0, len(agents)))]
        tz = ZoneInfo(a.timezone)
        day = start.astimezone(tz).date() + timedelta(days=int(rng.integers(1, DAYS - 1)))
        local0 = datetime(day.year, day.month, day.day, tzinfo=tz)
        shifts = [s for s in a.shifts if local0 <= s.start < local0 + timedelta(days=1)]
        kind = str(rng.choice(["sick", "meeting", "swap"], p=[0.35, 0.4, 0.25]))
        if not shifts and kind != "sick":
            kind = "sick"
        if kind == "sick":  # called in sick that morning: the whole local day is gone
            announced = local0.astimezone(UTC) + timedelta(hours=6)
            changes: tuple[Change, ...] = (ShiftRemoved(a.id, local0, local0 + timedelta(days=1)),)
        elif kind == "meeting":
            sh = shifts[0]
            ms = sh.start + timedelta(minutes=15 * int(rng.integers(0, 28)))
            announced = ms - timedelta(hours=float(rng.uniform(0.5, 72)))
            changes = (BusyAdded(a.id, ms, ms + timedelta(minutes=60)),)
        else:  # a colleague from the same team takes the shift over
            sh = shifts[0]
            mate = by_team[a.team][int(rng.integers(0, len(by_team[a.team])))]
            announced = sh.start - timedelta(hours=float(rng.uniform(20, 60)))
            changes = (ShiftRemoved(a.id, sh.start, sh.end),)
            if mate.id != a.id:
                changes = (*changes, ShiftAdded(mate.id, sh.start, sh.end))
        out.append(Disruption(max(announced, start + timedelta(minutes=1)), kind, changes))
    return sorted(out, key=lambda d: d.announced)


# --- the two policies ------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    requests: int = 0
    booked: int = 0
    no_slot: int = 0
    uncoverable: int = 0
    reassigned: int = 0
    invalid: int = 0  # rule violations found by the independent checker at checkpoints
    query_ms: list[float] = field(default_factory=list)
    book_ms: list[float] = field(default_factory=list)
    jit_ms: list[float] = field(default_factory=list)
    disrupt_ms: list[float] = field(default_factory=list)
    per_agent: dict[str, int] = field(default_factory=dict)
    per_agent_day: dict[tuple[str, date], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    name: str
    slots: Callable[..., list[Slot]]
    book: Callable[..., Any]
    disrupt: Callable[..., Any]
    jit: bool


def _ours_slots(state: BookingState, cap: str, lo: datetime, hi: datetime, tz: str) -> list[Slot]:
    return list(find_slots(state, cap, lo, hi, tz).slots)


def _ours_book(
    state: BookingState, cap: str, start: datetime, ticket: str, owner: str | None
) -> Any:
    return book(state, cap, start, ticket, owner_agent=owner, alternatives=0)


def _market_book(
    state: BookingState, cap: str, start: datetime, ticket: str, owner: str | None
) -> Any:
    return baseline_book(state, cap, start, ticket, owner_agent=owner)


OURS = Policy("switchboard (cover + JIT)", _ours_slots, _ours_book, disrupt, jit=True)
MARKET = Policy(
    "market (any free, bind at booking)",
    baseline_open_slots,
    _market_book,
    baseline_disrupt,
    jit=False,
)


def simulate(
    policy: Policy,
    agents: Sequence[Agent],
    requests: Sequence[Request],
    disruptions: Sequence[Disruption],
    checkpoints: Sequence[datetime] = (),
) -> Outcome:
    out = Outcome(policy.name)
    state = BookingState(T0, tuple(agents), CAPABILITIES)
    index_of(state)
    events: list[tuple[datetime, int, Any]] = [(r.arrival, 1, r) for r in requests]
    events += [(d.announced, 0, d) for d in disruptions]
    events += [(c, 3, "check") for c in checkpoints]
    if policy.jit:
        tick = T0
        while tick <= T0 + timedelta(days=DAYS):
            events.append((tick, 2, "tick"))
            tick += TICK
    events.sort(key=lambda e: (e[0], e[1]))
    for when, _order, ev in events:
        state = advance(state, max(when, state.now))
        if ev == "tick":
            t = time.perf_counter()
            res = assign_due(state, lead=LEAD, time_limit=0.5)
            out.jit_ms.append((time.perf_counter() - t) * 1000)
            state = res.state
            out.reassigned += sum(1 for b in res.bindings if b.previous_agent is not None)
            if res.at_risk:
                out.uncoverable += len(res.at_risk)
                state = state.without_calls(r.call_id for r in res.at_risk)
        elif ev == "check":
            cover = witness(state) if policy.jit else {c.id: c.bound_agent for c in state.calls}
            out.invalid += len(validate_calls(state, cover))
        elif isinstance(ev, Request):
            out.requests += 1
            slots, state = _query(policy, state, ev, out)
            if not slots:
                out.no_slot += 1
                continue
            pick = min(slots, key=lambda s: (abs(s.start - ev.desired), s.start))
            t = time.perf_counter()
            res = policy.book(
                state, ev.capability_id, pick.start.astimezone(UTC), ev.ticket_id, ev.owner
            )
            out.book_ms.append((time.perf_counter() - t) * 1000)
            if res.booked:
                out.booked += 1
                state = res.state
        else:
            assert isinstance(ev, Disruption)
            t = time.perf_counter()
            rep = policy.disrupt(state, ev.changes)
            out.disrupt_ms.append((time.perf_counter() - t) * 1000)
            state = rep.state
            out.reassigned += len(rep.rebound)
            if rep.at_risk:
                out.uncoverable += len(rep.at_risk)
                state = state.without_calls(r.call_id for r in rep.at_risk)
    tzs = {a.id: ZoneInfo(a.timezone) for a in agents}
    for c in state.calls:
        if c.bound_agent is None:
            continue
        out.per_agent[c.bound_agent] = out.per_agent.get(c.bound_agent, 0) + 1
        key = (c.bound_agent, c.start.astimezone(tzs[c.bound_agent]).date())
        out.per_agent_day[key] = out.per_agent_day.get(key, 0) + 1
    return out


def _query(
    policy: Policy, state: BookingState, req: Request, out: Outcome
) -> tuple[list[Slot], BookingState]:
    lo, hi = req.desired - timedelta(hours=2), req.desired + timedelta(hours=4)
    t = time.perf_counter()
    slots = policy.slots(state, req.capability_id, lo, hi, req.tz)
    if not slots:  # the customer looks at the rest of that day and the next
        slots = policy.slots(state, req.capability_id, hi, hi + timedelta(days=1), req.tz)
    out.query_ms.append((time.perf_counter() - t) * 1000)
    return slots, state


# --- the scale case --------------------------------------------------------------------------


@dataclass
class Scale:
    agents: int = 0
    calls: int = 0
    jit_calls: int = 0
    slot_warm_ms: dict[str, float] = field(default_factory=dict)
    slot_cold_ms: float = 0.0
    index_build_ms: float = 0.0
    admit_ms: list[float] = field(default_factory=list)
    jit: dict[str, tuple[float, float | None, str]] = field(default_factory=dict)
    disrupt_ms: list[float] = field(default_factory=list)


def scale_case(seed: int, n_agents: int = 500, n_calls: int = 2000, jit_calls: int = 500) -> Scale:
    rng = np.random.default_rng(seed)
    agents = make_agents(rng, n_agents)
    out = Scale(agents=n_agents)
    state = BookingState(T0, tuple(agents), CAPABILITIES)
    index_of(state)
    tries = 0
    while out.calls < n_calls and tries < n_calls * 5:
        tries += 1
        cap = CAPABILITIES[int(rng.choice(len(CAPABILITIES), p=CAPABILITY_MIX))]
        start = T0 + timedelta(hours=2, minutes=15 * int(rng.integers(0, DAYS * 96 - 12)))
        owner = agents[int(rng.integers(0, n_agents))].id
        t = time.perf_counter()
        res = book(state, cap.id, start, f"T{tries}", owner_agent=owner, alternatives=0)
        out.admit_ms.append((time.perf_counter() - t) * 1000)
        if res.booked:
            assert res.state is not None  # a booking always carries the state that includes it
            state = res.state
            out.calls += 1
    end = T0 + timedelta(days=DAYS)
    for cap in CAPABILITIES:
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            find_slots(state, cap.id, T0, end, "Europe/Berlin")
            runs.append((time.perf_counter() - t) * 1000)
        out.slot_warm_ms[cap.id] = statistics.median(runs)
    cold, builds = [], []
    for _ in range(3):
        fresh = BookingState(T0, state.agents, state.capabilities, state.calls)
        t = time.perf_counter()
        BookingIndex(fresh)
        builds.append((time.perf_counter() - t) * 1000)
        fresh = BookingState(T0, state.agents, state.capabilities, state.calls)
        t = time.perf_counter()
        find_slots(fresh, CAPABILITIES[0].id, T0, end, "Europe/Berlin")
        cold.append((time.perf_counter() - t) * 1000)
    out.slot_cold_ms = statistics.median(cold)
    out.index_build_ms = statistics.median(builds)

    starts = sorted(c.start for c in state.calls)
    out.jit_calls = min(jit_calls, len(starts))
    lead = starts[out.jit_calls - 1] - T0 + timedelta(seconds=1)
    for method in ("greedy", "cpsat"):
        fresh = BookingState(T0, state.agents, state.capabilities, state.calls)
        index_of(fresh)
        t = time.perf_counter()
        due = assign_due(fresh, lead=lead, method=method, time_limit=1.0)
        took = time.perf_counter() - t
        note = f"{due.stats.status}, {len(due.bindings)} bound"
        if method == "cpsat":
            note += f", its greedy start {due.stats.params['greedy_objective']:.1f}"
        out.jit[method] = (took * 1000, due.stats.objective, note)
        assert validate_calls(due.state, witness(due.state)) == [], method
    for d in make_disruptions(rng, agents, 20):
        t = time.perf_counter()
        state = disrupt(state, d.changes).state
        out.disrupt_ms.append((time.perf_counter() - t) * 1000)
    return out


# --- printing --------------------------------------------------------------------------------


def _p(values: Sequence[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f}" if len(values) else "-"


def _spread(o: Outcome, agents: Sequence[Agent]) -> str:
    serving = [a.id for a in agents if any(a.qualifies(c.requirements) for c in CAPABILITIES)]
    counts = [o.per_agent.get(a, 0) for a in serving]
    day_max = max(o.per_agent_day.values(), default=0)
    return f"{np.mean(counts):.1f} ± {np.std(counts):.1f} (max {max(counts)}, day max {day_max})"


def print_comparison(
    console: Console, outcomes: Sequence[Outcome], agents: Sequence[Agent]
) -> None:
    table = Table(title="Two weeks of bookings and disruptions (same requests, same disruptions)")
    for col in (
        "policy",
        "requests",
        "booked",
        "no slot",
        "uncoverable",
        "reassigned after booking",
        "rule violations",
        "calls/agent mean ± sd",
        "slot query ms p50/p99",
        "booking ms p50/p99",
    ):
        table.add_column(col, justify="right" if col != "policy" else "left")
    for o in outcomes:
        table.add_row(
            o.name,
            str(o.requests),
            str(o.booked),
            str(o.no_slot),
            str(o.uncoverable),
            str(o.reassigned),
            str(o.invalid),
            _spread(o, agents),
            f"{_p(o.query_ms, 50)} / {_p(o.query_ms, 99)}",
            f"{_p(o.book_ms, 50)} / {_p(o.book_ms, 99)}",
        )
    console.print(table)
    ours, market = outcomes[0], outcomes[1]
    ratio = ours.reassigned / market.reassigned if market.reassigned else float("nan")
    console.print(
        f"reassignments after disruption: ours {ours.reassigned} vs market {market.reassigned} "
        f"→ ratio {ratio:.2f} (target ≤ 0.5); JIT tick ms p50/p99 {_p(ours.jit_ms, 50)} / "
        f"{_p(ours.jit_ms, 99)}; disruption ms p50/p99 ours {_p(ours.disrupt_ms, 50)} / "
        f"{_p(ours.disrupt_ms, 99)}, market {_p(market.disrupt_ms, 50)} / "
        f"{_p(market.disrupt_ms, 99)}"
    )


def print_scale(console: Console, s: Scale) -> None:
    table = Table(title=f"Scale: {s.agents} agents, {s.calls} booked calls, 14 days at 15 min")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("target", justify="right")
    for cap, ms in s.slot_warm_ms.items():
        table.add_row(f"open slots {cap} (median of 7)", f"{ms:.1f} ms", "≤ 50 ms")
    table.add_row("open slots, index built from scratch first", f"{s.slot_cold_ms:.1f} ms", "")
    table.add_row(
        f"  of which index build (cover of {s.calls} calls)", f"{s.index_build_ms:.1f} ms", ""
    )
    table.add_row(
        "admission re-check p50 / p99",
        f"{_p(s.admit_ms, 50)} / {_p(s.admit_ms, 99)} ms",
        "p99 ≤ 5 ms",
    )
    for method, (ms, obj, status) in s.jit.items():
        table.add_row(
            f"JIT of {s.jit_calls} calls, {method}",
            f"{ms:.0f} ms, objective {obj:.1f}" if obj is not None else f"{ms:.0f} ms",
            f"≤ 1 s ({status})" if method == "cpsat" else status,
        )
    table.add_row(
        "disruption repair p50 / max", f"{_p(s.disrupt_ms, 50)} / {max(s.disrupt_ms):.2f} ms", ""
    )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.booking", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--agents", type=int, default=150)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--disruptions", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.requests, args.disruptions = 40, 200, 15
    console = Console(width=max(Console().width, 150))
    rng = np.random.default_rng(args.seed)
    agents = make_agents(rng, args.agents)
    requests = make_requests(rng, agents, args.requests)
    disruptions = make_disruptions(rng, agents, args.disruptions)
    checks = [T0 + timedelta(days=d, hours=5) for d in (3, 7, 10)]
    console.print(
        f"seed {args.seed}: {args.agents} agents, {args.requests} requests, "
        f"{args.disruptions} disruptions, capabilities {', '.join(c.id for c in CAPABILITIES)}"
    )
    outcomes = []
    for policy in (OURS, MARKET):
        t = time.perf_counter()
        outcomes.append(simulate(policy, agents, requests, disruptions, checks))
        console.print(f"  {policy.name}: simulated in {time.perf_counter() - t:.1f} s")
    print_comparison(console, outcomes, agents)
    if not args.skip_scale:
        n = 100 if args.quick else 500
        calls = 300 if args.quick else 2000
        print_scale(console, scale_case(args.seed, n, calls, min(500, calls // 4)))
    console.print("[dim]Timings: shared 2-core machine; re-run for stable figures.[/dim]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
