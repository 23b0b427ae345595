"""Property-based contract test of the whole HTTP API against its own ``/openapi.json``.

schemathesis generates requests for every operation the document lists (documented examples,
boundary values from the coverage phase, then a few random ones) and sends them through the real
ASGI app built by ``create_app``. Every response must:

- never be a 5xx (``not_a_server_error``): bad input is a 4xx problem, a 500 is a bug;
- have a status code the operation documents (``status_code_conformance``);
- match the documented status code's schema, problem+json included
  (``response_schema_conformance``);
- carry a documented content type (``content_type_conformance``).

The app runs on a migrated SQLite file holding the demo organisation (agents, shifts, busy time,
a capability, open tickets) so lookups by id can hit real rows, and every request carries that
tenant's admin key so the authenticated paths are exercised, not just the 401s. SQLite only: the
other API tests cover PostgreSQL, and generation, not the database, is what this test is about.

The document is read at collection time from an app whose database is never opened (serving
``/openapi.json`` needs none), so there is one pytest test per operation. The schema-from-fixture
route (``schemathesis.pytest.from_fixture``) would avoid that, but schemathesis 4.32 reads
``Node._nodeid``, which pytest 9.2 no longer has.

Bounded for CI (2 shared cores): few random examples per operation, a fixed seed
(derandomized, so a failure reproduces), no shrinking and no example database.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from sqlalchemy import select

from api.db import migrate
from api.db.engine import make_engine
from api.db.models import BusyInterval, Shift
from api.main import create_app
from api.seed import NAMES, SKILLS, TEAMS, seed_demo
from api.settings import Environment, Settings

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning: the demo shifts cover it
SEED = 20260302
# Random examples per operation, on top of the documented and boundary ones. Raise it locally
# to dig deeper: SCHEMATHESIS_EXAMPLES=200 pytest tests/api/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
)

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
            # The key is sent by the test; generated Authorization headers would only test 401s.
            "with-security-parameters": False,
        },
        # Only the checks this test is about; the others (negative data rejection, ignored auth,
        # ...) judge policy rather than the contract.
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        # Stateful runs (links between operations) would multiply the cost; the question here is
        # per operation.
        "phases": {"stateful": {"enabled": False}},
    }
)


def _document() -> dict[str, object]:
    # sqlite:// (in memory) is never connected to: building the document needs no database.
    app = create_app(Settings(database_url="sqlite://", environment=Environment.TEST))
    return app.openapi()


schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)

# Random ids almost never name a stored row, so without help every read, update and delete would
# stop at a 404 and every create at "unknown team". Generated ids and references are swapped,
# half of the time, for ones the seeded tenant holds, so the success paths (and their response
# schemas) get exercised too. Shift and busy ids are generated when seeding: the fixture adds them.
KNOWN: dict[str, list[str]] = {
    "skill": [ident for ident, _, _ in SKILLS],
    "team": [ident for ident, _, _ in TEAMS],
    "agent": [name.lower() for name in NAMES],
    "capability": ["billing-call-de"],
    "ticket": [f"DEMO-{n}" for n in range(1, 21)],
    "shift": [],
    "busy": [],
}
PATH_REFS = {f"{kind}_id": kind for kind in KNOWN}
BODY_REFS = {
    "team": "team",
    "agent": "agent",
    "owner_agent": "agent",
    "previous_agent": "agent",
}
SKILL_MAPS = ("skills", "required_skills", "requirements")


def _maybe_known(value: object, kind: str) -> st.SearchStrategy[object]:
    if not KNOWN[kind]:
        return st.just(value)
    return st.one_of(st.just(value), st.sampled_from(KNOWN[kind]))


@st.composite
def _with_known_refs(draw: st.DrawFn, body: object) -> object:
    if isinstance(body, list):
        return [draw(_with_known_refs(item)) for item in body]
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for field, kind in BODY_REFS.items():
        if field in out:
            out[field] = draw(_maybe_known(out[field], kind))
    for field in SKILL_MAPS:
        levels = out.get(field)
        if isinstance(levels, dict) and levels and draw(st.booleans()):
            skills = draw(st.lists(st.sampled_from(KNOWN["skill"]), min_size=len(levels)))
            out[field] = dict(zip(skills, levels.values(), strict=False))
    return out


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, object] | None
) -> st.SearchStrategy[dict[str, object] | None]:
    if not path_parameters:
        return st.just(path_parameters)
    strategies = {
        name: _maybe_known(value, PATH_REFS[name]) if name in PATH_REFS else st.just(value)
        for name, value in path_parameters.items()
    }
    return st.fixed_dictionaries(strategies)


# One generated key ("0", say) reused across operations is a correct 422 (same key, different
# request), so generated keys as they are would stop most POSTs at the idempotency check.
# Numbering them keeps every request fresh and the run deterministic. (Done in the test, not a
# map_headers hook: the coverage phase's cases do not pass through hooks.)
_IDEMPOTENCY_KEYS = itertools.count()


def _fresh_idempotency_key(case: schemathesis.Case) -> None:
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if case.headers is not None and isinstance(key, str) and key:
        # Within the documented 255 characters, so a valid key stays valid.
        case.headers["Idempotency-Key"] = f"{key[:240]}-{next(_IDEMPOTENCY_KEYS)}"


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: object) -> st.SearchStrategy[object]:
    return _with_known_refs(body)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """The app on a migrated, seeded SQLite file and the headers of its admin key."""
    url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'switchboard.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, environment=Environment.TEST)
    demo = seed_demo(settings, now=NOW)
    engine = make_engine(settings)
    with engine.connect() as conn:
        for kind, model in (("shift", Shift), ("busy", BusyInterval)):
            KNOWN[kind] = list(conn.scalars(select(model.id).order_by(model.id).limit(5)))
    engine.dispose()
    app = create_app(settings, clock=lambda: NOW)
    yield app, {"Authorization": f"Bearer {demo.admin_key}"}
    # schemathesis starts the app's lifespan on first use and keeps it for the process; end it
    # here so the engine and its SQLite connections are disposed of while the test owns them.
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


@schema.parametrize()
def test_api_honours_its_openapi_document(
    case: schemathesis.Case, live: tuple[FastAPI, dict[str, str]]
) -> None:
    app, headers = live
    _fresh_idempotency_key(case)
    case.call_and_validate(app=app, headers=headers)
