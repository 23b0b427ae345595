"""One link books once: 50 customers' browsers posting the same link's form at the same moment
to the real server (uvicorn, threads), on SQLite and PostgreSQL, book exactly one call; every
other answer is the page saying a call was already booked (409), never a server error."""

from __future__ import annotations

import threading

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.db.engine import make_session_factory
from api.db.models import Call, CallLink
from api.main import create_app
from api.settings import Settings
from tests.api.conftest import As, FakeClock
from tests.api.customer.conftest import FIRST, SECOND, by_id, form_token, issue, serving

POSTS = 50


def test_fifty_simultaneous_posts_book_exactly_once(
    org_a: As, client: TestClient, settings: Settings, clock: FakeClock, db: Engine
) -> None:
    link = issue(org_a)
    token = form_token(client.get(link.path).text)
    barrier = threading.Barrier(POSTS)
    answers: list[httpx.Response | BaseException | None] = [None] * POSTS

    def customer(i: int, base: str) -> None:
        start = FIRST if i % 2 else SECOND  # two different picks: still one call
        with httpx.Client(base_url=base, timeout=60) as http:
            barrier.wait()
            try:
                answers[i] = http.post(
                    f"{link.path}/book",
                    data={"start": start, "tz": "Europe/Berlin", "form_token": token},
                )
            except httpx.HTTPError as exc:
                answers[i] = exc

    with serving(create_app(settings, clock=clock)) as base:
        threads = [threading.Thread(target=customer, args=(i, base)) for i in range(POSTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    failures = [a for a in answers if not isinstance(a, httpx.Response)]
    assert failures == []
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    codes = sorted(r.status_code for r in responses)
    assert codes == [303] + [409] * (POSTS - 1), [
        r.text[:300] for r in responses if r.status_code not in (303, 409)
    ][:2]
    for r in responses:
        if r.status_code == 409:
            assert by_id(r.text, "already-booked") and by_id(r.text, "confirmation")
    with make_session_factory(db)() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 1
        row = session.scalars(select(CallLink)).one()
        call = session.scalars(select(Call)).one()
        assert row.booking_id == call.id and call.link_id == row.id
