"""One way for tests to serve an app under a real uvicorn: in a thread of the test's own
process (so the test can move the app's clock and read its database), on a free loopback port."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Literal

import uvicorn
from fastapi import FastAPI

from benchmarks.harness.server import free_port


@contextlib.contextmanager
def uvicorn_thread(
    app: FastAPI,
    *,
    port: int | None = None,
    lifespan: Literal["on", "off"] = "on",
    log_level: str = "warning",
    join_seconds: float = 15.0,
) -> Iterator[str]:
    """``app`` under uvicorn in a thread: its base URL while it runs. ``lifespan="off"`` when a
    test client already ran the app's lifespan (its engine and caches exist). An event stream a
    client left open does not hold the shutdown more than two seconds."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level=log_level,
        lifespan=lifespan,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=join_seconds)
