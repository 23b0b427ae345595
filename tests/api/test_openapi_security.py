"""Every operation in the document has a one-line description and says the scope it needs.

The security requirement is derived from the operation's auth dependency
(api/http/security.py), so these tests also check it says what the service enforces: a key with
a scope the document does not list is refused (403), one it lists gets past the check.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.http.deps import SECURITY_SCHEME
from api.http.gate import is_public
from api.main import create_app
from api.settings import Environment, Settings
from tests.api.conftest import TenantCtx, assert_problem

DOC = create_app(Settings(database_url="sqlite://", environment=Environment.TEST)).openapi()
OPERATIONS = [
    pytest.param(path, method, op, id=f"{method.upper()} {path}")
    for path, ops in DOC["paths"].items()
    for method, op in ops.items()
]


def test_the_security_scheme_is_documented() -> None:
    scheme = DOC["components"]["securitySchemes"][SECURITY_SCHEME]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert "scope" in scheme["description"]


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS)
def test_every_operation_has_a_description_and_its_security(
    path: str, method: str, op: dict[str, Any]
) -> None:
    first_line = op.get("description", "").strip().split("\n")[0]
    assert first_line.strip(), "no description"
    assert op.get("summary"), "no summary"
    if is_public(path):
        assert "security" not in op
        return
    security = op.get("security")
    assert security, "no security requirement"
    for requirement in security:
        assert set(requirement) == {SECURITY_SCHEME}
        for scope in requirement[SECURITY_SCHEME]:
            assert scope in {"helpdesk", "planner", "admin"}
    scopes = {s for r in security for s in r[SECURITY_SCHEME]}
    if scopes:
        assert "admin" in scopes  # admin passes every check
        assert "Needs an API key with the" in op["description"]


def _scopes(path: str, method: str) -> set[str]:
    return {s for r in DOC["paths"][path][method]["security"] for s in r[SECURITY_SCHEME]}


def test_the_requirements_are_the_dependencies() -> None:
    assert _scopes("/v1/tickets/{ticket_id}", "put") == {"helpdesk", "admin"}
    assert _scopes("/v1/tickets/{ticket_id}", "get") == set()
    assert _scopes("/v1/teams", "post") == {"admin"}
    assert _scopes("/v1/teams", "get") == set()
    assert _scopes("/v1/api-keys", "post") == {"admin"}
    for public in ("/healthz", "/readyz", "/problems/{slug}"):
        assert "security" not in DOC["paths"][public]["get"]


@pytest.mark.parametrize(
    ("method", "url", "path", "body"),
    [
        ("PUT", "/v1/tickets/T-1", "/v1/tickets/{ticket_id}", {}),
        ("POST", "/v1/teams", "/v1/teams", {}),
        ("POST", "/v1/api-keys", "/v1/api-keys", {}),
    ],
)
def test_a_scope_the_document_does_not_list_is_refused(
    tenant_a: TenantCtx, method: str, url: str, path: str, body: dict[str, Any]
) -> None:
    listed = _scopes(path, method.lower())
    for scope in ("helpdesk", "planner"):
        client = tenant_a.key(scope)
        r = client.request(method, url, json=body)
        if scope in listed:
            assert r.status_code != 403, r.text
        else:
            assert_problem(r, 403)
