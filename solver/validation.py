"""Check any plan against its problem, and score it, without knowing who made it.

Tests, benchmarks and the service all call the same two functions:

- :func:`check_plan` lists violations of the hard rules (``[]`` means the plan is valid); each
  rule is a function in :data:`RULES`, under the name its violations carry;
- :func:`evaluate` recomputes the objective of :mod:`solver.objective` from scratch, from the
  assignment and the order alone (it ignores whatever objective the producer reported).

Both time the plan with this module's own :func:`schedule`, never with :mod:`solver.schedule`
(which imports this module, not the reverse: an import-linter contract holds it).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from solver.availability import CalendarBank, bank_for
from solver.objective import ObjectiveWeights
from solver.plan import ObjectiveParts, Plan
from solver.problem import AgentStatus, Problem, TeamScope
from solver.timegrid import from_minute, to_minute


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


def _wall(
    windows: list[tuple[int, int]], cum: list[int], horizon: int, work: int, *, resume: bool
) -> int:
    """Wall minute at which an agent resumes after (or completes) ``work`` working minutes.

    Resuming after ``work`` minutes happens in the first window not yet used up
    (``cum > work``); completing ``work`` minutes, in the first window that reaches it
    (``cum >= work``). ``cum[k]`` is the agent's working minutes up to the end of window ``k``.
    """
    k = bisect_right(cum, work) if resume else bisect_left(cum, work)
    if k == len(cum):
        return horizon + work - (cum[-1] if cum else 0)
    start, end = windows[k]
    return start + work - (cum[k] - (end - start))


def schedule(
    problem: Problem, plan: Plan, bank: CalendarBank | None = None
) -> dict[str, tuple[int, int]]:
    """``{ticket_id: (start_minute, end_minute)}`` for every assignment, in minutes since now.

    The validator's own scheduling loop, deliberately not the solver's (:mod:`solver.schedule`,
    vectorized): a scheduling bug there shows up here as a ``schedule`` violation instead of
    being reproduced. Each agent works their ``backlog_minutes``, then their tickets in
    ``position`` order, preemptively across their working windows; work beyond the horizon's
    working time runs on past the horizon end, minute for minute.
    """
    bank = bank or bank_for(problem)
    times: dict[str, tuple[int, int]] = {}
    for agent_id, rows in plan.by_agent().items():
        i = problem.agent_index[agent_id]
        windows = bank.windows_of(i)
        # cum[k]: working minutes the agent has up to the end of window k.
        cum: list[int] = []
        for s, e in windows:
            cum.append((cum[-1] if cum else 0) + e - s)

        done = problem.agents[i].backlog_minutes
        for a in rows:
            effort = problem.ticket(a.ticket_id).effort_minutes
            times[a.ticket_id] = (
                _wall(windows, cum, bank.horizon, done, resume=True),
                _wall(windows, cum, bank.horizon, done + effort, resume=False),
            )
            done += effort
    return times


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
    churn = discontinuity = waste = borrowed = 0
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
            if problem.agent(agent_id).team != ticket.team and (
                problem.team_scope.get(ticket.team) is TeamScope.BORROW
            ):
                borrowed += 1
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
        borrowing=float(w.borrow * borrowed),
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


Rule = Callable[[Problem, Plan], list[Violation]]


def _complete(problem: Problem, plan: Plan) -> list[Violation]:
    """Every ticket of the problem appears exactly once, assigned or queued, and no other."""
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
    return out


def _team_queue(problem: Problem, plan: Plan) -> list[Violation]:
    """A queued ticket waits in its own team's queue."""
    out: list[Violation] = []
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
    return out


def _known_agent(problem: Problem, plan: Plan) -> list[Violation]:
    """Every assignment names an agent of the problem."""
    return [
        Violation("known_agent", f"unknown agent {a.agent_id!r}", a.ticket_id, a.agent_id)
        for a in plan.assignments
        if a.agent_id not in problem.agent_index
    ]


def _known(problem: Problem, plan: Plan) -> defaultdict[str, list[str]]:
    """``{agent_id: [ticket_id, ...]}`` over the assignments whose agent and ticket both exist."""
    per_agent: defaultdict[str, list[str]] = defaultdict(list)
    for a in plan.assignments:
        if a.agent_id in problem.agent_index and a.ticket_id in problem.ticket_index:
            per_agent[a.agent_id].append(a.ticket_id)
    return per_agent


def _available(problem: Problem, plan: Plan) -> list[Violation]:
    """Only an available agent gets new tickets."""
    out: list[Violation] = []
    for agent_id in _known(problem, plan):
        agent = problem.agent(agent_id)
        if agent.status is not AgentStatus.AVAILABLE:
            out.append(Violation("available", f"agent is {agent.status.value}", agent_id=agent_id))
    return out


def _qualified(problem: Problem, plan: Plan) -> list[Violation]:
    """The agent holds every skill the ticket requires, at the required level or above."""
    out: list[Violation] = []
    for a in plan.assignments:
        if a.agent_id not in problem.agent_index or a.ticket_id not in problem.ticket_index:
            continue
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
    return out


def _capacity(problem: Problem, plan: Plan) -> list[Violation]:
    """Open tickets plus new ones stay within the agent's capacity."""
    out: list[Violation] = []
    for agent_id, tids in _known(problem, plan).items():
        agent = problem.agent(agent_id)
        if agent.open_tickets + len(tids) > agent.capacity:
            out.append(
                Violation(
                    "capacity",
                    f"{agent.open_tickets} open + {len(tids)} new > capacity {agent.capacity}",
                    agent_id=agent_id,
                )
            )
    return out


def _channel_capacity(problem: Problem, plan: Plan) -> list[Violation]:
    """Per channel an agent caps, its open tickets plus new ones stay within that cap."""
    out: list[Violation] = []
    for agent_id, tids in _known(problem, plan).items():
        agent = problem.agent(agent_id)
        if not agent.channel_capacity:
            continue
        new: dict[str, int] = {}
        for t in tids:
            if t in problem.ticket_index:
                channel = problem.ticket(t).channel
                new[channel] = new.get(channel, 0) + 1
        for channel, n in sorted(new.items()):
            cap = agent.channel_capacity.get(channel)
            held = agent.channel_open.get(channel, 0)
            if cap is not None and held + n > cap:
                out.append(
                    Violation(
                        "channel_capacity",
                        f"{held} open + {n} new {channel} > {channel} capacity {cap}",
                        agent_id=agent_id,
                    )
                )
    return out


def _working_time(problem: Problem, plan: Plan) -> list[Violation]:
    """Backlog plus new work fits in the agent's working minutes within the horizon."""
    out: list[Violation] = []
    bank = bank_for(problem)
    for agent_id, tids in _known(problem, plan).items():
        i = problem.agent_index[agent_id]
        work = problem.agents[i].backlog_minutes + sum(
            problem.ticket(t).effort_minutes for t in tids
        )
        if work > int(bank.total[i]):
            out.append(
                Violation(
                    "working_time",
                    f"{work} min of work > {int(bank.total[i])} working min in the horizon",
                    agent_id=agent_id,
                )
            )
    return out


def _order(problem: Problem, plan: Plan) -> list[Violation]:
    """No two of an agent's tickets share a position."""
    positions: defaultdict[str, Counter[int]] = defaultdict(Counter)
    for a in plan.assignments:
        if a.agent_id in problem.agent_index and a.ticket_id in problem.ticket_index:
            positions[a.agent_id][a.position] += 1
    out: list[Violation] = []
    for agent_id, counts in positions.items():
        dup = [p for p, n in counts.items() if n > 1]
        if dup:
            out.append(Violation("order", f"positions repeated: {sorted(dup)}", agent_id=agent_id))
    return out


def _schedule(problem: Problem, plan: Plan) -> list[Violation]:
    """Reported start and end times are those of :func:`schedule` (when reported at all).

    Meaningful only for a plan that passes every other rule (``check_plan`` runs it last, and
    only then); on its own it looks at the assignments whose agent and ticket exist.
    """
    known = [
        a
        for a in plan.assignments
        if a.agent_id in problem.agent_index and a.ticket_id in problem.ticket_index
    ]
    times = schedule(problem, Plan(tuple(known), (), plan.stats))
    out: list[Violation] = []
    for a in known:
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


RULES: Mapping[str, Rule] = MappingProxyType(
    {
        "complete": _complete,
        "team_queue": _team_queue,
        "known_agent": _known_agent,
        "available": _available,
        "qualified": _qualified,
        "capacity": _capacity,
        "channel_capacity": _channel_capacity,
        "working_time": _working_time,
        "order": _order,
        "schedule": _schedule,
    }
)
"""Every hard rule, by the name its violations carry: ``rule(problem, plan) -> violations``."""

HARD_RULES = tuple(RULES)

LAST = "schedule"
"""The rule checked only once every other rule holds (times mean nothing for a broken plan)."""


def check_plan(problem: Problem, plan: Plan) -> list[Violation]:
    """Every violation of a hard rule in ``plan`` (see ``RULES``); ``[]`` when valid.

    Violations come grouped by rule, in ``RULES`` order.
    """
    out = [v for name, rule in RULES.items() if name != LAST for v in rule(problem, plan)]
    return out or RULES[LAST](problem, plan)
