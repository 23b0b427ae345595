"""The service under a real uvicorn on a free loopback port, in a thread of the test's own
process, with a clock the test can move: for the browser tests and the customer pages'
benchmark smoke test."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from api.main import create_app
from api.settings import Environment, Settings
from benchmarks.harness.server import free_port
from tests.live_server import uvicorn_thread


class MovableClock:
    """The service's clock: the wall clock, plus an offset the test moves forward (to open a
    call's waiting room without waiting for it). Read from the server's thread."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def jump_to(self, at: datetime) -> None:
        with self._lock:
            self._offset = at - datetime.now(UTC)


@dataclass(frozen=True)
class Live:
    base: str  # http://127.0.0.1:<port>
    settings: Settings
    clock: MovableClock


@contextlib.contextmanager
def live_service(database_url: str) -> Iterator[Live]:
    """The service on a free loopback port under a real uvicorn (in a thread of this process,
    so the test can move its clock), with its public base URL set to that address."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=database_url, environment=Environment.TEST, public_base_url=base
    )
    clock = MovableClock()
    app = create_app(settings, clock=clock)
    with uvicorn_thread(app, port=port):
        yield Live(base, settings, clock)
