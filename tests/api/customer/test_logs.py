"""The link's token never reaches uvicorn's access log: a real server's access lines for a
link's pages name ``/c/<redacted>``, static files keep their path."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from api.customer.logs import REDACTED, redact
from tests.api.bookings.test_bookings import org
from tests.api.conftest import As
from tests.live_server import uvicorn_thread


def _logging_server(app: FastAPI) -> contextlib.AbstractContextManager[str]:
    """The app under uvicorn in a thread, with its access log on (as ``switchboard serve``)."""
    return uvicorn_thread(app, lifespan="off", log_level="info")


def test_redact_keeps_everything_but_the_token() -> None:
    assert redact("/c/abc_DEF-123") == f"/c/{REDACTED}"
    assert redact("/c/abc/book?tz=UTC") == f"/c/{REDACTED}/book?tz=UTC"
    assert redact("/c/static/room.js") == "/c/static/room.js"
    assert redact("/v1/tickets/c/x") == "/v1/tickets/c/x"


def test_the_access_log_never_holds_a_token(
    a: As, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    org(a)
    r = a.post("/v1/tickets/ZD-1/call-links", json={"capability_id": "net"})
    assert r.status_code == 201, r.text
    token = urlsplit(r.json()["url"]).path.rsplit("/", 1)[1]
    capsys.readouterr()
    with _logging_server(app) as base, httpx.Client(base_url=base) as c:
        assert c.get(f"/c/{token}").status_code == 200
        assert c.get(f"/c/{token}/status").status_code == 200
        assert c.get("/c/static/room.js").status_code == 200
    # uvicorn's access logger does not propagate: its lines are what its handler wrote.
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if '"GET /c/' in line]
    assert any(f"/c/{REDACTED}" in line for line in lines), lines
    assert any("/c/static/room.js" in line for line in lines), lines
    assert not any(token in line for line in lines), lines
