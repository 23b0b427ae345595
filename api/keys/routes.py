"""/v1/api-keys: an admin mints, lists and revokes the tenant's keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.common.problem import PROBLEM_RESPONSES
from api.http.deps import AdminAuth, NowDep, SessionDep
from api.keys import service as api_keys
from api.keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, summary="Mint a key (the secret is shown once)")
def create_api_key(
    body: ApiKeyCreate, session: SessionDep, auth: AdminAuth, now: NowDep
) -> ApiKeyCreated:
    """Mints an API key with the scopes given; its secret is in this answer only."""
    row, plaintext = api_keys.create(
        session=session, tenant_id=auth.tenant_id, name=body.name, scopes=body.scopes, now=now
    )
    session.commit()
    return ApiKeyCreated(**ApiKeyOut.from_row(row).model_dump(), key=plaintext)


@router.get("", summary="List the tenant's keys (never their secrets)")
def list_api_keys(session: SessionDep, auth: AdminAuth) -> list[ApiKeyOut]:
    """The tenant's API keys with their scopes and state, never their secrets."""
    return [ApiKeyOut.from_row(r) for r in api_keys.list(session=session, tenant_id=auth.tenant_id)]


@router.delete("/{key_id}", summary="Revoke a key")
def revoke_api_key(
    key_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_]+$")],
    session: SessionDep,
    auth: AdminAuth,
    now: NowDep,
) -> ApiKeyOut:
    """Revokes an API key: requests with it are refused from now on."""
    row = api_keys.revoke(session=session, tenant_id=auth.tenant_id, key_id=key_id, now=now)
    session.commit()
    return ApiKeyOut.from_row(row)
