"""The composition root: what the service is made of, put together in one place.

Use-case modules never register themselves: this module (called by ``create_app`` in
:mod:`api.main` and by the worker command, :mod:`api.worker`) says which handler runs
which kind of job, who listens to organisation changes, and which per-process caches an app
holds. Imported lazily by both: the handlers pull in the solver.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from api import org_version
from api.assignment import breach, live, optimize
from api.assignment.cache import RealtimeCache
from api.bookings import service as bookings
from api.bookings.cache import BookingCache
from api.calendar_sync import channels, writeback
from api.calendar_sync import jobs as calendar_jobs
from api.calendar_sync import sync as calendar_sync
from api.jobs.housekeeping import Pass
from api.jobs.worker import Handler
from api.planning import jobs as planning_jobs
from api.planning import service as planning
from api.settings import Settings


def job_handlers(
    settings: Settings, *, calendar_metrics: calendar_sync.Recorder | None = None
) -> dict[str, Handler]:
    """Every job kind the service knows, by name, configured by ``settings`` (the calendar
    jobs decrypt credentials and know the public address with them; the bind job, how stale a
    calendar may be). ``calendar_metrics`` counts the calendar syncs (the app's /metrics; a
    worker process without one passes None)."""
    staleness = timedelta(seconds=settings.calendar_max_staleness_seconds)
    return {
        optimize.OPTIMIZE_JOB: optimize.run_optimize_job,
        bookings.BIND_JOB: partial(bookings.run_bind_job, max_staleness=staleness),
        breach.BREACH_RISK_JOB: breach.run_breach_job,
        calendar_jobs.SYNC_JOB: calendar_sync.make_handler(settings, calendar_metrics),
        writeback.WRITEBACK_JOB: writeback.handler(settings),
        channels.WATCH_JOB: channels.watch_handler(settings),
        channels.UNWATCH_JOB: channels.unwatch_handler(settings),
        planning.RUN_JOB: planning_jobs.run_planning_job,
        planning.SWEEP_JOB: planning_jobs.run_planning_job,
    }


def housekeeping_passes() -> list[Pass]:
    """What each housekeeping pass does besides its own work: restart the calendar syncs'
    poll chains and announce stale calendar mirrors."""
    return [calendar_sync.housekeeping_pass]


def install_listeners() -> None:
    """Register the one organisation-change listener and its subscribers (idempotent): the
    version bump every organisation cache keys on, and the booking engine's re-check of booked
    calls when who works when, with what, changed."""
    org_version.install()
    org_version.on_cover_change(bookings.queue_rechecks)


def install_caches(state: Any) -> None:
    """Give an app (its ``state``) its per-process caches of what is built from the
    organisation."""
    state.realtime_cache = RealtimeCache()
    settings: Settings = state.settings
    state.booking_cache = BookingCache(
        max_staleness=timedelta(seconds=settings.calendar_max_staleness_seconds)
    )

    def on_agents_freed(
        *, tenant_id: str, agents: Collection[str], now: datetime, actor: str | None
    ) -> list[str]:
        """A unit of work that did not hold the tenant lock freed ``agents``: re-offer the live
        channels' queue in one that does (``api.tickets.routes`` calls it after its commit)."""
        offered = live.offer_after_commit(
            make_session=lambda: state.session_factory(bind=state.write_engine),
            cache=state.realtime_cache,
            tenant_id=tenant_id,
            agents=agents,
            now=now,
            actor=actor,
        )
        return [o.ticket_id for o in offered]

    state.on_agents_freed = on_agents_freed
