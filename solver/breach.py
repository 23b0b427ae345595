"""Breach risk: which tickets will miss a deadline with their current owner, and who could
still make it.

Plain data in (a :class:`~solver.problem.Problem` whose tickets are the agent-owned work to
check, each with its ``owner_agent``), plain data out (one :class:`Rescue` per ticket at risk).

**Forecast.** Each agent works the tickets they own in deadline order (earliest due first, the
order that makes the most deadlines; ties by priority, then age), after their
``backlog_minutes``, across breaks and busy time exactly as every plan is scheduled
(:func:`solver.schedule.schedule_sequences`). A ticket's first response is expected when its work
starts, its resolution when it ends. An agent who is not available (away, offline) or has no
working time left in the horizon does not get to it: the clock runs past the horizon, so their
tickets are at risk. A ticket's ``effort_minutes`` is taken as the work still to do on it (no
progress is known otherwise): a ticket half done is forecast as if it started now, which errs
on the side of reporting a risk early.

**At risk.** A ticket is at risk when its expected first response or resolution is later than
``due - margin`` (``margin_minutes`` before the deadline); a deadline already past is at risk
too (it was missed, and nobody can make it any more).

**Rescue.** Tickets at risk are handled most urgent first (earliest deadline at risk); a ticket
that an earlier move already put back on track is left alone. For each, a *candidate* is an
agent other than the owner who is available, holds fewer tickets than their capacity, has the
required skills, and belongs to the teams the caller allows; inserted into the candidate's own
deadline order, the ticket must make every deadline with the margin, and every ticket of the
candidate that was on track must stay on track. Never is a ticket moved to an agent who would
also miss it. The candidate finishing it earliest wins (ties: fewer tickets held, then the
order of ``problem.agents``). Every move updates the forecast the next tickets are judged on.

Which teams are allowed is the caller's :class:`Scope`: ``RECORD`` moves nothing (the tickets at
risk are only reported), ``TEAM`` re-routes within the ticket's team, ``BORROW`` within the team
first, then across teams. With an :class:`Escalation`, a ticket nobody in scope can rescue (and
every ticket at risk when the scope is ``ESCALATE``) is escalated: its required skills are raised
by the escalation's, its team becomes the escalation's team (default its own), and it goes to
that team's candidate who can make it, or to the team's queue when nobody can.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from solver.plan import Reason
from solver.problem import AgentStatus, Problem, Ticket
from solver.schedule import schedule_sequences
from solver.timegrid import from_minute, to_minute


class Scope(enum.StrEnum):
    """Where the rescue may look for an agent who can still make it."""

    RECORD = "record"
    """Nowhere: report the risk only."""
    TEAM = "team"
    """The ticket's own team."""
    BORROW = "borrow"
    """The ticket's own team first, then every team."""
    ESCALATE = "escalate"
    """Escalate every ticket at risk (needs an :class:`Escalation`)."""


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where escalated tickets go: ``team`` (None: their own), with ``skills`` raised."""

    team: str | None = None
    skills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Forecast:
    """When a ticket is expected to be answered and done with one agent, and the first
    deadline it misses (``deadline`` ``first_response``/``resolution``; None: on track)."""

    agent_id: str | None
    start: datetime
    finish: datetime
    deadline: str | None = None
    due: datetime | None = None

    @property
    def at_risk(self) -> bool:
        return self.deadline is not None


@dataclass(frozen=True, slots=True)
class Rescue:
    """One ticket at risk with its owner (``forecast``) and what can be done.

    ``to_agent`` is the agent who can still make it (None: nobody in scope); ``to_team`` is the
    team that holds it afterwards; ``escalated`` when it was escalated (``skills`` are then its
    raised required skills); ``borrowed`` when ``to_agent`` is of another team. With
    ``to_agent`` None and ``escalated`` False nothing moves: the risk is only recorded.
    """

    ticket_id: str
    owner: str
    team: str
    forecast: Forecast
    to_agent: str | None = None
    to_team: str | None = None
    new_forecast: Forecast | None = None
    escalated: bool = False
    borrowed: bool = False
    skills: Mapping[str, int] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()

    @property
    def moves(self) -> bool:
        return self.to_agent is not None or self.escalated


def _order_key(t: Ticket) -> tuple[datetime, int, datetime, str]:
    dues = [d for d in (t.first_response_due, t.resolution_due) if d is not None]
    last = datetime.max.replace(tzinfo=t.created_at.tzinfo)
    return (min(dues) if dues else last, -int(t.priority), t.created_at, t.id)


class _Plan:
    """Every agent's deadline-ordered sequence and the forecast it gives."""

    def __init__(self, problem: Problem, margin_minutes: int) -> None:
        self.problem = problem
        self.margin = margin_minutes
        self.seq: dict[str, list[str]] = {a.id: [] for a in problem.agents}
        for t in sorted(problem.tickets, key=_order_key):
            if t.owner_agent is not None and t.owner_agent in self.seq:
                self.seq[t.owner_agent].append(t.id)
        self.times: dict[str, tuple[int, int]] = {}
        for agent_id in self.seq:
            self.times.update(self._schedule(agent_id, self.seq[agent_id]))

    def _schedule(self, agent_id: str, seq: Sequence[str]) -> dict[str, tuple[int, int]]:
        return schedule_sequences(self.problem, {agent_id: seq})

    def _missed(self, t: Ticket, start: int, end: int) -> tuple[str, datetime] | None:
        origin = self.problem.now
        fr, res = t.first_response_due, t.resolution_due
        if fr is not None and start + self.margin > to_minute(fr, origin):
            return "first_response", fr
        if res is not None and end + self.margin > to_minute(res, origin):
            return "resolution", res
        return None

    def forecast(self, t: Ticket, agent_id: str | None, start: int, end: int) -> Forecast:
        missed = self._missed(t, start, end)
        origin = self.problem.now
        return Forecast(
            agent_id,
            from_minute(start, origin),
            from_minute(end, origin),
            None if missed is None else missed[0],
            None if missed is None else missed[1],
        )

    def current(self, t: Ticket, agent_id: str) -> Forecast:
        start, end = self.times[t.id]
        return self.forecast(t, agent_id, start, end)

    def try_insert(self, t: Ticket, agent_id: str) -> tuple[Forecast, list[str]] | None:
        """The forecast of ``t`` with ``agent_id`` and their new sequence, or None when it
        would miss a deadline there or push one of their on-track tickets into missing one."""
        seq = sorted([*self.seq[agent_id], t.id], key=lambda i: _order_key(self._ticket(i, t)))
        times = self._schedule(agent_id, seq)
        start, end = times[t.id]
        mine = self.forecast(t, agent_id, start, end)
        if mine.at_risk:
            return None
        for other in self.seq[agent_id]:
            ticket = self.problem.ticket(other)
            was = self._missed(ticket, *self.times[other])
            if was is None and self._missed(ticket, *times[other]) is not None:
                return None
        return mine, seq

    def _ticket(self, ticket_id: str, moving: Ticket) -> Ticket:
        return moving if ticket_id == moving.id else self.problem.ticket(ticket_id)

    def move(self, t: Ticket, from_agent: str, to_agent: str | None, seq: list[str]) -> None:
        self.seq[from_agent] = [i for i in self.seq[from_agent] if i != t.id]
        self.times.pop(t.id, None)
        self.times.update(self._schedule(from_agent, self.seq[from_agent]))
        if to_agent is not None:
            self.seq[to_agent] = seq
            self.times.update(self._schedule(to_agent, seq))


def _held(problem: Problem, plan: _Plan, agent_id: str) -> int:
    return problem.agent(agent_id).open_tickets + len(plan.seq[agent_id])


def _best(
    problem: Problem, plan: _Plan, t: Ticket, owner: str, teams: set[str] | None
) -> tuple[str, Forecast, list[str]] | None:
    best: tuple[tuple[datetime, int, int], str, Forecast, list[str]] | None = None
    for i, agent in enumerate(problem.agents):
        if agent.id == owner or agent.status is not AgentStatus.AVAILABLE:
            continue
        if teams is not None and agent.team not in teams:
            continue
        if not agent.qualifies(t.required_skills):
            continue
        held = _held(problem, plan, agent.id)
        if held >= agent.capacity:
            continue
        tried = plan.try_insert(t, agent.id)
        if tried is None:
            continue
        key = (tried[0].finish, held, i)
        if best is None or key < best[0]:
            best = (key, agent.id, tried[0], tried[1])
    return None if best is None else (best[1], best[2], best[3])


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _risk_reason(f: Forecast, margin: int) -> Reason:
    assert f.due is not None and f.deadline is not None
    expected = f.start if f.deadline == "first_response" else f.finish
    word = "first response" if f.deadline == "first_response" else "resolution"
    late = int((expected - f.due).total_seconds() // 60) + margin
    who = f.agent_id or "nobody"
    return Reason(
        "breach_risk",
        f"{word} due {_fmt(f.due)}; with {who} expected {_fmt(expected)}"
        + (f" (margin {margin} min)" if margin else ""),
        float(late),
    )


def rescue(
    problem: Problem,
    *,
    margin_minutes: int = 0,
    scope: Scope = Scope.TEAM,
    escalation: Escalation | None = None,
) -> list[Rescue]:
    """Every agent-owned ticket of ``problem`` that is at risk, most urgent first, with what
    ``scope`` and ``escalation`` allow doing about it (see the module docstring)."""
    if scope is Scope.ESCALATE and escalation is None:
        raise ValueError("scope ESCALATE needs an escalation")
    plan = _Plan(problem, margin_minutes)
    owned = [t for t in problem.tickets if t.owner_agent is not None and t.owner_agent in plan.seq]
    first: list[tuple[datetime, str, Ticket, Forecast]] = []
    for t in owned:
        assert t.owner_agent is not None
        f = plan.current(t, t.owner_agent)
        if f.at_risk:
            assert f.due is not None
            first.append((f.due, t.id, t, f))
    first.sort(key=lambda x: (x[0], x[1]))
    out: list[Rescue] = []
    for _due, _id, t, _was in first:
        owner = t.owner_agent
        assert owner is not None
        f = plan.current(t, owner)
        if not f.at_risk:
            continue  # an earlier move put it back on track
        risk = _risk_reason(f, margin_minutes)
        found = None
        teams: set[str] | None = None
        if scope in (Scope.TEAM, Scope.BORROW):
            found = _best(problem, plan, t, owner, {t.team})
            if found is None and scope is Scope.BORROW:
                others = {a.team for a in problem.agents} - {t.team}
                found = _best(problem, plan, t, owner, others)
        if found is not None:
            agent_id, new, seq = found
            borrowed = problem.agent(agent_id).team != t.team
            plan.move(t, owner, agent_id, seq)
            why = (
                f"borrowed from team {problem.agent(agent_id).team}: "
                if borrowed
                else "re-routed within the team: "
            )
            out.append(
                Rescue(
                    t.id,
                    owner,
                    t.team,
                    f,
                    to_agent=agent_id,
                    to_team=t.team,
                    new_forecast=new,
                    borrowed=borrowed,
                    reasons=(
                        risk,
                        Reason(
                            "breach_rescue",
                            why + f"{agent_id} expected to finish {_fmt(new.finish)}",
                        ),
                    ),
                )
            )
            continue
        if escalation is None or scope is Scope.RECORD:
            out.append(Rescue(t.id, owner, t.team, f, reasons=(risk,)))
            continue
        to_team = escalation.team or t.team
        skills = dict(t.required_skills)
        for skill, level in escalation.skills.items():
            skills[skill] = max(skills.get(skill, 0), level)
        raised = replace(t, team=to_team, required_skills=skills)
        teams = {to_team}
        found = _best(problem, plan, raised, owner, teams)
        if found is None:
            plan.move(t, owner, None, [])
            out.append(
                Rescue(
                    t.id,
                    owner,
                    t.team,
                    f,
                    to_team=to_team,
                    escalated=True,
                    skills=skills,
                    reasons=(
                        risk,
                        Reason(
                            "breach_escalated",
                            f"escalated to team {to_team}'s queue: nobody there can make it "
                            "now either",
                        ),
                    ),
                )
            )
            continue
        agent_id, new, seq = found
        plan.move(t, owner, agent_id, seq)
        out.append(
            Rescue(
                t.id,
                owner,
                t.team,
                f,
                to_agent=agent_id,
                to_team=to_team,
                new_forecast=new,
                escalated=True,
                skills=skills,
                reasons=(
                    risk,
                    Reason(
                        "breach_escalated",
                        f"escalated to team {to_team}: {agent_id} expected to finish "
                        f"{_fmt(new.finish)}",
                    ),
                ),
            )
        )
    return out
