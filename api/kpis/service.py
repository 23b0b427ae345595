"""KPIs of a team (or the whole tenant) over a time window, computed from ticket history.

Definitions (minutes; a ticket belongs to the team that holds it now). Each figure is counted
in the window (or trend bucket) ``[from, to)`` in which its moment falls, so adjacent windows
add up and nothing is counted twice:

- **first response**: the first status change out of ``new`` (the agent opened, answered or
  solved it); its time is measured from the ticket's ``created_at``. Counted for tickets whose
  first response falls in the window.
- **resolution**: the first change to ``solved`` or ``closed``, from ``created_at``; counted for
  tickets resolved in the window.
- Percentiles interpolate linearly between ranks (``numpy.percentile``'s default), so p50 of
  10, 20, 30, 40 is 25.
- **backlog** at ``to``: tickets created before ``to`` and not solved/closed as of ``to`` (their
  status replayed from history); **open unassigned**: those of them no agent held at ``to``.
- **SLA compliance** per deadline (first response, resolution): *met* is counted when the
  response or resolution happens, at or before its deadline (so a burst of good work shows at
  once, not when the deadlines pass); *breached* is counted when the deadline passes without it
  (the deadline in the window and before ``min(to, now)``), whether it comes later or never. The
  resolution that counts for the SLA is the one after the last reopen (a reopen restarts that
  clock). Compliance = met / (met + breached), null if none.
- **assignments / reassignments / escalations**: history events of those kinds in the window.
- **reopens**: status changes from ``solved``/``closed`` back to ``new``/``open``/``pending``.
- **calls booked**: live calls booked (``/v1/bookings``) in the window for the team's tickets,
  whatever became of them later. **calls at risk**: calls still booked, not started at
  ``min(to, now)``, booked before it, that no agent can cover (``at_risk_since`` set before it).
- **waiting on a live call** at ``min(to, now)``: tickets not solved/closed with a call booked
  before that moment, not cancelled by it, that starts after it. Their **wait** is, per ticket,
  from the booking to the start of its earliest such call (what the customer is told to wait).
- **link lead time**: for each call booked in the window through a call link (and not moved
  later: a reschedule counts the new call only), from the link's creation to the call's start
  (how far ahead customers book once offered a link).
- **call reassignments**: ``agent_rebound`` steps in the window (a bound call moved to another
  agent after a shift, status or calendar change).
- **admission wait**: for each call whose customer was admitted in the window, from the call's
  start to the admission; admitted before the start counts as 0 (the agent was ready).
- **no-shows**: calls marked no-show by their agent in the window (``completed_at``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.common import service as common
from api.db.models import Call, CallLink, CallNote, CallStatus, Ticket, TicketEvent
from api.enums import TicketEventKind, TicketStatus
from api.errors import InvalidInput
from api.kpis.schemas import Interval

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


MAX_BUCKETS = 1000


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
    reopens: int = 0
    calls_booked: int = 0
    calls_at_risk: int = 0
    waiting_on_call: Durations = field(default_factory=lambda: Durations.of([]))
    link_lead_time: Durations = field(default_factory=lambda: Durations.of([]))
    call_reassignments: int = 0
    admission_wait: Durations = field(default_factory=lambda: Durations.of([]))
    no_shows: int = 0
    timezone: str = "UTC"
    interval: Interval | None = None
    trend: list[Report] = field(default_factory=list)

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
    """True: met in ``[start, end)`` (the event came then, on time). False: breached in it (the
    deadline passed then, before ``cutoff``, without the event). None: not counted here."""
    if due is None:
        return None
    if happened is not None and happened <= due:
        return True if start <= happened < end else None
    if start <= due < min(end, cutoff):
        return False
    return None


@dataclass
class _Facts:
    """One ticket's history, replayed once for every window and bucket."""

    ticket: Ticket
    first_response: datetime | None = None
    resolved: datetime | None = None  # the first resolution
    sla_resolved: datetime | None = None  # the resolution after the last reopen
    statuses: list[tuple[datetime, str | None]] = field(default_factory=list)
    agents: list[tuple[datetime, str | None]] = field(default_factory=list)
    counted: list[tuple[datetime, str]] = field(default_factory=list)  # assignment, ...

    @classmethod
    def of(cls, ticket: Ticket, history: list[TicketEvent]) -> _Facts:
        f = cls(ticket)
        for e in history:
            if e.kind is TicketEventKind.CREATED:
                f.statuses.append((e.at, e.to_status))
            elif e.kind is TicketEventKind.STATUS_CHANGED:
                if f.first_response is None and e.from_status == TicketStatus.NEW.value:
                    f.first_response = e.at
                if e.to_status in DONE:
                    f.resolved = f.resolved or e.at
                    f.sla_resolved = f.sla_resolved or e.at
                elif e.from_status in DONE:
                    f.counted.append((e.at, "reopens"))
                    f.sla_resolved = None
                f.statuses.append((e.at, e.to_status))
            elif e.kind in (TicketEventKind.ASSIGNED, TicketEventKind.REASSIGNED):
                f.agents.append((e.at, e.to_agent))
                counter = "assignments" if e.kind is TicketEventKind.ASSIGNED else "reassignments"
                f.counted.append((e.at, counter))
            elif e.kind is TicketEventKind.ESCALATED:
                f.counted.append((e.at, "escalations"))
            elif (
                e.kind is TicketEventKind.CALL_BOOKED
                and (e.data or {}).get("action") == "agent_rebound"
            ):
                f.counted.append((e.at, "call_reassignments"))
        return f

    @staticmethod
    def as_of(changes: list[tuple[datetime, str | None]], moment: datetime) -> str | None:
        """The value set by the last change before ``moment`` (None before the first)."""
        i = bisect_left([at for at, _ in changes], moment)
        return changes[i - 1][1] if i else None


def _tally(
    report: Report,
    facts: list[_Facts],
    calls: list[Call],
    now: datetime,
    links: dict[str, datetime] | None = None,
) -> None:
    """Count ``report``'s window; ``links`` is each call link's creation time by id."""
    start, end = report.start, report.end
    cutoff = min(end, now)
    fr_minutes: list[float] = []
    res_minutes: list[float] = []
    fr_met = fr_breached = res_met = res_breached = 0
    done_at_cutoff: set[str] = set()
    for f in facts:
        ticket = f.ticket
        if start <= ticket.created_at < end:
            report.created += 1
        if f.first_response is not None and start <= f.first_response < end:
            fr_minutes.append(_minutes(f.first_response, ticket.created_at))
        if f.resolved is not None and start <= f.resolved < end:
            report.resolved += 1
            res_minutes.append(_minutes(f.resolved, ticket.created_at))
        status = f.as_of(f.statuses, end)
        if status is not None and status not in DONE:
            report.backlog += 1
            if f.as_of(f.agents, end) is None:
                report.open_unassigned += 1
        if f.as_of(f.statuses, cutoff) in DONE:
            done_at_cutoff.add(ticket.id)
        for at, name in f.counted:
            if start <= at < end:
                setattr(report, name, getattr(report, name) + 1)
        fr = _deadline(ticket.first_response_due, f.first_response, start, end, now)
        fr_met += fr is True
        fr_breached += fr is False
        res = _deadline(ticket.resolution_due, f.sla_resolved, start, end, now)
        res_met += res is True
        res_breached += res is False
    report.first_response = Durations.of(fr_minutes)
    report.resolution = Durations.of(res_minutes)
    report.sla_first_response = Compliance(fr_met, fr_breached)
    report.sla_resolution = Compliance(res_met, res_breached)

    known = {f.ticket.id for f in facts}
    earliest: dict[str, tuple[datetime, float]] = {}  # ticket -> (call start, wait)
    lead: list[float] = []
    admission: list[float] = []
    links = links or {}
    for call in calls:
        if start <= call.created_at < end:
            report.calls_booked += 1
            linked = links.get(call.link_id) if call.link_id is not None else None
            if linked is not None and call.cancel_reason is not CallNote.RESCHEDULED:
                lead.append(_minutes(call.start_at, linked))
        if call.admitted_at is not None and start <= call.admitted_at < end:
            admission.append(max(0.0, _minutes(call.admitted_at, call.start_at)))
        if (
            call.status is CallStatus.NO_SHOW
            and call.completed_at is not None
            and start <= call.completed_at < end
        ):
            report.no_shows += 1
        cancelled = call.status is CallStatus.CANCELLED and (
            call.cancelled_at is None or call.cancelled_at <= cutoff
        )
        if cancelled or not (call.created_at < cutoff < call.start_at):
            continue
        if (
            call.status is CallStatus.BOOKED
            and call.at_risk_since is not None
            and call.at_risk_since < cutoff
        ):
            report.calls_at_risk += 1
        if call.ticket_id in known and call.ticket_id not in done_at_cutoff:
            seen = earliest.get(call.ticket_id)
            if seen is None or call.start_at < seen[0]:
                earliest[call.ticket_id] = (call.start_at, _minutes(call.start_at, call.created_at))
    report.waiting_on_call = Durations.of([wait for _, wait in earliest.values()])
    report.link_lead_time = Durations.of(lead)
    report.admission_wait = Durations.of(admission)


def buckets(
    start: datetime, end: datetime, interval: Interval, timezone: str
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at local hour, midnight or Monday-midnight boundaries of
    ``timezone`` (the first and last buckets clipped to the window)."""
    zone = ZoneInfo(timezone)

    def floor(t: datetime) -> datetime:
        local = t.astimezone(zone)
        if interval is Interval.HOUR:
            return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        day = local.date()
        if interval is Interval.WEEK:
            day -= timedelta(days=day.weekday())
        return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)

    step = {Interval.HOUR: timedelta(hours=1), Interval.DAY: timedelta(days=1)}.get(
        interval, timedelta(days=7)
    )
    out: list[tuple[datetime, datetime]] = []
    edge = start
    while edge < end:
        # The next boundary: the floor of a moment a bit past this bucket's nominal length
        # (days are 23 to 25 hours long across clock changes; hours may be 30 minutes).
        nxt = floor(floor(edge) + step + step / 8)
        if nxt <= edge:
            nxt = floor(edge) + step
        nxt = min(nxt, end)
        out.append((edge, nxt))
        if len(out) > MAX_BUCKETS:
            raise InvalidInput.one(
                "query.interval",
                f"the window would make more than {MAX_BUCKETS} buckets: widen the interval "
                "or narrow the window",
            )
        edge = nxt
    return out


def compute(
    *,
    session: Session,
    tenant_id: str,
    team: str | None,
    start: datetime,
    end: datetime,
    now: datetime,
    interval: Interval | None = None,
    timezone: str = "UTC",
) -> Report:
    if team is not None:
        common.raise_if(common.unknown_team(session, tenant_id, team, "query.team"))
    cuts = buckets(start, end, interval, timezone) if interval is not None else []
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
    by_ticket: dict[str, list[TicketEvent]] = defaultdict(list)
    if tickets:
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
    facts = [_Facts.of(t, by_ticket.get(tid, [])) for tid, t in tickets.items()]

    # Calls that can matter: booked before the window ends, and either booked in it, starting
    # after it began (still awaited at some moment of it), under way when it began (admitted
    # in it) or closed by their agent in it (a no-show).
    call_stmt = select(Call).where(
        Call.tenant_id == tenant_id,
        Call.created_at < end,
        or_(Call.created_at >= start, Call.end_at > start, Call.completed_at >= start),
    )
    if team is not None:
        call_stmt = call_stmt.join(
            Ticket, (Ticket.tenant_id == Call.tenant_id) & (Ticket.id == Call.ticket_id)
        ).where(Ticket.team_id == team)
    calls = list(session.scalars(call_stmt))
    link_ids = sorted({c.link_id for c in calls if c.link_id is not None})
    links: dict[str, datetime] = {}
    if link_ids:
        found = session.execute(
            select(CallLink.id, CallLink.created_at).where(
                CallLink.tenant_id == tenant_id, CallLink.id.in_(link_ids)
            )
        )
        links = {link_id: created for link_id, created in found}

    report = Report(team=team, start=start, end=end, timezone=timezone, interval=interval)
    _tally(report, facts, calls, now, links)
    for a, b in cuts:
        bucket = Report(team=team, start=a, end=b, timezone=timezone, interval=interval)
        _tally(bucket, facts, calls, now, links)
        report.trend.append(bucket)
    return report
