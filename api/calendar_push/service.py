"""Verifying a provider's notification and queueing the sync it asks for.

Providers call without an API key: a notification is believed only when the channel it names
exists and it carries that channel's connection's token (Google's ``X-Goog-Channel-Token``,
Graph's ``clientState``), compared in constant time (:func:`api.calendar_sync.channels.
token_matches`). An unknown channel, a wrong token, a channel of the other provider or a
resource id that is not the channel's all get the same answer, :class:`PushRefused` (403): the
answer never says whether a channel exists, and an unknown channel costs the same decryption
and comparison as a known one.

A verified change queues the connection's incremental sync (one waiting per connection:
:func:`api.calendar_sync.jobs.queue_sync`) unless the connection is paused; Google's ``sync``
message (the handshake when a channel is made) queues nothing. A Graph lifecycle notification
(``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``) queues a watch (a new
subscription) and a sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api.calendar_sync import channels
from api.calendar_sync.jobs import queue_sync
from api.db.models import CalendarConnection
from api.errors import FieldError, InvalidInput, ServiceError
from api.settings import Settings

MAX_ID = 255
MAX_TOKEN = 1024
MAX_NOTIFICATIONS = 1000


class PushRefused(ServiceError):
    """The notification does not prove it comes from one of our channels (403)."""

    status = 403
    title = "Notification refused"
    slug = "calendar-push-refused"

    def __init__(self) -> None:
        super().__init__(
            "the notification's channel and token do not match a channel of this service",
            errors=[FieldError("channel", "unknown channel, or not its token")],
        )


@dataclass(frozen=True, slots=True)
class Received:
    """What a verified notification did: the syncs (connection ids) it queued, and whether it
    was only a handshake."""

    queued: tuple[str, ...] = ()
    handshake: bool = False


def _verified(
    session: Session,
    settings: Settings,
    provider: str,
    channel_id: str,
    token: str,
    resource_id: str | None = None,
) -> CalendarConnection | None:
    found = channels.by_channel(session, channel_id)
    connection = found[1] if found is not None else None
    # Always the same work: a decryption and a constant-time comparison, known channel or not.
    ok = channels.token_matches(settings, connection, token)
    if not ok or found is None or connection is None:
        return None
    channel = found[0]
    if channel.provider != provider or connection.provider != provider:
        return None
    if resource_id is not None and channel.resource_id not in (None, resource_id):
        return None
    return connection


def _queue(session: Session, connection: CalendarConnection, now: datetime) -> bool:
    if connection.status == "paused":
        return False
    queue_sync(session, connection.tenant_id, connection.id, now=now)
    return True


def google(
    session: Session,
    settings: Settings,
    *,
    channel_id: str | None,
    token: str | None,
    state: str | None,
    resource_id: str | None,
    now: datetime,
) -> Received:
    """A Google channel notification (its headers). The caller commits."""
    missing = [
        FieldError(f"header.{name}", "missing: a Google channel notification carries it")
        for name, value in (
            ("x-goog-channel-id", channel_id),
            ("x-goog-resource-state", state),
        )
        if not value
    ]
    if missing:
        raise InvalidInput(missing)
    assert channel_id is not None and state is not None
    if len(channel_id) > MAX_ID or len(token or "") > MAX_TOKEN:
        raise PushRefused()
    connection = _verified(session, settings, "google", channel_id, token or "", resource_id)
    if connection is None:
        raise PushRefused()
    if state == "sync":
        return Received(handshake=True)
    return Received(queued=(connection.id,) if _queue(session, connection, now) else ())


def _notifications(body: Any) -> Sequence[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise InvalidInput.one("value", 'a Graph notification body is {"value": [...]}')
    items: list[dict[str, Any]] = body["value"]
    if not items:
        raise InvalidInput.one("value", "holds no notification")
    if len(items) > MAX_NOTIFICATIONS:
        raise InvalidInput.one("value", f"at most {MAX_NOTIFICATIONS} notifications at once")
    errors = [
        FieldError(f"value.{i}", "must be an object with subscriptionId and clientState")
        for i, item in enumerate(items)
        if not isinstance(item, dict)
        or not isinstance(item.get("subscriptionId"), str)
        or not isinstance(item.get("clientState", ""), str)
    ]
    if errors:
        raise InvalidInput(errors)
    return items


def microsoft(session: Session, settings: Settings, body: Any, now: datetime) -> Received:
    """Graph change (or lifecycle) notifications: every item whose subscription and
    ``clientState`` verify is acted on; when none does, :class:`PushRefused` and nothing is
    queued. The caller commits."""
    queued: dict[str, None] = {}
    verified = 0
    for item in _notifications(body):
        sub = str(item["subscriptionId"])
        state = str(item.get("clientState") or "")
        if len(sub) > MAX_ID or len(state) > MAX_TOKEN:
            continue
        connection = _verified(session, settings, "microsoft", sub, state)
        if connection is None:
            continue
        verified += 1
        if item.get("lifecycleEvent") and connection.status != "paused":
            channels.queue_watch(session, connection.tenant_id, connection.id, now=now)
        if _queue(session, connection, now):
            queued[connection.id] = None
    if not verified:
        raise PushRefused()
    return Received(queued=tuple(queued))
