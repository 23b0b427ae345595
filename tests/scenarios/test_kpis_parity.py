"""The simulation's KPIs and the service's ``/v1/kpis`` agree: a run's tickets and moves are
replayed as the ticket history the service would have recorded (created, status changes out of
``new`` and to ``solved``, assigned / reassigned), counted by the service's own tally, and
compared bucket by bucket with :func:`scenarios.kpis.measure`.

Abandoned tickets are left out: the service has no "customer hung up" status (closing a ``new``
ticket there would count as a first response), the simulation counts them apart."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import pandas as pd
import pytest

from api.db.models import Ticket, TicketEvent
from api.enums import TicketEventKind
from api.kpis.service import Report, _Facts, _tally
from scenarios.kpis import measure
from scenarios.results import RunResult
from tests.scenarios.runs import hand_run, synthetic_run


def _moment(value: object) -> datetime | None:
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()  # type: ignore[arg-type]


def _history(run: RunResult) -> list[_Facts]:
    moves = {tid: rows for tid, rows in run.moves.groupby("ticket", sort=False)}
    facts = []
    for t in run.tickets.itertuples(index=False):
        assert pd.isna(t.abandoned_at)
        ticket = Ticket(
            id=t.id,
            created_at=_moment(t.created_at),
            first_response_due=_moment(t.first_response_due),
            resolution_due=_moment(t.resolution_due),
        )
        events: list[tuple[datetime, int, TicketEvent]] = [
            (ticket.created_at, 0, TicketEvent(kind=TicketEventKind.CREATED,
                                               at=ticket.created_at, to_status="new")),
        ]  # fmt: skip
        first, resolved = _moment(t.first_response_at), _moment(t.resolved_at)
        if first is not None:
            events.append((first, 2, TicketEvent(kind=TicketEventKind.STATUS_CHANGED, at=first,
                                                 from_status="new", to_status="open")))  # fmt: skip
        if resolved is not None:
            events.append((resolved, 3, TicketEvent(kind=TicketEventKind.STATUS_CHANGED,
                           at=resolved, from_status="open", to_status="solved")))  # fmt: skip
        for m in moves.get(t.id, pd.DataFrame()).itertuples(index=False):
            at = _moment(m.at)
            assert at is not None
            kind = TicketEventKind.ASSIGNED if pd.isna(m.from_agent) else TicketEventKind.REASSIGNED
            to_agent = None if pd.isna(m.to_agent) else m.to_agent
            events.append((at, 1, TicketEvent(kind=kind, at=at, from_agent=m.from_agent,
                                              to_agent=to_agent, data={})))  # fmt: skip
        events.sort(key=lambda e: (e[0], e[1]))
        facts.append(_Facts.of(ticket, [e for _, _, e in events]))
    return facts


def _same(ours: float, theirs: float | int | None) -> bool:
    if theirs is None:
        return math.isnan(ours)
    return ours == pytest.approx(theirs, abs=1e-9)


def _check(run: RunResult) -> int:
    facts = _history(run)
    kpis = measure(run)
    checked = 0
    for row in kpis.intervals.itertuples(index=False):
        start, end = row.interval_start.to_pydatetime(), row.interval_end.to_pydatetime()
        r = Report(team=None, start=start, end=end)
        _tally(r, facts, [], run.end)
        pairs = {
            "tickets_created": r.created,
            "tickets_resolved": r.resolved,
            "first_response_minutes_p50": r.first_response.p50,
            "first_response_minutes_p90": r.first_response.p90,
            "first_response_minutes_mean": r.first_response.mean,
            "resolution_minutes_p50": r.resolution.p50,
            "resolution_minutes_p90": r.resolution.p90,
            "resolution_minutes_mean": r.resolution.mean,
            "backlog": r.backlog,
            "open_unassigned": r.open_unassigned,
            "sla_first_response_met": r.sla_first_response.met,
            "sla_first_response_breached": r.sla_first_response.breached,
            "sla_resolution_met": r.sla_resolution.met,
            "sla_resolution_breached": r.sla_resolution.breached,
            "sla_first_response_compliance": r.sla_first_response.rate,
            "sla_resolution_compliance": r.sla_resolution.rate,
            "sla_overall_compliance": r.sla_overall.rate,
            "assignments": r.assignments,
            "reassignments": r.reassignments,
        }
        for name, theirs in pairs.items():
            assert _same(getattr(row, name), theirs), (start, name, getattr(row, name), theirs)
            checked += 1
    return checked


def test_hand_run_counts_as_the_service_counts() -> None:
    run = hand_run()
    run = replace(run, tickets=run.tickets[run.tickets["id"] != "T4"])
    assert _check(run) == 4 * 19


def test_a_busy_run_counts_as_the_service_counts() -> None:
    run = synthetic_run("w", 0, agents=3, load=1.5, interval_minutes=30)
    assert len(run.tickets) > 100
    _check(run)
