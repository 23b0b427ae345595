"""Hostile and sloppy input stays a 4xx naming the field, and the OpenAPI document says what is
accepted (issue 8, defects 7-9), on SQLite and PostgreSQL.

Each test here failed before its fix: datetimes near year 1 or 9999 were 500s (an
``OverflowError`` converting them to UTC or walking the slot grid); ``to=0.5`` read as a Unix
time and ``true`` as a capacity of 1; a NUL in an assignment ``reason`` or a webhook
``description`` was stored by SQLite and refused by PostgreSQL; a name of 300 characters was
accepted when its first and last 50 were blanks; ``limit`` had no documented maximum; a 405 named
only the methods of the first route matching the path; a webhook URL error said what an internal
host name resolves to; and the access log carried query strings.
"""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.main import IDEMPOTENCY_PARAMETER
from tests.api.bookings.test_bookings import DAY, org
from tests.api.conftest import As, assert_problem, ticket_body
from tests.api.http.test_serve import _serving

# Offsets that push the UTC value past datetime's range are the ones that used to overflow.
YEAR_1 = "0001-01-01T00:00:00+05:00"
YEAR_9999 = "9999-12-31T23:59:59-05:00"
TOO_EARLY = "1969-12-31T23:59:59Z"
TOO_LATE = "2200-01-01T00:00:01Z"
EDGES = ["1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z"]


@pytest.fixture
def booked_org(a: As) -> As:
    org(a)
    return a


def _shift(**extra: str) -> dict[str, str]:
    return {"agent": "ana", "start": f"{DAY}09:00:00Z", "end": f"{DAY}17:00:00Z"} | extra


def _solve(**extra: Any) -> dict[str, Any]:
    return {
        "now": f"{DAY}08:00:00Z",
        "agents": [{"id": "ana", "team": "support", "capacity": 1}],
        "tickets": [{"id": "T1", "team": "support", "created_at": f"{DAY}07:00:00Z"}],
    } | extra


def _booking(start: str) -> dict[str, str]:
    return {"capability_id": "net", "ticket_id": "ZD-1", "start": start, "tz": "Europe/Berlin"}


def _out_of_range_requests(moment: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, url, request kwargs, field the 422 must name) for every datetime the API takes."""
    ticket = ticket_body({"team": "support", "created_at": f"{DAY}07:00:00Z"})
    slots = "/v1/capabilities/net/slots"
    return [
        ("PUT", "/v1/tickets/X-1", {"json": ticket | {"created_at": moment}}, "created_at"),
        ("PUT", "/v1/tickets/X-1", {"json": ticket | {"resolution_due": moment}}, "resolution_due"),
        (
            "PUT",
            "/v1/tickets/X-1",
            {"json": ticket | {"first_response_due": moment}},
            "first_response_due",
        ),
        ("POST", "/v1/shifts", {"json": _shift(start=moment)}, "start"),
        ("POST", "/v1/shifts", {"json": _shift(end=moment)}, "end"),
        ("POST", "/v1/busy", {"json": _shift(start=moment)}, "start"),
        ("GET", "/v1/shifts", {"params": {"start": moment}}, "query.start"),
        ("GET", "/v1/busy", {"params": {"end": moment}}, "query.end"),
        ("GET", "/v1/kpis", {"params": {"from": moment}}, "query.from"),
        ("GET", "/v1/kpis", {"params": {"to": moment}}, "query.to"),
        ("POST", "/v1/solve", {"json": _solve(now=moment)}, "now"),
        ("POST", "/v1/solve", {"json": _solve(horizon_end=moment)}, "horizon_end"),
        (
            "POST",
            "/v1/solve",
            {
                "json": _solve(
                    agents=[
                        {"id": "ana", "team": "s", "shifts": [{"start": moment, "end": moment}]}
                    ]
                )
            },
            "agents[0].shifts[0].start",
        ),
        ("POST", "/v1/bookings", {"json": _booking(moment)}, "start"),
        ("GET", "/v1/bookings", {"params": {"from": moment}}, "query.from"),
        ("GET", "/v1/bookings", {"params": {"to": moment}}, "query.to"),
        ("GET", slots, {"params": {"from": moment}}, "query.from"),
        ("GET", slots, {"params": {"to": moment}}, "query.to"),
    ]


@pytest.mark.parametrize("moment", [YEAR_1, YEAR_9999, TOO_EARLY, TOO_LATE])
def test_datetimes_outside_the_supported_range_are_422_naming_the_field(
    booked_org: As, moment: str
) -> None:
    for method, url, kwargs, field in _out_of_range_requests(moment):
        r = booked_org.request(method, url, **kwargs)
        body = assert_problem(r, 422, field)
        reasons = " ".join(e["reason"] for e in body["errors"])
        assert "1970-01-01T00:00:00Z" in reasons and "2200-01-01T00:00:00Z" in reasons, (url, body)


def test_the_edges_of_the_range_are_accepted(booked_org: As) -> None:
    for moment in EDGES:
        ticket = {"team": "support", "created_at": moment}
        assert booked_org.put("/v1/tickets/E-1", json=ticket_body(ticket)).status_code in (200, 201)
        assert booked_org.get("/v1/kpis", params={"to": moment}).status_code == 200
    slots = "/v1/capabilities/net/slots"
    for params in ({"from": EDGES[0]}, {"from": "2199-12-31T00:00:00Z", "to": EDGES[1]}):
        r = booked_org.get(slots, params=params)
        assert r.status_code == 200, r.text


def test_the_range_is_in_the_openapi_document(app: FastAPI) -> None:
    schema = app.openapi()
    shift = schema["components"]["schemas"]["ShiftCreate"]["properties"]["start"]
    assert "1970-01-01T00:00:00Z" in shift["description"], shift
    assert "2200-01-01T00:00:00Z" in shift["description"], shift


# --- strict types ----------------------------------------------------------------------------


def test_numbers_are_not_datetimes(booked_org: As) -> None:
    for value in ("0.5", "1700000000", "1e9"):
        assert_problem(booked_org.get("/v1/kpis", params={"to": value}), 422, "query.to")
        assert_problem(booked_org.get("/v1/shifts", params={"start": value}), 422, "query.start")
    for value in (0.5, 1_700_000_000, "1700000000"):
        r = booked_org.post("/v1/shifts", json=_shift(start=value))  # type: ignore[arg-type]
        assert_problem(r, 422, "start")


def test_booleans_and_strings_are_not_numbers(a: As) -> None:
    assert a.post("/v1/skills", json={"id": "billing"}).status_code == 201
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    agent = {"id": "ana", "team": "support", "skills": {"billing": 3}, "capacity": 2}
    assert_problem(a.post("/v1/agents", json=agent | {"capacity": True}), 422, "capacity")
    assert_problem(a.post("/v1/agents", json=agent | {"capacity": "2"}), 422, "capacity")
    r = a.post("/v1/agents", json=agent | {"skills": {"billing": True}})
    assert_problem(r, 422, "skills.billing")
    ticket = {"team": "support", "effort_minutes": True}
    assert_problem(a.put("/v1/tickets/T-1", json=ticket_body(ticket)), 422, "effort_minutes")
    assert_problem(
        a.post("/v1/solve", json=_solve(time_limit_seconds=True)), 422, "time_limit_seconds"
    )
    # Plain JSON numbers still pass, a float field takes an integer, and enums and datetimes
    # still come from JSON strings.
    r = a.post("/v1/agents", json=agent)
    assert r.status_code == 201, r.text
    assert r.json()["capacity"] == 2 and r.json()["skills"] == {"billing": 3}
    ticket = {"team": "support", "priority": "high", "created_at": f"{DAY}07:00:00+01:00"}
    r = a.put("/v1/tickets/T-1", json=ticket_body(ticket))
    assert r.status_code == 201 and r.json()["created_at"] == f"{DAY}06:00:00Z", r.text


def test_csv_cells_are_still_read_as_numbers(a: As) -> None:
    assert a.post("/v1/skills", json={"id": "billing"}).status_code == 201
    assert a.post("/v1/teams", json={"id": "support"}).status_code == 201
    csv = "id,team,capacity,skills\nana,support,3,billing=4\n"
    r = a.post("/v1/agents/import", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 201, r.text
    assert a.get("/v1/agents/ana").json()["capacity"] == 3
    bad = "id,team,capacity\nben,support,true\n"
    r = a.post("/v1/agents/import", content=bad, headers={"content-type": "text/csv"})
    assert_problem(r, 422, "capacity")
    r = a.post("/v1/agents/import", json=[{"id": "cid", "team": "support", "capacity": True}])
    assert_problem(r, 422, "capacity")


# --- NUL characters --------------------------------------------------------------------------


def test_nul_characters_are_refused_in_every_stored_text(booked_org: As) -> None:
    a = booked_org
    nul = "a\x00b"
    assert_problem(a.post("/v1/tickets/ZD-1/assign", json={"reason": nul}), 422, "reason")
    escalate = {"team": "support", "reason": nul}
    assert_problem(a.post("/v1/tickets/ZD-1/escalate", json=escalate), 422, "reason")
    status = {"status": "away", "reason": nul}
    assert_problem(a.post("/v1/agents/ana/status", json=status), 422, "reason")
    hook = {"url": "https://93.184.216.34/hook", "event_types": ["ticket.assigned"]}
    assert_problem(a.post("/v1/webhooks", json=hook | {"description": nul}), 422, "description")
    assert_problem(a.post("/v1/webhooks", json=hook | {"url": hook["url"] + nul}), 422, "url")
    assert_problem(a.post("/v1/skills", json={"id": "s", "name": nul}), 422, "name")
    ticket = {"team": "support", "requester": nul}
    assert_problem(a.put("/v1/tickets/N-1", json=ticket_body(ticket)), 422, "requester")
    assert_problem(a.post("/v1/bookings/b-1/cancel", json={"reason": nul}), 422, "reason")
    assert a.get("/v1/webhooks").json()["items"] == []


# --- names: the schema's maxLength is what is accepted -----------------------------------------


def test_names_longer_than_max_length_are_refused_before_stripping(a: As, app: FastAPI) -> None:
    schema = app.openapi()["components"]["schemas"]
    assert schema["SkillCreate"]["properties"]["name"]["maxLength"] == 200
    padded = " " * 150 + "Billing" + " " * 150
    assert_problem(a.post("/v1/skills", json={"id": "billing", "name": padded}), 422, "name")
    # Within the limit, a name is still trimmed.
    r = a.post("/v1/skills", json={"id": "billing", "name": "  Billing  "})
    assert r.status_code == 201 and r.json()["name"] == "Billing", r.text
    r = a.post("/v1/bookings/b-1/cancel", json={"reason": "x" * 1001})
    body = assert_problem(r, 422, "reason")
    assert body["errors"][0]["reason"] == "String should have at most 1000 characters", body
    described = " " * 300 + "x" + " " * 300
    hook = {"url": "https://93.184.216.34/hook", "event_types": ["ticket.assigned"]}
    r = a.post("/v1/webhooks", json=hook | {"description": described})
    assert_problem(r, 422, "description")


# --- limit -----------------------------------------------------------------------------------


def test_limit_maximum_is_documented_and_enforced(a: As, app: FastAPI) -> None:
    params = app.openapi()["paths"]["/v1/agents"]["get"]["parameters"]
    [limit] = [p for p in params if p["name"] == "limit"]
    [integer] = [s for s in limit["schema"]["anyOf"] if s["type"] == "integer"]
    assert integer["maximum"] == 500 and integer["minimum"] == 1, limit
    assert a.get("/v1/agents", params={"limit": 500}).status_code == 200
    assert_problem(a.get("/v1/agents", params={"limit": 501}), 422, "query.limit")


# --- 405 -------------------------------------------------------------------------------------


def test_405_allow_lists_every_method_of_the_path(a: As) -> None:
    cases = {
        "/v1/agents": {"GET", "POST"},
        "/v1/bookings": {"GET", "POST"},
        "/v1/agents/ana": {"GET", "PATCH", "DELETE"},
        "/v1/tickets/T-1": {"GET", "PUT", "PATCH"},
        "/v1/webhooks/w-1": {"GET", "PATCH", "DELETE"},
    }
    for path, methods in cases.items():
        r = a.request("TRACE", path)
        assert_problem(r, 405)
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        # HEAD comes with every GET (Starlette answers it); nothing else may be missing or extra.
        assert allowed - {"HEAD"} == methods, (path, r.headers["allow"])


# --- Idempotency-Key: exactly the documented pattern ------------------------------------------


def valid_idempotency_key(raw: bytes) -> str | None:
    from api.idempotency.keys import valid_idempotency_key as valid

    return valid(raw)


@pytest.mark.parametrize(
    "raw",
    [b"a", b"0f8fe1b6-5d0a-4c5e-8a57-1c2f5e0b7a5e", b"key with inner spaces", b"~" * 255],
)
def test_idempotency_keys_in_the_documented_pattern_are_valid(raw: bytes) -> None:
    assert valid_idempotency_key(raw) == raw.decode("ascii")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b" leading",
        b"trailing ",
        b"x" * 256,
        "caf\u00e9".encode(),
        "caf\u00e9".encode("latin-1"),
        b"tab\there",
        b"nul\x00",
        b"del\x7f",
        b"\xff\xfe",
    ],
)
def test_idempotency_keys_outside_the_documented_pattern_are_invalid(raw: bytes) -> None:
    assert valid_idempotency_key(raw) is None


def test_idempotency_key_pattern_matches_the_openapi_parameter() -> None:
    import re

    schema = IDEMPOTENCY_PARAMETER["schema"]
    pattern = re.compile(schema["pattern"])
    for code in range(256):
        raw = bytes([code])
        documented = code < 128 and pattern.fullmatch(chr(code)) is not None
        assert (valid_idempotency_key(raw) is not None) is documented, code
    assert schema["maxLength"] == 255 and schema["minLength"] == 1
    from api.idempotency import keys as idempotency_keys

    assert schema["pattern"] == idempotency_keys.PATTERN
    assert schema["maxLength"] == idempotency_keys.MAX_LENGTH


# --- webhook URL errors do not describe internal DNS ------------------------------------------


class _DNS:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.answers:
            raise OSError("no such host")
        return self.answers[host]


def test_webhook_url_errors_do_not_reveal_resolved_addresses(
    db: object, db_url: str, clock: Any
) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Environment, Settings
    from tests.api.conftest import make_tenant

    app = create_app(Settings(database_url=db_url, environment=Environment.TEST), clock=clock)
    app.state.webhook_resolver = _DNS(
        {
            "vm": ["127.0.0.1"],
            "db.internal": ["10.1.2.3"],
            "mixed.example.test": ["93.184.216.34", "fd00::7"],
        }
    )
    with TestClient(app) as c:
        who = make_tenant(db, c, "Strict").admin  # type: ignore[arg-type]
        reasons = {}
        for host in ("vm", "db.internal", "mixed.example.test", "nowhere.example.test"):
            hook = {"url": f"https://{host}/hook", "event_types": ["ticket.assigned"]}
            body = assert_problem(who.post("/v1/webhooks", json=hook), 422, "url")
            reason = body["errors"][0]["reason"]
            for leak in ("127.0.0.1", "10.1.2.3", "fd00", "resolves to", "is a "):
                assert leak not in reason and leak not in body["detail"], (host, body)
            assert "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE_URLS" in reason, reason
            reasons[host] = reason.replace(host, "HOST")
        # A private name and a name that does not exist read alike: no oracle for internal DNS.
        assert len(set(reasons.values())) == 1, reasons


# --- the access log --------------------------------------------------------------------------


def test_access_log_has_method_path_and_status_but_no_query_string(tmp_path: Path) -> None:
    args = ["--port", "0", "--workers", "2", "--database-url", f"sqlite:///{tmp_path / 'a.db'}"]
    with _serving(args, tmp_path / "serve.log") as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", "/healthz?token=s3cret&email=x%40example.com")
            assert conn.getresponse().read() == b'{"status":"ok"}'
            conn.request("GET", "/v1/agents?cursor=abc")
            assert conn.getresponse().status == 401
        finally:
            conn.close()
        output = server.output()
    assert '"GET /healthz HTTP/1.1" 200' in output, output
    assert '"GET /v1/agents HTTP/1.1" 401' in output, output
    for secret in ("s3cret", "example.com", "token=", "cursor="):
        assert secret not in output, output
