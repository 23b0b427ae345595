"""The headers every ``/c`` response carries, whoever answered it: the routes, the static
files, the gate's 413 or the router's 404.

A link's URL is its secret: nothing may cache a page (``no-store``), send it on as a referrer
(``no-referrer``), index it, or frame it. The CSP allows only this origin's own style sheet,
script and connections (the waiting room's event stream), and no inline script or style at all.
A pure ASGI middleware, so it sees every answer, streamed ones included, before the first byte.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/c"

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CSP.encode()),
    (b"x-robots-tag", b"noindex"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
)
_NAMES = frozenset(name for name, _ in HEADERS)


def is_customer_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class CustomerHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_customer_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in _NAMES]
                message["headers"] = [*kept, *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    """Wrap what ``app`` has so far (call it after the gate, so its answers get them too)."""
    app.add_middleware(CustomerHeadersMiddleware)
