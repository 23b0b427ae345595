"""Property-based contract test of the whole HTTP API against its own ``/openapi.json``.

schemathesis generates requests for every operation the document lists (documented examples,
boundary values from the coverage phase, then a few random ones) and sends them through the real
ASGI app built by ``create_app``. Every response must:

- never be a 5xx (``not_a_server_error``): bad input is a 4xx problem, a 500 is a bug;
- have a status code the operation documents (``status_code_conformance``);
- match the documented status code's schema, problem+json included
  (``response_schema_conformance``);
- carry a documented content type (``content_type_conformance``).

Then a stateful run (``test_api_flows_follow_its_openapi_links``): schemathesis builds a state
machine from the document's OpenAPI links (api/http/links.py) and walks scenarios such as
POST /v1/teams -> POST /v1/agents in that team -> PATCH / GET / DELETE that agent, or PUT a
ticket -> assign it -> read its history, with the same checks on every step plus two about
state: an object just created is not a 404 when a link leads to it
(``ensure_resource_availability``), and one deleted is not served again (``use_after_free``).
Only the documented links are followed (schemathesis' own link inference is off), so the test
also proves every link resolves.

Both run on each backend of the ``db_url`` fixture, SQLite and PostgreSQL (a private schema per
session), emptied and seeded with the demo organisation (agents, shifts, busy time, a
capability, open tickets) so lookups by id can hit real rows; each stateful scenario gets a
demo tenant of its own, so every scenario starts from the same state. Every request carries the
tenant's admin key so the authenticated paths are exercised, not just the 401s. Webhook URLs
resolve through a fake DNS that answers with a public address: no lookup leaves the machine.

The document is read at collection time from an app whose database is never opened (serving
``/openapi.json`` needs none), so there is one pytest test per operation and backend. The
schema-from-fixture route (``schemathesis.pytest.from_fixture``) would avoid that, but
schemathesis 4.32 reads ``Node._nodeid``, which pytest 9.2 no longer has.

Bounded for CI (2 shared cores): few random examples per operation, a few short scenarios, a
fixed seed (derandomized, so a failure reproduces; the stateful phase draws which link values
to use from its own randomness, so its paths may differ slightly between runs), no shrinking
and no example database. Raise the budgets locally with the environment variables below.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from api.db.models import BusyInterval, Shift
from api.main import create_app
from api.seed import NAMES, SKILLS, TEAMS, seed_demo
from api.settings import Environment, Settings
from tests.api.conftest import truncate_all

# Imports take CSV as text/csv and as application/csv alike: send the latter as the former is.
schemathesis.serializer.alias("application/csv", "text/csv")

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning: the demo shifts cover it
SEED = 20260302
# Random examples per operation, on top of the documented and boundary ones. Raise it locally
# to dig deeper: SCHEMATHESIS_EXAMPLES=200 pytest tests/api/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
# Stateful scenarios per backend and steps (requests) per scenario:
# SCHEMATHESIS_SCENARIOS=200 SCHEMATHESIS_STEPS=20 pytest tests/api/test_schemathesis.py -k flows
SCENARIOS = int(os.environ.get("SCHEMATHESIS_SCENARIOS", "20"))
STEPS = int(os.environ.get("SCHEMATHESIS_STEPS", "10"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
)
STATEFUL_CHECKS = ("ensure_resource_availability", "use_after_free")

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
        "phases": {
            "stateful": {
                # Only the document's own links: inferred ones would test schemathesis' guesses.
                "inference": {"algorithms": []},
                "checks": {name: {"enabled": True} for name in STATEFUL_CHECKS},
            }
        },
    }
)
STATEFUL_SETTINGS = hypothesis.settings(
    max_examples=SCENARIOS,
    stateful_step_count=STEPS,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.generate],  # no shrinking: the failing scenario is reported as is
    suppress_health_check=list(hypothesis.HealthCheck),
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
    # Random strings are almost never an https URL or an IANA zone: offer valid ones so
    # webhooks and agents get made too.
    "url": ["https://hooks.example.com/switchboard"],
    "timezone": ["UTC", "Europe/Berlin", "America/New_York"],
}
PATH_REFS = {f"{kind}_id": kind for kind in KNOWN if kind not in ("url", "timezone")}
BODY_REFS = {
    "team": "team",
    "agent": "agent",
    "owner_agent": "agent",
    "previous_agent": "agent",
    "ticket_id": "ticket",
    "url": "url",
    "timezone": "timezone",
    "tz": "timezone",
}
SKILL_MAPS = ("skills", "required_skills", "requirements")


def _maybe_known(value: object, kind: str) -> st.SearchStrategy[object]:
    if not KNOWN[kind]:
        return st.just(value)
    # Known first: hypothesis leans to the first branch, and with derandomized draws a
    # generated "0" could otherwise win every time a flow needs a real ticket or agent.
    return st.one_of(st.sampled_from(KNOWN[kind]), st.just(value))


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


def _public_dns(host: str, port: int) -> list[str]:
    """Every host resolves to one public address (TEST-NET ranges count as private)."""
    return ["93.184.215.14"]


def _seed_tenant(settings: Settings, engine: Engine) -> dict[str, str]:
    """A new demo tenant; its shift and busy ids become the known ones. Its admin's headers."""
    demo = seed_demo(settings, now=NOW)
    with engine.connect() as conn:
        for kind, model in (("shift", Shift), ("busy", BusyInterval)):
            ids = select(model.id).where(model.tenant_id == demo.tenant_id).order_by(model.id)
            KNOWN[kind] = list(conn.scalars(ids.limit(5)))
    return {"Authorization": f"Bearer {demo.admin_key}"}


@dataclass
class Live:
    app: FastAPI
    settings: Settings
    engine: Engine
    headers: dict[str, str]


@pytest.fixture(scope="module")
def live(db_url: str, db_engine: Engine) -> Iterator[Live]:
    """The app on the backend's database, emptied and holding one demo tenant, whose admin
    key's headers ``headers`` are."""
    truncate_all(db_engine)
    settings = Settings(database_url=db_url, environment=Environment.TEST)
    headers = _seed_tenant(settings, db_engine)
    app = create_app(settings, clock=lambda: NOW)
    app.state.webhook_resolver = _public_dns
    yield Live(app, settings, db_engine, headers)
    # schemathesis starts the app's lifespan on first use and keeps it for the process; end it
    # here so the engine and its connections are disposed of while the test owns them (and
    # before the other backend's app starts).
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


@schema.parametrize()
def test_api_honours_its_openapi_document(case: schemathesis.Case, live: Live) -> None:
    _fresh_idempotency_key(case)
    case.call_and_validate(app=live.app, headers=live.headers)


def test_api_flows_follow_its_openapi_links(live: Live) -> None:
    class Flows(schema.as_state_machine()):  # type: ignore[misc]
        # Hypothesis replays scenario prefixes and requires a replay to go the same way, so
        # every scenario starts from the same state: a tenant of its own, freshly seeded (the
        # API is tenant-scoped, so the others' rows are invisible to it).
        def setup(self) -> None:
            self.headers = _seed_tenant(live.settings, live.engine)

        def before_call(self, case: schemathesis.Case) -> None:
            _fresh_idempotency_key(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"app": live.app, "headers": self.headers}

    Flows.run(settings=STATEFUL_SETTINGS)
