"""What live calls cost inside a what-if simulation: the booking engine driven by CallDesk.

    python -m benchmarks.scenario_calls [--baseline scenarios/examples/baseline.yaml]
        [--per-hour 0] [--copies 1] [--days N] [--jit cpsat|greedy] [--on-risk keep|rebook]
        [--seed 7]

Runs :class:`scenarios.calls.CallDesk` alone (``scenarios.calls.drive``: the loop the simulation
runs, without the tickets) over a planner's world: the customers who booked a call in the
replayed history (``TicketSpec.call``), plus ``--per-hour`` synthetic requests an hour (Poisson,
round the clock, against the world's first capability) to load the book; whole-shift absences
drawn at each agent's shrinkage rate, learnt when the shift starts. ``--copies K`` repeats every
agent K times (the same plan under new ids) to reach a larger floor; ``--days`` overrides the
run's length (the example is one week).

Printed: requests, booked, no slot, bindings, re-bindings, at risk, lost; CPU time (process
time: on a shared machine it does not count the neighbours' work, wall time would) per slot
query + booking, per just-in-time run and per disruption; the whole run's CPU and wall time; and
the machine's load average beside them (a shared 2-core machine: figures, not assertions).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from scenarios.calls import Absence, CallDesk, Request, booking_agents, drive
from scenarios.inputs import load_baseline
from scenarios.model import World, shift_intervals
from solver.problem import Interval

EXAMPLE = Path(__file__).resolve().parent.parent / "scenarios" / "examples" / "baseline.yaml"


def widen(world: World, copies: int, days: int | None) -> World:
    """The world with every agent repeated ``copies`` times (ids ``<id>~<k>`` beyond the first)
    and ``days`` long."""
    agents = tuple(
        plan if k == 0 else replace(plan, id=f"{plan.id}~{k}")
        for k in range(copies)
        for plan in world.agents
    )
    return replace(world, agents=agents, days=days or world.days)


def requests(world: World, per_hour: float, rng: np.random.Generator) -> list[Request]:
    """The history's booked calls, plus ``per_hour`` synthetic ones an hour."""
    out = [
        Request(t.created_at, t.id, t.call)
        for t in world.demand.history
        if t.call is not None and world.start <= t.created_at < world.end
    ]
    if per_hour > 0 and world.capabilities:
        cap = world.capabilities[0].id
        minutes = world.days * 24 * 60
        n = int(rng.poisson(per_hour * minutes / 60))
        for i, m in enumerate(np.sort(rng.uniform(0, minutes, n)).tolist()):
            out.append(Request(world.start + timedelta(minutes=m), f"S-{i:06d}", cap))
    return out


def absences(world: World, rng: np.random.Generator) -> list[Absence]:
    """Whole-shift absences at each agent's shrinkage rate (agents by id, shifts in order: a
    fixed draw order), learnt when the shift starts. A shift is the working time of one local
    day (its pieces between breaks)."""
    out = []
    for plan in sorted(world.agents, key=lambda a: a.id):
        days: dict[date, list[Interval]] = {}
        for iv in shift_intervals(plan, world.start, world.end):
            days.setdefault(iv.start.astimezone(ZoneInfo(plan.timezone)).date(), []).append(iv)
        for pieces in days.values():
            if rng.random() < plan.shrinkage:
                first, last = pieces[0].start, pieces[-1].end
                out.append(Absence(first, plan.id, first, last))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, default=EXAMPLE)
    parser.add_argument("--per-hour", type=float, default=0.0)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--jit", choices=("cpsat", "greedy"), default="cpsat")
    parser.add_argument("--on-risk", choices=("keep", "rebook"), default="keep")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    world = widen(load_baseline(args.baseline), args.copies, args.days)
    rng = np.random.default_rng(args.seed)
    reqs = requests(world, args.per_hour, rng)
    gone = absences(world, rng)
    t0 = time.process_time()
    agents = booking_agents(world)
    desk = CallDesk(
        world,
        agents,
        now=world.start,
        rng=np.random.default_rng(args.seed),
        jit_method=args.jit,
        on_risk=args.on_risk,
    )
    t1, w1 = time.process_time(), time.perf_counter()
    drive(desk, reqs, gone, world.end)
    t2, w2 = time.process_time(), time.perf_counter()
    st = desk.stats
    load = os.getloadavg()

    def ms(total: float, n: int) -> str:
        return f"{1000 * total / n:8.2f} ms" if n else "       -   "

    print(
        f"{world.name}: {len(world.agents)} agents, {world.days} days, "
        f"{len(world.capabilities)} capabilities, jit={args.jit}, on_risk={args.on_risk}, "
        f"seed={args.seed}"
    )
    print(
        f"requests {st.requests}  booked {st.booked}  no slot {st.no_slot}  refused {st.refused}"
        f"  bound {st.bound}  rebinds {st.rebinds}  at risk {st.at_risk}  lost {st.lost}"
        f"  rebooked {st.rebooked}  dropped {st.dropped}  absences {len(gone)}"
        f"  bind runs {st.bind_runs}"
    )
    print(f"per request (slots + booking) {ms(st.slots_seconds + st.book_seconds, st.requests)}")
    print(f"  of which the slot query     {ms(st.slots_seconds, st.requests)}")
    print(f"per just-in-time run          {ms(st.jit_seconds, st.bind_runs)}")
    print(f"per disruption                {ms(st.disrupt_seconds, st.disruptions)}")
    print(f"agents' working time built    {1000 * (t1 - t0):8.2f} ms")
    print(f"whole run                     {t2 - t1:8.2f} s CPU, {w2 - w1:.2f} s wall")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
