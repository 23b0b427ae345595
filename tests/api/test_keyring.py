"""The rotatable keyring (api/crypto.py) and ``switchboard rotate-secrets`` (api/rotation.py).

The end-to-end proof: secrets stored under key A (a webhook's secret and its rotated-out one,
a stored idempotent answer, calendar credentials and a channel token), the service restarted
with key B and A as a previous key, the rotation run, then the service with B alone: everything
still opens. Around it: what the rotation does with a token no key opens (counted, named, left
alone, exit status 1), re-runs, batches, and a row the running service changes meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as settings_profile
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from api import rotation
from api.calendar_sync import connectors
from api.cli import main
from api.crypto import InvalidToken, fernet, newest_fernet
from api.db.engine import make_engine
from api.db.models import Agent, CalendarConnection, IdempotencyRecord, Team
from api.db.webhooks import WebhookSubscription
from api.main import create_app
from api.settings import Environment, Settings
from api.webhooks import secrets
from tests.api.conftest import T0, As, FakeClock, make_tenant, postgres_only

KEY_A = "a" * 40
KEY_B = "b" * 40
KEY_C = "c" * 40
CREDENTIALS = {"refresh_token": "1//refresh-token-sentinel"}
CHANNEL_TOKEN = "channel-token-sentinel"


def _settings(db_url: str, secret: str, previous: str | None = None) -> Settings:
    return Settings(
        database_url=db_url,
        environment=Environment.TEST,
        secret_key=secret,
        previous_secret_keys=previous,
        webhook_allow_private_urls=True,
        webhook_allow_http=True,
    )


@pytest.fixture
def settings(db: Engine, db_url: str) -> Settings:
    return _settings(db_url, KEY_A)


def _client(settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    app = create_app(settings, clock=FakeClock(T0))
    app.state.webhook_resolver = lambda host, port: ["127.0.0.1"]
    with TestClient(app) as client:
        yield app, client


# --- the keyring ---------------------------------------------------------------------------


def test_encrypts_with_the_newest_key_and_opens_with_any() -> None:
    old = fernet(Settings(secret_key=KEY_A), "p/v1")
    ring = fernet(Settings(secret_key=KEY_B, previous_secret_keys=f"{KEY_C}, {KEY_A}"), "p/v1")
    newest = fernet(Settings(secret_key=KEY_B), "p/v1")
    assert ring.decrypt(old.encrypt(b"x")) == b"x"
    fresh = ring.encrypt(b"y")
    assert newest.decrypt(fresh) == b"y"  # the newest key alone opens what the ring writes
    with pytest.raises(InvalidToken):
        old.decrypt(fresh)
    # Purposes stay apart: a webhook secret's key does not open a stored answer.
    with pytest.raises(InvalidToken):
        fernet(Settings(secret_key=KEY_B), "other/v1").decrypt(fresh)


@settings_profile(max_examples=40, deadline=None, derandomize=True)
@given(
    keys=st.lists(
        st.text(alphabet="abcdefgh", min_size=32, max_size=40), min_size=1, max_size=4, unique=True
    ),
    made_with=st.integers(min_value=0, max_value=3),
    plaintext=st.binary(max_size=64),
)
def test_whatever_key_of_the_ring_made_a_token_rotation_moves_it_to_the_newest(
    keys: list[str], made_with: int, plaintext: bytes
) -> None:
    ring_settings = Settings(secret_key=keys[0], previous_secret_keys=",".join(keys[1:]) or None)
    maker = fernet(Settings(secret_key=keys[made_with % len(keys)]), "p/v1")
    token = maker.encrypt(plaintext)
    ring = fernet(ring_settings, "p/v1")
    assert ring.decrypt(token) == plaintext
    rotated = ring.rotate(token)
    assert newest_fernet(ring_settings, "p/v1").decrypt(rotated) == plaintext
    for older in keys[1:]:
        with pytest.raises(InvalidToken):
            fernet(Settings(secret_key=older), "p/v1").decrypt(rotated)


def test_previous_keys_are_read_from_the_environment_newest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", KEY_B)
    monkeypatch.setenv("SWITCHBOARD_PREVIOUS_SECRET_KEYS", f" {KEY_C} ,,{KEY_A},")
    settings = Settings()
    assert settings.previous_keys == (KEY_C, KEY_A)
    assert settings.keyring == (KEY_B, KEY_C, KEY_A)
    assert KEY_C not in repr(settings) and KEY_C not in str(settings.model_dump())


def test_no_previous_keys_is_a_ring_of_one() -> None:
    assert Settings(secret_key=KEY_A).keyring == (KEY_A,)
    # Repeating the current key among the previous ones changes nothing.
    assert Settings(secret_key=KEY_A, previous_secret_keys=KEY_A).keyring == (KEY_A,)


@pytest.mark.parametrize("weak", ["change-me", "short", f"{KEY_A},tooshort"])
def test_production_refuses_weak_previous_keys_without_echoing_them(weak: str) -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_PREVIOUS_SECRET_KEYS") as caught:
        Settings(environment=Environment.PRODUCTION, secret_key=KEY_B, previous_secret_keys=weak)
    assert KEY_B not in str(caught.value)
    assert weak not in str(caught.value)
    # Strong ones are fine.
    Settings(environment=Environment.PRODUCTION, secret_key=KEY_B, previous_secret_keys=KEY_A)


# --- rotation, end to end ------------------------------------------------------------------


def _store_under(settings: Settings, db: Engine) -> dict[str, Any]:
    """Through the service running on ``settings``: a webhook with a rotated-out secret still
    signing, a stored idempotent answer, and a calendar connection with credentials and a
    channel token. What each decrypts to."""
    for _app, client in _client(settings):
        tenant = make_tenant(db, client, "Rotating")
        admin: As = tenant.admin
        hook = {"url": "http://hooks.example.test/in", "event_types": ["ticket.assigned"]}
        created = admin.post("/v1/webhooks", json=hook, headers={"Idempotency-Key": "hook-1"})
        assert created.status_code == 201, created.text
        webhook_id = created.json()["id"]
        first_secret = created.json()["secret"]
        rotated = admin.post(f"/v1/webhooks/{webhook_id}/rotate-secret", json={})
        assert rotated.status_code == 200, rotated.text
        assert admin.post("/v1/teams", json={"id": "t1", "name": "One"}).status_code == 201
        assert admin.post("/v1/agents", json={"id": "ada", "team": "t1"}).status_code == 201
    with Session(db) as session:
        session.add(
            CalendarConnection(
                tenant_id=tenant.id,
                id="cal_0000000000000001",
                agent_id="ada",
                provider="google",
                calendars=["ada@example.test"],
                settings={},
                credentials=connectors.encrypt_credentials(settings, CREDENTIALS),
                status="active",
                cursors={},
                channels={},
                channel_token=connectors.encrypt_channel_token(settings, CHANNEL_TOKEN),
                consecutive_failures=0,
                busy_count=0,
                requests_total=0,
                created_at=T0,
                updated_at=T0,
            )
        )
        session.commit()
    return {
        "tenant": tenant,
        "webhook_id": webhook_id,
        "hook": hook,
        "first_answer": created.json(),
        "secret": rotated.json()["secret"],
        "previous_secret": first_secret,
    }


def _stored(db: Engine) -> dict[str, Any]:
    """Every token column's value now (to see what changed)."""
    with Session(db) as session:
        hook = session.scalars(select(WebhookSubscription)).one()
        record = session.scalars(select(IdempotencyRecord)).one()
        connection = session.scalars(select(CalendarConnection)).one()
        return {
            "secret": hook.secret_encrypted,
            "previous": hook.previous_secret_encrypted,
            "answer": record.response_body,
            "credentials": connection.credentials,
            "channel_token": connection.channel_token,
        }


def _opens_everything(settings: Settings, db: Engine, stored: dict[str, Any]) -> None:
    with Session(db) as session:
        hook = session.scalars(select(WebhookSubscription)).one()
        assert secrets.decrypt(settings, hook.secret_encrypted) == stored["secret"]
        assert hook.previous_secret_encrypted is not None
        assert (
            secrets.decrypt(settings, hook.previous_secret_encrypted) == (stored["previous_secret"])
        )
        connection = session.scalars(select(CalendarConnection)).one()
        assert connectors.decrypt_credentials(settings, connection.credentials) == CREDENTIALS
        assert connection.channel_token is not None
        assert connectors.decrypt_channel_token(settings, connection.channel_token) == (
            CHANNEL_TOKEN
        )
    # The stored answer replays through a service that has only this key.
    for _app, client in _client(settings):
        admin = As(client, stored["tenant"].admin_key)
        again = admin.post(
            "/v1/webhooks", json=stored["hook"], headers={"Idempotency-Key": "hook-1"}
        )
        assert again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == stored["first_answer"]


def _rotate(
    monkeypatch: pytest.MonkeyPatch, db_url: str, secret: str, previous: str | None, *extra: str
) -> int:
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", secret)
    if previous is None:
        monkeypatch.delenv("SWITCHBOARD_PREVIOUS_SECRET_KEYS", raising=False)
    else:
        monkeypatch.setenv("SWITCHBOARD_PREVIOUS_SECRET_KEYS", previous)
    return main(["rotate-secrets", "--database-url", db_url, *extra])


def test_rotation_moves_every_secret_to_the_new_key(
    settings: Settings,
    db: Engine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stored = _store_under(settings, db)
    before = _stored(db)
    key_b_only = _settings(db_url, KEY_B)
    key_b_then_a = _settings(db_url, KEY_B, KEY_A)
    # Before the rotation, a service with B alone opens nothing stored...
    with Session(db) as session:
        hook = session.scalars(select(WebhookSubscription)).one()
        with pytest.raises(secrets.SecretUnreadable):
            secrets.decrypt(key_b_only, hook.secret_encrypted)
    # ...and one with B and A opens everything.
    _opens_everything(key_b_then_a, db, stored)

    assert _rotate(monkeypatch, db_url, KEY_B, KEY_A) == 0
    out = capsys.readouterr()
    for kind in rotation.STORED_SECRETS:
        assert kind.kind in out.out
    assert "may be dropped" in out.out
    after = _stored(db)
    assert all(after[name] != before[name] for name in before)  # every token re-encrypted
    _opens_everything(key_b_only, db, stored)

    # Nothing secret was printed.
    printed = out.out + out.err
    for secret in (KEY_A, KEY_B, stored["secret"], CHANNEL_TOKEN, CREDENTIALS["refresh_token"]):
        assert secret not in printed

    # Again: nothing left to do, nothing written.
    assert _rotate(monkeypatch, db_url, KEY_B, KEY_A) == 0
    assert _stored(db) == after


def test_a_token_no_key_opens_is_counted_named_and_left_alone(
    settings: Settings,
    db: Engine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stored = _store_under(settings, db)
    # A webhook secret encrypted under C, a key the ring will not hold.
    lost = secrets.encrypt(_settings(db_url, KEY_C), "whsec_lost")
    with Session(db) as session:
        session.execute(update(WebhookSubscription).values(secret_encrypted=lost))
        session.commit()
    assert _rotate(monkeypatch, db_url, KEY_B, KEY_A) == 1
    out = capsys.readouterr()
    assert f"{stored['tenant'].id}/{stored['webhook_id']}" in out.out
    assert "SWITCHBOARD_PREVIOUS_SECRET_KEYS" in out.err
    assert _stored(db)["secret"] == lost  # never overwritten
    # Everything else moved on all the same.
    with Session(db) as session:
        connection = session.scalars(select(CalendarConnection)).one()
        assert connectors.decrypt_credentials(_settings(db_url, KEY_B), connection.credentials)


def test_report_counts_per_kind_and_batches(settings: Settings, db: Engine, db_url: str) -> None:
    _store_under(settings, db)
    with Session(db) as session:
        tenant_id = session.scalars(select(Team.tenant_id)).one()
        for n in range(5):
            session.add(
                Agent(
                    tenant_id=tenant_id,
                    id=f"ag{n}",
                    name="",
                    team_id="t1",
                    capacity=1,
                    timezone="UTC",
                    status="available",
                    created_at=T0,
                    updated_at=T0,
                )
            )
        session.flush()
        for n in range(5):
            session.add(
                CalendarConnection(
                    tenant_id=tenant_id,
                    id=f"cal_{n + 16:016x}",
                    agent_id=f"ag{n}",
                    provider="ics",
                    calendars=["feed"],
                    settings={},
                    credentials=connectors.encrypt_credentials(settings, {"url": f"u{n}"}),
                    status="active",
                    cursors={},
                    channels={},
                    consecutive_failures=0,
                    busy_count=0,
                    requests_total=0,
                    created_at=T0,
                    updated_at=T0,
                )
            )
        session.commit()
    engine = make_engine(_settings(db_url, KEY_B, KEY_A))
    calls: list[tuple[str, int]] = []
    try:
        report = rotation.rotate_all(
            engine,
            _settings(db_url, KEY_B, KEY_A),
            batch_size=2,
            progress=lambda target, n: calls.append((target.kind, n)),
        )
        by_kind = {k.kind: k for k in report.kinds}
        assert by_kind["calendar credentials"].rotated == 6
        assert by_kind["calendar channel tokens"].rotated == 1
        assert by_kind["webhook secrets"].rotated == 1
        assert by_kind["rotated-out webhook secrets"].rotated == 1
        assert by_kind["idempotent responses"].rotated == 1
        assert [n for kind, n in calls if kind == "calendar credentials"] == [2, 2, 2]
        assert report.unreadable == 0
        again = rotation.rotate_all(engine, _settings(db_url, KEY_B, KEY_A), batch_size=2)
        assert again.rotated == 0
        assert {k.kind: k.current for k in again.kinds}["calendar credentials"] == 6
    finally:
        engine.dispose()


@postgres_only
def test_a_row_the_service_changes_meanwhile_is_not_overwritten(
    settings: Settings, db: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service keeps serving during a rotation: a credential PATCHed between the rotation's
    read and its write keeps the new value (the write is a compare-and-set)."""
    _store_under(settings, db)
    ring_settings = _settings(db_url, KEY_B, KEY_A)
    replaced = connectors.encrypt_credentials(ring_settings, {"refresh_token": "new"})
    real_fernet = rotation.fernet

    class Meddling:
        """The keyring, but the service writes the row while the rotation holds its token."""

        def __init__(self, settings: Settings, purpose: str) -> None:
            self.ring = real_fernet(settings, purpose)

        def rotate(self, token: bytes) -> bytes:
            with Session(db) as other:
                other.execute(update(CalendarConnection).values(credentials=replaced))
                other.commit()
            return self.ring.rotate(token)

    target = next(t for t in rotation.STORED_SECRETS if t.kind == "calendar credentials")
    monkeypatch.setattr(rotation, "fernet", Meddling)
    engine = make_engine(ring_settings)
    try:
        report = rotation.KindReport(target.kind)
        rotation.rotate_batch(engine, ring_settings, target, report, after=None, batch_size=10)
    finally:
        engine.dispose()
    assert (report.rotated, report.changed) == (0, 1)
    with Session(db) as session:
        assert session.scalars(select(CalendarConnection.credentials)).one() == replaced


def test_rotation_of_an_empty_database_reports_zero(
    db: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _rotate(monkeypatch, db_url, KEY_B, KEY_A, "--batch-size", "3") == 0
    assert "may be dropped" in capsys.readouterr().out
