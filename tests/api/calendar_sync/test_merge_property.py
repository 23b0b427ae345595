"""Merge, not replace, as a property: whatever sequence of changes a provider goes through
(events added, moved, freed, deleted, the service's own events, cursors expiring) and however
the syncs fall between them (incremental or full), after every sync the mirror is exactly the
provider's busy time in the synced window -- and a round in which nothing changed frees
nothing (cal.com's PR #22508 made busy people look free by replacing its cache)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine

from api.calendar_sync import connectors
from api.settings import Settings
from tests.api.calendar_sync.test_sync import CAL, agents, connect, mirror, row, run
from tests.api.conftest import T0, As, TenantCtx
from tests.calendars.memory import MemoryProvider

M = timedelta(minutes=1)
DAY = 24 * 60

# Starts from before the window (a day back) to beyond it (the horizon, 60 days, and a day).
starts = st.one_of(st.integers(-2 * DAY, 2 * DAY), st.integers(-2 * DAY, 63 * DAY))
lengths = st.integers(1, 6 * 60)
slots = st.integers(0, 7)  # which of the events a change is about

ops = st.one_of(
    st.tuples(st.just("add"), starts, lengths, st.sampled_from(["opaque", "transparent"])),
    st.tuples(st.just("own"), starts, lengths),
    st.tuples(st.just("move"), slots, starts, lengths),
    st.tuples(st.just("free"), slots),
    st.tuples(st.just("remove"), slots),
    st.tuples(st.just("expire")),
    st.tuples(st.just("sync"), st.booleans()),
)


def expected(provider: MemoryProvider, start: datetime, end: datetime) -> set[tuple[Any, Any]]:
    out = set()
    for event in provider.events.get(CAL, {}).values():
        s, e = max(event.start, start), min(event.end, end)
        if event.busy and event.own is None and s < e:
            out.add((s, e))
    return out


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(ops, min_size=1, max_size=25))
def test_after_every_sync_the_mirror_is_the_providers_busy_time_in_the_window(
    a: As, tenant_a: TenantCtx, db: Engine, settings: Settings, steps: list[tuple[Any, ...]]
) -> None:
    if a.get("/v1/agents/ana").status_code != 200:
        agents(a)
    connection = f"c-{uuid.uuid4().hex[:12]}"  # a fresh connection per example
    connect(db, settings, tenant_a.id, id=connection)
    provider = MemoryProvider()
    keys: list[str] = []
    now = T0
    changed_since_sync = True
    with connectors.use_factory(provider.factory):
        for step in [*steps, ("sync", False)]:
            kind = step[0]
            if kind == "add":
                _, start, length, transparency = step
                begin = T0 + start * M
                keys.append(provider.add(CAL, begin, begin + length * M, transparency=transparency))
            elif kind == "own":
                _, start, length = step
                begin = T0 + start * M
                call = f"call-{len(keys)}"
                keys.append(
                    provider.add(
                        CAL, begin, begin + length * M, key=f"switchboard-{call}", own=call
                    )
                )
            elif kind in ("move", "free", "remove") and keys:
                key = keys[step[1] % len(keys)]
                current = provider.events.get(CAL, {}).get(key)
                if kind == "remove":
                    provider.remove(CAL, key)
                elif kind == "free" and current is not None:
                    provider.add(
                        CAL, current.start, current.end, key=key, transparency="transparent"
                    )
                elif kind == "move":
                    begin = T0 + step[2] * M
                    provider.add(CAL, begin, begin + step[3] * M, key=key)
            elif kind == "expire":
                provider.expire()
            elif kind == "sync":
                before = mirror(db, tenant_a.id, connection)
                now += 5 * M
                result = run(db, settings, tenant_a.id, now, connection=connection, full=step[1])
                assert result.outcome == "ok", result
                stored = row(db, tenant_a.id, connection).cursors[CAL]
                start = datetime.fromisoformat(stored["start"])
                end = datetime.fromisoformat(stored["end"])
                after = mirror(db, tenant_a.id, connection)
                assert after == expected(provider, start, end)
                if not changed_since_sync and not step[1]:
                    assert after == before  # nothing changed: nothing freed, nothing added
                changed_since_sync = False
                continue
            changed_since_sync = True
