"""Calendar sync on ``/metrics``: how the connections are, how far behind, what the syncs did.

``/metrics`` is scraped without authentication (:mod:`api.http.metrics`), so no label carries a
tenant, an agent or a connection id: series are by ``provider`` (3 values), ``status`` (3) and
``outcome`` / ``kind`` (a handful each) -- a fixed, small number of series whatever the number
of tenants and connections. Per-connection detail (lag, last error) is for admins, through the
API.

Read from the database at each scrape (:class:`ConnectionsCollector`):

- ``switchboard_calendar_connections{provider,status}``: connections by status;
- ``switchboard_calendar_connections_blocking{provider}``: connections that make their agent
  unavailable right now (failed, never synced, or stale: :func:`api.calendar_sync.health
  .block_reason`);
- ``switchboard_calendar_sync_lag_seconds_max{provider}``: the oldest mirror, in seconds since
  its last good sync (since its creation when it never had one), over connections not paused;
- ``switchboard_calendar_sync_lag_seconds{provider}``: the same lags as a gauge histogram
  (how many connections are how far behind now), so an alert can say "more than 5 % of the
  connections are older than 15 minutes" without a series per connection.

Counted as the syncs run in this process (:class:`SyncMetrics`):

- ``switchboard_calendar_syncs_total{provider,outcome}``: sync runs by outcome (``ok``,
  ``credential_error``, ``provider_error``, ``skipped``, ``conflict``);
- ``switchboard_calendar_sync_errors_total{provider,kind}``: errors met (``credential``,
  ``provider``, ``cursor_expired``, ``unexpected``), a run may meet several;
- ``switchboard_calendar_requests_total{provider}``: requests made to the providers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import load_only

from api.calendar_sync.health import block_reason
from api.db.models import CalendarConnection
from api.db.outage import classify
from calendars import PROVIDERS

log = logging.getLogger(__name__)

STATUSES = ("active", "paused", "failed")
# Seconds behind: a poll (5 min), the default staleness limit (30 min), an hour, 6 h, a day.
LAG_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 21600.0, 86400.0)


class SyncMetrics:
    """The counters of the syncs this process runs, on ``registry`` (the app's)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "switchboard_calendar_syncs",
            "Calendar sync runs by provider and outcome",
            ["provider", "outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "switchboard_calendar_sync_errors",
            "Errors calendar syncs met, by provider and kind",
            ["provider", "kind"],
            registry=registry,
        )
        self.requests = Counter(
            "switchboard_calendar_requests",
            "Requests made to calendar providers by the syncs, by provider",
            ["provider"],
            registry=registry,
        )

    def record(self, provider: str, outcome: str, requests: int, errors: Iterable[str]) -> None:
        self.runs.labels(provider, outcome).inc()
        for kind in errors:
            self.errors.labels(provider, kind).inc()
        if requests:
            self.requests.labels(provider).inc(requests)


class ConnectionsCollector(Collector):
    """The connection gauges, read from the database at each scrape (see the module doc).

    ``app_state`` gives the session factory, the clock and the settings (the staleness limit).
    """

    def __init__(self, app_state: Any) -> None:
        self.app_state = app_state

    def collect(self) -> Iterable[Metric]:
        statuses = GaugeMetricFamily(
            "switchboard_calendar_connections",
            "Calendar connections by provider and status",
            labels=["provider", "status"],
        )
        blocking = GaugeMetricFamily(
            "switchboard_calendar_connections_blocking",
            "Calendar connections that make their agent unavailable now (failed, stale or "
            "never synced), by provider",
            labels=["provider"],
        )
        lag_max = GaugeMetricFamily(
            "switchboard_calendar_sync_lag_seconds_max",
            "Seconds since the oldest good sync of a connection not paused, by provider",
            labels=["provider"],
        )
        lag = GaugeHistogramMetricFamily(
            "switchboard_calendar_sync_lag_seconds",
            "Connections not paused by seconds since their last good sync, by provider",
            labels=["provider"],
        )
        families: list[Metric] = [statuses, blocking, lag_max, lag]
        factory = getattr(self.app_state, "session_factory", None)
        settings = getattr(self.app_state, "settings", None)
        if factory is None or settings is None:
            return families
        now: datetime = self.app_state.clock()
        max_staleness = timedelta(seconds=settings.calendar_max_staleness_seconds)
        try:
            with factory() as session:
                rows = session.scalars(
                    select(CalendarConnection).options(
                        load_only(
                            CalendarConnection.provider,
                            CalendarConnection.status,
                            CalendarConnection.failure,
                            CalendarConnection.last_success_at,
                            CalendarConnection.created_at,
                        )
                    )
                ).all()
        except Exception as exc:  # a scrape must not fail because the database is briefly away
            found = classify(exc)
            throttled = getattr(self.app_state, "db_outage_log", None)
            if found is not None and throttled is not None:
                throttled.outage("metrics", found)
            else:
                log.warning("could not read the calendar connections", exc_info=True)
            return families
        counts: dict[tuple[str, str], int] = defaultdict(int)
        blocked: dict[str, int] = defaultdict(int)
        lags: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            counts[(row.provider, row.status)] += 1
            if row.status == "paused":
                continue
            if block_reason(row, now, max_staleness) is not None:
                blocked[row.provider] += 1
            since = row.last_success_at or row.created_at
            lags[row.provider].append(max(0.0, (now - since).total_seconds()))
        for provider in PROVIDERS:
            for status in STATUSES:
                statuses.add_metric([provider, status], counts[(provider, status)])
            blocking.add_metric([provider], blocked[provider])
            seen = lags[provider]
            lag_max.add_metric([provider], max(seen, default=0.0))
            buckets = [(str(float(b)), sum(1 for v in seen if v <= b)) for b in LAG_BUCKETS]
            buckets.append(("+Inf", len(seen)))
            lag.add_metric([provider], buckets, gsum_value=sum(seen))
        return families


def install(app_state: Any, registry: CollectorRegistry) -> SyncMetrics:
    """Register the calendar sync's metrics on an app's ``registry``; the counters returned
    are what the app's sync handler records into."""
    registry.register(ConnectionsCollector(app_state))
    return SyncMetrics(registry)
