"""KPIs of a team (or the whole tenant) over a time window, computed from ticket history.

Definitions (minutes; a ticket belongs to the team that holds it now):

- **first response**: the first status change out of ``new`` (the agent opened, answered or
  solved it); its time is measured from the ticket's ``created_at``. Counted for tickets whose
  first response falls in ``[from, to)``.
- **resolution**: the first change to ``solved`` or ``closed``, from ``created_at``; counted for
  tickets resolved in the window.
- Percentiles interpolate linearly between ranks (``numpy.percentile``'s default), so p50 of
  10, 20, 30, 40 is 25.
- **backlog** at ``to``: tickets created before ``to`` and not solved/closed as of ``to`` (their
  status replayed from history); **open unassigned**: those of them no agent held at ``to``.
- **SLA compliance** per deadline (first response, resolution), for tickets whose deadline falls
  in the window: *met* when the event came at or before the deadline, *breached* when it came
  later or had not come by the deadline and the deadline has passed (by ``min(to, now)``);
  deadlines still open count as neither. Compliance = met / (met + breached), null if none.
- **assignments / reassignments / escalations**: history events of those kinds in the window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.common import service as common
from api.db.models import Ticket, TicketEvent
from api.enums import TicketEventKind, TicketStatus

DONE = {TicketStatus.SOLVED.value, TicketStatus.CLOSED.value}
OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    p50: float | None
    p90: float | None
    mean: float | None

    @classmethod
    def of(cls, minutes: list[float]) -> Durations:
        if not minutes:
            return cls(0, None, None, None)
        values = np.asarray(minutes, dtype=np.float64)
        return cls(
            count=len(minutes),
            p50=float(np.percentile(values, 50)),
            p90=float(np.percentile(values, 90)),
            mean=float(values.mean()),
        )


@dataclass(frozen=True, slots=True)
class Compliance:
    met: int
    breached: int

    @property
    def rate(self) -> float | None:
        total = self.met + self.breached
        return None if total == 0 else self.met / total


@dataclass
class Report:
    team: str | None
    start: datetime
    end: datetime
    created: int = 0
    resolved: int = 0
    first_response: Durations = field(default_factory=lambda: Durations.of([]))
    resolution: Durations = field(default_factory=lambda: Durations.of([]))
    backlog: int = 0
    open_unassigned: int = 0
    sla_first_response: Compliance = field(default_factory=lambda: Compliance(0, 0))
    sla_resolution: Compliance = field(default_factory=lambda: Compliance(0, 0))
    assignments: int = 0
    reassignments: int = 0
    escalations: int = 0

    @property
    def sla_overall(self) -> Compliance:
        fr, res = self.sla_first_response, self.sla_resolution
        return Compliance(fr.met + res.met, fr.breached + res.breached)


def _minutes(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 60.0


def _deadline(
    due: datetime | None,
    happened: datetime | None,
    start: datetime,
    end: datetime,
    cutoff: datetime,
) -> bool | None:
    """True met, False breached, None not counted (no deadline in the window, or still open)."""
    if due is None or not (start <= due < end):
        return None
    if happened is not None and happened <= due:
        return True
    if happened is not None or due < cutoff:
        return False
    return None


def compute(
    *,
    session: Session,
    tenant_id: str,
    team: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Report:
    if team is not None:
        common.raise_if(common.unknown_team(session, tenant_id, team, "query.team"))
    # Tickets that can matter: created before the window ends, and either still held open or
    # touched since the window began (anything finished and untouched before it is irrelevant).
    stmt = select(Ticket).where(
        Ticket.tenant_id == tenant_id,
        Ticket.created_at < end,
        or_(Ticket.status.in_(OPEN_STATUSES), Ticket.updated_at >= start),
    )
    if team is not None:
        stmt = stmt.where(Ticket.team_id == team)
    tickets = {t.id: t for t in session.scalars(stmt)}
    report = Report(team=team, start=start, end=end)
    if not tickets:
        return report
    by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
    events = session.scalars(
        select(TicketEvent)
        .where(
            TicketEvent.tenant_id == tenant_id,
            TicketEvent.ticket_id.in_(list(tickets)),
            TicketEvent.at < end,
        )
        .order_by(TicketEvent.seq)
    )
    for e in events:
        by_ticket[e.ticket_id].append(e)

    cutoff = min(end, now)
    fr_minutes: list[float] = []
    res_minutes: list[float] = []
    fr_met = fr_breached = res_met = res_breached = 0
    for tid, ticket in tickets.items():
        history = by_ticket.get(tid, [])
        status: str | None = None
        agent: str | None = None
        first_response: datetime | None = None
        resolved: datetime | None = None
        for e in history:
            in_window = start <= e.at < end
            if e.kind is TicketEventKind.CREATED:
                status = e.to_status
            elif e.kind is TicketEventKind.STATUS_CHANGED:
                if first_response is None and e.from_status == TicketStatus.NEW.value:
                    first_response = e.at
                if resolved is None and e.to_status in DONE:
                    resolved = e.at
                status = e.to_status
            elif e.kind in (TicketEventKind.ASSIGNED, TicketEventKind.REASSIGNED):
                agent = e.to_agent
                if in_window:
                    if e.kind is TicketEventKind.ASSIGNED:
                        report.assignments += 1
                    else:
                        report.reassignments += 1
            elif e.kind is TicketEventKind.ESCALATED and in_window:
                report.escalations += 1
        if start <= ticket.created_at < end:
            report.created += 1
        if first_response is not None and start <= first_response < end:
            fr_minutes.append(_minutes(first_response, ticket.created_at))
        if resolved is not None and start <= resolved < end:
            report.resolved += 1
            res_minutes.append(_minutes(resolved, ticket.created_at))
        if status is not None and status not in DONE:
            report.backlog += 1
            if agent is None:
                report.open_unassigned += 1
        fr = _deadline(ticket.first_response_due, first_response, start, end, cutoff)
        fr_met += fr is True
        fr_breached += fr is False
        res = _deadline(ticket.resolution_due, resolved, start, end, cutoff)
        res_met += res is True
        res_breached += res is False

    report.first_response = Durations.of(fr_minutes)
    report.resolution = Durations.of(res_minutes)
    report.sla_first_response = Compliance(fr_met, fr_breached)
    report.sla_resolution = Compliance(res_met, res_breached)
    return report
