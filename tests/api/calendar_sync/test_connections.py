"""/v1/calendar-connections: the admin API of agents' calendar connections.

The providers' own checks (:func:`calendars.problems`) are replaced by :func:`fake_problems`
here: these tests are about the API (validation reported per field, encryption, the sync
queued in the same transaction, health, isolation, never a secret in an answer); each
connector's checks are tested with the connector.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import calendars
from api.calendar_sync import connectors
from api.calendar_sync.jobs import SYNC_JOB
from api.crypto import fernet
from api.db.jobs import Job, JobStatus
from api.db.models import BusyInterval, CalendarConnection, IdempotencyRecord
from api.idempotency.service import SEAL_PURPOSE
from api.org_version import current_version
from api.settings import Settings
from tests.api.conftest import T0, As, FakeClock, TenantCtx, assert_problem

REFRESH_TOKEN = "1//secret-refresh-token-sentinel"
CLIENT_SECRET = "client-secret-sentinel"
FEED_URL = "https://calendar.example.test/private-feed-sentinel/basic.ics"
SENTINELS = (REFRESH_TOKEN, CLIENT_SECRET, FEED_URL, "private-feed-sentinel")


def fake_problems(
    provider: str, settings: Mapping[str, Any], credentials: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Rules shaped like the connectors': each provider needs its credential."""
    found = []
    if provider == "google" and not isinstance(credentials.get("refresh_token"), str):
        found.append(("credentials.refresh_token", "a refresh token is required"))
    if provider == "microsoft":
        if not isinstance(settings.get("tenant"), str):
            found.append(("settings.tenant", "the Entra tenant id is required"))
        if not isinstance(credentials.get("client_secret"), str):
            found.append(("credentials.client_secret", "a client secret is required"))
    if provider == "ics" and not str(credentials.get("url", "")).startswith("https://"):
        found.append(("credentials.url", "must be an https:// URL"))
    return found


@pytest.fixture(autouse=True)
def providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendars, "problems", fake_problems)


@pytest.fixture
def agents(a: As) -> list[str]:
    assert a.post("/v1/teams", json={"id": "t1", "name": "One"}).status_code == 201
    for agent in ("ada", "bob"):
        assert a.post("/v1/agents", json={"id": agent, "team": "t1"}).status_code == 201
    return ["ada", "bob"]


def google(agent: str = "ada", **extra: Any) -> dict[str, Any]:
    return {
        "agent_id": agent,
        "provider": "google",
        "calendars": [f"{agent}@example.test"],
        "settings": {"user": f"{agent}@example.test"},
        "credentials": {"refresh_token": REFRESH_TOKEN},
        **extra,
    }


def ics(agent: str = "bob") -> dict[str, Any]:
    return {
        "agent_id": agent,
        "provider": "ics",
        "calendars": ["personal"],
        "credentials": {"url": FEED_URL},
    }


def _row(db: Engine, connection_id: str) -> CalendarConnection:
    with Session(db) as session:
        row = session.get(CalendarConnection, (_tenant_of(db, connection_id), connection_id))
        assert row is not None
        session.expunge(row)
        return row


def _tenant_of(db: Engine, connection_id: str) -> str:
    with Session(db) as session:
        return session.scalars(
            select(CalendarConnection.tenant_id).where(CalendarConnection.id == connection_id)
        ).one()


def _syncs(db: Engine, status: JobStatus = JobStatus.QUEUED) -> list[Job]:
    with Session(db) as session:
        jobs = list(session.scalars(select(Job).where(Job.kind == SYNC_JOB, Job.status == status)))
        session.expunge_all()
        return jobs


def _no_secret_in(text: str) -> None:
    for sentinel in SENTINELS:
        assert sentinel not in text


# --- create --------------------------------------------------------------------------------


def test_create_stores_encrypted_credentials_and_queues_a_full_sync(
    a: As, agents: list[str], db: Engine, settings: Settings
) -> None:
    r = a.post("/v1/calendar-connections", json=google())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("cal_") and len(body["id"]) == 20
    int(body["id"][4:], 16)
    assert body["agent_id"] == "ada"
    assert body["provider"] == "google"
    assert body["calendars"] == ["ada@example.test"]
    assert body["settings"] == {"user": "ada@example.test"}
    assert body["status"] == "active"
    assert body["failure"] is None
    # Never synced yet: the agent is blocked (fail closed) and says why.
    assert body["blocked"] is True
    assert "has not completed a sync yet" in body["block_reason"]
    assert body["last_success_at"] is None and body["lag_seconds"] is None
    assert (body["consecutive_failures"], body["busy_count"]) == (0, 0)
    assert "credentials" not in body and "channel_token" not in body
    _no_secret_in(r.text)

    row = _row(db, body["id"])
    assert REFRESH_TOKEN not in row.credentials  # encrypted at rest
    assert connectors.decrypt_credentials(settings, row.credentials) == {
        "refresh_token": REFRESH_TOKEN
    }
    assert (row.cursors, row.channels, row.channel_token) == ({}, {}, None)
    [job] = _syncs(db)
    assert job.payload == {"connection_id": body["id"], "full": True}
    assert job.tenant_id == row.tenant_id


def test_create_names_each_bad_setting_and_credential(a: As, agents: list[str], db: Engine) -> None:
    body = {
        "agent_id": "ada",
        "provider": "microsoft",
        "calendars": ["AAMkAGI2"],
        "settings": {},
        "credentials": {},
    }
    r = a.post("/v1/calendar-connections", json=body)
    problem = assert_problem(r, 422, "settings.tenant", "credentials.client_secret")
    assert problem["type"].endswith("/invalid-input")
    r = a.post("/v1/calendar-connections", json={**ics(), "credentials": {"url": "http://x"}})
    assert_problem(r, 422, "credentials.url")
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(CalendarConnection)) == 0
    assert _syncs(db) == []  # nothing half-written


def test_create_refuses_an_unknown_agent_naming_agent_id(a: As, agents: list[str]) -> None:
    assert_problem(a.post("/v1/calendar-connections", json=google("nobody")), 422, "agent_id")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"provider": "caldav"}, "provider"),
        ({"calendars": []}, "calendars"),
        ({"calendars": ["x", "x"]}, "calendars"),
        ({"credentials": "token"}, "credentials"),
        ({"settings": [1]}, "settings"),
        ({"agent_id": ""}, "agent_id"),
        ({"extra": 1}, "extra"),
    ],
)
def test_create_refuses_malformed_bodies(
    a: As, agents: list[str], change: dict[str, Any], field: str
) -> None:
    assert_problem(a.post("/v1/calendar-connections", json=google() | change), 422, field)


def test_an_ics_connection_reads_exactly_one_feed(a: As, agents: list[str]) -> None:
    r = a.post("/v1/calendar-connections", json={**ics(), "calendars": ["one", "two"]})
    assert_problem(r, 422, "calendars")
    assert a.post("/v1/calendar-connections", json=ics()).status_code == 201


def test_only_admin_keys_manage_connections(a: As, agents: list[str], tenant_a: TenantCtx) -> None:
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    for scope in ("planner", "helpdesk"):
        key = tenant_a.key(scope)
        for method, url, body in (
            ("POST", "/v1/calendar-connections", google("bob")),
            ("GET", "/v1/calendar-connections", None),
            ("GET", f"/v1/calendar-connections/{connection}", None),
            ("PATCH", f"/v1/calendar-connections/{connection}", {"settings": {}}),
            ("POST", f"/v1/calendar-connections/{connection}/pause", None),
            ("POST", f"/v1/calendar-connections/{connection}/resume", None),
            ("POST", f"/v1/calendar-connections/{connection}/resync", None),
            ("DELETE", f"/v1/calendar-connections/{connection}", None),
        ):
            r = key.request(method, url, json=body)
            assert_problem(r, 403)
    assert a.get(f"/v1/calendar-connections/{connection}").status_code == 200


def test_another_tenants_connection_is_a_404_everywhere(a: As, b: As, agents: list[str]) -> None:
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("POST", "/resync"),
        ("DELETE", ""),
    ):
        body = {"settings": {}} if method == "PATCH" else None
        r = b.request(method, f"/v1/calendar-connections/{connection}{suffix}", json=body)
        assert_problem(r, 404)
    assert b.get("/v1/calendar-connections").json()["items"] == []
    # Tenant B cannot connect tenant A's agent either.
    assert_problem(b.post("/v1/calendar-connections", json=google()), 422, "agent_id")
    assert a.get(f"/v1/calendar-connections/{connection}").status_code == 200


# --- reading -------------------------------------------------------------------------------


def test_list_filters_and_pages(a: As, agents: list[str]) -> None:
    made = [
        a.post("/v1/calendar-connections", json=google("ada")).json()["id"],
        a.post("/v1/calendar-connections", json=google("bob")).json()["id"],
        a.post("/v1/calendar-connections", json=ics("bob")).json()["id"],
    ]
    a.post(f"/v1/calendar-connections/{made[2]}/pause")
    everything = a.get("/v1/calendar-connections").json()
    assert [c["id"] for c in everything["items"]] == sorted(made)
    assert everything["next_cursor"] is None

    def ids(query: str) -> set[str]:
        r = a.get(f"/v1/calendar-connections?{query}")
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["items"]}

    assert ids("agent_id=bob") == {made[1], made[2]}
    assert ids("provider=ics") == {made[2]}
    assert ids("status=paused") == {made[2]}
    assert ids("status=active&agent_id=bob") == {made[1]}
    assert ids("agent_id=nobody") == set()

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = a.get("/v1/calendar-connections", params=params).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made)
    assert_problem(a.get("/v1/calendar-connections?provider=outlook"), 422, "query.provider")
    assert_problem(a.get("/v1/calendar-connections?cursor=nonsense"), 422, "query.cursor")


def test_health_shows_lag_staleness_and_failure(
    a: As, agents: list[str], db: Engine, clock: FakeClock, settings: Settings
) -> None:
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    tenant_id = _tenant_of(db, connection)
    with Session(db) as session:
        row = session.get(CalendarConnection, (tenant_id, connection))
        assert row is not None
        row.last_attempt_at = row.last_success_at = clock.now - timedelta(seconds=90)
        row.busy_count = 7
        session.commit()
    body = a.get(f"/v1/calendar-connections/{connection}").json()
    assert body["lag_seconds"] == 90
    assert body["busy_count"] == 7
    assert (body["blocked"], body["block_reason"]) == (False, None)

    clock.advance(seconds=settings.calendar_max_staleness_seconds)
    body = a.get(f"/v1/calendar-connections/{connection}").json()
    assert body["blocked"] is True and "is stale" in body["block_reason"]

    with Session(db) as session:
        row = session.get(CalendarConnection, (tenant_id, connection))
        assert row is not None
        row.status, row.failure = "failed", "invalid_grant: the refresh token was revoked"
        row.last_error, row.last_error_at = row.failure, clock.now
        row.consecutive_failures = 3
        session.commit()
    body = a.get(f"/v1/calendar-connections/{connection}").json()
    assert body["status"] == "failed"
    assert body["blocked"] is True and "invalid_grant" in body["block_reason"]
    assert body["last_error"].startswith("invalid_grant")
    assert body["consecutive_failures"] == 3
    failed = a.get("/v1/calendar-connections?status=failed").json()["items"]
    assert [c["id"] for c in failed] == [connection]


# --- changing ------------------------------------------------------------------------------


def _fail(db: Engine, connection: str) -> None:
    with Session(db) as session:
        row = session.get(CalendarConnection, (_tenant_of(db, connection), connection))
        assert row is not None
        row.status, row.failure, row.consecutive_failures = "failed", "invalid_grant", 2
        row.cursors = {"ada@example.test": "sync-token-1"}
        session.commit()
    with Session(db) as session:  # the first sync ran
        for job in session.scalars(select(Job).where(Job.kind == SYNC_JOB)):
            job.status = JobStatus.SUCCEEDED
        session.commit()


def test_new_credentials_are_tried_but_the_agent_stays_blocked_until_they_work(
    a: As, agents: list[str], db: Engine, settings: Settings
) -> None:
    """New credentials queue a full sync; the connection stays failed (its agent unavailable
    for new calls) until that sync succeeds: clearing the failure now would make the agent look
    free on credentials nobody has tried (the sync clears it and announces the recovery)."""
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    _fail(db, connection)
    new_token = "1//another-refresh-token"
    r = a.patch(
        f"/v1/calendar-connections/{connection}",
        json={"credentials": {"refresh_token": new_token}},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["failure"]) == ("failed", "invalid_grant")
    assert r.json()["blocked"] is True
    assert new_token not in r.text
    row = _row(db, connection)
    assert connectors.decrypt_credentials(settings, row.credentials) == {"refresh_token": new_token}
    [job] = _syncs(db)
    assert job.payload == {"connection_id": connection, "full": True}


def test_patch_settings_is_checked_with_the_stored_credentials(
    a: As, agents: list[str], db: Engine
) -> None:
    body = {
        "agent_id": "ada",
        "provider": "microsoft",
        "calendars": ["AAMkAGI2"],
        "settings": {"tenant": "contoso"},
        "credentials": {"client_secret": CLIENT_SECRET},
    }
    connection = a.post("/v1/calendar-connections", json=body).json()["id"]
    url = f"/v1/calendar-connections/{connection}"
    assert_problem(a.patch(url, json={"settings": {"mailbox": "ada"}}), 422, "settings.tenant")
    assert _row(db, connection).settings == {"tenant": "contoso"}  # unchanged
    r = a.patch(url, json={"settings": {"tenant": "fabrikam"}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == {"tenant": "fabrikam"}
    _no_secret_in(r.text)
    assert_problem(a.patch(url, json={"credentials": {}}), 422, "credentials.client_secret")
    assert_problem(a.patch(url, json={"calendars": []}), 422, "calendars")
    assert_problem(a.patch(url, json={"settings": None}), 422, "settings")


def test_patch_calendars_keeps_only_their_cursors(a: As, agents: list[str], db: Engine) -> None:
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    _fail(db, connection)
    r = a.patch(
        f"/v1/calendar-connections/{connection}",
        json={"calendars": ["ada@example.test", "team@example.test"]},
    )
    assert r.status_code == 200, r.text
    row = _row(db, connection)
    assert row.calendars == ["ada@example.test", "team@example.test"]
    assert row.cursors == {"ada@example.test": "sync-token-1"}
    assert row.status == "failed"  # a calendar list does not revive a dead credential
    assert len(_syncs(db)) == 1


def test_patch_of_stored_credentials_no_key_opens_asks_for_them(
    a: As, agents: list[str], db: Engine
) -> None:
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    lost = connectors.encrypt_credentials(Settings(secret_key="x" * 40), {"refresh_token": "t"})
    with Session(db) as session:
        row = session.get(CalendarConnection, (_tenant_of(db, connection), connection))
        assert row is not None
        row.credentials = lost
        session.commit()
    url = f"/v1/calendar-connections/{connection}"
    body = assert_problem(a.patch(url, json={"settings": {}}), 422, "credentials")
    assert "no key" in body["detail"]
    new = {"settings": {}, "credentials": {"refresh_token": "1//fresh"}}
    assert a.patch(url, json=new).status_code == 200


def test_pause_resume_and_resync(a: As, agents: list[str], db: Engine) -> None:
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    url = f"/v1/calendar-connections/{connection}"
    r = a.post(f"{url}/pause")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["blocked"]) == ("paused", False)
    assert _syncs(db) == []
    [cancelled] = _syncs(db, JobStatus.CANCELLED)
    assert cancelled.payload["connection_id"] == connection
    assert a.post(f"{url}/pause").json()["status"] == "paused"  # again: still paused
    assert_problem(a.post(f"{url}/resync"), 409)
    # A paused connection's PATCH keeps it paused and queues nothing; resume does.
    assert a.patch(url, json={"settings": {}}).json()["status"] == "paused"
    assert _syncs(db) == []
    r = a.post(f"{url}/resume")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    [job] = _syncs(db)
    assert job.payload["connection_id"] == connection

    _fail(db, connection)
    r = a.post(f"{url}/resync")
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    assert r.json()["kind"] == SYNC_JOB
    assert r.json()["payload"] == {"connection_id": connection, "full": True}
    assert _row(db, connection).cursors == {}
    # The job is readable where the Location says; a second resync folds into it.
    assert a.get(r.headers["location"]).json()["status"] == "queued"
    assert a.post(f"{url}/resync").json()["id"] == r.json()["id"]
    # Resume syncs a failed connection again, but it stays failed (its agent blocked) until
    # that sync succeeds.
    resumed = a.post(f"{url}/resume").json()
    assert (resumed["status"], resumed["blocked"]) == ("failed", True)


def test_pause_drops_the_waiting_sync_and_resume_queues_one_not_full(
    a: As, agents: list[str], db: Engine
) -> None:
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    _fail(db, connection)
    a.post(f"/v1/calendar-connections/{connection}/pause")
    a.post(f"/v1/calendar-connections/{connection}/resume")
    [job] = _syncs(db)
    assert job.payload == {"connection_id": connection, "full": False}


# --- deleting ------------------------------------------------------------------------------


def test_delete_removes_the_connection_and_its_mirror_only(
    a: As, agents: list[str], db: Engine
) -> None:
    connection = a.post("/v1/calendar-connections", json=google()).json()["id"]
    other = a.post("/v1/calendar-connections", json=ics("ada")).json()["id"]
    manual = a.post(
        "/v1/busy",
        json={"agent": "ada", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"},
    )
    assert manual.status_code == 201, manual.text
    tenant_id = _tenant_of(db, connection)
    with Session(db) as session:
        for n, source in enumerate([connection, connection, other]):
            session.add(
                BusyInterval(
                    tenant_id=tenant_id,
                    id=f"mirror-{n}",
                    agent_id="ada",
                    start_at=T0 + timedelta(hours=n),
                    end_at=T0 + timedelta(hours=n, minutes=30),
                    source=f"calendar:{source}",
                    synced_at=T0,
                    created_at=T0,
                    updated_at=T0,
                )
            )
        session.commit()
    before = a.get("/v1/busy?agent=ada").json()["items"]
    assert len(before) == 4
    with Session(db) as session:
        version = current_version(session, tenant_id)
    r = a.delete(f"/v1/calendar-connections/{connection}")
    assert r.status_code == 204, r.text
    with Session(db) as session:  # the caches built on the busy time it freed are stale now
        assert current_version(session, tenant_id) > version
    left = {i["id"] for i in a.get("/v1/busy?agent=ada").json()["items"]}
    assert left == {manual.json()["id"], "mirror-2"}
    assert_problem(a.get(f"/v1/calendar-connections/{connection}"), 404)
    assert_problem(a.delete(f"/v1/calendar-connections/{connection}"), 404)
    assert [j.payload["connection_id"] for j in _syncs(db)] == [other]


# --- secrets never leave -------------------------------------------------------------------


def test_no_answer_ever_carries_credentials_or_channel_tokens(
    a: As, agents: list[str], db: Engine, settings: Settings
) -> None:
    answers: list[str] = []

    def keep(r: Any) -> Any:
        answers.append(r.text + json.dumps(dict(r.headers)))
        return r

    body = {
        "agent_id": "ada",
        "provider": "microsoft",
        "calendars": ["AAMkAGI2"],
        "settings": {"tenant": "contoso"},
        "credentials": {"client_secret": CLIENT_SECRET},
    }
    ms = keep(a.post("/v1/calendar-connections", json=body)).json()["id"]
    feed = keep(
        a.post("/v1/calendar-connections", json=ics(), headers={"Idempotency-Key": "feed-1"})
    ).json()["id"]
    keep(a.post("/v1/calendar-connections", json=ics(), headers={"Idempotency-Key": "feed-1"}))
    g = keep(a.post("/v1/calendar-connections", json=google())).json()["id"]
    with Session(db) as session:
        row = session.get(CalendarConnection, (_tenant_of(db, g), g))
        assert row is not None
        row.channel_token = connectors.encrypt_channel_token(settings, "channel-token-sentinel")
        row.channels = {"ada@example.test": {"channel_id": "ch-1"}}
        session.commit()
    for connection in (ms, feed, g):
        url = f"/v1/calendar-connections/{connection}"
        keep(a.get(url))
        keep(a.patch(url, json={"settings": body["settings"] if connection == ms else {}}))
        keep(a.post(f"{url}/pause"))
        keep(a.post(f"{url}/resume"))
        keep(a.post(f"{url}/resync"))
    keep(a.get("/v1/calendar-connections"))
    keep(a.get("/v1/jobs"))
    # Refusals do not echo what was sent either.
    keep(a.post("/v1/calendar-connections", json={**ics(), "credentials": {"url": FEED_URL[5:]}}))
    keep(a.post("/v1/calendar-connections", json={**google(), "agent_id": "nobody"}))
    for connection in (ms, feed, g):
        keep(a.delete(f"/v1/calendar-connections/{connection}"))
    assert len(answers) > 20
    everything = "\n".join(answers)
    for sentinel in (*SENTINELS, "channel-token-sentinel"):
        assert sentinel not in everything
    with Session(db) as session:  # and the stored idempotent answer holds none either
        [record] = session.scalars(select(IdempotencyRecord))
        assert record.response_body is not None
        answer = fernet(settings, SEAL_PURPOSE).decrypt(record.response_body)
        assert feed.encode() in answer
        for sentinel in SENTINELS:
            assert sentinel.encode() not in answer
