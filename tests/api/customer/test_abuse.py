"""Link abuse, on SQLite and PostgreSQL: expired and revoked links are 410 pages; a random
token and a malformed one get the same 404 bytes; failed lookups per client address trip the
limiter (429 + Retry-After, even for a good link) until it resets, counted in memory or in
Redis; a found link costs nothing."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Environment, Settings
from tests.api.bookings.test_bookings import org
from tests.api.conftest import As, FakeClock, make_tenant
from tests.api.customer.conftest import (
    FIRST,
    assert_headers,
    book,
    by_id,
    form_token,
    issue,
    post_form,
)
from tests.api.http.test_rate_limits import REDIS_URL, redis_unavailable


def test_an_expired_link_is_gone(org_a: As, client: TestClient, clock: FakeClock) -> None:
    link = issue(org_a, expires_at=(clock.now + timedelta(hours=1)).isoformat())
    assert client.get(link.path).status_code == 200
    clock.advance(hours=2)
    for r in (
        client.get(link.path),
        client.get(f"{link.path}/status"),
        client.get(f"{link.path}/events"),
        post_form(client, f"{link.path}/book", {"start": FIRST, "tz": "UTC", "form_token": "x"}),
    ):
        assert r.status_code == 410, (r.request.url, r.text)
        assert by_id(r.text, "gone")
        assert_headers(r)


def test_a_revoked_link_is_gone_even_mid_booking(org_a: As, client: TestClient) -> None:
    link = issue(org_a)
    page = client.get(link.path).text
    r = org_a.post(f"/v1/call-links/{link.id}/revoke")
    assert r.status_code == 200, r.text
    r = post_form(
        client,
        f"{link.path}/book",
        {"start": FIRST, "tz": "Europe/Berlin", "form_token": form_token(page)},
    )
    assert r.status_code == 410 and by_id(r.text, "gone")
    assert client.get(link.path).status_code == 410
    assert org_a.get("/v1/bookings").json()["items"] == []


def test_unknown_tokens_random_or_malformed_get_the_same_bytes(client: TestClient) -> None:
    answers = [
        client.get(f"/c/{token}")
        for token in (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            "not%20a%20token",
            "x" * 300,
            "%C3%A9t%C3%A9",
            "..%2F..",
        )
    ]
    assert {r.status_code for r in answers} == {404}
    assert len({r.content for r in answers}) == 1
    assert by_id(answers[0].text, "not-found")
    for r in answers:
        assert_headers(r)


def test_another_tenants_link_opens_that_tenants_page_only(
    org_a: As, b: As, client: TestClient
) -> None:
    """Tokens are global: a link issued by tenant B opens B's page, and tenant A's helpdesk
    cannot see or revoke it."""
    org(b)
    link = issue(b, "ZD-2")
    assert by_id(client.get(link.path).text, "pick") and "ZD-2" in client.get(link.path).text
    assert org_a.get(f"/v1/call-links/{link.id}").status_code == 404
    assert org_a.post(f"/v1/call-links/{link.id}/revoke").status_code == 404
    assert client.get(link.path).status_code == 200


def _limited_app(db_url: str, clock: FakeClock, **extra: Any) -> TestClient:
    settings = Settings(
        database_url=db_url,
        environment=Environment.TEST,
        link_lookup_failures="3/minute",
        **extra,
    )
    return TestClient(create_app(settings, clock=clock))


@pytest.fixture
def limited(db: Engine, db_url: str, clock: FakeClock) -> Iterator[TestClient]:
    with _limited_app(db_url, clock) as client:
        yield client


def _trips_and_resets(db: Engine, client: TestClient) -> None:
    a = make_tenant(db, client, "A").admin
    org(a)
    link = issue(a)
    for _ in range(10):  # found links never count, nor other addresses under /c
        assert client.get(link.path).status_code == 200
        assert client.get(f"{link.path}/book").status_code == 404
    for _ in range(3):
        assert client.get(f"/c/{secrets.token_urlsafe(32)}").status_code == 404
    # Over the limit: every lookup from this address is refused, the good link's too.
    for r in (
        client.get(link.path),
        client.get(f"/c/{secrets.token_urlsafe(32)}"),
        client.get(f"{link.path}/status"),
        post_form(client, f"{link.path}/book", {"start": FIRST, "tz": "UTC", "form_token": "x"}),
    ):
        assert r.status_code == 429, r.text
        assert by_id(r.text, "too-many")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert_headers(r)
    client.app.state.link_limiter.reset()
    assert client.get(link.path).status_code == 200
    assert book(client, link).status_code == 303


def test_failed_lookups_trip_the_limit_and_it_resets(db: Engine, limited: TestClient) -> None:
    _trips_and_resets(db, limited)


def test_gone_links_count_as_failed_lookups(
    db: Engine, limited: TestClient, clock: FakeClock
) -> None:
    a = make_tenant(db, limited, "A").admin
    org(a)
    link = issue(a, expires_at=(clock.now + timedelta(minutes=5)).isoformat())
    clock.advance(minutes=10)
    assert [limited.get(link.path).status_code for _ in range(4)] == [410, 410, 410, 429]


def test_the_limit_is_shared_through_redis(db: Engine, db_url: str, clock: FakeClock) -> None:
    reason = redis_unavailable()
    if reason:
        pytest.skip(reason)
    extra = {
        "redis_url": REDIS_URL,
        "link_lookup_redis_prefix": f"switchboard-test:{os.getpid()}:{uuid.uuid4().hex}:",
    }
    with _limited_app(db_url, clock, **extra) as one, _limited_app(db_url, clock, **extra) as two:
        # Two processes' worth of apps share the count: two failures here, one there.
        for _ in range(2):
            assert one.get(f"/c/{secrets.token_urlsafe(32)}").status_code == 404
        assert two.get(f"/c/{secrets.token_urlsafe(32)}").status_code == 404
        assert one.get(f"/c/{secrets.token_urlsafe(32)}").status_code == 429
        assert two.get(f"/c/{secrets.token_urlsafe(32)}").status_code == 429
        two.app.state.link_limiter.reset()
        _trips_and_resets(db, one)


class FakeTime:
    """``time`` for the limiter and its memory storage: the window passes when told to."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def test_the_limit_lifts_when_the_window_passes(
    db: Engine, limited: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import limits.storage.memory

    import api.links.limiter

    fake = FakeTime()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    monkeypatch.setattr(api.links.limiter, "time", fake)
    a = make_tenant(db, limited, "A").admin
    org(a)
    link = issue(a)
    for _ in range(3):
        assert limited.get(f"/c/{secrets.token_urlsafe(32)}").status_code == 404
    fake.now += 20
    r = limited.get(link.path)
    assert r.status_code == 429 and r.headers["Retry-After"] == "40"
    fake.now += 39
    assert limited.get(link.path).status_code == 429
    fake.now += 2  # the first failure left the minute's window
    assert limited.get(link.path).status_code == 200
