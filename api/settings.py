"""Service configuration, read from the environment only when :class:`Settings` is built.

Nothing here runs at import time: ``create_app(settings)`` receives a built object, the CLI
builds one per command, and tests build their own. ``DATABASE_URL`` (or
``SWITCHBOARD_DATABASE_URL``) picks the database: a SQLite file by default, PostgreSQL with
``postgresql+psycopg://...``. Unsafe combinations are refused when the object is built, not
discovered in production.
"""

from __future__ import annotations

import enum
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./switchboard.db"
_PLACEHOLDER_SECRET = "change-me"  # a marker refused outside development
_MIN_SECRET_LENGTH = 32
# The largest page the API documents (``limit``'s maximum in OpenAPI). The OpenAPI document is
# the same for every deployment, so the operator's page_size_max may lower it, never raise it.
PAGE_SIZE_LIMIT = 500
# The longest a rotated-out webhook secret may keep signing (7 days).
MAX_SECRET_OVERLAP = 7 * 24 * 3600


ENV_PREFIX = "SWITCHBOARD_"


def env_name(field: str) -> str:
    """The environment variable that sets :class:`Settings` field ``field``
    (``webhook_allow_http`` -> ``SWITCHBOARD_WEBHOOK_ALLOW_HTTP``), for messages that tell an
    operator what to set. A name that is no field is a bug: :class:`KeyError`."""
    if field not in Settings.model_fields:
        raise KeyError(f"Settings has no field {field!r}")
    return f"{ENV_PREFIX}{field.upper()}"


def _weak(secret: str) -> bool:
    """A secret refused in production: the placeholder, or too short to be random enough."""
    return secret == _PLACEHOLDER_SECRET or len(secret) < _MIN_SECRET_LENGTH


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything the service reads from its environment, validated in one place."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        # A refused setting must not echo the secrets beside it into a log.
        hide_input_in_errors=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "SWITCHBOARD_DATABASE_URL", "database_url"),
    )
    # The newest key of the keyring that encrypts secrets at rest (webhook secrets, calendar
    # credentials, stored idempotent answers; api/crypto.py).
    secret_key: SecretStr = SecretStr(_PLACEHOLDER_SECRET)
    # Older secret keys, newest first, comma-separated: what was stored under them still opens
    # (api/crypto.py) until ``switchboard rotate-secrets`` re-encrypted it under secret_key.
    previous_secret_keys: SecretStr | None = None
    db_echo: bool = False
    # Calendar sync (api/calendar_sync): each provider request's timeout.
    calendar_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # An agent whose calendar mirror is older than this is unavailable for new calls (fail closed).
    calendar_max_staleness_seconds: float = Field(default=1800.0, gt=0)
    # How often each connection is polled (the safety net under push notifications).
    calendar_poll_seconds: float = Field(default=300.0, gt=0)
    # Push channels (api/calendar_sync/channels.py): how long each is asked to live (providers
    # may shorten it: a Graph subscription to events lives under three days), and how long
    # before its expiry it is replaced by a new one.
    calendar_channel_ttl_seconds: float = Field(default=2 * 24 * 3600.0, ge=600)
    calendar_channel_renew_margin_seconds: float = Field(default=3 * 3600.0, ge=60)
    # How far ahead busy time is mirrored (the longest booking horizon a capability may have).
    calendar_horizon_days: int = Field(default=60, ge=1, le=366)
    # May a connection name its own provider endpoints (national clouds, proxies, tests) and
    # read an ICS feed on a private address? Unset: yes outside production, no in production.
    calendar_custom_endpoints: bool | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    page_size_default: int = Field(default=50, ge=1, le=1000)
    page_size_max: int = Field(default=PAGE_SIZE_LIMIT, ge=1, le=PAGE_SIZE_LIMIT)
    bulk_max_rows: int = Field(default=10_000, ge=1)
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # Housekeeping (expired Idempotency-Key records) runs in every job worker this often;
    # 0 turns it off there (then run ``switchboard housekeeping`` from cron). Rows are deleted
    # this many per transaction.
    housekeeping_interval_seconds: float = Field(default=300.0, ge=0)
    housekeeping_batch_size: int = Field(default=1000, ge=1, le=100_000)
    # Breach-risk checks (api.assignment.breach): each housekeeping pass queues one for every
    # tenant with agent-held tickets that have due dates, and each run queues the next this many
    # seconds later while there is work to check. 0: no checks are queued.
    breach_risk_interval_seconds: float = Field(default=60.0, ge=0)
    # The background job worker (queue re-optimization): None = run it in every service
    # process except in the test environment (tests call ``Worker.run_once`` themselves).
    jobs_worker: bool | None = None
    jobs_poll_seconds: float = Field(default=1.0, gt=0)
    jobs_lease_seconds: float = Field(default=60.0, gt=0)
    jobs_max_attempts: int = Field(default=3, ge=1, le=20)
    optimize_max_time_limit_seconds: float = Field(default=300.0, gt=0)
    # What-if planning (/v1/planning): a run simulates in the one job worker, so its size is
    # bounded: replications per scenario, tickets a run may simulate (history replayed, plus the
    # volume profiles' expected arrivals) and scenarios in a sweep. Days are at most 31 always.
    planning_max_replications: int = Field(default=20, ge=1, le=1000)
    planning_max_tickets: int = Field(default=20_000, ge=1)
    planning_max_sweep_points: int = Field(default=12, ge=1, le=1000)
    # What PATCH /v1/agents/{id} to away/offline does with the agent's unstarted tickets:
    # reassign (real-time path, team queue when nobody fits), queue, or keep.
    reroute_policy: Literal["reassign", "queue", "keep"] = "reassign"
    # Stateless solving (POST /v1/solve) holds a worker thread for up to the time limit.
    solve_max_seconds: float = Field(default=30.0, gt=0, le=600)
    solve_max_agents: int = Field(default=2000, ge=1)
    solve_max_tickets: int = Field(default=20_000, ge=1)
    # Webhook targets on loopback/private networks are refused unless the operator allows them.
    webhook_allow_private_urls: bool = False
    # Webhook targets must be https unless the operator allows plain http (local receivers).
    webhook_allow_http: bool = False
    # The background deliverer: None = run it except in the test environment (tests drive
    # ``Deliverer.run_once`` themselves).
    webhook_deliverer: bool | None = None
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_backoff_base_seconds: float = Field(default=10.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    webhook_retry_after_max_seconds: float = Field(default=24 * 3600.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_batch_size: int = Field(default=20, ge=1, le=200)
    # After a secret rotation the old secret keeps signing deliveries (beside the new one) for
    # this long, unless the rotation asks for another overlap (0 = the old one stops at once).
    webhook_secret_overlap_seconds: int = Field(default=24 * 3600, ge=0, le=MAX_SECRET_OVERLAP)
    # Delivered/failed deliveries (and their events and attempt log) are kept this long.
    webhook_retention_days: int = Field(default=30, ge=1)

    # --- Per-tenant rate limits and the solve pool (api/http/ratelimit.py, api/solve/pool.py) ---
    # A token bucket per tenant: rate_limit_per_second tokens a second, holding at most
    # rate_limit_burst; one request takes one. None = on, except in the test environment
    # (tests that limit turn it on). The defaults only stop floods: one tenant's assignment
    # benchmark stays under them (figures: benchmarks/README.md, HTTP service).
    rate_limit_enabled: bool | None = None
    rate_limit_per_second: int = Field(default=2000, ge=1)
    rate_limit_burst: int = Field(default=4000, ge=1)
    # A 429 is answered this late: a client looping on 429s is slowed to one request per
    # connection per delay, so refusing it costs next to nothing (0 = answer at once).
    rate_limit_reject_delay_seconds: float = Field(default=0.5, ge=0, le=10)
    # A POST /v1/solve takes this many tokens (its body is parsed before the solve pool's cap
    # can refuse it).
    rate_limit_solve_cost: int = Field(default=10, ge=1)
    # Count in Redis (shared by every worker and replica) when set, else in process memory
    # (then each worker process has its own buckets). Unreachable Redis: requests are admitted
    # unlimited, with a warning, and Redis is asked again after a short pause.
    redis_url: SecretStr | None = None
    rate_limit_redis_prefix: str = "switchboard:ratelimit:"
    rate_limit_redis_timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    # --- Call links and the customer's pages (api/links, api/customer) ---
    # The links' URLs are built on this (the address customers reach the service at).
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/]+")
    # An unused link stops booking this long after it was issued, unless the link says otherwise.
    link_default_expiry_hours: int = Field(default=7 * 24, ge=1, le=90 * 24)
    # Failed token lookups (an unknown, expired or revoked link) allowed per client address, in
    # the `limits` notation ("20/minute", "100 per hour"); more are refused with a 429. Counted
    # in Redis when redis_url is set (shared by every process), else in process memory.
    link_lookup_failures: str = "20/minute"
    link_lookup_redis_prefix: str = "switchboard:links:"

    # POST /v1/solve runs in a bounded pool off the request threads: at most solve_workers at
    # once in this process, at most solve_max_per_tenant of them for one tenant; more is
    # refused at once (429 for the tenant, 503 when the pool is full), never queued.
    # solve_executor: "process" (CPU-bound OR-Tools on other cores, at a lower priority than
    # request serving) or "thread"; None = process, except thread in the test environment.
    solve_workers: int = Field(default=4, ge=1, le=64)
    solve_max_per_tenant: int = Field(default=2, ge=1, le=64)
    solve_executor: Literal["process", "thread"] | None = None

    # Request body limits (api/http/gate.py), in bytes; a longer body is a 413 before it is read.
    # Plain writes carry one object; imports carry up to ``bulk_max_rows`` rows as JSON or CSV.
    # A solve carries a whole problem: one at ``solve_max_agents`` x ``solve_max_tickets`` with
    # the usual fields is ~9.5 MB of JSON (tests/api/http/test_gate.py), so 16 MiB admits it.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_import_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_solve_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1)

    # --- PostgreSQL under faults (api/db/engine.py) ---------------------------------------------
    # A database that does not answer becomes a quick 503, not a hung request. Connecting gives
    # up after this long (libpq counts whole seconds, at least 2).
    db_connect_timeout_seconds: int = Field(default=3, ge=2, le=60)
    # Server-side limits, sent as connection options; 0 turns one off. No statement of ours
    # runs for long (the optimizer solves outside any transaction), so 30 s is a runaway.
    db_statement_timeout_seconds: float = Field(default=30.0, ge=0)
    db_lock_timeout_seconds: float = Field(default=10.0, ge=0)
    # A transaction whose client went silent (a partition) releases its locks after this long.
    db_idle_in_transaction_timeout_seconds: float = Field(default=60.0, ge=0)
    # Client side: the longest wait for any answer on an open connection before it is declared
    # dead. Through a proxy or load balancer a partition still acknowledges every packet, so
    # only this notices it; keep it above the statement timeout, which answers on its own.
    db_reply_timeout_seconds: float = Field(default=35.0, gt=0)
    # Unacknowledged data or keepalives for this long close the connection (a direct partition).
    db_tcp_timeout_seconds: int = Field(default=10, ge=1, le=600)
    # Waiting for a free pooled connection longer than this is a 503 (SQLAlchemy's default: 30).
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # /readyz gives the database this long to answer before it says "unavailable".
    db_ready_timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql+psycopg:// URL")
        if value.startswith("postgresql") and not value.startswith("postgresql+psycopg:"):
            raise ValueError("PostgreSQL URLs must use the psycopg 3 driver: postgresql+psycopg://")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.page_size_default > self.page_size_max:
            raise ValueError("page_size_default must not exceed page_size_max")
        if self.calendar_channel_renew_margin_seconds >= self.calendar_channel_ttl_seconds:
            raise ValueError(
                "calendar_channel_renew_margin_seconds must be shorter than "
                "calendar_channel_ttl_seconds (a channel would be renewed as soon as it is made)"
            )
        if self.db_reply_timeout_seconds <= self.db_statement_timeout_seconds:
            # The server's own timeout must answer first, or a slow statement would be taken
            # for a dead network (and its connection dropped instead of its error reported).
            raise ValueError("db_reply_timeout_seconds must exceed db_statement_timeout_seconds")
        if self.environment is Environment.PRODUCTION:
            secret = self.secret_key.get_secret_value()
            if _weak(secret):
                raise ValueError(
                    "SWITCHBOARD_SECRET_KEY must be set to at least "
                    f"{_MIN_SECRET_LENGTH} random characters in production"
                )
            for position, previous in enumerate(self.previous_keys, start=1):
                if _weak(previous):
                    raise ValueError(
                        f"SWITCHBOARD_PREVIOUS_SECRET_KEYS: key {position} must be at least "
                        f"{_MIN_SECRET_LENGTH} random characters in production"
                    )
            if self.webhook_allow_private_urls:
                raise ValueError(
                    "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE_URLS must not be enabled in production"
                )
            if self.db_echo:
                raise ValueError("SWITCHBOARD_DB_ECHO would log query parameters in production")
        return self

    @property
    def previous_keys(self) -> tuple[str, ...]:
        """``previous_secret_keys`` as a list, newest first (blanks around commas ignored)."""
        if self.previous_secret_keys is None:
            return ()
        items = self.previous_secret_keys.get_secret_value().split(",")
        return tuple(item.strip() for item in items if item.strip())

    @property
    def keyring(self) -> tuple[str, ...]:
        """Every secret key, newest (``secret_key``) first, each once: what encrypts at rest
        (the first) and what may still decrypt (all), :mod:`api.crypto`."""
        ring = [self.secret_key.get_secret_value(), *self.previous_keys]
        return tuple(dict.fromkeys(ring))

    @property
    def rate_limiting(self) -> bool:
        """Whether requests are rate-limited (``rate_limit_enabled``, defaulted)."""
        if self.rate_limit_enabled is None:
            return self.environment is not Environment.TEST
        return self.rate_limit_enabled

    @property
    def solve_in_processes(self) -> bool:
        """Whether solves run in a process pool (``solve_executor``, defaulted)."""
        if self.solve_executor is None:
            return self.environment is not Environment.TEST
        return self.solve_executor == "process"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def calendar_endpoints_open(self) -> bool:
        """Whether calendar connections may name their own endpoints (see the field)."""
        if self.calendar_custom_endpoints is not None:
            return self.calendar_custom_endpoints
        return self.environment is not Environment.PRODUCTION
