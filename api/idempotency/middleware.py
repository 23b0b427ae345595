"""``Idempotency-Key`` for POSTs: run at most once per API key and key, replay the answer.

A POST carrying the header is run at most once per (tenant, API key, key): the first answer
is stored and a retry with the same request gets it again (with ``Idempotent-Replayed: true``).
The same key with a different request (method, path, query or body) is a 422; a retry while
the first is still running is a 409.

Three parts, in the order a request meets them:

1. :class:`IdempotencyMiddleware` (ASGI, below authentication by :mod:`api.http.gate`) reads the
   body once, hashes the request and leaves a :class:`KeyedRequest` in the request's state. It
   decides nothing: no key is looked up before the route's own authorization has passed.
2. :func:`claim` runs inside the route's authorization dependency (``api.http.deps.require``),
   after the key's scopes were checked. It validates the header and claims the record of
   *this API key*: a lesser key of the same tenant gets its 403 before anything is looked up,
   and can neither receive another key's stored answer (an admin's freshly minted API key) nor
   learn which Idempotency-Keys exist. A replay is answered from here (:class:`Replay`).
3. The route's unit of work (:class:`api.db.engine.UnitSession`, handed out by
   ``api.http.deps.get_session``) holds its commit back; when the answer is complete the middleware
   stores it **in that same transaction** and commits both. So an applied request always has
   its answer stored, and an answer is stored only for work that committed: a failure while
   storing rolls the work back and answers the same 503 as any database failure, and the retry
   runs the request once. A 5xx, a 401/403/429 or a crash releases the key instead.

What is kept: 2xx and 4xx answers (the outcome of this request), except 401/403/429, which say
nothing about the request itself. Stored answers are sealed at rest (they can hold secrets).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio.to_thread
from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal
from api.crypto import InvalidToken, MultiFernet, fernet
from api.db.engine import UnitSession
from api.errors import (
    PROBLEM_JSON,
    IdempotencyInProgress,
    IdempotencyMismatch,
    IdempotencyUnreadable,
    InvalidInput,
    ServiceError,
    database_error,
    problem_body,
)
from api.idempotency import service as records
from api.idempotency.keys import MAX_LENGTH, valid_idempotency_key

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
STATE_KEY = "idempotency"
_NOT_STORED = frozenset({401, 403, 429})


class Replay(Exception):
    """Raised by :func:`claim`: answer with this stored response (see :func:`replay_response`)."""

    def __init__(self, stored: records.Stored) -> None:
        super().__init__("replay")
        self.stored = stored


@dataclass(slots=True)
class KeyedRequest:
    """A POST carrying an Idempotency-Key, from the middleware to the route and back."""

    raw_key: bytes
    request_hash: str
    method: str
    path: str
    session_factory: sessionmaker[Session]
    claim: records.Claim | None = None
    _session: UnitSession | None = field(default=None, repr=False)

    def session(self, bind: Any) -> UnitSession:
        """The request's unit of work (one per request), its commit held once claimed."""
        if self._session is None:
            made = self.session_factory(bind=bind)
            assert isinstance(made, UnitSession)
            made.hold_commit = self.claim is not None
            self._session = made
        return self._session

    def claimed(self, claim: records.Claim) -> None:
        self.claim = claim
        if self._session is not None:
            self._session.hold_commit = True

    def finish(self, stored: records.Stored, now: Any, bind: Any) -> bool:
        """Store ``stored`` with the request's work and commit both (worker thread). False
        when a retry took the claim over meanwhile: the work was rolled back."""
        assert self.claim is not None
        session = self.session(bind)
        try:
            if not session.commit_held:
                session.rollback()  # the route asked for no commit: none of its work stays
            if not records.complete(session=session, claim=self.claim, stored=stored, now=now):
                session.rollback()
                return False
            session.commit_now()
            return True
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def abandon(self) -> None:
        """Roll the request's work back and free the key for a retry (worker thread). Best
        effort: if the database is away, the claim goes stale and a retry takes it over."""
        if self._session is not None:
            self._session.rollback()
            self._session.close()
        if self.claim is None:
            return
        try:
            with self.session_factory() as session:
                records.release(session=session, claim=self.claim)
        except SQLAlchemyError as exc:
            log.warning("could not release an Idempotency-Key claim: %s", type(exc).__name__)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


def keyed(request: Request) -> KeyedRequest | None:
    """The request's :class:`KeyedRequest` when it is a POST carrying an Idempotency-Key."""
    found = request.scope.get("state", {}).get(STATE_KEY)
    return found if isinstance(found, KeyedRequest) else None


def claimed(request: Request) -> KeyedRequest | None:
    """The :class:`KeyedRequest` when this request claimed its key (its work must go through
    ``KeyedRequest.session`` so that its answer is stored with it)."""
    found = keyed(request)
    return found if found is not None and found.claim is not None else None


async def claim(request: Request, principal: Principal) -> None:
    """Claim the request's Idempotency-Key for ``principal`` — called once its authorization
    has passed. Returns to let the route run; raises :class:`Replay` or the 409/422 to answer."""
    pending = keyed(request)
    if pending is None or pending.claim is not None:
        return
    key = valid_idempotency_key(pending.raw_key)
    if key is None:
        raise InvalidInput.one(
            "header.idempotency-key",
            f"must be 1 to {MAX_LENGTH} printable ASCII characters, "
            "not starting or ending with a space",
        )
    app_state = request.app.state
    now = app_state.clock()

    def do_claim() -> tuple[records.Outcome, records.Claim | records.Stored | None]:
        with app_state.session_factory() as session:
            return records.claim(
                session=session,
                tenant_id=principal.tenant_id,
                api_key_id=principal.key_id,
                key=key,
                request_hash=pending.request_hash,
                method=pending.method,
                path=pending.path,
                now=now,
                ttl=timedelta(hours=app_state.settings.idempotency_ttl_hours),
            )

    outcome, found = await anyio.to_thread.run_sync(do_claim)
    if outcome is records.Outcome.PROCEED:
        assert isinstance(found, records.Claim)
        pending.claimed(found)
    elif outcome is records.Outcome.REPLAY:
        assert isinstance(found, records.Stored)
        raise Replay(found)
    elif outcome is records.Outcome.MISMATCH:
        raise IdempotencyMismatch.one(
            "header.idempotency-key",
            "this Idempotency-Key was used with a different request; use a new key",
        )
    else:
        raise IdempotencyInProgress(
            "a request with this Idempotency-Key is still running; retry shortly"
        )


async def replay_response(request: Request, exc: Exception) -> Response:
    """The exception handler for :class:`Replay`: the stored answer, as first sent."""
    assert isinstance(exc, Replay)
    stored = exc.stored
    try:
        body = _sealer(request.app.state).decrypt(stored.body)
    except InvalidToken:
        error = IdempotencyUnreadable(
            "the stored response for this Idempotency-Key can no longer be read "
            "(the service's secret key changed); retry with a new key"
        )
        status, headers, raw = _problem(error, request.url.path)
        unreadable = Response(raw, status_code=status)
        unreadable.raw_headers = headers
        return unreadable
    response = Response(body, status_code=stored.status_code)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    response.raw_headers.append((b"idempotent-replayed", b"true"))
    return response


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
        *((k.lower().encode(), v.encode()) for k, v in error.headers().items()),
    ]
    return error.status, headers, raw


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
        body = await _read_body(receive)
        digest = hashlib.sha256()
        for part in (
            scope["method"].encode(),
            scope["path"].encode(),
            scope.get("query_string", b""),
            headers.get(b"content-type", b""),
        ):
            digest.update(part + b"\n")
        digest.update(body)
        app_state = scope["app"].state
        pending = KeyedRequest(
            raw_key=raw_key,
            request_hash=digest.hexdigest(),
            method=scope["method"],
            path=scope["path"],
            session_factory=app_state.session_factory,
        )
        scope.setdefault("state", {})[STATE_KEY] = pending
        await self._run(scope, body, send, app_state, pending)

    async def _run(
        self, scope: Scope, body: bytes, send: Send, app_state: Any, pending: KeyedRequest
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

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pending.abandon)
            raise
        assert start is not None, "the app sent no response"
        status = int(start["status"])
        payload = b"".join(chunks)
        if pending.claim is None:  # not claimed (refused, replayed): nothing of ours to store
            await anyio.to_thread.run_sync(pending.close)
        elif status >= 500 or status in _NOT_STORED:
            await anyio.to_thread.run_sync(pending.abandon)
        else:
            stored = records.Stored(
                status_code=status,
                headers=[[k.decode("latin-1"), v.decode("latin-1")] for k, v in start["headers"]],
                # Responses can carry secrets shown once (API keys, webhook secrets): seal them.
                body=_sealer(app_state).encrypt(payload),
            )
            try:
                kept = await anyio.to_thread.run_sync(
                    pending.finish, stored, app_state.clock(), app_state.write_engine
                )
            except SQLAlchemyError as exc:
                # Neither the work nor its answer committed: the answer any request gets that
                # meets this database failure (a 503 for an outage, a 409 for a constraint
                # checked at commit); the retry runs the request (once).
                await anyio.to_thread.run_sync(pending.abandon)
                error = database_error(exc, state=app_state)
                if error is None:
                    raise
                await _send_raw(send, *_problem(error, scope["path"]))
                return
            if not kept:
                await _send_raw(
                    send,
                    *_problem(
                        IdempotencyInProgress(
                            "this request ran so long that a retry with its Idempotency-Key "
                            "took it over; that retry's answer stands"
                        ),
                        scope["path"],
                    ),
                )
                return
        await send(start)
        await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _send_raw(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _sealer(app_state: Any) -> MultiFernet:
    return fernet(app_state.settings, records.SEAL_PURPOSE)


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
