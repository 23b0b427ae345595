"""Slot queries of the same state share one engine answer (``BookingCache.slot_answers``):
what each caller gets is exactly what the engine answers at its own ``now`` — including at the
seconds around a start's minimum notice, where a minute-old shared answer holds a start the
later caller may no longer book."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from api.bookings import service as bookings
from api.bookings.cache import BookingCache
from api.db.engine import make_session_factory
from tests.api.bookings.test_bookings import book, org
from tests.api.conftest import T0, As, TenantCtx


def test_shared_answers_equal_the_engines_at_every_callers_now(
    a: As, tenant_a: TenantCtx, db: Engine
) -> None:
    org(a)
    assert book(a).status_code == 201  # one call booked: the state is not empty
    cache = BookingCache()
    factory = make_session_factory(db)
    # 08:00:00 .. 08:01:59 in steps of 10 s: the minimum notice is an hour, the grid 30
    # minutes, so 09:00 drops out of the answer at 08:00:01 within one shared minute.
    moments = [T0 + timedelta(seconds=s) for s in range(0, 120, 10)]
    for now in moments:
        for tz in ("Europe/Berlin", "America/New_York"):
            with factory() as session:
                shared = bookings.open_slots(
                    session=session,
                    tenant_id=tenant_a.id,
                    capability_id="net",
                    now=now,
                    start=None,
                    end=None,
                    tz=tz,
                    cache=cache,
                )
            with factory() as session:
                fresh = bookings.open_slots(
                    session=session,
                    tenant_id=tenant_a.id,
                    capability_id="net",
                    now=now,
                    start=None,
                    end=None,
                    tz=tz,
                    cache=None,
                )
            assert shared.slots == fresh.slots, (now, tz)
            assert (shared.reason is None) == (fresh.reason is None)
    assert cache.slot_answers.computed < len(moments) * 2  # shared, not recomputed each time
    # A booking changes the state: the next answer is computed again and holds it.
    before = cache.slot_answers.computed
    assert book(a, ticket="ZD-2").status_code == 201
    with factory() as session:
        bookings.open_slots(
            session=session,
            tenant_id=tenant_a.id,
            capability_id="net",
            now=moments[-1],
            start=None,
            end=None,
            tz="Europe/Berlin",
            cache=cache,
        )
    assert cache.slot_answers.computed == before + 1
