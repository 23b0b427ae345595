"""What ``/openapi.json`` promises about request bodies is what the service enforces.

schemathesis (test_schemathesis.py) checks responses against the document; these tests check
the document's claims about *input* that a generator alone would not notice were false: a
PATCH field documented as nullable that the service refuses when null.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.common.schemas import Patch
from api.main import create_app
from api.settings import Environment, Settings
from tests.api.conftest import As, assert_problem, ticket_body


def _document() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite://", environment=Environment.TEST)).openapi()


DOC = _document()
SCHEMAS: dict[str, Any] = DOC["components"]["schemas"]


def _body_schema(operation: dict[str, Any]) -> dict[str, Any]:
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return SCHEMAS[ref.rsplit("/", 1)[-1]]


MERGE_PATCH = "application/merge-patch+json"


def _is_merge_patch(operation: dict[str, Any]) -> bool:
    return MERGE_PATCH in operation["requestBody"]["content"]


# PATCH bodies of two kinds. A ``Patch`` model: an omitted field is unchanged, null clears only
# the fields that may be empty. A JSON Merge Patch (RFC 7396, offered as its media type): null
# removes a member, returning it to its default.
PATCHES = [
    pytest.param(path, _body_schema(ops["patch"]), id=path)
    for path, ops in DOC["paths"].items()
    if "patch" in ops and not _is_merge_patch(ops["patch"])
]
MERGE_PATCHES = [
    pytest.param(path, id=path)
    for path, ops in DOC["paths"].items()
    if "patch" in ops and _is_merge_patch(ops["patch"])
]


def _patch_models() -> dict[str, type[Patch]]:
    out: dict[str, type[Patch]] = {}
    todo = list(Patch.__subclasses__())
    while todo:
        model = todo.pop()
        out[model.__name__] = model
        todo.extend(model.__subclasses__())
    return out


def _admits_null(prop: dict[str, Any]) -> bool:
    if prop.get("type") == "null" or "null" in (prop.get("type") or []):
        return True
    return any(_admits_null(m) for m in prop.get("anyOf", []) + prop.get("oneOf", []))


def test_every_patch_body_is_a_patch_model() -> None:
    models = _patch_models()
    assert PATCHES, "no PATCH operation in the document"
    for param in PATCHES:
        _, schema = param.values
        assert schema["title"] in models, schema["title"]


@pytest.mark.parametrize(("path", "schema"), PATCHES)
def test_patch_schema_says_null_only_where_null_is_accepted(
    path: str, schema: dict[str, Any]
) -> None:
    model = _patch_models()[schema["title"]]
    for name, prop in schema["properties"].items():
        assert _admits_null(prop) == (name in model.NULLABLE), (path, name, prop)
        # Omitted means "unchanged": a documented default would say otherwise.
        assert "default" not in prop or name in model.NULLABLE, (path, name, prop)


@pytest.mark.parametrize(("path", "schema"), PATCHES)
def test_explicit_null_on_a_non_nullable_field_is_a_422_naming_it(
    a: As, path: str, schema: dict[str, Any]
) -> None:
    model = _patch_models()[schema["title"]]
    url = path.split("{", 1)[0] + "no-such-object"
    for name in schema["properties"]:
        if name in model.NULLABLE:
            continue
        r = a.patch(url, json={name: None})
        body = assert_problem(r, 422, name)
        [error] = body["errors"]
        assert error == {"field": name, "reason": "may be omitted but not null"}, body


@pytest.mark.parametrize("path", MERGE_PATCHES)
def test_an_empty_merge_patch_changes_nothing(a: As, path: str) -> None:
    if "{" in path:  # a merge patch never creates its object (its own tests patch real ones)
        url = path.split("{", 1)[0] + "no-such-object"
        assert_problem(a.patch(url, json={}, headers={"content-type": MERGE_PATCH}), 404)
        return
    url = path
    before = a.get(url).json()
    after = a.patch(url, json={}, headers={"content-type": MERGE_PATCH}).json()
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


def test_null_refused_alongside_valid_changes_and_nothing_is_written(a: As) -> None:
    assert a.post("/v1/teams", json={"id": "t1", "name": "One"}).status_code == 201
    r = a.patch("/v1/teams/t1", json={"name": None})
    assert_problem(r, 422, "name")
    assert a.get("/v1/teams/t1").json()["name"] == "One"
    # Omitting is "unchanged"; the empty string is how a name is cleared.
    assert a.patch("/v1/teams/t1", json={}).json()["name"] == "One"
    assert a.patch("/v1/teams/t1", json={"name": ""}).json()["name"] == ""


def test_patch_models_refuse_null_when_built_in_python() -> None:
    # Services and the CLI build these models directly too: the rule is the model's, not the
    # route's.
    from pydantic import ValidationError

    from api.org.agents.schemas import AgentUpdate

    with pytest.raises(ValidationError, match="may be omitted but not null"):
        AgentUpdate(capacity=None)
    assert AgentUpdate().changes() == {}
    assert AgentUpdate(capacity=3).changes() == {"capacity": 3}


@pytest.mark.parametrize("model", ["WebhookCreate", "WebhookUpdate"])
def test_webhook_event_types_are_documented_unique(model: str) -> None:
    prop = SCHEMAS[model]["properties"]["event_types"]
    assert prop["type"] == "array" and prop["uniqueItems"] is True, prop


@pytest.mark.parametrize(("method", "url"), [("POST", "/v1/webhooks"), ("PATCH", "/v1/webhooks/w")])
def test_repeated_event_type_is_a_422_naming_event_types(a: As, method: str, url: str) -> None:
    body = {"url": "https://hooks.example.com/in", "event_types": ["ticket.assigned"] * 2}
    r = a.request(method, url, json=body)
    problem = assert_problem(r, 422, "event_types")
    assert problem["errors"] == [
        {"field": "event_types", "reason": "must not repeat an event type"}
    ], problem


def _operation_ids() -> dict[str, dict[str, Any]]:
    return {
        op["operationId"]: op
        for ops in DOC["paths"].values()
        for op in ops.values()
        if isinstance(op, dict) and "operationId" in op
    }


def test_every_link_names_an_operation_and_its_parameters() -> None:
    by_id = _operation_ids()
    found = 0
    for ops in DOC["paths"].values():
        for op in ops.values():
            for response in op.get("responses", {}).values():
                for name, link in response.get("links", {}).items():
                    found += 1
                    target = by_id[link["operationId"]]
                    params = {p["name"] for p in target.get("parameters", [])}
                    assert set(link.get("parameters", {})) <= params, (name, link)
                    if "requestBody" in link:
                        assert "requestBody" in target, (name, link)
    from api.http.links import LINKS

    assert found == len(LINKS)


def test_the_main_flows_are_linked() -> None:
    def links_of(path: str, method: str, status: str) -> dict[str, str]:
        response = DOC["paths"][path][method]["responses"][status]
        return {name: link["operationId"] for name, link in response.get("links", {}).items()}

    agent = links_of("/v1/agents", "post", "201")
    item = DOC["paths"]["/v1/agents/{agent_id}"]
    for name, method in (("GetAgent", "get"), ("UpdateAgent", "patch"), ("DeleteAgent", "delete")):
        assert agent[name] == item[method]["operationId"]
    for status in ("200", "201"):
        ticket = links_of("/v1/tickets/{ticket_id}", "put", status)
        assign = DOC["paths"]["/v1/tickets/{ticket_id}/assign"]["post"]["operationId"]
        assert ticket["AssignTicket"] == assign
    assert set(links_of("/v1/webhooks", "post", "201")) >= {
        "GetWebhook",
        "UpdateWebhook",
        "DeleteWebhook",
    }


def test_a_link_to_a_route_that_is_gone_fails_the_build() -> None:
    from api.http.links import Link, add_links

    stale = Link("Gone", "POST /v1/agents", "201", "GET /v1/nowhere/{x}", "gone", {"x": "$x"})
    with pytest.raises(LookupError, match="/v1/nowhere"):
        add_links(_document(), (stale,))
    wrong_param = Link("Bad", "POST /v1/agents", "201", "GET /v1/agents/{agent_id}", "", {"id": ""})
    with pytest.raises(LookupError, match="has no"):
        add_links(_document(), (wrong_param,))


# --- schemathesis findings: what positive (schema-valid) data the service refused ----------


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_skill_level_maps_constrain_every_key_and_value() -> None:
    # patternProperties left keys outside the pattern free, with any value.
    assert not [n for n in _walk(DOC) if "patternProperties" in n]
    levels = SCHEMAS["AgentCreate"]["properties"]["skills"]
    assert levels["propertyNames"]["pattern"] and levels["propertyNames"]["maxLength"] == 128
    assert levels["additionalProperties"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
        "description": "1 (novice) to 5 (expert)",
    }


def test_bad_skill_key_is_a_422_naming_it(a: As) -> None:
    assert a.post("/v1/teams", json={"id": "t"}).status_code == 201
    r = a.post("/v1/agents", json={"id": "x", "team": "t", "skills": {"bad key": 3}})
    assert_problem(r, 422, "skills.bad key.[key]")


def test_escalation_documents_that_it_needs_something_to_escalate(a: As) -> None:
    branches = SCHEMAS["EscalateIn"]["anyOf"]
    assert {tuple(b["required"]) for b in branches} == {
        ("capability",),
        ("required_skills",),
        ("team",),
    }
    assert a.post("/v1/teams", json={"id": "t"}).status_code == 201
    assert a.put("/v1/tickets/T-1", json=ticket_body({"team": "t"})).status_code == 201
    r = a.post("/v1/tickets/T-1/escalate", json={"reason": "why", "team": None})
    assert_problem(r, 422, "body")


def test_idempotency_key_documents_printable_ascii(a: As) -> None:
    import re

    [param] = [
        p for p in DOC["paths"]["/v1/teams"]["post"]["parameters"] if p["name"] == "Idempotency-Key"
    ]
    pattern = re.compile(param["schema"]["pattern"])
    for good in ("0", "2f1c6b1e-6c1f-4d5e-9c59-0b8e2b0a6c11", "retry 1"):
        assert pattern.search(good)
    for bad in (" ", " x", "x\x7f", "é"):
        assert not pattern.search(bad)
    r = a.post("/v1/teams", json={"id": "t"}, headers={"Idempotency-Key": "x\x7f"})
    assert_problem(r, 422, "header.idempotency-key")


def test_name_length_is_checked_as_sent_and_said_in_characters(a: As) -> None:
    r = a.post("/v1/teams", json={"id": "t1", "name": "x" * 201})
    body = assert_problem(r, 422, "name")
    assert body["errors"][0]["reason"] == "String should have at most 200 characters"
    # maxLength is what is accepted as sent (issue 8): blanks count, then the name is trimmed.
    r = a.post("/v1/teams", json={"id": "t2", "name": "  " + "x" * 200 + "  "})
    assert_problem(r, 422, "name")
    r = a.post("/v1/teams", json={"id": "t2", "name": "  " + "x" * 196 + "  "})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "x" * 196


def test_optimize_time_limit_says_the_server_maximum() -> None:
    limit = SCHEMAS["OptimizeIn"]["properties"]["time_limit_s"]
    assert "maximum is 300" in limit["description"]


def test_every_component_has_a_plain_unique_name() -> None:
    """FastAPI qualifies a component with its module (``api__schemas__x__Name``) when two
    models share a name: clients' generated code then gets unstable, ugly type names."""
    qualified = [name for name in SCHEMAS if "__" in name]
    assert qualified == []
    assert {"AssignmentOut", "PlannedAssignmentOut", "ReasonOut", "BookingReasonOut"} <= set(
        SCHEMAS
    )
