"""/v1/kpis: a team's (or the tenant's) KPIs over a time window, from ticket history."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api import mapping
from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import Id, TimestampIn, TimeZone
from api.errors import InvalidInput
from api.http.deps import NowDep, ReadAuth, SessionDep
from api.kpis import service as kpis
from api.kpis.schemas import Interval, KpiOut

router = APIRouter(prefix="/v1/kpis", tags=["kpis"], responses=PROBLEM_RESPONSES)

DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=366)


@router.get(
    "",
    summary=(
        "KPIs: first response and resolution times, backlog, SLA compliance, reassignments, "
        "reopens, calls (booked, at risk, link lead time, reassigned, admission wait, "
        "no-shows) and tickets waiting on a call, with trends"
    ),
    response_model_by_alias=True,
)
def read_kpis(
    session: SessionDep,
    auth: ReadAuth,
    now: NowDep,
    team: Annotated[Id | None, Query(description="Only this team (default: all)")] = None,
    start: Annotated[
        TimestampIn | None, Query(alias="from", description="Window start (default: to - 7 days)")
    ] = None,
    end: Annotated[
        TimestampIn | None, Query(alias="to", description="Window end (default: now)")
    ] = None,
    interval: Annotated[
        Interval | None,
        Query(description="Also answer the figures per bucket of this size (default: no trend)"),
    ] = None,
    timezone: Annotated[
        TimeZone,
        Query(description="The IANA time zone the trend buckets are cut in (default UTC)"),
    ] = "UTC",
) -> KpiOut:
    """A team's (or the tenant's) KPIs over a window, each defined in the response schema."""
    end = end or now
    try:
        start = start or end - DEFAULT_WINDOW
    except OverflowError:
        raise InvalidInput.one("query.to", "too early to have a week before it") from None
    if start >= end:
        raise InvalidInput.one("query.from", "must be before to")
    if end - start > MAX_WINDOW:
        raise InvalidInput.one("query.from", "the window may span at most 366 days")
    report = kpis.compute(
        session=session,
        tenant_id=auth.tenant_id,
        team=team,
        start=start,
        end=end,
        now=now,
        interval=interval,
        timezone=timezone,
    )
    return KpiOut.model_validate(mapping.kpis_json(report))
