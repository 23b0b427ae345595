"""/v1/webhooks: subscriptions to the tenant's events and their delivery log (with replay)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import Page
from api.db.webhooks import DeliveryStatus
from api.events import DESCRIPTIONS, EventType
from api.http.deps import HelpdeskAuth, NowDep, PageDep, SessionDep, SettingsDep
from api.webhooks import service
from api.webhooks.schemas import (
    MESSAGES,
    DeliveryOut,
    SecretRotation,
    WebhookCreate,
    WebhookCreated,
    WebhookMessage,
    WebhookOut,
    WebhookUpdate,
)
from api.webhooks.urls import Resolver, system_resolver

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=PROBLEM_RESPONSES)


async def get_resolver(request: Request) -> Resolver:
    """DNS for URL checks; ``app.state.webhook_resolver`` replaces it (tests, custom DNS)."""
    resolver: Resolver = getattr(request.app.state, "webhook_resolver", None) or system_resolver
    return resolver


ResolverDep = Annotated[Resolver, Depends(get_resolver)]


@router.post(
    "", status_code=201, summary="Subscribe a URL to events (the signing secret is shown once)"
)
def create_webhook(
    body: WebhookCreate,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    settings: SettingsDep,
    resolver: ResolverDep,
) -> WebhookCreated:
    """Subscribes a URL to events; the signing secret is in this answer only."""
    row, secret = service.create(
        session=session,
        tenant_id=auth.tenant_id,
        data=body,
        now=now,
        settings=settings,
        resolver=resolver,
    )
    session.commit()
    return WebhookCreated(**WebhookOut.from_row(row).model_dump(), secret=secret)


@router.get("", summary="List webhooks (never their secrets)")
def list_webhooks(session: SessionDep, auth: HelpdeskAuth, page: PageDep) -> Page[WebhookOut]:
    """One page of the tenant's webhooks, never their secrets."""
    rows, cursor = service.list_subscriptions(
        session=session, tenant_id=auth.tenant_id, cursor=page.cursor, limit=page.limit
    )
    return Page(items=[WebhookOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{webhook_id}", summary="Read a webhook")
def read_webhook(webhook_id: str, session: SessionDep, auth: HelpdeskAuth) -> WebhookOut:
    """One webhook by its id (without its secret)."""
    row = service.get_or_raise(session=session, tenant_id=auth.tenant_id, webhook_id=webhook_id)
    return WebhookOut.from_row(row)


@router.patch("/{webhook_id}", summary="Change a webhook's URL, events, description or state")
def update_webhook(
    webhook_id: str,
    body: WebhookUpdate,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    settings: SettingsDep,
    resolver: ResolverDep,
) -> WebhookOut:
    """Changes the fields given; an omitted field is unchanged."""
    row = service.update_subscription(
        session=session,
        tenant_id=auth.tenant_id,
        webhook_id=webhook_id,
        data=body,
        now=now,
        settings=settings,
        resolver=resolver,
    )
    session.commit()
    return WebhookOut.from_row(row)


@router.post(
    "/{webhook_id}/rotate-secret",
    summary="Replace the signing secret (shown once; the old one keeps signing for an overlap)",
)
def rotate_webhook_secret(
    webhook_id: str,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    settings: SettingsDep,
    body: SecretRotation | None = None,
) -> WebhookCreated:
    """A new signing secret; the replaced one signs beside it until `previous_secret_expires_at`."""
    row, secret = service.rotate_secret(
        session=session,
        tenant_id=auth.tenant_id,
        webhook_id=webhook_id,
        now=now,
        settings=settings,
        overlap_seconds=None if body is None else body.overlap_seconds,
    )
    session.commit()
    return WebhookCreated(**WebhookOut.from_row(row).model_dump(), secret=secret)


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook and its log")
def delete_webhook(webhook_id: str, session: SessionDep, auth: HelpdeskAuth) -> Response:
    """Deletes the webhook and its delivery log; nothing more is sent to it."""
    service.delete(session=session, tenant_id=auth.tenant_id, webhook_id=webhook_id)
    session.commit()
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", summary="The delivery log, newest first")
def list_deliveries(
    webhook_id: str,
    session: SessionDep,
    auth: HelpdeskAuth,
    page: PageDep,
    status: Annotated[DeliveryStatus | None, Query(description="Only this status")] = None,
) -> Page[DeliveryOut]:
    """The webhook's deliveries, newest first, with their state."""
    views, cursor = service.list_deliveries(
        session=session,
        tenant_id=auth.tenant_id,
        webhook_id=webhook_id,
        status=status,
        cursor=page.cursor,
        limit=page.limit,
    )
    return Page(items=[DeliveryOut.from_rows(*v) for v in views], next_cursor=cursor)


@router.get("/{webhook_id}/deliveries/{delivery_id}", summary="One delivery with its attempts")
def read_delivery(
    webhook_id: str, delivery_id: str, session: SessionDep, auth: HelpdeskAuth
) -> DeliveryOut:
    """One delivery of the webhook, with every attempt and its answer."""
    view = service.get_delivery(
        session=session, tenant_id=auth.tenant_id, webhook_id=webhook_id, delivery_id=delivery_id
    )
    return DeliveryOut.from_rows(*view)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    summary="Send a delivery again now, with a fresh budget of attempts",
)
def replay_delivery(
    webhook_id: str,
    delivery_id: str,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    settings: SettingsDep,
) -> DeliveryOut:
    """Queues the delivery to be sent again now, with a fresh budget of attempts."""
    view = service.replay(
        session=session,
        tenant_id=auth.tenant_id,
        webhook_id=webhook_id,
        delivery_id=delivery_id,
        now=now,
        settings=settings,
    )
    session.commit()
    return DeliveryOut.from_rows(*view)


# --- what subscribers receive: one OpenAPI ``webhooks`` entry per event type -----------------

_SIGNATURE_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event's id: the same on every retry (de-duplicate on it)",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "The attempt's time, Unix seconds (refuse stale ones)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": (
            "Space-separated `v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>` signatures "
            "(Standard Webhooks). Two while a rotated-out secret's overlap lasts: accept the "
            "message if any one verifies with a secret you hold."
        ),
        "schema": {"type": "string"},
    },
]

events_router = APIRouter(tags=["webhook events"])


def _receiver(event_type: EventType) -> Callable[..., None]:
    def receive(body: WebhookMessage) -> None:
        pass

    receive.__annotations__["body"] = MESSAGES[event_type]
    receive.__name__ = "on_" + event_type.value.replace(".", "_")
    receive.__doc__ = (
        f"{DESCRIPTIONS[event_type]}. POSTed to every enabled subscription to "
        f"`{event_type.value}`; answer any 2xx to acknowledge (anything else is retried)."
    )
    return receive


for _type in EventType:
    events_router.add_api_route(
        _type.value,
        _receiver(_type),
        methods=["POST"],
        operation_id="on_" + _type.value.replace(".", "_"),
        response_class=Response,
        summary=DESCRIPTIONS[_type],
        response_description="Any 2xx acknowledges the delivery; anything else is retried",
        openapi_extra={"parameters": _SIGNATURE_HEADERS},
    )
