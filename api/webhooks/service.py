"""Webhook subscriptions and their delivery log, for one tenant at a time.

Every lookup takes ``tenant_id``: another tenant's webhook or delivery is a 404, exactly like
one that does not exist. URLs are checked here (see :mod:`api.webhooks.urls`) so a bad one is a
422 naming ``url`` with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from api.common import service as common
from api.db.results import affected_rows
from api.db.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from api.errors import Conflict, InvalidInput, NotFound
from api.events import new_id
from api.settings import Settings
from api.webhooks import secrets
from api.webhooks.schemas import WebhookCreate, WebhookUpdate
from api.webhooks.urls import Resolver, UrlRejected, check_url

WHAT = "webhook"


def validate_url(url: str, *, settings: Settings, resolver: Resolver) -> str:
    try:
        check_url(
            url,
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private_urls,
            resolver=resolver,
        )
    except UrlRejected as exc:
        raise InvalidInput.one("url", str(exc)) from None
    return url


def get_or_raise(*, session: Session, tenant_id: str, webhook_id: str) -> WebhookSubscription:
    return common.get_or_raise(session, WebhookSubscription, tenant_id, webhook_id, WHAT)


def create(
    *,
    session: Session,
    tenant_id: str,
    data: WebhookCreate,
    now: datetime,
    settings: Settings,
    resolver: Resolver,
) -> tuple[WebhookSubscription, str]:
    """The new subscription and its plaintext secret (the only time it is available)."""
    validate_url(data.url, settings=settings, resolver=resolver)
    secret = secrets.generate()
    row = WebhookSubscription(
        tenant_id=tenant_id,
        id=new_id("wh", now),
        url=data.url,
        event_types=[t.value for t in data.event_types],
        description=data.description,
        enabled=data.enabled,
        secret_encrypted=secrets.encrypt(settings, secret),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row, secret


def update_subscription(
    *,
    session: Session,
    tenant_id: str,
    webhook_id: str,
    data: WebhookUpdate,
    now: datetime,
    settings: Settings,
    resolver: Resolver,
) -> WebhookSubscription:
    row = get_or_raise(session=session, tenant_id=tenant_id, webhook_id=webhook_id)
    changes = data.changes()
    if "url" in changes:
        validate_url(changes["url"], settings=settings, resolver=resolver)
    if "event_types" in changes:
        changes["event_types"] = [str(t) for t in changes["event_types"]]
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = now
    session.flush()
    return row


def rotate_secret(
    *,
    session: Session,
    tenant_id: str,
    webhook_id: str,
    now: datetime,
    settings: Settings,
    overlap_seconds: int | None = None,
) -> tuple[WebhookSubscription, str]:
    """A new signing secret, effective for every attempt from now on (shown once).

    The secret it replaces keeps signing too, beside the new one, for ``overlap_seconds``
    (default ``settings.webhook_secret_overlap_seconds``; 0 stops it at once), so receivers can
    switch over without rejecting a delivery. A secret rotated out earlier is dropped: only the
    latest two are ever in use.
    """
    row = get_or_raise(session=session, tenant_id=tenant_id, webhook_id=webhook_id)
    overlap = overlap_seconds
    if overlap is None:
        overlap = settings.webhook_secret_overlap_seconds
    secret = secrets.generate()
    if overlap > 0:
        row.previous_secret_encrypted = row.secret_encrypted
        row.previous_secret_expires_at = now + timedelta(seconds=overlap)
    else:
        row.previous_secret_encrypted = None
        row.previous_secret_expires_at = None
    row.secret_encrypted = secrets.encrypt(settings, secret)
    row.updated_at = now
    session.flush()
    return row, secret


def delete(*, session: Session, tenant_id: str, webhook_id: str) -> None:
    """Delete the subscription with its deliveries and their log (pending ones are dropped)."""
    row = get_or_raise(session=session, tenant_id=tenant_id, webhook_id=webhook_id)
    session.delete(row)
    session.flush()


def list_subscriptions(
    *, session: Session, tenant_id: str, cursor: str | None, limit: int
) -> tuple[Sequence[WebhookSubscription], str | None]:
    stmt = select(WebhookSubscription).where(WebhookSubscription.tenant_id == tenant_id)
    return common.paginate(session, stmt, WebhookSubscription.id, cursor, limit)


DeliveryView = tuple[WebhookDelivery, WebhookEvent, list[WebhookAttempt]]


def _views(session: Session, rows: Sequence[WebhookDelivery]) -> list[DeliveryView]:
    if not rows:
        return []
    tenant_id = rows[0].tenant_id
    ids = [r.id for r in rows]
    events = {
        e.id: e
        for e in session.scalars(
            select(WebhookEvent).where(
                WebhookEvent.tenant_id == tenant_id,
                WebhookEvent.id.in_({r.event_id for r in rows}),
            )
        )
    }
    attempts: dict[str, list[WebhookAttempt]] = {i: [] for i in ids}
    for a in session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.tenant_id == tenant_id, WebhookAttempt.delivery_id.in_(ids))
        .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
    ):
        attempts[a.delivery_id].append(a)
    return [(r, events[r.event_id], attempts[r.id]) for r in rows]


def list_deliveries(
    *,
    session: Session,
    tenant_id: str,
    webhook_id: str,
    status: DeliveryStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeliveryView], str | None]:
    """The subscription's deliveries, newest first (ids sort by creation time)."""
    get_or_raise(session=session, tenant_id=tenant_id, webhook_id=webhook_id)
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.subscription_id == webhook_id
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if cursor is not None:
        stmt = stmt.where(WebhookDelivery.id < common.decode_cursor(cursor))
    rows = list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = common.encode_cursor(rows[-1].id)
    return _views(session, rows), next_cursor


def _delivery_or_raise(
    session: Session, tenant_id: str, webhook_id: str, delivery_id: str
) -> WebhookDelivery:
    get_or_raise(session=session, tenant_id=tenant_id, webhook_id=webhook_id)
    row = session.get(WebhookDelivery, (tenant_id, delivery_id))
    if row is None or row.subscription_id != webhook_id:
        raise NotFound("delivery", delivery_id)
    return row


def get_delivery(
    *, session: Session, tenant_id: str, webhook_id: str, delivery_id: str
) -> DeliveryView:
    row = _delivery_or_raise(session, tenant_id, webhook_id, delivery_id)
    return _views(session, [row])[0]


def replay(
    *,
    session: Session,
    tenant_id: str,
    webhook_id: str,
    delivery_id: str,
    now: datetime,
    settings: Settings,
) -> DeliveryView:
    """Send the delivery again, now, with a fresh budget of attempts. The attempt log is kept.

    The reset is a conditional UPDATE on the version the request read (``attempts``) and on no
    live claim, so a replay can never let a second worker send while one is in flight.
    """
    row = _delivery_or_raise(session, tenant_id, webhook_id, delivery_id)
    subscription = get_or_raise(session=session, tenant_id=tenant_id, webhook_id=webhook_id)
    if not subscription.enabled:
        raise Conflict(f"webhook {webhook_id!r} is disabled; enable it to replay deliveries")
    seen = row.attempts
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.tenant_id == tenant_id,
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.attempts == seen,
            or_(
                WebhookDelivery.claim_token.is_(None),
                WebhookDelivery.status != DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            ),
        )
        .values(
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            give_up_after=seen + settings.webhook_max_attempts,
            claim_token=None,
            delivered_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) != 1:
        raise Conflict(f"delivery {delivery_id!r} is being attempted right now; retry shortly")
    session.flush()
    session.refresh(row)
    return _views(session, [row])[0]
