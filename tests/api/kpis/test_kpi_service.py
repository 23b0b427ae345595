"""The KPI service on its own (:mod:`api.kpis.service`): hand-written history rows in, a report
out, without the HTTP layer. The definitions are in the module's docstring; each test pins one
of them at its edges (window bounds, a deadline met exactly on time, replayed status)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.db.engine import make_session_factory
from api.db.models import (
    Call,
    CallLink,
    CallNote,
    CallStatus,
    Capability,
    Team,
    Tenant,
    Ticket,
    TicketEvent,
)
from api.enums import TicketEventKind, TicketPriority, TicketStatus
from api.errors import InvalidInput
from api.kpis import service as kpis
from api.kpis.schemas import Interval
from api.kpis.service import Compliance, Durations
from tests.api.conftest import T0

H = timedelta(hours=1)
M = timedelta(minutes=1)


def test_durations_interpolate_between_ranks() -> None:
    d = Durations.of([10.0, 20.0, 30.0, 40.0])
    assert (d.count, d.p50, d.mean) == (4, 25.0, 25.0)
    assert d.p90 == pytest.approx(37.0)
    assert Durations.of([]) == Durations(0, None, None, None)
    assert Durations.of([7.0]) == Durations(1, 7.0, 7.0, 7.0)


def test_compliance_rate_is_null_without_deadlines() -> None:
    assert Compliance(0, 0).rate is None
    assert Compliance(3, 1).rate == 0.75


@pytest.mark.parametrize(
    ("due", "happened", "expected"),
    [
        (T0 + H, T0 + H, True),  # exactly on time is met
        (T0 + H, T0 + H + M, False),  # a minute late
        (T0 + H, None, False),  # never happened, deadline passed before the cutoff
        (T0 + 5 * H, None, None),  # still open at the cutoff: neither
        (T0 - M, T0 - 2 * M, None),  # met before the window: counted in that earlier window
        # Met is counted when the work happens, not when the deadline passes: a response at
        # T0 to a deadline at (or after) the window's end is met in this window.
        (T0 + 6 * H, T0, True),
        (T0 + 30 * H, T0 + H, True),
        (T0 + 30 * H, T0 - M, None),  # responded before the window
        (T0 - M, T0 + H, None),  # late, but the breach came (the deadline passed) before
        (T0 + 3 * H, T0 + 7 * H, None),  # late: breached when the deadline passed, after cutoff
        (T0 + H, T0 + 7 * H, False),  # late, the deadline passed in the window
        (None, T0, None),  # no deadline
    ],
)
def test_met_counts_when_the_work_happens_breached_when_the_deadline_passes(
    due: datetime | None, happened: datetime | None, expected: bool | None
) -> None:
    start, end, cutoff = T0, T0 + 6 * H, T0 + 2 * H
    assert kpis._deadline(due, happened, start, end, cutoff) is expected


moments = st.integers(-100, 100).map(lambda m: T0 + m * M)


@given(moments, st.none() | moments, moments, moments, moments, moments)
def test_each_deadline_is_counted_once_and_adjacent_windows_add_up(
    due: datetime, happened: datetime | None, a: datetime, mid: datetime, b: datetime, now: datetime
) -> None:
    a, mid, b = sorted((a, mid, b))
    whole = kpis._deadline(due, happened, a, b, now)
    parts = [kpis._deadline(due, happened, a, mid, now), kpis._deadline(due, happened, mid, b, now)]
    assert [p for p in parts if p is not None] == ([] if whole is None else [whole])
    if happened is not None and happened <= due and happened < now:
        # Met is known the moment the work happens: a window that holds it counts it as met.
        assert kpis._deadline(due, happened, happened, happened + M, now) is True


class History:
    """Rows of one tenant written straight to the database, as the services would."""

    def __init__(self, session: Session) -> None:
        self.session = session
        session.add(Tenant(id="t1", name="t1", created_at=T0 - 48 * H))
        session.flush()  # no relationship orders the inserts: the tenant first
        for team in ("support", "tier2"):
            session.add(Team(tenant_id="t1", id=team, created_at=T0, updated_at=T0))
        session.add(
            Capability(
                tenant_id="t1",
                id="cap",
                call_minutes=30,
                horizon_days=14,
                min_notice_minutes=0,
                buffer_minutes=0,
                granularity_minutes=30,
                reserve_share=0.0,
                created_at=T0,
                updated_at=T0,
            )
        )
        session.flush()
        self.calls = 0

    def ticket(
        self,
        ident: str,
        created: datetime,
        *,
        team: str = "support",
        status: TicketStatus = TicketStatus.NEW,
        first_response_due: datetime | None = None,
        resolution_due: datetime | None = None,
    ) -> None:
        self.session.add(
            Ticket(
                tenant_id="t1",
                id=ident,
                team_id=team,
                priority=TicketPriority.NORMAL,
                status=status,
                first_response_due=first_response_due,
                resolution_due=resolution_due,
                effort_minutes=30,
                created_at=created,
                received_at=created,
                updated_at=created,
            )
        )
        self.session.flush()
        self.event(ident, TicketEventKind.CREATED, created, to_status=TicketStatus.NEW.value)

    def event(
        self,
        ident: str,
        kind: TicketEventKind,
        at: datetime,
        data: dict[str, str] | None = None,
        **columns: str,
    ) -> None:
        self.session.add(
            TicketEvent(
                tenant_id="t1", ticket_id=ident, kind=kind, at=at, data=data or {}, **columns
            )
        )
        self.session.flush()

    def link(self, ident: str, ticket: str, created: datetime) -> None:
        self.session.add(
            CallLink(
                tenant_id="t1",
                id=ident,
                ticket_id=ticket,
                capability_id="cap",
                token_hash=ident.ljust(64, "0"),
                form_key="k",
                expires_at=created + 48 * H,
                reschedules_allowed=1,
                reschedules_used=0,
                timezone="UTC",
                locale="en",
                sequence=0,
                created_at=created,
                updated_at=created,
            )
        )
        self.session.flush()

    def call(
        self,
        ticket: str,
        booked: datetime,
        start: datetime,
        *,
        status: CallStatus = CallStatus.BOOKED,
        cancelled_at: datetime | None = None,
        at_risk_since: datetime | None = None,
        **closing: object,
    ) -> None:
        self.calls += 1
        self.session.add(
            Call(
                tenant_id="t1",
                id=f"call-{self.calls}",
                capability_id="cap",
                ticket_id=ticket,
                start_at=start,
                end_at=start + 30 * M,
                occupied_until=start + 30 * M,
                status=status,
                cancelled_at=cancelled_at,
                at_risk_since=at_risk_since,
                created_at=booked,
                updated_at=booked,
                **closing,
            )
        )
        self.session.flush()

    def status(self, ident: str, at: datetime, old: TicketStatus, new: TicketStatus) -> None:
        self.event(
            ident, TicketEventKind.STATUS_CHANGED, at, from_status=old.value, to_status=new.value
        )
        row = self.session.get(Ticket, ("t1", ident))
        assert row is not None
        row.status, row.updated_at = new, at


@pytest.fixture
def history(db: Engine) -> Iterator[History]:
    session = make_session_factory(db)()
    try:
        yield History(session)
    finally:
        session.rollback()
        session.close()


def report(
    h: History,
    *,
    team: str | None = None,
    start: datetime = T0,
    end: datetime = T0 + 8 * H,
    now: datetime = T0 + 8 * H,
    interval: Interval | None = None,
    timezone: str = "UTC",
) -> kpis.Report:
    return kpis.compute(
        session=h.session,
        tenant_id="t1",
        team=team,
        start=start,
        end=end,
        now=now,
        interval=interval,
        timezone=timezone,
    )


def test_first_response_resolution_and_backlog_from_replayed_history(history: History) -> None:
    h = history
    h.ticket("a", T0, first_response_due=T0 + H, resolution_due=T0 + 4 * H)
    h.event("a", TicketEventKind.ASSIGNED, T0 + 10 * M, to_agent="ana")
    h.status("a", T0 + 30 * M, TicketStatus.NEW, TicketStatus.OPEN)  # responded in 30 min
    h.status("a", T0 + 3 * H, TicketStatus.OPEN, TicketStatus.SOLVED)  # resolved in 180 min
    h.ticket("b", T0 + H, first_response_due=T0 + 2 * H)
    h.event("b", TicketEventKind.ASSIGNED, T0 + H, to_agent="ana")
    h.event("b", TicketEventKind.REASSIGNED, T0 + 2 * H, from_agent="ana", to_agent="ben")
    h.status("b", T0 + 3 * H, TicketStatus.NEW, TicketStatus.OPEN)  # 2 h late
    h.ticket("c", T0 + 2 * H)  # nobody holds it
    h.event("c", TicketEventKind.ESCALATED, T0 + 2 * H, from_team="support", to_team="tier2")

    r = report(h)
    assert (r.created, r.resolved) == (3, 1)
    assert r.first_response == Durations.of([30.0, 120.0])
    assert r.resolution == Durations.of([180.0])
    assert (r.backlog, r.open_unassigned) == (2, 1)  # b (held by ben) and c (held by nobody)
    assert (r.assignments, r.reassignments, r.escalations) == (2, 1, 1)
    assert r.sla_first_response == Compliance(met=1, breached=1)
    assert r.sla_resolution == Compliance(met=1, breached=0)
    assert r.sla_overall == Compliance(met=2, breached=1)


def test_backlog_is_the_status_as_of_the_window_end(history: History) -> None:
    """A ticket solved after the window still counts as backlog of the window."""
    h = history
    h.ticket("a", T0)
    h.status("a", T0 + 10 * H, TicketStatus.NEW, TicketStatus.SOLVED)
    r = report(h, end=T0 + 8 * H)
    assert (r.backlog, r.resolved, r.first_response.count) == (1, 0, 0)
    later = report(h, end=T0 + 12 * H, now=T0 + 12 * H)
    assert (later.backlog, later.resolved) == (0, 1)


def test_window_bounds_are_half_open(history: History) -> None:
    h = history
    h.ticket("at-start", T0)
    h.ticket("at-end", T0 + 8 * H)
    r = report(h, start=T0, end=T0 + 8 * H)
    assert r.created == 1  # created_at == end is outside [start, end)


def test_a_deadline_not_yet_due_at_now_is_neither_met_nor_breached(history: History) -> None:
    h = history
    h.ticket("a", T0, first_response_due=T0 + 3 * H)
    r = report(h, now=T0 + H)  # the window runs to T0+8h, but "now" is T0+1h
    assert r.sla_first_response == Compliance(0, 0)
    assert r.sla_first_response.rate is None
    assert report(h, now=T0 + 4 * H).sla_first_response == Compliance(0, 1)


def test_team_filter_and_unknown_team(history: History) -> None:
    h = history
    h.ticket("a", T0)
    h.ticket("b", T0, team="tier2")
    assert report(h, team="tier2").created == 1
    assert report(h, team=None).created == 2
    with pytest.raises(InvalidInput) as refused:
        report(h, team="nobody")
    assert refused.value.errors[0].field == "query.team"


def test_no_tickets_gives_an_empty_report(history: History) -> None:
    r = report(history)
    assert (r.created, r.backlog, r.first_response.count) == (0, 0, 0)
    assert r.sla_overall.rate is None


def test_a_burst_of_good_work_counts_as_met_at_once(history: History) -> None:
    """Ten tickets answered within minutes, deadlines a day away: 100 % met now, not 0 %."""
    h = history
    for i in range(10):
        h.ticket(f"t{i}", T0, first_response_due=T0 + 24 * H, resolution_due=T0 + 48 * H)
        h.status(f"t{i}", T0 + (i + 1) * M, TicketStatus.NEW, TicketStatus.SOLVED)
    r = report(h, end=T0 + H, now=T0 + H)
    assert r.sla_first_response == Compliance(10, 0)
    assert r.sla_resolution == Compliance(10, 0)
    # The day the deadlines pass counts nothing again: each deadline is counted once.
    assert report(h, start=T0 + H, end=T0 + 72 * H, now=T0 + 72 * H).sla_overall == Compliance(0, 0)


def test_reopens_and_the_resolution_after_the_last_reopen(history: History) -> None:
    h = history
    h.ticket("a", T0, resolution_due=T0 + 4 * H)
    h.status("a", T0 + H, TicketStatus.NEW, TicketStatus.SOLVED)  # on time, first resolution
    h.status("a", T0 + 2 * H, TicketStatus.SOLVED, TicketStatus.OPEN)  # reopened
    h.status("a", T0 + 3 * H, TicketStatus.OPEN, TicketStatus.CLOSED)
    h.status("a", T0 + 5 * H, TicketStatus.CLOSED, TicketStatus.PENDING)  # reopened again
    r = report(h)  # [T0, T0+8h), now T0+8h
    assert r.reopens == 2
    assert (r.resolved, r.resolution) == (1, Durations.of([60.0]))  # the first resolution
    # The resolution after the last reopen has not come; the T0+4h deadline passed: breached.
    assert r.sla_resolution == Compliance(0, 1)
    assert r.backlog == 1
    assert report(h, end=T0 + 4 * H, now=T0 + 8 * H).reopens == 1


def test_trend_buckets_are_local_days_and_add_up(history: History) -> None:
    """Berlin days over the 2026-03-29 clock change: the Sunday is 23 hours long."""
    h = history
    sat = datetime(2026, 3, 28, 12, tzinfo=UTC)  # 13:00 CET
    h.ticket("a", sat, first_response_due=sat + 2 * H)
    h.status("a", sat + H, TicketStatus.NEW, TicketStatus.OPEN)  # met, Saturday
    h.ticket("b", sat + 12 * H, first_response_due=sat + 13 * H)  # Sunday 01:00 CET
    h.status("b", sat + 20 * H, TicketStatus.NEW, TicketStatus.OPEN)  # late: Sunday
    h.status("a", sat + 50 * H, TicketStatus.OPEN, TicketStatus.SOLVED)  # Monday 16:00 CEST
    start = datetime(2026, 3, 28, 6, tzinfo=UTC)  # Saturday 07:00 CET
    end = datetime(2026, 3, 30, 12, tzinfo=UTC)  # Monday 14:00 CEST
    r = report(h, start=start, end=end, now=end, interval=Interval.DAY, timezone="Europe/Berlin")
    edges = [(b.start, b.end) for b in r.trend]
    assert edges == [
        (start, datetime(2026, 3, 28, 23, tzinfo=UTC)),  # clipped Saturday, to 00:00 CET
        (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)),  # 23 h
        (datetime(2026, 3, 29, 22, tzinfo=UTC), end),  # Monday from 00:00 CEST, clipped
    ]
    assert [b.created for b in r.trend] == [1, 1, 0]
    assert [b.sla_first_response for b in r.trend] == [
        Compliance(1, 0),
        Compliance(0, 1),
        Compliance(0, 0),
    ]
    assert [b.backlog for b in r.trend] == [1, 2, 2]  # a is solved after the window
    assert r.created == sum(b.created for b in r.trend) == 2
    assert r.sla_first_response == Compliance(1, 1)
    hours = report(h, start=start, end=start + 3 * H, now=end, interval=Interval.HOUR)
    assert [b.start for b in hours.trend] == [start, start + H, start + 2 * H]
    weeks = report(
        h, start=start, end=end, now=end, interval=Interval.WEEK, timezone="Europe/Berlin"
    )
    assert [(b.start, b.end) for b in weeks.trend] == [
        (start, datetime(2026, 3, 29, 22, tzinfo=UTC)),  # to Monday 00:00 CEST
        (datetime(2026, 3, 29, 22, tzinfo=UTC), end),
    ]


def test_too_many_buckets_are_refused(history: History) -> None:
    with pytest.raises(InvalidInput) as refused:
        report(history, start=T0, end=T0 + 1001 * H, interval=Interval.HOUR)
    assert refused.value.errors[0].field == "query.interval"


def test_calls_booked_at_risk_and_tickets_waiting_on_a_call(history: History) -> None:
    h = history
    h.ticket("a", T0)
    h.ticket("b", T0)
    h.ticket("c", T0, team="tier2")
    h.ticket("d", T0)
    # a: two calls, the earliest counts: booked T0+1h for T0+10h (540 min wait).
    h.call("a", T0 + H, T0 + 10 * H)
    h.call("a", T0 + 2 * H, T0 + 20 * H)
    # b: booked T0+2h for T0+5h, at risk since T0+3h; at now (T0+8h) it has started: neither
    # waiting nor at risk, but booked in the window.
    h.call("b", T0 + 2 * H, T0 + 5 * H, at_risk_since=T0 + 3 * H)
    # c (tier2): booked at T0+3h for T0+12h, at risk since T0+4h: waiting 540 min.
    h.call("c", T0 + 3 * H, T0 + 12 * H, at_risk_since=T0 + 4 * H)
    # d: a call cancelled at T0+6h (booked, not waiting), and d is solved anyway.
    h.call("d", T0 + H, T0 + 11 * H, status=CallStatus.CANCELLED, cancelled_at=T0 + 6 * H)
    h.call("d", T0 + 7 * H, T0 + 11 * H)
    h.status("d", T0 + 7 * H + 30 * M, TicketStatus.NEW, TicketStatus.SOLVED)
    # Booked before the window, starting after it: awaited, not booked in the window.
    h.call("b", T0 - H, T0 + 9 * H)

    r = report(h)  # [T0, T0+8h), now T0+8h
    assert r.calls_booked == 6
    assert r.calls_at_risk == 1  # c's
    # Waiting at T0+8h: a (540), b (booked T0-1h for T0+9h: 600), c (540); d is solved.
    assert r.waiting_on_call == Durations.of([540.0, 600.0, 540.0])
    support = report(h, team="support")
    assert (support.calls_booked, support.calls_at_risk) == (5, 0)
    assert support.waiting_on_call == Durations.of([540.0, 600.0])
    # At T0+4h (window end before now): five calls booked so far (not d's second); b's first
    # call has not started yet and is at risk (c's only from T0+4h: not before the moment);
    # d's cancelled call is still booked then, d not yet solved: d waits 600 min.
    early = report(h, end=T0 + 4 * H)
    assert early.calls_booked == 5 and early.calls_at_risk == 1
    assert early.waiting_on_call == Durations.of([540.0, 180.0, 540.0, 600.0])


def test_link_lead_time_reassignments_admission_wait_and_no_shows(history: History) -> None:
    h = history
    h.ticket("a", T0)
    h.ticket("b", T0)
    h.ticket("c", T0, team="tier2")
    h.link("l1", "a", T0 - 2 * H)
    h.link("l2", "b", T0 + H)
    h.link("l3", "c", T0)
    # a: booked through l1, then moved (the moved-away call does not count for lead time);
    # the new call starts 8 h after the link was made; admitted 5 minutes early (waits 0).
    h.call(
        "a",
        T0 + H,
        T0 + 5 * H,
        status=CallStatus.CANCELLED,
        cancelled_at=T0 + 2 * H,
        link_id="l1",
        cancel_reason=CallNote.RESCHEDULED,
    )
    h.call(
        "a",
        T0 + 2 * H,
        T0 + 6 * H,
        status=CallStatus.COMPLETED,
        link_id="l1",
        admitted_at=T0 + 6 * H - 5 * M,
        completed_at=T0 + 6 * H + 30 * M,
    )
    # b: through l2, 2 h ahead, admitted 10 minutes late; another call (no link) a no-show.
    h.call("b", T0 + 2 * H, T0 + 3 * H, link_id="l2", admitted_at=T0 + 3 * H + 10 * M)
    h.call("b", T0 + H, T0 + 4 * H, status=CallStatus.NO_SHOW, completed_at=T0 + 4 * H + 15 * M)
    # c (tier2): booked before the window (no lead time here), admitted 20 minutes late.
    h.call("c", T0 - H, T0 + 2 * H, link_id="l3", admitted_at=T0 + 2 * H + 20 * M)
    # a no-show marked after the window
    h.call("a", T0 + H, T0 + 7 * H + 30 * M, status=CallStatus.NO_SHOW, completed_at=T0 + 9 * H)
    rebound = {"action": "agent_rebound"}
    h.event("a", TicketEventKind.CALL_BOOKED, T0 + 3 * H, rebound)
    h.event("c", TicketEventKind.CALL_BOOKED, T0 + 4 * H, rebound)
    h.event("b", TicketEventKind.CALL_BOOKED, T0 - H, rebound)  # before the window
    h.event("b", TicketEventKind.CALL_BOOKED, T0 + 2 * H, {"action": "agent_bound"})

    r = report(h)  # [T0, T0+8h)
    assert r.link_lead_time == Durations.of([480.0, 120.0])
    assert r.admission_wait == Durations.of([0.0, 10.0, 20.0])
    assert (r.no_shows, r.call_reassignments) == (1, 2)
    support = report(h, team="support")
    assert support.link_lead_time == Durations.of([480.0, 120.0])
    assert support.admission_wait == Durations.of([0.0, 10.0])
    assert (support.no_shows, support.call_reassignments) == (1, 1)
    later = report(h, start=T0 + 3 * H)  # [T0+3h, T0+8h): nothing booked in it
    assert later.link_lead_time == Durations.of([])
    assert later.admission_wait == Durations.of([0.0, 10.0])
    assert (later.no_shows, later.call_reassignments) == (1, 2)
    assert report(h, start=T0 + 8 * H, end=T0 + 10 * H, now=T0 + 10 * H).no_shows == 1
    # Trend buckets add up to the window.
    hourly = report(h, interval=Interval.HOUR)
    assert sum(b.no_shows for b in hourly.trend) == 1
    assert sum(b.call_reassignments for b in hourly.trend) == 2
    assert sum(b.admission_wait.count for b in hourly.trend) == 3
    assert sum(b.link_lead_time.count for b in hourly.trend) == 2
