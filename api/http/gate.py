"""The request gate: who is asking, and how much they may send, before the body is read.

FastAPI reads and parses a request's whole body before any dependency runs, so authentication
in a dependency would come after the body: an unauthenticated huge JSON would grow the server
by more than its size before its 401 (figures: benchmarks/README.md, Hostile bodies). This pure
ASGI middleware sits outside everything that reads bodies (the Idempotency-Key middleware, the
routes) and, in order:

1. **Authenticates** every path that is not :func:`public <is_public>` — the bearer key is
   resolved exactly as ``api.http.deps.authenticate`` does it (the process's key cache, else the
   database in a worker thread) and a missing or unknown key gets the same 401, with no body
   byte read. The principal goes into ``scope["state"]["principal"]``, where
   ``api.http.deps.authenticate`` (``request.state.principal``) and other middleware find it: one
   lookup per request. Scopes (403) stay with the routes, which know what they need.
2. **Limits the body** by route kind (:func:`limit_for`; settings ``max_body_bytes``,
   ``max_import_body_bytes``, ``max_solve_body_bytes``): a declared ``Content-Length`` over the
   limit is a 413 at once; a chunked body is read only until it passes the limit, then a 413.
   No more than the limit (plus the one message that crossed it) is ever held. FastAPI's own
   per-route ``max_body_size`` would act inside the routes, after the Idempotency-Key
   middleware has already buffered the body: too late.
3. **Refuses a body in a media type its operation does not take** (a 415 naming the ones it
   does, :func:`accepted_media_types`): a JSON body sent as ``text/plain`` or with no
   ``Content-Type`` would otherwise be read as bytes, or guessed at. ``application/json``, which
   every operation with a body takes, is let through without looking the route up.
4. **Refuses JSON nested too deeply** (``api.common.json_depth``): Python's parser recursed into a
   500 on 100,000 brackets; here it is a 422 naming ``body``.

The body it read is handed on unchanged, so what runs inside sees the same request. An answer
given with the body still unread (a 401, a 413) closes the connection: draining the rest would
cost what the gate is there to save. ``python -m benchmarks.gate`` measures all of this against
the real server.
Answers are built by the app's own error map (``api.errors``), so a 401 from the gate and one
from a route are the same document; a database error while looking a key up gets the answer
the error map gives that error anywhere else (a 503, not a 500).
"""

from __future__ import annotations

import inspect
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal
from api.common import json_depth
from api.errors import PayloadTooLarge, Unauthenticated, UnsupportedMediaType
from api.http.deps import load_principal, principal_for
from api.settings import Settings

# Paths anyone may call: probes, metrics (route templates only, nothing of a tenant) and the
# API's documentation. Everything else needs a key, except the customer's pages opened from a
# single-use link (``/c/``: the link's token is their key, api/customer).
PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/problems",
    }
)
# The pages behind problem types, the documentation's own scripts and styles, and the
# customer's pages.
# Calendar providers' notifications prove themselves with their channel's token instead
# (api/calendar_push).
PUBLIC_PREFIXES: tuple[str, ...] = ("/problems/", "/docs/assets/", "/c/", "/v1/calendar-push/")

_NO_KEY = "send an API key as 'Authorization: Bearer <key>'"  # as api.http.deps.authenticate says
_UNKNOWN_KEY = "unknown or revoked API key"


def is_public(path: str) -> bool:
    """Whether ``path`` is answered without an API key."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def limit_for(path: str, settings: Settings) -> int:
    """The most body bytes a request to ``path`` may send."""
    if path.endswith("/import"):
        return settings.max_import_body_bytes
    if path == "/v1/solve" or path in ("/v1/planning/runs", "/v1/planning/sweeps"):
        # A what-if run may carry its baseline inline (agents and a ticket history): as big as
        # a posted problem.
        return settings.max_solve_body_bytes
    return settings.max_body_bytes


class GateMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        authorization = content_length = content_type = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                content_length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"transfer-encoding":
                chunked = True
        app_state = scope["app"].state

        # Until the body is read, an answer leaves it unread on the connection: that answer
        # closes the connection rather than let the server drain (or the client keep sending)
        # a body nobody will look at.
        declared = _declared_length(content_length)
        unread = chunked or bool(declared)
        if not is_public(path):
            try:
                principal = await _principal(app_state, authorization)
            except Exception as exc:
                await _answer(scope, receive, send, exc, close=unread)
                return
            if isinstance(principal, Unauthenticated):
                await _answer(scope, receive, send, principal, close=unread)
                return
            scope.setdefault("state", {})["principal"] = principal

        limit = limit_for(path, app_state.settings)
        if declared is not None and declared > limit:
            await _answer(scope, receive, send, PayloadTooLarge(limit), close=True)
            return
        if not unread:  # no body (or an empty one): nothing to read or check
            await self.app(scope, receive, send)
            return
        media = _media_type(content_type)
        if media != "application/json" and scope["method"] in _WITH_BODY:
            accepted = accepted_media_types(scope)
            if accepted and media not in accepted:
                refused = UnsupportedMediaType(
                    accepted, sent=media or None, patch=scope["method"] == "PATCH"
                )
                await _answer(scope, receive, send, refused, close=True)
                return

        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: there is no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(scope, receive, send, PayloadTooLarge(limit), close=True)
                return
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        del parts
        if _is_json(content_type):
            try:
                json_depth.check(body)
            except Exception as exc:
                await _answer(scope, receive, send, exc, close=False)
                return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: a disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# Kept on each route, worked out on first use: the media types of its request body, from its
# OpenAPI document (an operation that declares its body's content, as imports and merge patches
# do) or FastAPI's JSON body.
_ACCEPTED = "_switchboard_media_types"


def _media_type(content_type: bytes | None) -> str:
    """``application/json`` of ``Application/JSON; charset=utf-8``; "" for none."""
    if not content_type:
        return ""
    return content_type.split(b";", 1)[0].strip().lower().decode("latin-1")


def accepted_media_types(scope: Scope) -> tuple[str, ...]:
    """The media types the operation ``scope`` asks for takes as its body: () when it takes
    none, or when no operation answers this method and path (the router's 404 or 405 follows)."""
    for context in iter_route_contexts(scope["app"].routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        match, _ = context.matches(scope)
        if match is not Match.FULL:
            continue
        found: tuple[str, ...] | None = getattr(route, _ACCEPTED, None)
        if found is None:
            content = (route.openapi_extra or {}).get("requestBody", {}).get("content", {})
            if content:
                found = tuple(content)
            else:
                found = ("application/json",) if route.body_field is not None else ()
            setattr(route, _ACCEPTED, found)
        return found
    return ()


async def _principal(app_state: Any, authorization: bytes | None) -> Principal | Unauthenticated:
    """The key's principal, or the 401 to answer with (as ``api.http.deps.authenticate``)."""
    scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return Unauthenticated(_NO_KEY)
    principal = principal_for(app_state, token)
    if principal is None:
        principal = await anyio.to_thread.run_sync(load_principal, app_state, token)
    return Unauthenticated(_UNKNOWN_KEY) if principal is None else principal


def _declared_length(raw: bytes | None) -> int | None:
    # The server (h11, httptools) has refused a malformed Content-Length before we run.
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def _is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI (or the import parser) would read the body as JSON: no content type, or
    ``application/json`` / ``application/*+json``."""
    if not content_type:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


async def _answer(
    scope: Scope, receive: Receive, send: Send, exc: Exception, *, close: bool
) -> None:
    """Answer ``exc`` with the app's own handler for it, as if a route had raised it
    (``close``: and close the connection after it).

    The gate runs outside the exception middleware, so it looks the handler up itself (by the
    exception's classes, most specific first). The catch-all ``Exception`` handler is not used:
    what has no handler of its own is a bug, and is re-raised for the server error middleware
    to log and answer."""
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            break
        handler = handlers.get(cls)
        if handler is not None:
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            if close:
                response.headers["connection"] = "close"  # uvicorn closes after such an answer
            await response(scope, receive, send)
            return
    raise exc


def install(app: FastAPI) -> None:
    """Put the gate around what ``app`` has so far (call it after the Idempotency-Key
    middleware is added and before metrics, which should time the gate's answers too)."""
    app.add_middleware(GateMiddleware)
