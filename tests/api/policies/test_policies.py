"""/v1/policies: the defaults, PUT as a full replacement, PATCH as RFC 7396 merge patch."""

from __future__ import annotations

from sqlalchemy import Engine, select

from api.common import merge_patch
from api.db.models import OrgVersion
from tests.api.conftest import As, TenantCtx, assert_problem

DEFAULTS: dict[str, object] = {
    "team_scope": "team_only",
    "calls_on_done": "cancel",
    "live_calls_per_ticket": 1,
    "capability_coverage": "refuse",
    "breach_risk": {
        "action": "reroute",
        "escalate_to_team": None,
        "escalate_to_tier": None,
        "margin_minutes": 0,
    },
    "channels": [],
    "sla": None,
    "call_room": {
        "meeting_url_template": None,
        "capability_meeting_urls": {},
        "admission": "agent",
        "show_agent_name": False,
        "opens_minutes_before": 10,
    },
    "calendar_events": {"customer_details": False},
}


def _policies(r_json: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in r_json.items() if k != "updated_at"}


def test_defaults_until_written(a: As) -> None:
    r = a.get("/v1/policies")
    assert r.status_code == 200, r.text
    assert _policies(r.json()) == DEFAULTS and r.json()["updated_at"] is None


def test_put_replaces_the_whole_document(a: As) -> None:
    r = a.put("/v1/policies", json={"team_scope": "borrow", "breach_risk": {"action": "none"}})
    assert r.status_code == 200, r.text
    assert r.json()["team_scope"] == "borrow" and r.json()["updated_at"] is not None
    # A second PUT without team_scope returns it to its default: a replacement, not a merge.
    r = a.put("/v1/policies", json={"calls_on_done": "keep"})
    assert _policies(r.json()) == DEFAULTS | {"calls_on_done": "keep"}
    # GET -> PUT round trip (updated_at is read-only: the PUT body refuses it).
    doc = _policies(a.get("/v1/policies").json())
    assert _policies(a.put("/v1/policies", json=doc).json()) == doc


def test_patch_is_a_merge_patch(a: As) -> None:
    r = a.patch(
        "/v1/policies",
        json={"team_scope": "borrow", "breach_risk": {"margin_minutes": 30}},
        headers={"content-type": merge_patch.MEDIA_TYPE},
    )
    assert r.status_code == 200, r.text
    body = _policies(r.json())
    assert body["team_scope"] == "borrow"
    assert body["breach_risk"] == {**DEFAULTS["breach_risk"], "margin_minutes": 30}  # type: ignore[dict-item]
    # null removes a member: the field returns to its default.
    r = a.patch("/v1/policies", json={"team_scope": None})
    assert _policies(r.json())["team_scope"] == "team_only"
    assert _policies(r.json())["breach_risk"]["margin_minutes"] == 30  # type: ignore[index]


def test_bad_input_names_the_field_and_stores_nothing(a: As) -> None:
    a.put("/v1/policies", json={"calls_on_done": "keep"})
    before = a.get("/v1/policies").json()
    assert_problem(a.patch("/v1/policies", json={"team_scope": "anyone"}), 422, "team_scope")
    assert_problem(
        a.patch("/v1/policies", json={"breach_risk": {"margin_minutes": -1}}),
        422,
        "breach_risk.margin_minutes",
    )
    assert_problem(a.patch("/v1/policies", json={"colour": "red"}), 422, "colour")
    assert_problem(a.put("/v1/policies", json={"live_calls_per_ticket": 0}), 422)
    assert_problem(a.put("/v1/policies", json={"updated_at": None}), 422, "updated_at")
    assert a.get("/v1/policies").json() == before


def test_writing_needs_the_admin_scope(tenant_a: TenantCtx) -> None:
    # A planner reads the live policies but never changes them (issue 13).
    for scope in ("helpdesk", "planner"):
        key = tenant_a.key(scope)
        assert key.get("/v1/policies").status_code == 200
        assert_problem(key.put("/v1/policies", json={}), 403)
        assert_problem(key.patch("/v1/policies", json={}), 403)
    assert tenant_a.admin.patch("/v1/policies", json={}).status_code == 200


def test_tenants_do_not_see_each_other(a: As, b: As) -> None:
    a.put("/v1/policies", json={"team_scope": "borrow"})
    assert b.get("/v1/policies").json()["team_scope"] == "team_only"


def test_a_change_bumps_the_organisation_version(a: As, db: Engine, tenant_a: TenantCtx) -> None:
    def version() -> int | None:
        with db.connect() as conn:
            return conn.execute(
                select(OrgVersion.version).where(OrgVersion.tenant_id == tenant_a.id)
            ).scalar()

    before = version() or 0
    a.patch("/v1/policies", json={"team_scope": "borrow"})
    assert (version() or 0) > before
