"""A body in a media type its operation does not take is a 415 naming the ones it does.

A JSON body sent as text/plain, or with no Content-Type, used to be read as bytes (a 422 about
the body's type) or guessed to be JSON. The gate (api/http/gate.py) refuses it before the body
is read; imports keep taking CSV and forms, merge patches their own media type.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import As, assert_problem

TEAM = json.dumps({"id": "t1"}).encode()


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_json_body_without_a_json_content_type_is_a_415(a: As, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    r = a.post("/v1/teams", content=TEAM, headers=headers)
    body = assert_problem(r, 415, "header.content-type")
    assert body["type"] == "/problems/unsupported-media-type"
    assert body["title"] == "Unsupported media type"
    assert "application/json" in body["detail"]
    assert body["errors"] == [
        {"field": "header.content-type", "reason": "send one of: application/json"}
    ]
    assert a.get("/v1/teams").json()["items"] == []  # nothing written


def test_json_with_parameters_or_any_case_is_taken(a: As) -> None:
    r = a.post(
        "/v1/teams", content=TEAM, headers={"content-type": "Application/JSON; charset=utf-8"}
    )
    assert r.status_code == 201, r.text


def test_a_patch_refused_says_accept_patch(a: As) -> None:
    r = a.patch("/v1/policies", content=b"{}", headers={"content-type": "text/plain"})
    body = assert_problem(r, 415, "header.content-type")
    assert r.headers["accept-patch"] == "application/merge-patch+json, application/json"
    assert "application/merge-patch+json" in body["detail"]
    ok = a.patch(
        "/v1/policies", content=b"{}", headers={"content-type": "application/merge-patch+json"}
    )
    assert ok.status_code == 200, ok.text


def test_imports_keep_taking_csv_and_name_their_types_when_refused(a: As) -> None:
    r = a.post("/v1/skills/import", content=b"id\nbilling\n", headers={"content-type": "text/csv"})
    assert r.status_code == 201, r.text
    r = a.post("/v1/skills/import", content=b"id\nsales\n", headers={"content-type": "text/plain"})
    body = assert_problem(r, 415, "header.content-type")
    for media in ("application/json", "text/csv", "multipart/form-data"):
        assert media in body["detail"], body
    r = a.post("/v1/skills/import", content=b'[{"id": "sales"}]')  # no Content-Type
    assert_problem(r, 415, "header.content-type")
    files = {"file": ("skills.csv", b"id\nsales\n", "text/csv")}
    assert a.post("/v1/skills/import", files=files).status_code == 201


def test_the_key_is_checked_first_and_unknown_routes_stay_404(client: TestClient, a: As) -> None:
    r = client.post("/v1/teams", content=TEAM, headers={"content-type": "text/plain"})
    assert_problem(r, 401)
    r = a.post("/v1/nowhere", content=TEAM, headers={"content-type": "text/plain"})
    assert_problem(r, 404)
    # An operation that takes no body ignores one, whatever its type.
    r = a.post("/v1/jobs/nope/cancel", content=b"x", headers={"content-type": "text/plain"})
    assert_problem(r, 404)


def test_every_operation_with_a_body_documents_the_415(app: Any) -> None:
    doc = app.openapi()
    found = 0
    for ops in doc["paths"].values():
        for op in ops.values():
            if "requestBody" in op:
                found += 1
                assert "application/problem+json" in op["responses"]["415"]["content"], op
            else:
                assert "415" not in op["responses"], op
    assert found > 20
