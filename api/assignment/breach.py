"""Breach-risk rules: tickets that will miss a deadline with their current owner are re-routed,
borrowed or escalated by the tenant's policy ``breach_risk`` (:mod:`api.policies`).

:func:`check` (the ``tickets.breach_risk`` job, queued per tenant by housekeeping and by each
run for the next, see :mod:`api.jobs.housekeeping`) looks at every active ticket (new or open)
held by an agent with a due date. The solver (:mod:`solver.breach`) forecasts each owner's work
in deadline order and finds the tickets at risk (expected first response or resolution later
than ``due - margin_minutes``); by ``breach_risk.action``:

- ``none``: record the risk only;
- ``reroute``: move it to an agent of its team who can still make it;
- ``borrow``: the same, then agents of other teams (the reasons say it was borrowed);
- ``escalate``: escalate it to ``escalate_to_team`` (default its own team) with the tier skill
  ``escalate_to_tier`` required (level 1): to an agent there who can make it, else the team's
  queue.

``reroute`` and ``borrow`` fall back to the escalation when nobody can make it and an
``escalate_to_team`` or ``escalate_to_tier`` is set; otherwise the risk is recorded. A ticket
is never moved to an agent who would also miss it (nor one whose own work would then miss).

Each ticket at risk gets a ``breach_risk`` step on its history (why: the deadline, the expected
moment, the owner, what was done) and a ``ticket.breach_risk`` webhook event; a move goes
through the one owner writer (:mod:`api.tickets.owner`: its ``assigned``/``reassigned`` step,
``escalated`` first when escalated, and the usual ``ticket.reassigned`` event).

Idempotent: a risk that is only recorded is recorded once for the same owner, deadline and due
(the last ``breach_risk`` step says so); a ticket moved is on track with its new owner (or in
a team's queue, which is not checked), so a second run finds nothing to do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import events, mapping, solver_input
from api.db.locks import lock_tenant
from api.db.models import Skill as SkillRow
from api.db.models import Team as TeamRow
from api.db.models import Ticket as TicketRow
from api.db.models import TicketEvent
from api.enums import TicketEventKind
from api.jobs import housekeeping
from api.jobs.worker import JobContext
from api.policies import service as policies
from api.policies.schemas import BreachAction, BreachRisk
from api.solver_input import ACTIVE
from api.tickets import history
from api.tickets import service as tickets
from api.tickets.owner import OwnerWriter
from solver.breach import Escalation, Rescue, Scope, rescue

log = logging.getLogger(__name__)

BREACH_RISK_JOB = housekeeping.BREACH_RISK_JOB
SOURCE = "breach_risk"
TIER_LEVEL = 1

_SCOPE = {
    BreachAction.NONE: Scope.RECORD,
    BreachAction.REROUTE: Scope.TEAM,
    BreachAction.BORROW: Scope.BORROW,
    BreachAction.ESCALATE: Scope.ESCALATE,
}


@dataclass
class BreachOutcome:
    """One check: the tickets at risk and what was done with each (``recorded``,
    ``rerouted``, ``borrowed``, ``escalated``); ``already`` were recorded before."""

    checked: int = 0
    actions: dict[str, str] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for action in self.actions.values():
            counts[action] = counts.get(action, 0) + 1
        return {
            "checked": self.checked,
            "at_risk": len(self.actions) + len(self.already),
            "already_recorded": len(self.already),
            **{a: counts.get(a, 0) for a in ("recorded", "rerouted", "borrowed", "escalated")},
        }


def _checkable_ids(session: Session, tenant_id: str) -> list[str]:
    return list(
        session.scalars(
            select(TicketRow.id)
            .where(
                TicketRow.tenant_id == tenant_id,
                TicketRow.status.in_(ACTIVE),
                TicketRow.owner_agent_id.is_not(None),
            )
            .order_by(TicketRow.id)
        )
    )


def _escalation(session: Session, tenant_id: str, rules: BreachRisk) -> Escalation | None:
    """The configured escalation, of the team and tier that still exist (a policy may name
    one that was deleted since: it is left out, and logged)."""
    team = rules.escalate_to_team
    if team is not None and session.get(TeamRow, (tenant_id, team)) is None:
        log.warning("breach risk: escalate_to_team %r of tenant %s is unknown", team, tenant_id)
        team = None
    tier = rules.escalate_to_tier
    if tier is not None and session.get(SkillRow, (tenant_id, tier)) is None:
        log.warning("breach risk: escalate_to_tier %r of tenant %s is unknown", tier, tenant_id)
        tier = None
    if rules.action is BreachAction.ESCALATE:
        return Escalation(team, {tier: TIER_LEVEL} if tier else {})
    if team is None and tier is None:
        return None
    return Escalation(team, {tier: TIER_LEVEL} if tier else {})


def _recorded(session: Session, tenant_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The data of each ticket's last ``breach_risk`` step."""
    if not ids:
        return {}
    last = (
        select(TicketEvent.ticket_id, func.max(TicketEvent.seq).label("seq"))
        .where(
            TicketEvent.tenant_id == tenant_id,
            TicketEvent.kind == TicketEventKind.BREACH_RISK,
            TicketEvent.ticket_id.in_(ids),
        )
        .group_by(TicketEvent.ticket_id)
        .subquery()
    )
    rows = session.execute(
        select(TicketEvent.ticket_id, TicketEvent.data).join(
            last, (TicketEvent.ticket_id == last.c.ticket_id) & (TicketEvent.seq == last.c.seq)
        )
    )
    return {ticket_id: dict(data or {}) for ticket_id, data in rows}


def _key(r: Rescue) -> dict[str, Any]:
    return {
        "owner_agent": r.owner,
        "deadline": r.forecast.deadline,
        "due": mapping.utc_text(r.forecast.due),
    }


def _action(r: Rescue) -> str:
    if r.escalated:
        return "escalated"
    if r.to_agent is None:
        return "recorded"
    return "borrowed" if r.borrowed else "rerouted"


def check(
    *,
    session: Session,
    tenant_id: str,
    now: datetime,
    actor: str | None,
    job_id: str | None = None,
) -> BreachOutcome:
    """Find the tenant's tickets at risk and act by its policy (module docstring), in the
    caller's unit of work (it takes the tenant lock first; the caller commits)."""
    lock_tenant(session, tenant_id)
    rules = policies.load(session, tenant_id).breach_risk
    out = BreachOutcome()
    ids = _checkable_ids(session, tenant_id)
    if not ids:
        return out
    problem = solver_input.build_problem(
        session=session, tenant_id=tenant_id, now=now, ticket_ids=ids
    )
    out.checked = sum(1 for t in problem.tickets if t.first_response_due or t.resolution_due)
    escalation = _escalation(session, tenant_id, rules)
    scope = _SCOPE[rules.action]
    if scope is Scope.ESCALATE and escalation is None:  # pragma: no cover - _escalation gives one
        scope = Scope.RECORD
    found = rescue(problem, margin_minutes=rules.margin_minutes, scope=scope, escalation=escalation)
    before = _recorded(session, tenant_id, [r.ticket_id for r in found])
    writer = OwnerWriter(tenant_id, now)
    for r in found:
        action = _action(r)
        key = _key(r)
        last = before.get(r.ticket_id)
        if (
            action == "recorded"
            and last is not None
            and all(last.get(k) == v for k, v in key.items())
            and last.get("action") == "recorded"
        ):
            out.already.append(r.ticket_id)
            continue
        row = session.get(TicketRow, (tenant_id, r.ticket_id))
        assert row is not None
        _record(session, tenant_id, row, r, action, key, rules, now, actor, job_id)
        _move(session, writer, row, r, now, actor, job_id)
        out.actions[r.ticket_id] = action
    session.flush()
    return out


def _record(
    session: Session,
    tenant_id: str,
    row: TicketRow,
    r: Rescue,
    action: str,
    key: Mapping[str, Any],
    rules: BreachRisk,
    now: datetime,
    actor: str | None,
    job_id: str | None,
) -> None:
    f = r.forecast
    expected = f.start if f.deadline == "first_response" else f.finish
    data: dict[str, Any] = {
        **key,
        "action": action,
        "policy": rules.action,
        "margin_minutes": rules.margin_minutes,
        "expected": expected,
        "to_agent": r.to_agent,
        "to_team": r.to_team if r.moves else None,
        "reasons": mapping.reasons_json(r.reasons),
    }
    if r.new_forecast is not None:
        data["expected_finish_after"] = r.new_forecast.finish
    if job_id is not None:
        data["job_id"] = job_id
    line = "; ".join(x.detail for x in r.reasons)
    history.record_event(
        session=session,
        tenant_id=tenant_id,
        ticket_id=row.id,
        kind=TicketEventKind.BREACH_RISK,
        now=now,
        actor=actor,
        reason=f"breach risk ({action}): {line}",
        data=events.normalize_data(data),
        from_agent=r.owner,
        to_agent=r.to_agent if r.moves else r.owner,
        from_team=r.team,
        to_team=r.to_team if r.moves else r.team,
    )
    session.flush()  # the breach_risk step before the owner steps it causes


def _move(
    session: Session,
    writer: OwnerWriter,
    row: TicketRow,
    r: Rescue,
    now: datetime,
    actor: str | None,
    job_id: str | None,
) -> None:
    if not r.moves:
        return
    assert r.to_team is not None
    if r.escalated:
        before = {s.skill_id: s.level for s in row.required_skills}
        writer.escalated(
            row,
            to_team=r.to_team,
            actor=actor,
            reason="breach risk: " + r.reasons[-1].detail,
            data={
                "source": SOURCE,
                "from_required_skills": before,
                "to_required_skills": dict(r.skills),
                "owner": mapping.owner_of(row).as_json(),
            },
        )
        if dict(r.skills) != before:
            tickets.set_required_skills(row, row.tenant_id, r.skills)
            row.updated_at = now
            session.flush()
    writer.move(
        row,
        agent=r.to_agent,
        team=r.to_team,
        actor=actor,
        reasons=r.reasons,
        source=SOURCE,
        job_id=job_id,
    )
    writer.write(session)


def run_breach_job(ctx: JobContext) -> dict[str, Any]:
    """The ``tickets.breach_risk`` job: check the tenant, then queue its next run."""
    every = float(ctx.payload.get("every_seconds", 0) or 0)
    with ctx.session_factory() as session:
        now = ctx.now()
        out = check(
            session=session, tenant_id=ctx.tenant_id, now=now, actor="system", job_id=ctx.job.id
        )
        result = out.summary()
        result["next_queued"] = housekeeping.schedule_breach_check(
            session, ctx.tenant_id, now=now, every_seconds=every, running=True
        )
        ctx.complete(session, result)
        session.commit()
    return result
