"""The per-tenant, organisation-versioned cache both the real-time index and the booking engine's
organisation live in (``api.org_version.VersionedCache``): its own rules, without a
database (the services' tests cover reading the version inside the transaction)."""

from __future__ import annotations

import pytest

from api import org_version
from api.org_version import VersionedCache


def always(_: str) -> bool:
    return True


def test_serves_only_the_version_it_was_built_for_and_what_usable_accepts() -> None:
    cache: VersionedCache[str] = VersionedCache()
    cache.put("t1", 3, "org@3")
    assert cache.lookup("t1", 3, always) == "org@3"
    assert cache.lookup("t1", 4, always) is None  # the organisation changed since
    assert cache.lookup("t2", 3, always) is None  # another tenant's entry is never served
    assert cache.lookup("t1", 3, lambda value: value.endswith("@4")) is None
    assert (cache.hits, cache.builds) == (1, 1)
    cache.invalidate("t1")
    assert cache.lookup("t1", 3, always) is None


def test_entries_expire_in_wall_time_and_the_oldest_tenant_goes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(org_version.time, "monotonic", lambda: clock[0])
    cache: VersionedCache[str] = VersionedCache(max_wall_seconds=60.0, max_tenants=2)
    cache.put("a", 1, "A")
    clock[0] += 10
    cache.put("b", 1, "B")
    clock[0] += 10
    cache.put("c", 1, "C")  # over the bound: "a", the oldest, is dropped
    assert [cache.lookup(t, 1, always) for t in "abc"] == [None, "B", "C"]
    clock[0] += 55  # "b" is 65 s old, "c" 55 s
    assert cache.lookup("b", 1, always) is None and cache.lookup("c", 1, always) == "C"
