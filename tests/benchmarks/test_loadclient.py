"""The load benchmark's lean HTTP client (``benchmarks.loadclient``): against a scripted local
server for the protocol's edges, and against the real service under uvicorn for the whole path
the benchmark takes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.db import migrate
from api.main import create_app
from api.settings import Environment, Settings
from benchmarks.harness.databases import sqlite_url
from benchmarks.harness.load import ASSIGNED, SUCCESS, drive
from benchmarks.harness.seed import seed_tenant
from benchmarks.loadclient import ConnectionClosed, KeepAliveClient
from tests.live_server import uvicorn_thread

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    line, *rest = head[:-4].split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(b":", 1) for h in rest)}
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return line, headers, body


async def _with_server(handler: Handler, run: Callable[[str], Awaitable[None]]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:  # also when cancelled at the end of the test: no writer left open
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await run(f"http://127.0.0.1:{port}")


def test_keeps_one_connection_and_sends_headers_and_json() -> None:
    seen: list[tuple[bytes, dict[bytes, bytes], bytes]] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                seen.append(await _read_request(reader))
                body = b'{"n": %d}' % len(seen)
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()

    async def run(base: str) -> None:
        async with KeepAliveClient(base, {"Authorization": "Bearer k"}) as client:
            first = await client.post("/a/1")
            second = await client.post("/a/2", json={"dry_run": True})
        assert (first.status_code, first.json()) == (201, {"n": 1})
        assert (second.status_code, second.json()) == (201, {"n": 2})

    asyncio.run(_with_server(handler, run))
    assert connections == 1
    assert [line for line, _, _ in seen] == [b"POST /a/1 HTTP/1.1", b"POST /a/2 HTTP/1.1"]
    assert all(h[b"authorization"] == b"Bearer k" for _, h, _ in seen)
    assert seen[0][2] == b"" and seen[1][2] == b'{"dry_run": true}'
    assert seen[1][1][b"content-type"] == b"application/json"


def test_posts_a_form_as_a_browser_would() -> None:
    seen: list[tuple[bytes, dict[bytes, bytes], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                seen.append(await _read_request(reader))
                writer.write(
                    b"HTTP/1.1 303 See Other\r\nLocation: /c/t\r\nContent-Length: 0\r\n\r\n"
                )
                await writer.drain()

    async def run(base: str) -> None:
        async with KeepAliveClient(base) as client:
            form = {"start": "2026-03-02T09:00:00Z", "tz": "America/New_York", "form_token": "a b"}
            answer = await client.post("/c/t/book", form=form)
            assert answer.status_code == 303 and answer.body == b""
            with pytest.raises(ValueError, match="not both"):
                await client.post("/c/t/book", json={}, form=form)

    asyncio.run(_with_server(handler, run))
    ((line, headers, body),) = seen
    assert line == b"POST /c/t/book HTTP/1.1"
    assert headers[b"content-type"] == b"application/x-www-form-urlencoded"
    assert body == (b"start=2026-03-02T09%3A00%3A00Z&tz=America%2FNew_York&form_token=a+b")
    assert int(headers[b"content-length"]) == len(body)


def test_get_sends_no_body_and_other_methods_go_as_named() -> None:
    seen: list[tuple[bytes, dict[bytes, bytes], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                seen.append(await _read_request(reader))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
                await writer.drain()

    async def run(base: str) -> None:
        async with KeepAliveClient(base, {"Authorization": "Bearer k"}) as client:
            got = await client.get("/v1/capabilities/c/slots?tz=Europe%2FBerlin")
            patched = await client.request("PATCH", "/v1/agents/a", json={"status": "away"})
        assert (got.status_code, got.json()) == (200, [])
        assert patched.status_code == 200

    asyncio.run(_with_server(handler, run))
    (get_line, get_headers, get_body), (patch_line, patch_headers, patch_body) = seen
    assert get_line == b"GET /v1/capabilities/c/slots?tz=Europe%2FBerlin HTTP/1.1"
    assert get_headers[b"authorization"] == b"Bearer k" and get_body == b""
    assert b"content-length" not in get_headers and b"content-type" not in get_headers
    assert patch_line == b"PATCH /v1/agents/a HTTP/1.1"
    assert patch_body == b'{"status": "away"}'
    assert patch_headers[b"content-type"] == b"application/json"


def test_reconnects_after_the_server_closes_and_reports_a_dropped_request() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        line, _, _ = await _read_request(reader)
        if not line.startswith(b"POST /drop"):  # /drop: no answer at all
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def run(base: str) -> None:
        async with KeepAliveClient(base) as client:
            assert (await client.post("/x")).body == b"ok"
            assert (await client.post("/y")).body == b"ok"  # a new connection, not an error
            with pytest.raises(ConnectionClosed):
                await client.post("/drop")
            assert (await client.post("/z")).status_code == 200  # and it recovers

    asyncio.run(_with_server(handler, run))
    assert connections == 4


def test_overlapping_requests_on_one_client_take_turns() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                line, _, _ = await _read_request(reader)
                path = line.split()[1]
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
                await writer.drain()

    async def run(base: str) -> None:
        async with KeepAliveClient(base) as client:
            answers = await asyncio.gather(*(client.post(f"/p{i}") for i in range(5)))
        assert [a.body for a in answers] == [f"/p{i}".encode() for i in range(5)]

    asyncio.run(_with_server(handler, run))


def test_rejects_a_base_it_cannot_speak_to() -> None:
    with pytest.raises(ValueError, match="http://host"):
        KeepAliveClient("https://example.com")


def _uvicorn(settings: Settings) -> contextlib.AbstractContextManager[str]:
    return uvicorn_thread(create_app(settings), join_seconds=10)


def test_the_benchmark_drives_the_real_service_with_it(tmp_path: Path) -> None:
    """The benchmark's default path end to end: uvicorn, real sockets, this client, and the
    outcome counting that tells an assignment from a team-queue answer."""
    url = sqlite_url(tmp_path)
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment=Environment.TEST)
    seeded = seed_tenant(settings, now=datetime.now(UTC), n_agents=4, n_tickets=12, batch=12)
    with _uvicorn(settings) as base:
        latencies, elapsed, outcomes, _ = asyncio.run(
            drive(
                base,
                seeded.helpdesk_key,
                seeded.ticket_ids,
                concurrency=3,
                duration=30.0,
                warmup=4,
                client="raw",
            )
        )
    assert outcomes.total() == 12 and set(outcomes) <= set(SUCCESS), outcomes
    assert outcomes[ASSIGNED] > 0
    assert latencies.shape == (12,) and elapsed > 0
