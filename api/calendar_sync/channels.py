"""Push channels: the providers tell us when an agent's calendar changed.

A ``calendar.watch`` job (payload ``connection_id``) makes the connection's channels what they
should be: one per calendar it reads while it is active and its provider supports push
(:class:`~calendars.base.Unsupported`: none, and the periodic poll is all there is). A channel
expiring within ``calendar_channel_renew_margin_seconds`` is replaced by a new one (Google
channels cannot be extended; a new Graph subscription is as good), the old one stopped after the
new one exists. Each run queues the next for the earliest renewal due. Channels are stored in
``calendar_channels`` (:class:`~api.db.models.CalendarChannel`), found by their ``channel_id``
when a notification arrives (:mod:`api.calendar_push`).

Every channel of a connection proves itself with the connection's *channel token*: a random
secret made on the first watch, stored encrypted in ``calendar_connections.channel_token``,
sent to the provider as Google's channel ``token`` / Graph's ``clientState``, and compared in
constant time when a notification claims it (:func:`token_matches`).

The address given to providers is ``SWITCHBOARD_PUBLIC_BASE_URL`` +
``/v1/calendar-push/<provider>``; Google requires https, so plain http is refused outside
development and test.

Pausing or deleting a connection: :func:`release` (in the caller's transaction) forgets its
channels and queues a ``calendar.unwatch`` job that stops them at the provider with the
connection's credentials while the connection exists (paused); a deleted connection's channels,
or ones a provider does not let us stop, expire on their own (within the TTL). Notifications for
a forgotten channel are refused like a forged one.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.calendar_sync import connectors
from api.crypto import InvalidToken, fernet
from api.db.jobs import Job, JobStatus
from api.db.models import CalendarChannel, CalendarConnection
from api.jobs import queue
from api.jobs.worker import Handler, JobContext, PermanentJobError
from api.settings import Environment, Settings
from calendars.base import CalendarError, CredentialError, Unsupported, WatchChannel

log = logging.getLogger(__name__)

WATCH_JOB = "calendar.watch"
UNWATCH_JOB = "calendar.unwatch"
TOKEN_PURPOSE = "calendar-channel-token/v1"
PUSH_PATH = "/v1/calendar-push/"
PUSH_PROVIDERS = ("google", "microsoft")


# --------------------------------------------------------------------------- the token


def new_token(settings: Settings) -> tuple[str, str]:
    """A fresh channel token: (clear, as stored)."""
    clear = secrets.token_urlsafe(32)
    return clear, fernet(settings, TOKEN_PURPOSE).encrypt(clear.encode()).decode()


def open_token(settings: Settings, stored: str) -> str | None:
    """The stored channel token in clear (None: no key of the keyring opens it)."""
    try:
        return fernet(settings, TOKEN_PURPOSE).decrypt(stored.encode()).decode()
    except (InvalidToken, UnicodeDecodeError):
        return None


_DECOYS: dict[str, str] = {}


def _decoy(settings: Settings) -> str:
    """A stored token no notification can match, opened when the channel is unknown, so an
    unknown channel costs what a known one does."""
    secret = settings.secret_key.get_secret_value()
    if secret not in _DECOYS:
        _DECOYS[secret] = new_token(settings)[1]
    return _DECOYS[secret]


def token_matches(
    settings: Settings, connection: CalendarConnection | None, presented: str
) -> bool:
    """Whether ``presented`` is the connection's channel token, compared in constant time.
    With no connection (an unknown channel) a decoy is opened and compared all the same."""
    stored = connection.channel_token if connection is not None else None
    decoy = stored is None
    clear = open_token(settings, stored or _decoy(settings))
    expected = (clear or "").encode()
    same = hmac.compare_digest(expected, presented.encode("utf-8", "replace"))
    return same and not decoy and clear is not None


# --------------------------------------------------------------------------- lookups


def by_channel(
    session: Session, channel_id: str
) -> tuple[CalendarChannel, CalendarConnection] | None:
    """The channel with this id and its connection (None: unknown)."""
    channel = session.scalars(
        select(CalendarChannel).where(CalendarChannel.channel_id == channel_id)
    ).first()
    if channel is None:
        return None
    connection = session.get(CalendarConnection, (channel.tenant_id, channel.connection_id))
    if connection is None:
        return None
    return channel, connection


def of_connection(session: Session, tenant_id: str, connection_id: str) -> list[CalendarChannel]:
    return list(
        session.scalars(
            select(CalendarChannel)
            .where(
                CalendarChannel.tenant_id == tenant_id,
                CalendarChannel.connection_id == connection_id,
            )
            .order_by(CalendarChannel.calendar)
        )
    )


# --------------------------------------------------------------------------- queueing


def queued_watch(session: Session, tenant_id: str, connection_id: str) -> Job | None:
    """The connection's watch waiting in the queue, if any, locked until the caller commits
    (not claimed between this read and the change the caller makes to it)."""
    return queue.waiting(
        session=session, tenant_id=tenant_id, kind=WATCH_JOB, dedupe_key=connection_id, lock=True
    )


def queue_watch(
    session: Session,
    tenant_id: str,
    connection_id: str,
    *,
    now: datetime,
    run_after: datetime | None = None,
) -> Job:
    """Queue a watch of the connection (a new connection, a resumed one, a renewal due), or
    bring the one already queued forward. Call it in the caller's transaction."""
    due = run_after or now
    waiting = queued_watch(session, tenant_id, connection_id)
    if waiting is not None:
        if due < waiting.run_after:
            waiting.run_after = due
            waiting.updated_at = now
        return waiting
    return queue.enqueue(
        session=session,
        tenant_id=tenant_id,
        kind=WATCH_JOB,
        payload={"connection_id": connection_id},
        now=now,
        run_after=due,
        max_attempts=5,
        dedupe_key=connection_id,
    )


def _as_payload(channel: CalendarChannel) -> dict[str, Any]:
    return {
        "calendar": channel.calendar,
        "channel_id": channel.channel_id,
        "resource_id": channel.resource_id,
        "expires_at": channel.expires_at.isoformat(),
    }


def _as_watch(data: dict[str, Any]) -> WatchChannel:
    return WatchChannel(
        calendar=str(data["calendar"]),
        channel_id=str(data["channel_id"]),
        resource_id=data.get("resource_id"),
        expires_at=datetime.fromisoformat(str(data["expires_at"])),
    )


def release(session: Session, connection: CalendarConnection, now: datetime) -> Job | None:
    """Forget the connection's channels and queue a job that stops them at the provider: call
    it in the transaction that pauses or deletes the connection (before the delete). Its queued
    watch, if any, is cancelled. Returns the unwatch job (None: there were no channels)."""
    waiting = queued_watch(session, connection.tenant_id, connection.id)
    if waiting is not None:
        waiting.status = JobStatus.CANCELLED
        waiting.finished_at = now
        waiting.updated_at = now
    found = of_connection(session, connection.tenant_id, connection.id)
    if not found:
        return None
    # No credentials in the payload (jobs are readable through /v1/jobs): the job stops the
    # channels with the connection's own while it exists (paused); a deleted connection's
    # channels are refused from now on and expire by themselves.
    payload = {"connection_id": connection.id, "channels": [_as_payload(c) for c in found]}
    for channel in found:
        session.delete(channel)
    session.flush()
    return queue.enqueue(
        session=session,
        tenant_id=connection.tenant_id,
        kind=UNWATCH_JOB,
        payload=payload,
        now=now,
        max_attempts=3,
    )


# --------------------------------------------------------------------------- the jobs


def push_address(settings: Settings, provider: str) -> str:
    """Where ``provider`` sends notifications; https unless in development or test."""
    base = settings.public_base_url.rstrip("/")
    if not base.startswith("https://") and settings.environment is Environment.PRODUCTION:
        raise PermanentJobError(
            "push notifications need an https SWITCHBOARD_PUBLIC_BASE_URL (Google refuses "
            "plain http); the connection is polled meanwhile"
        )
    return f"{base}{PUSH_PATH}{provider}"


def _record_dead(session: Session, row: CalendarConnection, reason: str, now: datetime) -> None:
    row.status = "failed"
    row.failure = f"watch: {reason}"
    row.last_error = row.failure
    row.last_error_at = now
    row.consecutive_failures = (row.consecutive_failures or 0) + 1
    row.updated_at = now


def renew_at(channel: CalendarChannel, margin: timedelta) -> datetime:
    """When ``channel`` is replaced: ``margin`` before it expires, or halfway through its life
    when the provider gave it less than twice that (never a renewal loop)."""
    life = channel.expires_at - channel.created_at
    return channel.expires_at - min(margin, life / 2)


def _dead(ctx: JobContext, connection_id: str, reason: str, now: datetime) -> dict[str, Any]:
    with ctx.session_factory() as session:
        row = session.get(CalendarConnection, (ctx.tenant_id, connection_id))
        if row is not None:
            _record_dead(session, row, reason, now)
        result = {"watched": 0, "reason": "dead credential"}
        ctx.complete(session, result)
        session.commit()
    return result


def run_watch(ctx: JobContext, settings: Settings) -> dict[str, Any]:
    """The ``calendar.watch`` job (see the module)."""
    connection_id = str(ctx.payload.get("connection_id", ""))
    now = ctx.now()
    margin = timedelta(seconds=settings.calendar_channel_renew_margin_seconds)
    ttl = timedelta(seconds=settings.calendar_channel_ttl_seconds)
    with ctx.session_factory() as session:
        row = session.get(CalendarConnection, (ctx.tenant_id, connection_id))
        if row is None:
            return {"watched": 0, "reason": "the connection is gone"}
        if row.status != "active" or row.provider not in PUSH_PROVIDERS:
            release(session, row, now)
            ctx.complete(session, {"watched": 0, "reason": f"connection {row.status}"})
            session.commit()
            return {"watched": 0}
        address = push_address(settings, row.provider)
        token = open_token(settings, row.channel_token) if row.channel_token else None
        existing = {c.calendar: c for c in of_connection(session, ctx.tenant_id, connection_id)}
        if token is None:
            token, row.channel_token = new_token(settings)
            row.updated_at = now
            session.commit()  # before any provider holds it
            # Channels made with a token nobody can open any more are replaced now.
            replace = set(existing)
        else:
            replace = set()
        calendars = list(row.calendars)
        try:
            connector = connectors.connector_for(row, settings)
        except CredentialError as exc:
            session.rollback()
            return _dead(ctx, connection_id, exc.reason, now)
        session.expunge_all()

    made = renewed = stopped = 0
    old: list[WatchChannel] = []
    try:
        for calendar in calendars:
            current = existing.get(calendar)
            if current is not None and renew_at(current, margin) > now and calendar not in replace:
                continue
            channel = connector.watch(calendar, address, token, ttl)
            with ctx.session_factory() as session:
                if current is not None:
                    stale = session.get(CalendarChannel, (ctx.tenant_id, connection_id, calendar))
                    if stale is not None:
                        session.delete(stale)
                        session.flush()
                    old.append(_as_watch(_as_payload(current)))
                    renewed += 1
                else:
                    made += 1
                session.add(
                    CalendarChannel(
                        tenant_id=ctx.tenant_id,
                        connection_id=connection_id,
                        calendar=calendar,
                        provider=connector.provider,
                        channel_id=channel.channel_id,
                        resource_id=channel.resource_id,
                        expires_at=channel.expires_at,
                        created_at=now,
                    )
                )
                session.commit()
        for calendar, current in existing.items():
            if calendar not in calendars:  # no longer read: stop it
                old.append(_as_watch(_as_payload(current)))
                with ctx.session_factory() as session:
                    gone = session.get(CalendarChannel, (ctx.tenant_id, connection_id, calendar))
                    if gone is not None:
                        session.delete(gone)
                    session.commit()
    except Unsupported:
        return {"watched": 0, "reason": "the provider has no push; polled only"}
    except CredentialError as exc:
        return _dead(ctx, connection_id, exc.reason, now)
    for channel in old:
        try:
            connector.unwatch(channel)
            stopped += 1
        except CalendarError as exc:  # it expires by itself; the new one is in place
            log.warning("could not stop a replaced channel of %s: %s", connection_id, exc.reason)
    with ctx.session_factory() as session:
        renewals = [
            renew_at(c, margin) for c in of_connection(session, ctx.tenant_id, connection_id)
        ]
        if renewals:
            queue_watch(session, ctx.tenant_id, connection_id, now=now, run_after=min(renewals))
        result = {"made": made, "renewed": renewed, "stopped": stopped}
        ctx.complete(session, result)
        session.commit()
    return result


def run_unwatch(ctx: JobContext, settings: Settings) -> dict[str, Any]:
    """The ``calendar.unwatch`` job: stop the channels :func:`release` forgot, with the
    connection's credentials while it exists."""
    payload = ctx.payload
    gone = [_as_watch(data) for data in payload.get("channels", [])]
    latest = max((c.expires_at for c in gone), default=None)
    with ctx.session_factory() as session:
        row = session.get(CalendarConnection, (ctx.tenant_id, str(payload.get("connection_id"))))
        if row is None:
            return {"stopped": 0, "expire_by": latest.isoformat() if latest else None}
        try:
            connector = connectors.connector_for(row, settings)
        except CredentialError:
            return {"stopped": 0, "expire_by": latest.isoformat() if latest else None}
    stopped = 0
    for channel in gone:
        try:
            connector.unwatch(channel)
            stopped += 1
        except (Unsupported, CredentialError):
            continue  # nothing to stop, or it cannot be reached: it expires by itself
    return {"stopped": stopped}


def watch_handler(settings: Settings) -> Handler:
    def run(ctx: JobContext) -> dict[str, Any]:
        return run_watch(ctx, settings)

    return run


def unwatch_handler(settings: Settings) -> Handler:
    def run(ctx: JobContext) -> dict[str, Any]:
        return run_unwatch(ctx, settings)

    return run
