"""``Idempotency-Key`` for POSTs, as an ASGI middleware in front of every route.

A POST carrying the header is run at most once per (tenant, key): the first response is
stored and a retry with the same request gets it again (with ``Idempotent-Replayed: true``).
The same key with a different request (method, path, query or body) is a 422; a retry while
the first is still running is a 409. Responses are buffered and stored *before* they are
sent, so a client never sees a response that a retry would not get again.

What is kept: 2xx and 4xx answers (they are the outcome of this request), except 401/403/429,
which say nothing about the request itself. A 5xx or a crash releases the key so the client can
retry. Requests without a valid API key pass through untouched (they get their 401 anyway).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import anyio.to_thread
from cryptography.fernet import Fernet
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.crypto import InvalidToken, fernet
from api.deps import load_principal, principal_for
from api.errors import (
    PROBLEM_JSON,
    IdempotencyInProgress,
    IdempotencyMismatch,
    IdempotencyUnreadable,
    InvalidInput,
    ServiceError,
    problem_body,
)
from api.services import idempotency as records

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
_NOT_STORED = frozenset({401, 403, 429})


def _problem(error: ServiceError, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """``error`` as a problem+json answer, written below the app (no exception handler here)."""
    body = problem_body(
        status=error.status,
        title=error.title,
        slug=error.slug,
        detail=error.detail,
        instance=path,
        errors=error.errors,
    )
    raw = json.dumps(body).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(raw)).encode()),
    ]
    return error.status, headers, raw


async def _send_raw(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            await _send_raw(
                send,
                *_problem(
                    InvalidInput.one(
                        "header.idempotency-key",
                        f"must be 1 to {MAX_KEY_LENGTH} printable characters",
                    ),
                    path,
                ),
            )
            return
        app_state = scope["app"].state
        token = _bearer_token(headers)
        principal = None
        if token is not None:
            principal = principal_for(app_state, token)
            if principal is None:
                principal = await anyio.to_thread.run_sync(load_principal, app_state, token)
        if principal is None:
            await self.app(scope, receive, send)
            return

        body = await _read_body(receive)
        digest = hashlib.sha256()
        for part in (
            scope["method"].encode(),
            path.encode(),
            scope.get("query_string", b""),
            headers.get(b"content-type", b""),
        ):
            digest.update(part + b"\n")
        digest.update(body)
        now = app_state.clock()
        ttl = _ttl(app_state)

        def do_claim() -> tuple[records.Outcome, records.Stored | None]:
            with app_state.session_factory() as session:
                return records.claim(
                    session=session,
                    tenant_id=principal.tenant_id,
                    key=key,
                    request_hash=digest.hexdigest(),
                    method=scope["method"],
                    path=path,
                    now=now,
                    ttl=ttl,
                )

        outcome, stored = await anyio.to_thread.run_sync(do_claim)
        if outcome is records.Outcome.MISMATCH:
            await _send_raw(
                send,
                *_problem(
                    IdempotencyMismatch.one(
                        "header.idempotency-key",
                        "this Idempotency-Key was used with a different request; use a new key",
                    ),
                    path,
                ),
            )
            return
        if outcome is records.Outcome.IN_PROGRESS:
            await _send_raw(
                send,
                *_problem(
                    IdempotencyInProgress(
                        "a request with this Idempotency-Key is still running; retry shortly"
                    ),
                    path,
                ),
            )
            return
        if outcome is records.Outcome.REPLAY:
            assert stored is not None
            try:
                replay_body = _sealer(app_state).decrypt(stored.body)
            except InvalidToken:
                await _send_raw(
                    send,
                    *_problem(
                        IdempotencyUnreadable(
                            "the stored response for this Idempotency-Key can no longer be read "
                            "(the service's secret key changed); retry with a new key"
                        ),
                        path,
                    ),
                )
                return
            replay_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
            replay_headers.append((b"idempotent-replayed", b"true"))
            await _send_raw(send, stored.status_code, replay_headers, replay_body)
            return

        await self._run_first(scope, body, send, app_state, principal.tenant_id, key)

    async def _run_first(
        self, scope: Scope, body: bytes, send: Send, app_state: Any, tenant_id: str, key: str
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def replay_receive() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        def release() -> None:
            with app_state.session_factory() as session:
                records.release(session=session, tenant_id=tenant_id, key=key)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await anyio.to_thread.run_sync(release)
            raise
        assert start is not None, "the app sent no response"
        status = int(start["status"])
        payload = b"".join(chunks)
        if status >= 500 or status in _NOT_STORED:
            await anyio.to_thread.run_sync(release)
        else:
            stored = records.Stored(
                status_code=status,
                headers=[[k.decode("latin-1"), v.decode("latin-1")] for k, v in start["headers"]],
                # Responses can carry secrets shown once (API keys, webhook secrets): seal them.
                body=_sealer(app_state).encrypt(payload),
            )

            def complete() -> None:
                with app_state.session_factory() as session:
                    records.complete(
                        session=session,
                        tenant_id=tenant_id,
                        key=key,
                        stored=stored,
                        now=app_state.clock(),
                    )

            await anyio.to_thread.run_sync(complete)
        await send(start)
        await send({"type": "http.response.body", "body": payload, "more_body": False})


def _bearer_token(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _sealer(app_state: Any) -> Fernet:
    return fernet(app_state.settings, "idempotent-responses/v1")


def _ttl(app_state: Any) -> timedelta:
    return timedelta(hours=app_state.settings.idempotency_ttl_hours)


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(parts)
        elif message["type"] == "http.disconnect":
            return b"".join(parts)
