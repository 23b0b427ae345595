"""The KPI service on its own (:mod:`api.kpis.service`): hand-written history rows in, a report
out, without the HTTP layer. The definitions are in the module's docstring; each test pins one
of them at its edges (window bounds, a deadline met exactly on time, replayed status)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.db.engine import make_session_factory
from api.db.models import Team, Tenant, Ticket, TicketEvent
from api.enums import TicketEventKind, TicketPriority, TicketStatus
from api.errors import InvalidInput
from api.kpis import service as kpis
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
        (T0 - M, T0 - 2 * M, None),  # deadline before the window
        (T0 + 6 * H, T0, None),  # deadline at the window's end: outside [start, end)
        (None, T0, None),  # no deadline
    ],
)
def test_a_deadline_counts_only_inside_the_window(
    due: datetime | None, happened: datetime | None, expected: bool | None
) -> None:
    start, end, cutoff = T0, T0 + 6 * H, T0 + 2 * H
    assert kpis._deadline(due, happened, start, end, cutoff) is expected


class History:
    """Rows of one tenant written straight to the database, as the services would."""

    def __init__(self, session: Session) -> None:
        self.session = session
        session.add(Tenant(id="t1", name="t1", created_at=T0 - 48 * H))
        session.flush()  # no relationship orders the inserts: the tenant first
        for team in ("support", "tier2"):
            session.add(Team(tenant_id="t1", id=team, created_at=T0, updated_at=T0))
        session.flush()

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

    def event(self, ident: str, kind: TicketEventKind, at: datetime, **columns: str) -> None:
        self.session.add(TicketEvent(tenant_id="t1", ticket_id=ident, kind=kind, at=at, **columns))
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
) -> kpis.Report:
    return kpis.compute(session=h.session, tenant_id="t1", team=team, start=start, end=end, now=now)


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
