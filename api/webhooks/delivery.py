"""The webhook deliverer: fan events out to subscriptions, claim due deliveries, send, record.

Work is claimed from the database, so any number of service processes (and threads) can run a
deliverer without sending a delivery twice:

- **Fan-out** reads undispatched outbox events — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  inside ``BEGIN IMMEDIATE`` on SQLite (one writer at a time) — writes one delivery per
  matching enabled subscription and marks the events dispatched, in one transaction. A unique
  (event, subscription) key backs this up.
- **Claim** picks due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and takes each with
  a conditional ``UPDATE ... WHERE attempts = <seen> AND status = 'pending' AND due``: the
  version bump is atomic on both backends, so of two workers that saw the same row exactly one
  wins. The claim moves ``next_attempt_at`` to the end of a lease, so a worker that dies
  mid-send releases the delivery when the lease runs out (at-least-once, never silently lost).
- **Send** happens outside any transaction: no connection or lock is held while a receiver is
  slow. The URL is re-checked (DNS may have changed) and the request goes to the checked IP.
- **Record** writes the attempt to the log and updates the delivery only if it still holds the
  claim token, so a worker whose lease ran out cannot overwrite a newer claim's outcome.

Messages follow Standard Webhooks: ``webhook-id`` is the event id (the same on every retry, so
receivers can de-duplicate), ``webhook-timestamp`` the attempt's Unix time, and
``webhook-signature`` ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` signed with the
``standardwebhooks`` library — two of them, space-separated, while a rotated-out secret's
overlap lasts (:func:`signing_secrets`). A 2xx is delivered; anything else (3xx included:
redirects are not followed) is retried with exponential backoff and jitter, honouring
``Retry-After`` on 429/503, until the delivery's attempt budget is spent.

``Deliverer.run_once()`` does one round and returns what it did (tests drive it with an injected
clock and rng); :func:`start_background` runs rounds in a thread for the app's lifespan. While
the database is away that thread backs off (the poll interval doubling up to
``MAX_BACKOFF_SECONDS``) and logs one line per kind of failure every few seconds.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import Select, and_, delete, literal_column, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from api.db.locks import begin_write
from api.db.outage import Backoff, ThrottledLog, classify
from api.db.results import affected_rows
from api.db.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from api.events import new_id
from api.settings import Environment, Settings
from api.webhooks import secrets
from api.webhooks.urls import Resolver, UrlRejected, check_url, system_resolver

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
USER_AGENT = "Switchboard-Webhooks/1"
_ERROR_MAX = 500
_FAN_OUT_BATCH = 500
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_PURGE_EVERY = timedelta(hours=1)
# A literal, not a bound parameter: PostgreSQL can then match the partial index on due rows.
_PENDING = WebhookDelivery.status == literal_column("'pending'")
_PURGE_BATCH = 1000
# The longest wait between rounds while the database fails.
MAX_BACKOFF_SECONDS = 30.0


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Policy:
    """Retry and transport limits, from the settings."""

    max_attempts: int
    backoff_base: float
    backoff_max: float
    retry_after_max: float
    timeout: float
    batch_size: int
    allow_http: bool
    allow_private: bool
    retention_days: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_attempts=settings.webhook_max_attempts,
            backoff_base=settings.webhook_backoff_base_seconds,
            backoff_max=settings.webhook_backoff_max_seconds,
            retry_after_max=settings.webhook_retry_after_max_seconds,
            timeout=settings.webhook_timeout_seconds,
            batch_size=settings.webhook_batch_size,
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private_urls,
            retention_days=settings.webhook_retention_days,
        )

    @property
    def lease(self) -> timedelta:
        # Longer than any one send can take (connect + write + read timeouts, plus slack), so
        # a live worker's claim never expires under it.
        return timedelta(seconds=4 * self.timeout + 30)


def backoff_seconds(attempt: int, policy: Policy, rng: random.Random) -> float:
    """Delay after failed attempt number ``attempt`` (1-based): exponential, capped, with
    "equal jitter" (half fixed, half random) so receivers recovering from an outage are not hit
    by every sender at the same instant, yet no retry comes sooner than half the schedule."""
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT by definition
    return max(0.0, (when - now).total_seconds())


def message_body(event_type: str, created_at: datetime, data: dict[str, Any]) -> str:
    """The JSON body: the Standard Webhooks envelope ``{type, timestamp, data}``."""
    envelope = {
        "type": event_type,
        "timestamp": created_at.astimezone(UTC).isoformat(),
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Claim:
    """Everything one attempt needs, read while claiming, so sending touches no database."""

    tenant_id: str
    delivery_id: str
    token: str
    number: int
    give_up_after: int
    url: str
    secret_encrypted: str
    previous_secret_encrypted: str | None
    previous_secret_expires_at: datetime | None
    event_id: str
    event_type: str
    event_created_at: datetime
    data: dict[str, Any]


def signing_secrets(settings: Settings, claim: Claim, at: datetime) -> list[str]:
    """The secrets an attempt starting ``at`` is signed with: the current one, and the one it
    replaced while the rotation's overlap lasts (``at`` before its expiry). Standard Webhooks
    receivers accept a message when any of the space-separated signatures verifies."""
    out = [secrets.decrypt(settings, claim.secret_encrypted)]
    expires = claim.previous_secret_expires_at
    if claim.previous_secret_encrypted is not None and expires is not None and at < expires:
        out.append(secrets.decrypt(settings, claim.previous_secret_encrypted))
    return out


@dataclass(slots=True)
class RunStats:
    events_dispatched: int = 0
    deliveries_created: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (delivery id, outcome)

    @property
    def busy(self) -> bool:
        return bool(self.events_dispatched or self.attempted)


@dataclass(frozen=True, slots=True)
class _Result:
    status_code: int | None
    error: str | None
    retry_after: float | None
    latency_ms: float


class Deliverer:
    """One worker's deliverer. Thread-confined: give each thread or process its own."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._sessions = session_factory
        self._settings = settings
        self.policy = Policy.from_settings(settings)
        self._clock = clock or _wall_clock
        self._rng = rng or random.Random()
        self._resolver = resolver or system_resolver
        timeout = self.policy.timeout
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            # Requests go to a pinned IP with the tenant's Host header: a kept-alive connection
            # must never be reused for another host name on the same address.
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,  # a proxy from the environment would bypass the address pinning
            headers={"user-agent": USER_AGENT},
        )

        self._pool: ThreadPoolExecutor | None = None
        self._last_purge: datetime | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one round ---------------------------------------------------------------------------

    def run_once(self) -> RunStats:
        """Fan out pending events, then claim and attempt up to one batch of due deliveries.

        The batch is sent concurrently (one thread per claim), so every claim's send starts at
        once and the lease only has to cover one send, and a slow receiver holds up no other
        tenant's delivery. Outcomes are recorded afterwards in claim order, so the backoff rng
        is drawn in a reproducible order.
        """
        stats = RunStats()
        self._maybe_purge()
        stats.events_dispatched, stats.deliveries_created = self.fan_out()
        claims = self.claim()
        if len(claims) == 1:
            sent = [self._timed_send(claims[0])]
        elif claims:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.policy.batch_size, thread_name_prefix="webhook-send"
                )
            sent = list(self._pool.map(self._timed_send, claims))
        else:
            sent = []
        for claim, (started, result, finished) in zip(claims, sent, strict=True):
            outcome = self._record(claim, started, result, finished)
            stats.attempted += 1
            stats.outcomes.append((claim.delivery_id, outcome))
            if outcome == "delivered":
                stats.delivered += 1
            elif outcome == "retry":
                stats.retrying += 1
            else:
                stats.failed += 1
        return stats

    def _exists(self, stmt: Select[Any]) -> bool:
        """A plain read: an idle poll costs one index probe, not SQLite's write lock."""
        with self._sessions() as session:
            return session.execute(stmt.limit(1)).first() is not None

    def _maybe_purge(self) -> None:
        now = self._clock()
        if self._last_purge is None or now - self._last_purge >= _PURGE_EVERY:
            self._last_purge = now
            self.purge(now - timedelta(days=self.policy.retention_days))

    def purge(self, before: datetime) -> int:
        """Delete events dispatched before ``before`` whose deliveries are all final (with their
        deliveries and attempt log, by cascade). Returns how many events went."""
        pending = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.tenant_id == WebhookEvent.tenant_id,
                WebhookDelivery.event_id == WebhookEvent.id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
            .exists()
        )
        total = 0
        while True:
            with self._sessions() as session:
                keys = session.execute(
                    select(WebhookEvent.tenant_id, WebhookEvent.id)
                    .where(WebhookEvent.dispatched_at < before, ~pending)
                    .limit(_PURGE_BATCH)
                ).all()
                if not keys:
                    return total
                session.execute(
                    delete(WebhookEvent).where(
                        tuple_(WebhookEvent.tenant_id, WebhookEvent.id).in_(
                            [tuple(k) for k in keys]
                        ),
                        WebhookEvent.dispatched_at < before,
                    )
                )
                session.commit()
            total += len(keys)

    def fan_out(self) -> tuple[int, int]:
        """Turn undispatched events into deliveries. Returns (events, deliveries created)."""
        now = self._clock()
        if not self._exists(select(WebhookEvent.id).where(WebhookEvent.dispatched_at.is_(None))):
            return 0, 0
        with self._sessions() as session:
            postgres = begin_write(session)
            stmt = (
                select(WebhookEvent)
                .where(WebhookEvent.dispatched_at.is_(None))
                .order_by(WebhookEvent.created_at)
                .limit(_FAN_OUT_BATCH)
            )
            if postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            events = list(session.scalars(stmt))
            if not events:
                return 0, 0
            subscriptions: dict[str, list[WebhookSubscription]] = {}
            for sub in session.scalars(
                select(WebhookSubscription)
                .where(
                    WebhookSubscription.tenant_id.in_({e.tenant_id for e in events}),
                    WebhookSubscription.enabled.is_(True),
                )
                .order_by(WebhookSubscription.id)
            ):
                subscriptions.setdefault(sub.tenant_id, []).append(sub)
            created = 0
            for event in events:
                for sub in subscriptions.get(event.tenant_id, []):
                    if event.type not in sub.event_types:
                        continue
                    session.add(
                        WebhookDelivery(
                            tenant_id=event.tenant_id,
                            id=new_id("dlv", now),
                            subscription_id=sub.id,
                            event_id=event.id,
                            status=DeliveryStatus.PENDING,
                            attempts=0,
                            give_up_after=self.policy.max_attempts,
                            next_attempt_at=now,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    created += 1
                event.dispatched_at = now
            session.commit()
            return len(events), created

    def claim(self, limit: int | None = None) -> list[Claim]:
        """Take up to ``limit`` due deliveries for this worker (see the module doc)."""
        now = self._clock()
        limit = self.policy.batch_size if limit is None else limit
        lease_end = now + self.policy.lease
        due = select(WebhookDelivery.id).where(_PENDING, WebhookDelivery.next_attempt_at <= now)
        if not self._exists(due):
            return []
        with self._sessions() as session:
            postgres = begin_write(session)
            stmt = (
                select(WebhookDelivery.tenant_id, WebhookDelivery.id, WebhookDelivery.attempts)
                .join(
                    WebhookSubscription,
                    and_(
                        WebhookSubscription.tenant_id == WebhookDelivery.tenant_id,
                        WebhookSubscription.id == WebhookDelivery.subscription_id,
                    ),
                )
                .where(
                    _PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookSubscription.enabled.is_(True),
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
            )
            if postgres:
                stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
            won: list[tuple[str, str, str]] = []
            for tenant_id, delivery_id, seen in session.execute(stmt).all():
                token = str(uuid.uuid4())
                result = session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.tenant_id == tenant_id,
                        WebhookDelivery.id == delivery_id,
                        WebhookDelivery.status == DeliveryStatus.PENDING,
                        WebhookDelivery.attempts == seen,
                        WebhookDelivery.next_attempt_at <= now,
                    )
                    .values(
                        attempts=seen + 1,
                        claim_token=token,
                        next_attempt_at=lease_end,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                if affected_rows(result) == 1:
                    won.append((tenant_id, delivery_id, token))
            claims = [self._load_claim(session, *w) for w in won]
            session.commit()
            return claims

    def _load_claim(self, session: Session, tenant_id: str, delivery_id: str, token: str) -> Claim:
        delivery, sub, event = session.execute(
            select(WebhookDelivery, WebhookSubscription, WebhookEvent)
            .join(
                WebhookSubscription,
                and_(
                    WebhookSubscription.tenant_id == WebhookDelivery.tenant_id,
                    WebhookSubscription.id == WebhookDelivery.subscription_id,
                ),
            )
            .join(
                WebhookEvent,
                and_(
                    WebhookEvent.tenant_id == WebhookDelivery.tenant_id,
                    WebhookEvent.id == WebhookDelivery.event_id,
                ),
            )
            .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id)
            .execution_options(populate_existing=True)
        ).one()
        return Claim(
            tenant_id=tenant_id,
            delivery_id=delivery_id,
            token=token,
            number=delivery.attempts,
            give_up_after=delivery.give_up_after,
            url=sub.url,
            secret_encrypted=sub.secret_encrypted,
            previous_secret_encrypted=sub.previous_secret_encrypted,
            previous_secret_expires_at=sub.previous_secret_expires_at,
            event_id=event.id,
            event_type=event.type,
            event_created_at=event.created_at,
            data=event.data,
        )

    # --- one attempt -------------------------------------------------------------------------

    def _send(self, claim: Claim, started: datetime) -> _Result:
        t0 = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            signing = signing_secrets(self._settings, claim, started)
            target = check_url(
                claim.url,
                allow_http=self.policy.allow_http,
                allow_private=self.policy.allow_private,
                resolver=self._resolver,
            )
            url, host_header, extensions = target.pinned()
            body = message_body(claim.event_type, claim.event_created_at, claim.data)
            # Whole seconds: the header carries seconds and the signature covers the header.
            stamp = started.replace(microsecond=0)
            signature = " ".join(Webhook(s).sign(claim.event_id, stamp, body) for s in signing)
            headers = {
                "content-type": "application/json",
                "webhook-id": claim.event_id,
                "webhook-timestamp": str(int(stamp.timestamp())),
                "webhook-signature": signature,
                **host_header,
            }
            request = self._client.build_request(
                "POST", url, content=body.encode(), headers=headers, extensions=extensions
            )
            # Only the status matters: the body is not read, so a slow or huge one costs nothing.
            response = self._client.send(request, stream=True)
            try:
                status_code = response.status_code
                if status_code in _RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("retry-after"), started)
            finally:
                response.close()
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except secrets.SecretUnreadable as exc:
            error = str(exc)
        except UrlRejected as exc:
            error = f"destination refused: {exc}"
        except httpx.TimeoutException as exc:
            error = f"timed out ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency_ms = (time.perf_counter() - t0) * 1000.0
        return _Result(status_code, error and error[:_ERROR_MAX], retry_after, latency_ms)

    def _timed_send(self, claim: Claim) -> tuple[datetime, _Result, datetime]:
        started = self._clock()
        result = self._send(claim, started)
        return started, result, self._clock()

    def attempt(self, claim: Claim) -> str:
        """Send ``claim`` once and record the outcome: ``delivered``, ``retry`` or ``failed``."""
        return self._record(claim, *self._timed_send(claim))

    def _record(self, claim: Claim, started: datetime, result: _Result, finished: datetime) -> str:
        code = result.status_code
        if code is not None and 200 <= code < 300:
            outcome, status, next_at = "delivered", DeliveryStatus.DELIVERED, finished
        elif claim.number >= claim.give_up_after:
            outcome, status, next_at = "failed", DeliveryStatus.FAILED, finished
        else:
            delay = backoff_seconds(claim.number, self.policy, self._rng)
            if result.retry_after is not None:
                delay = max(delay, min(result.retry_after, self.policy.retry_after_max))
            outcome, status = "retry", DeliveryStatus.PENDING
            next_at = finished + timedelta(seconds=delay)
        with self._sessions() as session:
            try:
                session.add(
                    WebhookAttempt(
                        tenant_id=claim.tenant_id,
                        delivery_id=claim.delivery_id,
                        number=claim.number,
                        started_at=started,
                        finished_at=finished,
                        status_code=code,
                        latency_ms=round(result.latency_ms, 3),
                        error=result.error,
                        outcome=outcome,
                    )
                )
                session.flush()
                session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.tenant_id == claim.tenant_id,
                        WebhookDelivery.id == claim.delivery_id,
                        WebhookDelivery.claim_token == claim.token,
                    )
                    .values(
                        status=status,
                        next_attempt_at=next_at,
                        claim_token=None,
                        last_status_code=code,
                        last_error=result.error,
                        updated_at=finished,
                        delivered_at=finished if status is DeliveryStatus.DELIVERED else None,
                    )
                    .execution_options(synchronize_session=False)
                )
                session.commit()
            except IntegrityError:
                # The subscription (and its deliveries) was deleted while we were sending.
                session.rollback()
                log.info("webhook delivery %s vanished during its attempt", claim.delivery_id)
        if outcome != "delivered":
            log.info(
                "webhook delivery %s attempt %d: %s (%s)",
                claim.delivery_id,
                claim.number,
                outcome,
                result.error,
            )
        return outcome


# --- the background thread -----------------------------------------------------------------


def background_enabled(settings: Settings) -> bool:
    if settings.webhook_deliverer is None:
        return settings.environment is not Environment.TEST
    return settings.webhook_deliverer


class BackgroundDeliverer:
    """Runs :meth:`Deliverer.run_once` in a daemon thread until stopped: back to back while
    there is work, then every ``poll_seconds``. A failing round is logged, never fatal."""

    def __init__(self, deliverer: Deliverer, poll_seconds: float) -> None:
        self._deliverer = deliverer
        self._poll = poll_seconds
        self._backoff = Backoff(poll_seconds, MAX_BACKOFF_SECONDS)
        self._outage_log = ThrottledLog(log)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-deliverer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._deliverer.close()

    def round(self) -> float:
        """One round; the seconds to wait before the next (0 while there is work)."""
        try:
            busy = self._deliverer.run_once().busy
        except Exception as exc:
            found = classify(exc)
            if found is not None:
                self._outage_log.outage("webhook deliverer", found)
            else:
                log.exception("webhook delivery round failed")
            return self._backoff.failed()
        failures = self._backoff.succeeded()
        if failures:
            self._outage_log.recovered("webhook deliverer", failures)
        return 0.0 if busy else self._poll

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.round()
            if wait > 0:
                self._stop.wait(wait)


def start_background(
    session_factory: sessionmaker[Session], settings: Settings, *, clock: Clock | None = None
) -> Callable[[], None]:
    """Start the background deliverer if the settings want it; returns the function that stops
    it (a no-op when it was not started)."""
    if not background_enabled(settings):
        return lambda: None
    worker = BackgroundDeliverer(
        Deliverer(session_factory, settings, clock=clock), settings.webhook_poll_seconds
    )
    worker.start()
    return worker.stop
