"""A lean HTTP/1.1 keep-alive client for load generation: one connection, one request at a time.

Why not httpx: the load generator runs on the same two cores as the server it measures, so
every millisecond of CPU it spends per request is a millisecond the server lacks. httpx (with
one pooled client per simulated client, its cheapest set-up) cost 0.6-1.35 ms of CPU per request
here; this client costs about a tenth of that, because it does only what a load generator
needs: write a request that is the same bytes every time but for the path, and parse the
response with ``httptools`` (the llhttp parser uvicorn itself uses). It supports exactly what
the benchmarks send — ``GET``, and ``POST`` (or ``PATCH``, ...) with an optional JSON or HTML
form (``application/x-www-form-urlencoded``) body; fixed headers; never ``HEAD``, whose answer
has no body — and follows the server's keep-alive decision: a response that closes the
connection makes the next request open a new one.

Everything is plain asyncio (:class:`asyncio.Protocol`), so it runs on uvloop or the standard
event loop alike.
"""

from __future__ import annotations

import asyncio
import json as _json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httptools

_JSON = b"application/json"
_FORM = b"application/x-www-form-urlencoded"


class Response:
    """What one exchange returned: the status and the body (bytes, decoded on demand)."""

    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        return _json.loads(self.body)


class ConnectionClosed(ConnectionError):
    """The server closed the connection (or it broke) before answering a request in full."""


class _Exchange(asyncio.Protocol):
    """One TCP connection: feeds what arrives to httptools and completes one waiting request
    per response message."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.body: list[bytes] = []
        self.keep_alive = True
        self.lost = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; both have write() and close().
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionClosed(str(exc) if exc else "connection closed by the server"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self.parser.get_status_code(), b"".join(self.body)))

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class KeepAliveClient:
    """One simulated client: a single keep-alive connection to ``base`` ("http://host:port")
    and at most one request in flight. ``headers`` go on every request."""

    def __init__(self, base: str, headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"base must be http://host[:port], got {base!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        fixed = {"Host": parts.netloc, "User-Agent": "switchboard-bench", **(headers or {})}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._conn: _Exchange | None = None
        # One request at a time on the one connection (HTTP/1.1 without pipelining): callers
        # that overlap wait their turn, as on a pool of one connection.
        self._turn = asyncio.Lock()

    async def _connection(self) -> _Exchange:
        conn = self._conn
        if conn is None or conn.lost or not conn.keep_alive:
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(_Exchange, self.host, self.port)
            self._conn = conn
        return conn

    async def post(
        self, path: str, json: Any = None, *, form: Mapping[str, str] | None = None
    ) -> Response:
        """Send ``POST path`` (with ``json``, or ``form`` as an HTML form would post it, as the
        body when given) and wait for the answer."""
        if form is not None:
            if json is not None:
                raise ValueError("a body is JSON or a form, not both")
            body = urlencode(form).encode("ascii")
            async with self._turn:
                return await self._exchange(b"POST", path, body, _FORM)
        return await self.request("POST", path, json)

    async def get(self, path: str) -> Response:
        """Send ``GET path`` (the query string, already encoded, goes in ``path``)."""
        return await self.request("GET", path)

    async def request(self, method: str, path: str, json: Any = None) -> Response:
        """Send ``method path``, with ``json`` as the body when given (GET sends none), and wait
        for the answer."""
        body = b"" if json is None else _json.dumps(json).encode()
        async with self._turn:
            return await self._exchange(method.encode("ascii"), path, body)

    async def _exchange(
        self, method: bytes, path: str, body: bytes, content_type: bytes = _JSON
    ) -> Response:
        conn = await self._connection()
        assert conn.transport is not None
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        conn.waiter = waiter
        if body:
            framing = b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))
        else:
            # A bodyless GET says nothing about a body (RFC 9110 8.6); other methods say 0.
            framing = b"" if method == b"GET" else b"Content-Length: 0\r\n"
        conn.transport.write(  # type: ignore[attr-defined]
            b"%s %s HTTP/1.1\r\n%s%s\r\n%s"
            % (method, path.encode("latin-1"), self._head, framing, body)
        )
        return await waiter

    async def aclose(self) -> None:
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()
        self._conn = None

    async def __aenter__(self) -> KeepAliveClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
