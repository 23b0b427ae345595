"""Why each ticket went where it went, in words a team lead can check.

One small function per rule, each returning a :class:`~solver.plan.Reason` whose ``rule`` names
the rule (``skills``, ``sla``, ``load``, ``continuity``, ``churn``, ``queue``, ``team_scope``)
and whose ``value`` is that rule's share of the objective for this decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from solver.batch import edf
from solver.batch.data import NO_DEADLINE, BatchData
from solver.batch.moves import Guarded, Move
from solver.plan import Reason
from solver.problem import TeamScope
from solver.timegrid import from_minute

ORDER_RULES = {
    "edf": "ordered earliest deadline first",
    "wspt": "ordered by weighted shortest effort first",
    "local": "order and agent improved by the exact local search (moves priced exactly)",
    "lns": "order and agent improved by a CP-SAT neighbourhood search",
}


@lru_cache(maxsize=65_536)
def _format(now: datetime, minute: int) -> str:
    return from_minute(minute, now).strftime("%a %d %b %H:%M UTC")


def _at(data: BatchData, minute: int) -> str:
    return _format(data.problem.now, minute)


def skills(data: BatchData, t: int, a: int, waste: int) -> Reason:
    ticket, agent = data.problem.tickets[t], data.problem.agents[a]
    if not ticket.required_skills:
        return Reason("skills", "no skills required", 0.0)
    have = ", ".join(
        f"{s} {agent.skills.get(s, 0)} (needs {lvl})" for s, lvl in ticket.required_skills.items()
    )
    extra = f"; {waste} level(s) above need" if waste else ""
    return Reason("skills", f"has {have}{extra}", float(data.weights.expertise_waste * waste))


def sla(data: BatchData, t: int, start: int, end: int, cost: int) -> Reason:
    parts: list[str] = []
    fr, res = int(data.fr_due[t]), int(data.res_due[t])
    if fr != NO_DEADLINE:
        late = start - fr
        verdict = f"late by {late} min" if late > 0 else "on time"
        parts.append(f"first response due {_at(data, fr)}, starts {_at(data, start)} ({verdict})")
    if res != NO_DEADLINE:
        late = end - res
        verdict = f"late by {late} min" if late > 0 else "on time"
        parts.append(f"resolution due {_at(data, res)}, done {_at(data, end)} ({verdict})")
    if not parts:
        parts.append(f"no deadline; planned {_at(data, start)} to {_at(data, end)}")
    return Reason("sla", "; ".join(parts), float(cost))


def load(data: BatchData, a: int, new: int) -> Reason:
    agent = data.problem.agents[a]
    return Reason(
        "load",
        f"{agent.open_tickets} open + {new} new of capacity {agent.capacity}",
        float(data.load_cost(a, new)),
    )


def continuity(data: BatchData, t: int, a: int) -> Reason | None:
    prev = data.problem.tickets[t].previous_agent
    if prev is None:
        return None
    if int(data.previous[t]) == a:
        return Reason("continuity", "the requester's previous agent", 0.0)
    return Reason(
        "continuity",
        f"previous agent {prev} not chosen (unqualified, unavailable or costlier overall)",
        float(data.weights.discontinuity),
    )


def _saved(data: BatchData, move: Move) -> str:
    """Which tickets' SLA a kept move saves, in words."""
    if not move.priced:
        return "not weighed: the churn guard ran out of time before this move"
    names = []
    for x, gain in move.saves[:3]:
        who = "its own SLA" if x == move.ticket else f"the SLA of {data.problem.tickets[x].id}"
        names.append(f"{who} ({gain:,})")
    more = f" and {len(move.saves) - 3} more" if len(move.saves) > 3 else ""
    if not names:
        return "saves SLA cost"
    return (
        f"saves {move.value:,} of SLA cost (breaches, weighted lateness, unassigned) net; "
        "it saves " + ", ".join(names) + more
    )


def churn(data: BatchData, t: int, a: int, guarded: Guarded | None = None) -> Reason | None:
    owner = data.problem.tickets[t].owner_agent
    if owner is None:
        return None
    if int(data.owner[t]) == a:
        return Reason("churn", "stays with its current owner", 0.0)
    move = guarded.moves.get(t) if guarded is not None else None
    if move is not None:
        detail = f"moved from its current owner {owner}: {_saved(data, move)}"
    elif guarded is not None and t in guarded.forced:
        detail = (
            f"moved from its current owner {owner}, who cannot hold it "
            "(away, unqualified, or without the slots or minutes)"
        )
    else:
        detail = f"moved from its current owner {owner}"
    return Reason("churn", detail, float(data.weights.churn))


def for_assignment(
    data: BatchData,
    t: int,
    a: int,
    new: int,
    start: int,
    end: int,
    late_cost: int,
    waste: int,
    seq_rule: str,
    guarded: Guarded | None = None,
) -> tuple[Reason, ...]:
    lent = borrowed(data, t, a)  # first: the one-line history reason names the lender
    out = [] if lent is None else [lent]
    out += [skills(data, t, a, waste), sla(data, t, start, end, late_cost), load(data, a, new)]
    out.extend(r for r in (continuity(data, t, a), churn(data, t, a, guarded)) if r is not None)
    out.append(Reason("order", seq_rule, 0.0))
    return tuple(out)


def borrowed(data: BatchData, t: int, a: int) -> Reason | None:
    """Why an agent of another team works the ticket (its team borrows), or None."""
    ticket, agent = data.problem.tickets[t], data.problem.agents[a]
    if agent.team == ticket.team or data.problem.team_scope.get(ticket.team) is None:
        return None
    return Reason(
        "team_scope",
        f"borrowed from team {agent.team}: no agent of team {ticket.team} had room for it "
        f"(team {ticket.team} borrows across teams)",
        float(data.weights.borrow),
    )


def order_detail(data: BatchData, a: int, seq: Sequence[int], rule: str) -> str:
    """How the agent's order was made, and what the EDF demand bound says of its deadlines."""
    how = ORDER_RULES.get(rule, rule)
    if edf.feasible(data, a, seq):
        return f"{how}; every deadline of this agent's tickets can be met (EDF demand bound)"
    return f"{how}; not every deadline of this agent's tickets can be met (EDF demand bound)"


def for_queued(
    data: BatchData, t: int, n_candidates: int, guarded: Guarded | None = None
) -> tuple[Reason, ...]:
    ticket = data.problem.tickets[t]
    need = ", ".join(f"{s}>={lvl}" for s, lvl in ticket.required_skills.items()) or "nothing"
    cost = float(data.queue_cost[t])
    if int(data.skill_qualified[t]) == 0:
        why = f"no agent has the required skills ({need})"
    elif n_candidates == 0:
        why = (
            f"no qualified agent with working time/capacity: the {int(data.skill_qualified[t])} "
            f"agent(s) with {need} are away, off shift, at capacity or short of working minutes"
        )
    else:
        why = (
            f"its {n_candidates} qualified agent(s) are better used on other tickets "
            "(their slots or working minutes went to more urgent work)"
        )
    out: list[Reason] = [Reason("queue", why, cost)]
    if data.problem.team_scope.get(ticket.team) is TeamScope.TEAM_ONLY:
        out.append(
            Reason(
                "team_scope",
                f"only agents of team {ticket.team} may take it (team {ticket.team} works only "
                "its own tickets: team_only)",
                0.0,
            )
        )
    if ticket.owner_agent is not None:
        move = guarded.moves.get(t) if guarded is not None else None
        detail = f"taken back from {ticket.owner_agent}"
        if move is not None:
            detail += f": {_saved(data, move)}"
        elif guarded is not None and t in guarded.forced:
            detail += ", who cannot hold it (away, unqualified, or without the slots or minutes)"
        out.append(Reason("churn", detail, float(data.weights.churn)))
    return tuple(out)


def queued_all(
    data: BatchData,
    tickets: Sequence[int],
    candidates: Sequence[int],
    guarded: Guarded | None = None,
) -> dict[str, tuple[Reason, ...]]:
    return {
        data.problem.tickets[t].id: for_queued(data, t, c, guarded)
        for t, c in zip(tickets, candidates, strict=True)
    }
