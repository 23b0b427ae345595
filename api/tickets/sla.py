"""SLA clocks: a ticket's deadlines computed from the tenant's SLA policy, and kept current.

The rules (the policy's OpenAPI description says the same, for integrators):

- **The helpdesk wins.** A deadline the helpdesk sends is stored as sent and never moved. The
  service computes only a deadline the helpdesk leaves out, when the tenant has an SLA policy
  with a target for the ticket's priority: ``created_at`` plus the target in business minutes
  of the policy's schedule. A later write that leaves it out again keeps the computed one (and
  one that sends back exactly the computed value keeps it computed: a GET -> PUT round trip
  changes nothing).
- **Which SLA**: the ticket's team's own (``sla.teams``) if it has one, else the tenant's.
- **Priority, ``created_at`` or team changes** (the last only when it changes which SLA applies)
  recompute the computed deadlines from ``created_at`` (time spent pending before is not added
  back).
- **pending pauses** the clocks (from the moment the ticket becomes pending).
- **Back to new/open resumes** them: the computed resolution deadline moves later by the business
  time spent pending. The first-response deadline does not move: a ticket leaves ``new`` with
  its first response, so by the time it can be pending that deadline is met or missed already.
- **solved/closed stops** the clocks (the deadlines stay, for the KPIs).
- **A reopen** (solved/closed -> new/open/pending) restarts the resolution clock: the computed
  resolution deadline becomes the reopen moment plus the full resolution target (paused at once
  if the ticket reopens as pending). The first-response deadline stays.

Every change of a computed deadline is one ``due_dates_set`` step in the ticket's history, with
both deadlines, the rule that set them and (on resume) the business minutes paused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from api.db.models import Ticket, TicketEvent
from api.enums import TicketEventKind, TicketPriority, TicketStatus
from api.errors import InvalidInput
from api.mapping import utc_text
from api.policies import service as policies
from solver.business_hours import BusinessSchedule, NeverOpen

DONE = (TicketStatus.SOLVED, TicketStatus.CLOSED)
ACTIVE = (TicketStatus.NEW, TicketStatus.OPEN)


@dataclass(frozen=True, slots=True)
class Before:
    """What the clocks looked like before this write (``status`` None: a new ticket)."""

    status: TicketStatus | None
    priority: TicketPriority | None
    created_at: datetime | None
    team: str | None
    first_response_due: datetime | None
    resolution_due: datetime | None

    @classmethod
    def of(cls, row: Ticket | None) -> Before:
        if row is None:
            return cls(None, None, None, None, None, None)
        return cls(
            row.status,
            row.priority,
            row.created_at,
            row.team_id,
            row.first_response_due,
            row.resolution_due,
        )


def take_sent(
    row: Ticket, first_response_due: datetime | None, resolution_due: datetime | None
) -> None:
    """Store the deadlines the helpdesk sent; keep computed ones where it sent none (or sent the
    computed value back)."""
    for name, sent in (
        ("first_response_due", first_response_due),
        ("resolution_due", resolution_due),
    ):
        computed = bool(getattr(row, f"{name}_computed"))
        if sent is None:
            if not computed:
                setattr(row, name, None)
        elif not (computed and getattr(row, name) == sent):
            setattr(row, name, sent)
            setattr(row, f"{name}_computed", False)


def settle(
    *,
    session: Session,
    row: Ticket,
    before: Before,
    now: datetime,
    actor: str | None,
    reason: str | None,
) -> TicketEvent | None:
    """Compute, pause, resume or restart the ticket's computed deadlines after a write (see the
    module's rules); records one ``due_dates_set`` step if they changed."""
    policy = policies.load(session, row.tenant_id).sla
    rules = policy.for_team(row.team_id) if policy is not None else None
    start = (row.first_response_due, row.resolution_due)
    rule: str | None = None
    data: dict[str, object] = {}
    schedule = rules.business_schedule() if rules is not None else None
    target = rules.targets.get(row.priority) if rules is not None else None

    def minutes(field: str) -> timedelta | None:
        value = getattr(target, f"{field}_minutes", None) if target is not None else None
        return None if value is None else timedelta(minutes=value)

    moved_team = False
    if policy is not None and rules is not None and before.team not in (None, row.team_id):
        old = policy.for_team(before.team)
        moved_team = (old.schedule, old.targets) != (rules.schedule, rules.targets)
    recompute = before.status is not None and (
        before.priority != row.priority or before.created_at != row.created_at or moved_team
    )
    for field in ("first_response", "resolution"):
        name = f"{field}_due"
        computed = bool(getattr(row, f"{name}_computed"))
        if getattr(row, name) is not None and not (computed and recompute):
            continue  # the helpdesk's, or already computed and still right
        amount = minutes(field)
        if schedule is None or amount is None:
            if computed:  # recomputing under a priority without a target: no deadline
                setattr(row, name, None)
                setattr(row, f"{name}_computed", False)
            continue
        setattr(row, name, _add(schedule, row.created_at, amount))
        setattr(row, f"{name}_computed", True)
        rule = "recomputed" if recompute else "computed"

    status, was = row.status, before.status
    if was in DONE and status not in DONE:
        amount = minutes("resolution")
        if row.resolution_due_computed and schedule is not None and amount is not None:
            row.resolution_due = _add(schedule, now, amount)
            rule = "reopened"
        row.sla_paused_at = None
    if status is TicketStatus.PENDING:
        if row.sla_paused_at is None:
            row.sla_paused_at = now
    elif row.sla_paused_at is not None:
        if status in ACTIVE and schedule is not None:
            paused = schedule.between(row.sla_paused_at, now)
            if row.resolution_due_computed and row.resolution_due is not None and paused:
                row.resolution_due = _add(schedule, row.resolution_due, paused)
                rule = "resumed"
                data["paused_minutes"] = paused.total_seconds() / 60
        row.sla_paused_at = None

    if rule is None or (row.first_response_due, row.resolution_due) == start:
        return None
    row.updated_at = now
    event = TicketEvent(
        tenant_id=row.tenant_id,
        ticket_id=row.id,
        kind=TicketEventKind.DUE_DATES_SET,
        at=now,
        actor=actor,
        reason=reason,
        data={
            "rule": rule,
            "first_response_due": utc_text(row.first_response_due),
            "resolution_due": utc_text(row.resolution_due),
            "computed": [
                name
                for name in ("first_response_due", "resolution_due")
                if getattr(row, f"{name}_computed")
            ],
            **data,
        },
    )
    session.add(event)
    return event


def _add(schedule: BusinessSchedule, start: datetime, amount: timedelta) -> datetime:
    try:
        return schedule.add(start, amount)
    except NeverOpen:  # the policy's validation keeps targets well inside; say so if not
        raise InvalidInput.one(
            "priority", "the SLA target for this priority needs more than ten years of the schedule"
        ) from None
