"""The demo tenant of ``switchboard serve --demo``: its rota is laid around the current time, so
the README's first curl (assign DEMO-1) names an agent at any hour, weekday or clock change; a
second start reuses it with fresh keys (the previous demo keys revoked) and a fresh rota."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from api.db.engine import make_session_factory
from api.db.models import ApiKey, BusyInterval, Shift, Tenant
from api.keys import tenants
from api.org.intervals.schemas import BusyCreate
from api.org.intervals.service import busy
from api.seed import (
    DEMO_DAYS,
    DEMO_TENANT_NAME,
    ROTA_GROUPS,
    TEAMS,
    members,
    open_demo,
    rota_shifts,
    seed_demo,
)
from api.settings import Settings
from tests.api.conftest import As, FakeClock

# --- the rota, for every moment and zone ---------------------------------------------------

ZONES = [
    *(zone for _, _, zone in TEAMS),
    "Australia/Lord_Howe",  # a half-hour clock change
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kolkata",  # +05:30, no change
    "UTC",
]
MOMENTS = st.datetimes(
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
    max_value=datetime(2032, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(now=MOMENTS, zone=st.sampled_from(ZONES))
@settings(max_examples=300, deadline=None)
def test_the_rota_covers_every_moment_from_now_on_for_the_demo_days(
    now: datetime, zone: str
) -> None:
    groups = [rota_shifts(now, zone, g) for g in range(ROTA_GROUPS)]
    for laid in groups:
        assert len(laid) == DEMO_DAYS
        for start, end in laid:
            assert start.tzinfo is UTC and end.tzinfo is UTC
            # 9 wall-clock hours: 8 to 10 real hours across a clock change (Lord Howe: 8.5-9.5).
            assert timedelta(hours=8) <= end - start <= timedelta(hours=10)
        for (_, end), (start, _) in pairwise(laid):
            assert end <= start  # one agent's shifts never overlap
    first_start, first_end = groups[0][0]
    assert first_start <= now < first_end  # group 0 is on shift now...
    # ...having started around now: at most 2 wall-clock hours ago, which is 3 real hours when
    # the clocks fell back in between (found by hypothesis: Europe, 27 Oct 2024, 01:00 UTC).
    assert now - first_start <= timedelta(hours=3)
    # Around the clock: every moment until nearly the last day's end is in some shift.
    edges = sorted({now, *(t for laid in groups for s in laid for t in s)})
    horizon = now + timedelta(days=DEMO_DAYS) - timedelta(hours=2)
    for moment in (t for t in edges if t < horizon):
        assert any(s <= moment < e for laid in groups for s, e in laid), moment


def test_the_rota_is_laid_in_local_wall_clock_time_across_a_clock_change() -> None:
    # Saturday evening in Berlin; the clocks go forward that night (29 March 2026).
    now = datetime(2026, 3, 28, 18, 20, tzinfo=UTC)  # 19:20 CET
    laid = rota_shifts(now, "Europe/Berlin", 0)
    assert [s.isoformat() for s, _ in laid] == [
        "2026-03-28T17:00:00+00:00",  # 18:00 CET
        "2026-03-29T16:00:00+00:00",  # 18:00 CEST: the same wall-clock time, an hour earlier
        "2026-03-30T16:00:00+00:00",
    ]


def test_the_rota_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rota_shifts(datetime(2026, 3, 2, 8, 0), "UTC", 0)  # noqa: DTZ001


# --- the README's first curl at any hour ---------------------------------------------------

HOURS = {
    "monday-morning": datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    "saturday-night": datetime(2026, 3, 7, 2, 40, tzinfo=UTC),  # 03:40 Berlin, 21:40 NY
    "sunday-midnight": datetime(2026, 3, 1, 23, 55, tzinfo=UTC),
    "new-york-springs-forward": datetime(2026, 3, 8, 7, 10, tzinfo=UTC),  # 03:10 EDT
    "berlin-springs-forward": datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 03:30 CEST
    "berlin-repeats-an-hour": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST
    "berlin-repeated-hour-again": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 CET
    "new-york-falls-back": datetime(2026, 11, 1, 6, 15, tzinfo=UTC),  # 01:15 EST, again
    "christmas-eve-late": datetime(2026, 12, 24, 22, 5, tzinfo=UTC),
}


def _on_shift(engine: Engine, tenant_id: str, at: datetime) -> dict[str, set[str]]:
    """Team -> the demo agents on shift at ``at``."""
    team_of = {m.agent_id: m.team for m in members()}
    with Session(engine) as session:
        rows = session.scalars(
            select(Shift.agent_id).where(
                Shift.tenant_id == tenant_id, Shift.start_at <= at, Shift.end_at > at
            )
        ).all()
    out: dict[str, set[str]] = defaultdict(set)
    for agent in rows:
        out[team_of[agent]].add(agent)
    return out


@pytest.mark.parametrize("now", HOURS.values(), ids=HOURS.keys())
def test_the_first_curl_names_an_agent_at_any_hour(
    now: datetime, db: Engine, settings: Settings, clock: FakeClock, client: TestClient
) -> None:
    clock.now = now
    demo = seed_demo(settings, now=now)
    on_shift = _on_shift(db, demo.tenant_id, now)
    assert set(on_shift) == {team for team, _, _ in TEAMS}  # both teams, around the clock
    helpdesk = As(client, demo.helpdesk_key)
    r = helpdesk.post("/v1/tickets/DEMO-1/assign")
    assert r.status_code == 200, r.text
    assert r.json()["agent"] in on_shift["emea"] | on_shift["amer"], r.json()
    # DEMO-1 belongs to EMEA: someone of EMEA on shift now can take it, so it is named by a
    # team-only scope too.
    fit = [
        agent
        for agent in on_shift["emea"]
        if (skills := helpdesk.get(f"/v1/agents/{agent}").json()["skills"]).get("billing", 0) >= 2
        and skills.get("lang:en", 0) >= 3
    ]
    assert fit, on_shift
    # Still so near the end of the demo days, for the team the whole rota covers.
    later = now + timedelta(days=DEMO_DAYS) - timedelta(hours=3)
    assert set(_on_shift(db, demo.tenant_id, later)) == {team for team, _, _ in TEAMS}


# --- a second start reuses it --------------------------------------------------------------


def _count(engine: Engine, model: type[Tenant] | type[Shift] | type[BusyInterval]) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_second_start_reuses_the_demo_tenant_with_fresh_keys_and_rota(
    db: Engine, settings: Settings, clock: FakeClock, client: TestClient
) -> None:
    first_now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    first = open_demo(settings, now=first_now)
    assert not first.reused
    clock.now = first_now
    old_admin = As(client, first.admin_key)
    kept = old_admin.post("/v1/api-keys", json={"name": "my helpdesk", "scopes": ["helpdesk"]})
    assert kept.status_code == 201, kept.text
    # Busy time that is not the demo's own (a calendar, a call) must survive a restart.
    with make_session_factory(db)() as session:
        busy.create(
            session=session,
            tenant_id=first.tenant_id,
            data=BusyCreate(
                id="dentist",
                agent="ana",
                start=first_now + timedelta(days=1, hours=2),
                end=first_now + timedelta(days=1, hours=3),
            ),
            now=first_now,
        )
        session.commit()
    shifts_per_start, meetings_before = _count(db, Shift), _count(db, BusyInterval)

    second_now = datetime(2026, 3, 3, 1, 20, tzinfo=UTC)  # the next night: nobody's 9-to-5
    second = open_demo(settings, now=second_now)
    assert second.reused and second.tenant_id == first.tenant_id
    assert _count(db, Tenant) == 1
    assert {second.admin_key, second.helpdesk_key, second.planner_key}.isdisjoint(
        {first.admin_key, first.helpdesk_key, first.planner_key}
    )

    clock.now = second_now
    for old in (first.admin_key, first.helpdesk_key, first.planner_key):
        assert As(client, old).get("/v1/agents").status_code == 401
    assert As(client, kept.json()["key"]).get("/v1/agents").status_code == 200
    r = As(client, second.helpdesk_key).post("/v1/tickets/DEMO-1/assign")
    assert r.status_code == 200, r.text
    assert r.json()["agent"] in set().union(*_on_shift(db, second.tenant_id, second_now).values())
    assert As(client, second.admin_key).get("/v1/api-keys").status_code == 200

    with Session(db) as session:
        rows = session.scalars(select(Shift).order_by(Shift.agent_id, Shift.start_at)).all()
        meetings = session.scalars(
            select(BusyInterval).where(BusyInterval.id.startswith("demo-meeting-"))
        ).all()
        assert session.get(BusyInterval, (first.tenant_id, "dentist")) is not None
    by_agent: dict[str, list[Shift]] = defaultdict(list)
    for row in rows:
        by_agent[row.agent_id].append(row)
    for agent, laid in by_agent.items():
        for before, after in pairwise(laid):
            assert _utc(before.end_at) <= _utc(after.start_at), f"{agent}: overlapping shifts"
    fresh = [r for r in rows if _utc(r.created_at) == second_now]
    assert len(fresh) == len(members()) * DEMO_DAYS
    since = min(_utc(r.start_at) for r in fresh)
    # What the first start laid from the new rota's start on gave way to it; what had ended
    # (history) is kept, and so are meetings that had ended.
    assert 0 < len(rows) - len(fresh) < shifts_per_start
    assert all(_utc(r.end_at) <= since for r in rows if r not in fresh)
    assert all(_utc(m.end_at) <= since for m in meetings if _utc(m.created_at) != second_now)
    assert meetings_before > 1


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def test_only_a_tenant_the_demo_made_is_taken_for_the_demo(db: Engine, settings: Settings) -> None:
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    with make_session_factory(db)() as session:
        tenants.create(session=session, name=DEMO_TENANT_NAME, now=now)  # same name, not the demo
        session.commit()
    demo = open_demo(settings, now=now)
    assert not demo.reused
    assert open_demo(settings, now=now + timedelta(hours=1)).tenant_id == demo.tenant_id
    assert _count(db, Tenant) == 2


def test_reuse_revokes_only_the_demo_keys(db: Engine, settings: Settings) -> None:
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    first = open_demo(settings, now=now)
    open_demo(settings, now=now + timedelta(hours=5))
    with Session(db) as session:
        live = session.scalars(
            select(ApiKey.name).where(
                ApiKey.tenant_id == first.tenant_id, ApiKey.revoked_at.is_(None)
            )
        ).all()
        revoked = session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.tenant_id == first.tenant_id, ApiKey.revoked_at.is_not(None))
        )
    assert sorted(live) == ["admin (bootstrap)", "demo helpdesk", "demo planner"]
    assert revoked == 3
