"""Check any plan against its problem, and score it, without knowing who made it.

Tests, benchmarks and the service all call the same two functions:

- :func:`check_plan` lists violations of the hard rules (``[]`` means the plan is valid);
- :func:`evaluate` recomputes the objective of :mod:`solver.objective` from scratch, from the
  assignment and the order alone (it ignores whatever objective the producer reported).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from solver.availability import CalendarBank, bank_for
from solver.objective import ObjectiveWeights
from solver.plan import ObjectiveParts, Plan
from solver.problem import AgentStatus, Problem
from solver.schedule import schedule_sequences
from solver.timegrid import from_minute, to_minute

HARD_RULES = (
    "complete",
    "team_queue",
    "known_agent",
    "available",
    "qualified",
    "capacity",
    "working_time",
    "order",
    "schedule",
)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    detail: str
    ticket_id: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class TicketOutcome:
    """Where a ticket ended up and, if scheduled, how late (minutes) against each deadline."""

    ticket_id: str
    agent_id: str | None
    start_minute: int | None
    end_minute: int | None
    first_response_late: int
    resolution_late: int


@dataclass(frozen=True)
class Evaluation:
    parts: ObjectiveParts
    outcomes: tuple[TicketOutcome, ...]
    breaches: int
    fr_breaches: int
    res_breaches: int
    unassigned: int
    churn: int
    load_spread: int
    weighted_lateness_minutes: int

    @property
    def objective(self) -> float:
        return self.parts.total


def _sequences(plan: Plan) -> dict[str, list[str]]:
    return {agent: [a.ticket_id for a in rows] for agent, rows in plan.by_agent().items()}


def schedule(
    problem: Problem, plan: Plan, bank: CalendarBank | None = None
) -> dict[str, tuple[int, int]]:
    """``{ticket_id: (start_minute, end_minute)}`` for every assignment, in minutes since now."""
    return schedule_sequences(problem, _sequences(plan), bank)


def evaluate(
    problem: Problem,
    plan: Plan,
    weights: ObjectiveWeights | None = None,
    *,
    times: Mapping[str, tuple[int, int]] | None = None,
) -> Evaluation:
    """Score ``plan``: breaches and lateness of assigned tickets; queued ones are unassigned."""
    w = weights or ObjectiveWeights()
    if times is None:
        times = schedule(problem, plan)
    assigned = {a.ticket_id: a.agent_id for a in plan.assignments}
    new_load: Counter[str] = Counter(assigned.values())
    outcomes: list[TicketOutcome] = []
    fr_b = res_b = 0
    breach_units = 0
    late_units = 0
    unassigned_units = 0
    churn = discontinuity = waste = 0
    for ticket in problem.tickets:
        pw = w.priority_weight(ticket.priority)
        agent_id = assigned.get(ticket.id)
        if ticket.owner_agent is not None and agent_id != ticket.owner_agent:
            churn += 1
        if agent_id is None:
            unassigned_units += pw
            outcomes.append(TicketOutcome(ticket.id, None, None, None, 0, 0))
            continue
        if ticket.previous_agent is not None and agent_id != ticket.previous_agent:
            discontinuity += 1
        if agent_id in problem.agent_index:
            levels = problem.agent(agent_id).skills
            waste += sum(
                max(0, levels.get(s, 0) - lvl) for s, lvl in ticket.required_skills.items()
            )
        start, end = times[ticket.id]
        fr_late = res_late = 0
        if ticket.first_response_due is not None:
            fr_late = max(0, start - to_minute(ticket.first_response_due, problem.now))
        if ticket.resolution_due is not None:
            res_late = max(0, end - to_minute(ticket.resolution_due, problem.now))
        fr_b += fr_late > 0
        res_b += res_late > 0
        breach_units += pw * ((fr_late > 0) + (res_late > 0))
        late_units += pw * (fr_late + res_late)
        outcomes.append(TicketOutcome(ticket.id, agent_id, start, end, fr_late, res_late))
    load_cost = 0
    loads: list[int] = []
    bank = bank_for(problem)
    for i, agent in enumerate(problem.agents):
        n = new_load.get(agent.id, 0)
        load_cost += (agent.open_tickets + n) ** 2 - agent.open_tickets**2
        if agent.status is AgentStatus.AVAILABLE and agent.capacity > 0 and bank.total[i] > 0:
            loads.append(agent.open_tickets + n)
    parts = ObjectiveParts(
        sla_breaches=float(w.breach * breach_units),
        weighted_lateness=float(w.lateness_per_minute * late_units),
        unassigned=float(w.unassigned * unassigned_units),
        churn=float(w.churn * churn),
        load_balance=float(w.load * load_cost),
        expertise_waste=float(w.expertise_waste * waste),
        discontinuity=float(w.discontinuity * discontinuity),
    )
    return Evaluation(
        parts=parts,
        outcomes=tuple(outcomes),
        breaches=fr_b + res_b,
        fr_breaches=fr_b,
        res_breaches=res_b,
        unassigned=len(problem.tickets) - len(assigned),
        churn=churn,
        load_spread=(max(loads) - min(loads)) if loads else 0,
        weighted_lateness_minutes=late_units,
    )


def check_plan(problem: Problem, plan: Plan) -> list[Violation]:
    """Every violation of a hard rule in ``plan`` (see ``HARD_RULES``); ``[]`` when valid."""
    out: list[Violation] = []
    seen: Counter[str] = Counter()
    for a in plan.assignments:
        seen[a.ticket_id] += 1
    for q in plan.queued:
        seen[q.ticket_id] += 1
    for tid, n in seen.items():
        if tid not in problem.ticket_index:
            out.append(Violation("complete", f"unknown ticket {tid!r} in plan", ticket_id=tid))
        elif n > 1:
            out.append(Violation("complete", f"ticket appears {n} times", ticket_id=tid))
    for t in problem.tickets:
        if t.id not in seen:
            out.append(Violation("complete", "ticket neither assigned nor queued", ticket_id=t.id))
    for q in plan.queued:
        if q.ticket_id in problem.ticket_index and problem.ticket(q.ticket_id).team != q.team_id:
            expected = problem.ticket(q.ticket_id).team
            out.append(
                Violation(
                    "team_queue",
                    f"queued to team {q.team_id!r}, but the ticket belongs to {expected!r}",
                    ticket_id=q.ticket_id,
                )
            )
    bank = bank_for(problem)
    per_agent: defaultdict[str, list[str]] = defaultdict(list)
    positions: defaultdict[str, Counter[int]] = defaultdict(Counter)
    for a in plan.assignments:
        if a.agent_id not in problem.agent_index:
            out.append(
                Violation("known_agent", f"unknown agent {a.agent_id!r}", a.ticket_id, a.agent_id)
            )
            continue
        if a.ticket_id not in problem.ticket_index:
            continue
        per_agent[a.agent_id].append(a.ticket_id)
        positions[a.agent_id][a.position] += 1
        agent = problem.agent(a.agent_id)
        ticket = problem.ticket(a.ticket_id)
        missing = [
            f"{s}>={lvl} (has {agent.skills.get(s, 0)})"
            for s, lvl in ticket.required_skills.items()
            if agent.skills.get(s, 0) < lvl
        ]
        if missing:
            out.append(
                Violation("qualified", "lacks " + ", ".join(missing), a.ticket_id, a.agent_id)
            )
    for agent_id, tids in per_agent.items():
        i = problem.agent_index[agent_id]
        agent = problem.agents[i]
        if agent.status is not AgentStatus.AVAILABLE:
            out.append(Violation("available", f"agent is {agent.status.value}", agent_id=agent_id))
        if agent.open_tickets + len(tids) > agent.capacity:
            out.append(
                Violation(
                    "capacity",
                    f"{agent.open_tickets} open + {len(tids)} new > capacity {agent.capacity}",
                    agent_id=agent_id,
                )
            )
        work = agent.backlog_minutes + sum(problem.ticket(t).effort_minutes for t in tids)
        if work > int(bank.total[i]):
            out.append(
                Violation(
                    "working_time",
                    f"{work} min of work > {int(bank.total[i])} working min in the horizon",
                    agent_id=agent_id,
                )
            )
        dup = [p for p, n in positions[agent_id].items() if n > 1]
        if dup:
            out.append(Violation("order", f"positions repeated: {sorted(dup)}", agent_id=agent_id))
    if not out:
        times = schedule(problem, plan, bank)
        for a in plan.assignments:
            s, e = times[a.ticket_id]
            if a.start is not None and a.start != from_minute(s, problem.now):
                out.append(
                    Violation(
                        "schedule",
                        f"start {a.start.isoformat()} differs from the schedule's "
                        f"{from_minute(s, problem.now).isoformat()}",
                        a.ticket_id,
                        a.agent_id,
                    )
                )
            if a.end is not None and a.end != from_minute(e, problem.now):
                out.append(
                    Violation("schedule", "end differs from the schedule", a.ticket_id, a.agent_id)
                )
    return out
