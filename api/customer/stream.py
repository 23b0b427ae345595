"""The waiting room's event stream (Server-Sent Events): ``event: phase`` whenever what the
room shows changes.

Each connection reads its link about once a second (:data:`POLL_SECONDS`), each time in a short
unit of work of its own in a worker thread, so an open stream holds no database connection
between reads. Between changes it sends a comment (:data:`HEARTBEAT_SECONDS`) so proxies keep
the connection open. It ends when the client goes away (checked before every read), when the
call is over or cancelled or the link opens nothing any more, and after :data:`MAX_SECONDS` in
any case: ``EventSource`` reconnects by itself (``retry``), so a long wait costs a reconnect,
never a connection held for hours.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import StreamingResponse

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
MAX_SECONDS = 300.0
RETRY_MILLISECONDS = 3000
FINAL_PHASES = frozenset({"over", "cancelled", "gone"})

Status = dict[str, str]


class Streams:
    """How many event streams this app has open (a test watches them end)."""

    def __init__(self) -> None:
        self.active = 0
        self.opened = 0


def message(data: Status) -> str:
    return f"event: phase\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def phases(
    request: Request, opening: Status, read: Callable[[], Status | None]
) -> AsyncIterator[str]:
    streams: Streams = request.app.state.customer_streams
    streams.active += 1
    streams.opened += 1
    try:
        started = beat = time.monotonic()
        last = opening
        yield f"retry: {RETRY_MILLISECONDS}\n" + message(opening)
        while last["phase"] not in FINAL_PHASES:
            await anyio.sleep(POLL_SECONDS)
            if await request.is_disconnected():
                return
            if time.monotonic() - started >= MAX_SECONDS:
                return
            current = await anyio.to_thread.run_sync(read)
            if current is None:
                current = {"phase": "gone"}
            if current != last:
                last = current
                beat = time.monotonic()
                yield message(current)
            elif time.monotonic() - beat >= HEARTBEAT_SECONDS:
                beat = time.monotonic()
                yield ": heartbeat\n\n"
    finally:
        streams.active -= 1


def response(
    request: Request, opening: Status, read: Callable[[], Status | None]
) -> StreamingResponse:
    return StreamingResponse(
        phases(request, opening, read),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},  # nginx: pass each event on at once
    )
