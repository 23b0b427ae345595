"""/v1/policies: GET the tenant's policies, PUT a whole document, PATCH (RFC 7396) a part."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from api.common import merge_patch
from api.common.problem import PROBLEM_RESPONSES
from api.db.models import TenantPolicies
from api.db.unit import commit_with_retry
from api.http.deps import AdminAuth, NowDep, ReadAuth, SessionDep
from api.policies import service as policies
from api.policies.schemas import Policies, PoliciesOut

router = APIRouter(prefix="/v1/policies", tags=["policies"], responses=PROBLEM_RESPONSES)


def _out(data: Policies, stored: TenantPolicies | None) -> PoliciesOut:
    return PoliciesOut(**data.model_dump(), updated_at=stored.updated_at if stored else None)


@router.get("", summary="Read the tenant's policies (the defaults until one is written)")
def read_policies(session: SessionDep, auth: ReadAuth) -> PoliciesOut:
    """The tenant's policies document; every field it never wrote at its default."""
    """The tenant's policies document, with the defaults for anything never written."""
    return _out(policies.load(session, auth.tenant_id), policies.row(session, auth.tenant_id))


@router.put("", summary="Replace the tenant's policies (an omitted field takes its default)")
def put_policies(body: Policies, session: SessionDep, auth: AdminAuth, now: NowDep) -> PoliciesOut:
    """Replaces the whole policies document; an omitted field takes its default."""
    stored = commit_with_retry(
        session,
        lambda: policies.replace(session=session, tenant_id=auth.tenant_id, data=body, now=now),
    )
    return _out(Policies.model_validate(stored.document), stored)


@router.patch(
    "",
    summary="Change some of the tenant's policies (JSON Merge Patch, RFC 7396)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"$ref": "#/components/schemas/Policies"}}
                for media in (merge_patch.MEDIA_TYPE, "application/json")
            },
        }
    },
)
def patch_policies(
    body: Annotated[dict[str, Any], Body()],
    session: SessionDep,
    auth: AdminAuth,
    now: NowDep,
) -> PoliciesOut:
    """Merges the patch into the policies (null returns a field to its default), validated whole."""
    stored = commit_with_retry(
        session,
        lambda: policies.patch(session=session, tenant_id=auth.tenant_id, changes=body, now=now),
    )
    return _out(Policies.model_validate(stored.document), stored)
