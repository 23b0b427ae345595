"""The request gate (api/http/gate.py): the key before the body, body size limits, and bodies that
used to be 500s (deep JSON, a huge CSV cell) or to list every error of a bad import.

The memory claims are tested at the ASGI level: the app is called with a ``receive`` that makes
up a body on demand and counts the bytes the app pulled, so "answered without reading the body"
is a number, not a hope.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api import auth
from api.main import create_app
from api.settings import Settings
from tests.api.conftest import As, FakeClock, assert_problem, make_tenant

HUGE = 300 * 1024 * 1024  # the 300 MB body of the report; never actually materialized
CHUNK = 64 * 1024  # what uvicorn hands the app per message, roughly

# Small limits so the tests send kilobytes, not megabytes.
LIMITS = {"max_body_bytes": 1000, "max_import_body_bytes": 5000, "max_solve_body_bytes": 3000}


class Body:
    """An ASGI ``receive`` yielding ``total`` bytes of ``fill`` in chunks, counting what is
    pulled."""

    def __init__(self, total: int, fill: bytes = b"[") -> None:
        self.total = total
        self.fill = fill
        self.pulled = 0

    async def __call__(self) -> dict[str, Any]:
        size = min(CHUNK, self.total - self.pulled)
        self.pulled += size
        return {
            "type": "http.request",
            "body": self.fill * size,
            "more_body": self.pulled < self.total,
        }


def call(
    app: FastAPI, method: str, path: str, body: Body, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """Run one request through the whole app (middleware included); its status and JSON (with
    the answer's headers under ``"headers"``)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    anyio.run(app, scope, body, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], json.loads(raw) | {"headers": headers}


@pytest.fixture
def small(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """A client of an app with :data:`LIMITS` (started: its lifespan has run)."""
    app = create_app(settings.model_copy(update=LIMITS), clock=clock)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def s(small: TestClient, db: Engine) -> As:
    """An admin of a tenant of the small-limits app."""
    return make_tenant(db, small, "Gate").admin


# --- the key before the body ----------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "Bearer sb_unknown_key"])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_no_valid_key_is_401_without_reading_the_body(
    client: TestClient, app: FastAPI, db: Engine, auth: str | None, declared: bool
) -> None:
    headers = {"content-type": "application/json"}
    if declared:
        headers["content-length"] = str(HUGE)
    else:
        headers["transfer-encoding"] = "chunked"
    if auth:
        headers["authorization"] = auth
    for path in ("/v1/skills", "/v1/agents/import", "/v1/solve"):
        body = Body(HUGE)
        status, problem = call(app, "POST", path, body, headers)
        assert status == 401, problem
        assert problem["title"] == "Unauthenticated" and problem["instance"] == path
        assert body.pulled == 0
        # The body is left unread, so the connection is closed, not drained.
        assert problem["headers"]["connection"] == "close"


def test_the_401_is_the_one_authenticate_gives(client: TestClient, db: Engine) -> None:
    from fastapi.security import HTTPAuthorizationCredentials
    from starlette.requests import Request

    from api.errors import Unauthenticated
    from api.http.deps import authenticate

    def dependency_says(credentials: HTTPAuthorizationCredentials | None) -> str:
        """What ``api.http.deps.authenticate`` (the route dependency) answers with
        ``credentials``."""
        request = Request({"type": "http", "app": client.app, "state": {}, "headers": []})
        with pytest.raises(Unauthenticated) as refused:
            anyio.run(authenticate, request, credentials)
        return refused.value.detail

    for header, credentials in [
        (None, None),
        ("Basic dXNlcjpwdw==", None),  # HTTPBearer hands the dependency no credentials
        ("Bearer sb_nope", HTTPAuthorizationCredentials(scheme="Bearer", credentials="sb_nope")),
    ]:
        headers = {"Content-Type": "application/json"} | (
            {"Authorization": header} if header else {}
        )
        r = client.post("/v1/teams", content=b"{not json", headers=headers)
        body = assert_problem(r, 401)  # malformed JSON was a 422 before the 401
        assert body["detail"] == dependency_says(credentials)
        assert r.headers["www-authenticate"] == 'Bearer realm="switchboard"'


def test_public_paths_are_exactly_the_unauthenticated_routes(client: TestClient) -> None:
    """The gate's list of public paths agrees with the routes: every operation documented
    without security is public, every one with it is not (a new unauthenticated page must be
    added to ``api.http.gate.PUBLIC``)."""
    from api.http.gate import is_public

    doc = client.get("/openapi.json").json()
    seen = 0
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            seen += 1
            secured = bool(operation.get("security"))
            assert is_public(path) is not secured, (method, path)
    assert seen > 50
    for path in ("/docs", "/redoc", "/openapi.json", "/healthz", "/readyz", "/metrics"):
        assert is_public(path), path
        assert client.get(path).status_code == 200, path
    assert not is_public("/v1/nothing-here")
    assert_problem(client.get("/v1/nothing-here"), 401)  # no route map for strangers


def test_the_key_is_looked_up_once_per_request(
    a: As, monkeypatch: pytest.MonkeyPatch, db: Engine
) -> None:

    assert a.get("/v1/teams").status_code == 200  # cached now
    calls = 0
    real = auth.principal_cache.get

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(auth.principal_cache, "get", counting)
    # The gate looks the key up; the route's dependency takes the principal it left in the
    # request's state. (Not with an Idempotency-Key yet: that middleware still does its own.)
    assert a.post("/v1/teams", json={"id": "t1"}).status_code == 201
    assert calls == 1


# --- size limits ----------------------------------------------------------------------------


def test_over_the_limit_by_content_length_is_413_unread(small: TestClient, s: As) -> None:
    app = small.app
    assert isinstance(app, FastAPI)
    headers = {"authorization": f"Bearer {s.key}", "content-type": "application/json"}
    for path, limit in [("/v1/teams", 1000), ("/v1/teams/import", 5000), ("/v1/solve", 3000)]:
        body = Body(HUGE)
        status, problem = call(app, "POST", path, body, headers | {"content-length": str(HUGE)})
        assert status == 413, problem
        assert problem["errors"] == [{"field": "body", "reason": f"must be at most {limit} bytes"}]
        assert body.pulled == 0 and problem["headers"]["connection"] == "close"
    # Through the HTTP stack too, with a body just one byte too long.
    r = s.post("/v1/teams", content=b" " * 1001, headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "body")
    assert r.json()["title"] == "Payload too large"


def test_a_chunked_body_is_cut_off_at_the_limit(small: TestClient, s: As) -> None:
    app = small.app
    assert isinstance(app, FastAPI)
    headers = {
        "authorization": f"Bearer {s.key}",
        "content-type": "application/json",
        "transfer-encoding": "chunked",
    }
    for path, limit in [("/v1/teams", 1000), ("/v1/agents/import", 5000)]:
        body = Body(HUGE)
        status, problem = call(app, "POST", path, body, headers)
        assert status == 413, problem
        assert problem["errors"][0]["reason"] == f"must be at most {limit} bytes"
        assert body.pulled <= limit + CHUNK  # not one message more than it took to know

    def chunks() -> Iterator[bytes]:
        yield b'{"id": "t1", "name": "'
        yield b"x" * 1000
        yield b'"}'

    r = s.post("/v1/teams", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "body")
    assert s.get("/v1/teams").json()["items"] == []


def test_imports_and_solve_have_larger_limits(s: As) -> None:
    rows = [{"id": f"team-{i:03d}", "name": "A team"} for i in range(80)]
    raw = json.dumps(rows).encode()
    assert 1000 < len(raw) <= 5000
    r = s.post("/v1/teams/import", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    # The same bytes are too many for a plain write: refused before the route looks at them.
    r = s.post("/v1/teams", content=raw, headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "body")
    # A solve body between the plain and the solve limit reaches the route (a 422 for the bad
    # problem, not a 413); over the solve limit it does not.
    padded = {"agents": [], "tickets": [], "now": "2026-03-02T08:00:00Z", "pad": "x" * 2000}
    assert_problem(s.post("/v1/solve", json=padded), 422)
    padded["pad"] = "x" * 3000
    assert_problem(s.post("/v1/solve", json=padded), 413, "body")


def test_limits_are_settings_with_sane_defaults() -> None:
    settings = Settings()
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.max_import_body_bytes == 20 * 1024 * 1024
    assert settings.max_body_bytes < settings.max_solve_body_bytes
    with pytest.raises(ValueError):
        Settings(max_body_bytes=0)


def test_the_solve_limit_admits_the_largest_problem_solve_accepts() -> None:
    """The solve limit is not a guess: a problem at ``solve_max_agents`` x ``solve_max_tickets``
    with every field a client typically sends fits under it."""
    settings = Settings()
    stamp = "2026-03-02T08:00:00+01:00"
    week = [{"start": stamp, "end": stamp} for _ in range(7)]
    agent = {
        "id": "agent-00000",
        "team": "team-000",
        "skills": {"billing": 3, "lang:de": 5, "network": 2, "tier:2": 4},
        "capacity": 3,
        "shifts": week,
        "busy": week[:3],
        "open_tickets": 2,
        "backlog_minutes": 90,
        "timezone": "Europe/Vienna",
        "status": "available",
    }
    ticket = {
        "id": "ticket-0000000",
        "team": "team-000",
        "created_at": stamp,
        "required_skills": {"billing": 3, "lang:de": 4},
        "priority": "normal",
        "first_response_due": stamp,
        "resolution_due": stamp,
        "effort_minutes": 30,
        "owner_agent": "agent-00000",
        "previous_agent": "agent-00000",
        "requester": "customer-000000",
    }
    size = (
        len(json.dumps(agent)) * settings.solve_max_agents
        + len(json.dumps(ticket)) * settings.solve_max_tickets
    )
    assert size <= settings.max_solve_body_bytes


# --- bodies that were 500s or too long an answer ------------------------------------------


def test_deeply_nested_json_is_a_422_everywhere(a: As) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    json_type = {"Content-Type": "application/json"}
    for path in ("/v1/teams", "/v1/teams/import", "/v1/solve"):
        body = assert_problem(a.post(path, content=deep, headers=json_type), 422, "body")
        assert body["errors"][0]["reason"] == "nested deeper than 32 levels", path
    upload = {"file": ("teams.json", deep, "application/json")}
    body = assert_problem(a.post("/v1/teams/import", files=upload), 422, "body")
    assert body["errors"][0]["reason"] == "nested deeper than 32 levels"
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    name = '\\"' + "[" * 150 + "\\\\"
    raw = '{"id": "t1", "name": "' + name + '"}'
    r = a.post("/v1/teams", content=raw.encode(), headers=json_type)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == json.loads(f'"{name}"')


def test_a_huge_csv_cell_is_a_422_naming_row_and_column(a: As) -> None:
    csv_text = "id,name\nt1,One\nt2," + "x" * 200_000 + "\n"
    r = a.post("/v1/teams/import", content=csv_text, headers={"Content-Type": "text/csv"})
    body = assert_problem(r, 422, "name")
    assert body["errors"] == [
        {"field": "name", "reason": "must be at most 131072 characters", "row": 3}
    ]


def test_an_answer_lists_at_most_100_errors(a: As) -> None:
    rows = [{"id": "", "name": 5} for _ in range(150)]  # two errors a row
    body = assert_problem(a.post("/v1/teams/import", json=rows), 422)
    assert len(body["errors"]) == 100
    assert body["errors"][0]["row"] == 0
    assert body["detail"].endswith("(100 of 300 errors listed)"), body["detail"]
    # Short answers are untouched.
    body = assert_problem(a.post("/v1/teams/import", json=rows[:2]), 422)
    assert len(body["errors"]) == 4 and "listed" not in body["detail"]


def test_a_long_csv_column_name_is_refused_once(a: As) -> None:
    csv_text = "id," + "n" * 101 + "\n" + "t1,x\n" * 50
    r = a.post("/v1/teams/import", content=csv_text, headers={"Content-Type": "text/csv"})
    body = assert_problem(r, 422, "body")
    assert body["errors"] == [
        {"field": "body", "reason": "header column 1 is longer than 100 characters"}
    ]


def test_a_database_error_while_looking_up_the_key_is_a_503(
    client: TestClient, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate answers errors with the app's error map, as the route's dependency did: the
    database being away is the retryable 503, not a 500."""
    from sqlalchemy.exc import OperationalError

    import api.http.gate

    def unreachable(app_state: Any, plaintext: str) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(api.http.gate, "load_principal", unreachable)
    r = client.post("/v1/teams", json={"id": "t1"}, headers={"Authorization": "Bearer sb_x_y"})
    assert_problem(r, 503)
    assert r.headers["retry-after"]
