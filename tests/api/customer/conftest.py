"""Helpers for the customer's pages: a tenant with agents and a capability (the bookings
tests' ``org``), links issued through the helpdesk API, and reading the pages' HTML."""

from __future__ import annotations

import contextlib
import html
import re
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.bookings.test_bookings import org
from tests.api.conftest import As
from tests.live_server import uvicorn_thread

# Every /c response carries these (api/customer/headers.py).
PAGE_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-robots-tag": "noindex",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}

# Monday 2026-03-02: ana and ben on shift 09:00-17:00 UTC; ``net`` calls of 30 minutes on a
# 30-minute grid with an hour's notice, so at T0 (08:00 UTC) the first open start is 09:00 UTC.
FIRST = "2026-03-02T09:00:00Z"
SECOND = "2026-03-02T09:30:00Z"


@dataclass
class Link:
    id: str
    token: str

    @property
    def path(self) -> str:
        return f"/c/{self.token}"


def issue(c: As, ticket: str = "ZD-1", **extra: Any) -> Link:
    body = {"capability_id": "net", "timezone": "Europe/Berlin", "locale": "de"} | extra
    r = c.post(f"/v1/tickets/{ticket}/call-links", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    token = out["url"].rsplit("/", 1)[1]
    return Link(id=out["id"], token=token)


@pytest.fixture
def org_a(a: As) -> As:
    org(a)
    return a


def assert_headers(r: httpx2.Response) -> None:
    for name, value in PAGE_HEADERS.items():
        assert r.headers.get(name) == value, (r.request.url, name, r.headers.get(name))


def starts(page: str) -> list[str]:
    """The start values of the picker's radios, in page order."""
    return re.findall(r'<input type="radio" name="start" id="[^"]+" value="([^"]+)"', page)


def form_token(page: str) -> str:
    found = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
    assert found is not None, page
    return found.group(1)


def legends(page: str) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", m))
        for m in re.findall(r"<legend>(.*?)</legend>", page)
    ]


def by_id(page: str, element_id: str) -> bool:
    return f'id="{element_id}"' in page


def post_form(client: TestClient, url: str, data: dict[str, str]) -> httpx2.Response:
    return client.post(url, data=data, follow_redirects=False)


def book(
    client: TestClient, link: Link, start: str = FIRST, tz: str = "Europe/Berlin"
) -> httpx2.Response:
    page = client.get(link.path)
    assert page.status_code == 200, page.text
    return post_form(
        client, f"{link.path}/book", {"start": start, "tz": tz, "form_token": form_token(page.text)}
    )


def serving(app: FastAPI) -> contextlib.AbstractContextManager[str]:
    """``app`` under a real uvicorn server in a thread: its base URL while it runs."""
    return uvicorn_thread(app, join_seconds=10)
