"""/v1/calendar-push/google and /v1/calendar-push/microsoft: where calendar providers tell us
an agent's calendar changed. No API key (providers have none): each notification proves itself
with its channel's token (:mod:`api.calendar_push.service`). Answers are fast: verifying and
queueing a sync is all that happens here."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from api.calendar_push import service
from api.common.problem import ProblemDetails
from api.errors import InvalidInput
from api.http.deps import NowDep, SessionDep, SettingsDep

router = APIRouter(
    tags=["calendar push"],
    responses={
        403: {
            "model": ProblemDetails,
            "description": "Not a notification of one of our channels (unknown channel or token)",
        },
        413: {"model": ProblemDetails, "description": "The body is longer than the limit"},
        422: {"model": ProblemDetails, "description": "Invalid input; `errors` names each field"},
    },
)

MAX_VALIDATION_TOKEN = 2048
_PLAIN = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


async def _body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_body)]


@router.post(
    "/v1/calendar-push/google",
    status_code=202,
    summary="Receive a Google Calendar channel notification (no API key: the channel token)",
    responses={
        200: {"description": "The channel's first (``sync``) message: acknowledged"},
        202: {"description": "A change: the connection's sync is queued"},
    },
)
def google_push(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    x_goog_channel_id: Annotated[str | None, Header(description="The channel's id")] = None,
    x_goog_channel_token: Annotated[
        str | None, Header(description="The channel's token (the connection's secret)")
    ] = None,
    x_goog_resource_state: Annotated[
        str | None, Header(description="``sync`` (the handshake), ``exists`` or ``not_exists``")
    ] = None,
    x_goog_resource_id: Annotated[
        str | None, Header(description="The watched calendar's resource id")
    ] = None,
) -> Response:
    """Google calls this for each change of a watched calendar. A notification whose channel
    and token do not match one of ours is refused (403) without saying which was wrong."""
    received = service.google(
        session,
        settings,
        channel_id=x_goog_channel_id,
        token=x_goog_channel_token,
        state=x_goog_resource_state,
        resource_id=x_goog_resource_id,
        now=now,
    )
    session.commit()
    return Response(status_code=200 if received.handshake else 202)


@router.post(
    "/v1/calendar-push/microsoft",
    status_code=202,
    summary="Receive Microsoft Graph change notifications (no API key: the clientState)",
    responses={
        200: {
            "description": "Subscription validation: the validationToken echoed as text/plain",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        202: {"description": "Verified notifications: their connections' syncs are queued"},
    },
)
def microsoft_push(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: RawBody,
    validation_token: Annotated[
        str | None,
        Query(
            alias="validationToken",
            description="Sent by Graph when a subscription is made: echoed back",
        ),
    ] = None,
) -> Response:
    """Graph validates a new subscription with ``?validationToken=`` (echoed as text/plain),
    then posts notifications here; each must carry its subscription's ``clientState``. When
    none does the answer is a 403 and nothing is queued."""
    if validation_token is not None:
        if not validation_token or len(validation_token) > MAX_VALIDATION_TOKEN:
            raise InvalidInput.one(
                "query.validationToken", f"must be 1 to {MAX_VALIDATION_TOKEN} characters"
            )
        return Response(
            content=validation_token, media_type="text/plain", status_code=200, headers=_PLAIN
        )
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput.one("body", "not JSON: Graph notifications are a JSON object") from None
    service.microsoft(session, settings, data, now)
    session.commit()
    return Response(status_code=202)
