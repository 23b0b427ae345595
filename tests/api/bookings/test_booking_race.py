"""Two customers booking the last coverable slot at the same moment, on SQLite and PostgreSQL:
exactly one gets it (201), the other a 409 with alternatives.

Two threads, two HTTP clients. Each booking is slowed down between reading the state and
writing (the engine's ``book`` sleeps first), so both requests are certainly inside the service
at once: only the per-tenant lock (``api.db.locks.lock_tenant``) keeps the second from deciding
on the state the first is about to change. Without the lock, PostgreSQL books both (two 201s)
and SQLite's second writer fails on its stale snapshot (a 503); either way this test fails.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.bookings import service as bookings
from solver import slots as engine
from tests.api.bookings.test_bookings import BERLIN_10, TICKET, book, org, slots
from tests.api.conftest import As, TenantCtx, assert_problem, ticket_body

HOLD_SECONDS = 0.3


def test_two_bookings_race_for_the_last_agent(
    tenant_a: TenantCtx, a: As, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    org(a, agents=("ana",))  # one agent: the 09:00 call is the last one that 09:00 can take
    real_book = engine.book
    entered: list[float] = []

    def slow_book(*args: Any, **kwargs: Any) -> Any:
        entered.append(time.monotonic())
        time.sleep(HOLD_SECONDS)
        return real_book(*args, **kwargs)

    monkeypatch.setattr(bookings.slots, "book", slow_book)
    other = TestClient(app)  # a second client of the same running service
    clients = [a, As(other, tenant_a.admin_key)]
    barrier = threading.Barrier(len(clients))
    answers: list[Any] = [None, None]

    def customer(i: int) -> None:
        barrier.wait()
        answers[i] = book(clients[i], ticket=f"ZD-{i + 1}")

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409], [r.text for r in answers]
    # The lock made the second decision wait for the first commit.
    assert len(entered) == 2 and entered[1] - entered[0] >= HOLD_SECONDS * 0.9
    refused = next(r for r in answers if r.status_code == 409)
    problem = assert_problem(refused, 409)
    assert problem["reason"]["rule"] == "fully_booked"
    assert BERLIN_10 not in [s["start"] for s in problem["alternatives"]]
    listed = a.get("/v1/bookings").json()["items"]
    assert len(listed) == 1 and listed[0]["start_local"] == BERLIN_10


def test_concurrent_slot_queries_compute_one_at_a_time_and_all_answer(
    tenant_a: TenantCtx, a: As, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slot queries take no lock, but the engine work of concurrent ones would only contend for
    the GIL (measured: twice the CPU per query): the service's gate lets one compute at a time,
    and the others wait for it rather than fail."""
    org(a)
    real_find = engine.find_slots
    active, most = [0], [0]
    guard = threading.Lock()

    def watched_find(*args: Any, **kwargs: Any) -> Any:
        with guard:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            time.sleep(0.05)  # long enough for the others to arrive meanwhile
            return real_find(*args, **kwargs)
        finally:
            with guard:
                active[0] -= 1

    monkeypatch.setattr(bookings.slots, "find_slots", watched_find)
    clients = [a, *(As(TestClient(app), tenant_a.admin_key) for _ in range(3))]
    barrier = threading.Barrier(len(clients))
    answers: list[Any] = [None] * len(clients)

    def customer(i: int) -> None:
        barrier.wait()
        answers[i] = slots(clients[i])

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [r.status_code for r in answers] == [200] * len(clients)
    assert all(r.json() == answers[0].json() for r in answers)
    assert most[0] == 1


def test_a_burst_of_customers_gets_two_bookings_and_no_server_errors(
    tenant_a: TenantCtx, a: As, app: FastAPI
) -> None:
    """24 customers at once for a 09:00 that two agents can cover (half of them retrying
    safely with an Idempotency-Key): two 201s, the rest 409 with alternatives, and no 5xx on
    either backend (SQLite answered some of such a burst with "database is busy" 503s)."""
    org(a)  # ana and ben
    customers = 24
    for n in range(5, customers + 1):
        assert a.put(f"/v1/tickets/ZD-{n}", json=ticket_body(TICKET)).status_code == 201
    barrier = threading.Barrier(customers)
    answers: list[Any] = [None] * customers

    def customer(i: int) -> None:
        client = As(TestClient(app), tenant_a.admin_key)
        headers = {"Idempotency-Key": f"burst-{i}"} if i % 2 else None
        barrier.wait()
        answers[i] = book(client, ticket=f"ZD-{i + 1}", headers=headers)

    threads = [threading.Thread(target=customer, args=(i,)) for i in range(customers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 2 + [409] * (customers - 2), [
        r.text for r in answers if r.status_code not in (201, 409)
    ][:3]
    assert len(a.get("/v1/bookings").json()["items"]) == 2
