"""The in-process API key cache: what it keeps, for how long, and that revocation and another
database are never answered from it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, update

from api import auth
from api.auth import Principal, PrincipalCache
from api.db.engine import make_session_factory
from api.db.models import ApiKey
from api.enums import Scope
from tests.api.conftest import As, TenantCtx, assert_problem

P = Principal(tenant_id="t1", key_id="key_1", scopes=frozenset({Scope.HELPDESK}))


def test_entries_expire_and_are_scoped_by_database() -> None:
    clock = [1000.0]
    cache = PrincipalCache(ttl_seconds=5.0, clock=lambda: clock[0])
    cache.put("db-a", "sb_x_secret", P)
    assert cache.get("db-a", "sb_x_secret") == P
    assert cache.get("db-b", "sb_x_secret") is None  # another database never sees it
    assert cache.get("db-a", "sb_x_other") is None
    clock[0] += 4.9
    assert cache.get("db-a", "sb_x_secret") == P
    clock[0] += 0.2
    assert cache.get("db-a", "sb_x_secret") is None  # past the TTL: asked again
    cache.put("db-a", "sb_x_secret", P)
    cache.forget("key_1")
    assert cache.get("db-a", "sb_x_secret") is None


def test_revoked_in_another_process_stops_within_the_ttl(
    tenant_a: TenantCtx, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation this process did not make (a direct UPDATE stands in for another replica)
    is seen once the cached entry expires, never later. The cache's clock is the test's, so a
    slow machine cannot let the entry expire before the second request."""
    clock = [1000.0]
    monkeypatch.setattr(auth.principal_cache, "clock", lambda: clock[0])
    r = tenant_a.admin.post("/v1/api-keys", json={"name": "zd", "scopes": ["helpdesk"]})
    created = r.json()
    helpdesk = As(tenant_a.admin.client, created["key"])
    assert helpdesk.get("/v1/teams").status_code == 200  # now cached
    with make_session_factory(db)() as session:
        session.execute(
            update(ApiKey).where(ApiKey.id == created["id"]).values(revoked_at=ApiKey.created_at)
        )
        session.commit()
    assert helpdesk.get("/v1/teams").status_code == 200  # still inside the TTL
    clock[0] += auth.principal_cache.ttl_seconds
    assert_problem(helpdesk.get("/v1/teams"), 401)


def test_unknown_keys_are_not_cached(tenant_a: TenantCtx) -> None:
    key = tenant_a.admin_key
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert_problem(As(tenant_a.admin.client, forged).get("/v1/teams"), 401)
    assert not any(k[1] == auth.hash_key(forged) for k in auth.principal_cache._entries)
