"""Database rows. Separate from the API schemas (``api/schemas``) and the solver's types.

Tenancy is in the keys: every tenant-owned table's primary key starts with ``tenant_id``, and
every reference between tenant-owned rows is a *composite* foreign key that includes it, so the
database itself refuses an agent in another tenant's team. Ids of tenant-owned objects are
chosen by the client (the helpdesk's own ids) and are unique per tenant only: a tenant can never
learn whether another tenant uses an id.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false

from api.db.base import Base
from api.enums import (
    AgentStatus,
    Scope,
    SkillKind,
    TeamScope,
    TicketEventKind,
    TicketPriority,
    TicketStatus,
)

ID_LENGTH = 128
# A busy interval's source: "manual", or "calendar:<connection id>" (api/calendar_sync).
SOURCE_LENGTH = 64


def _enum(cls: type, name: str | None = None) -> Enum:
    # Stored as VARCHAR plus a CHECK constraint: portable, and adding a value is a migration
    # that does not need PostgreSQL's ALTER TYPE. ``name`` names the constraint when one table
    # has two columns of the same enum.
    return Enum(
        cls,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        name=name or cls.__name__.lower(),
    )


def _tenant_fk() -> Any:
    return ForeignKey("tenants.id", ondelete="CASCADE")


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ApiKey(Base):
    """An API key, stored as the sha256 of the full secret; ``prefix`` finds the row."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(100))  # space-separated Scope values
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    def scope_set(self) -> frozenset[Scope]:
        return frozenset(Scope(s) for s in self.scopes.split())


class Skill(Base):
    __tablename__ = "skills"

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[SkillKind] = mapped_column(_enum(SkillKind), default=SkillKind.SKILL)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Team(Base):
    """A team. ``scope`` (who may work its tickets) overrides the tenant's ``team_scope``
    policy; NULL follows the policy."""

    __tablename__ = "teams"

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    scope: Mapped[TeamScope | None] = mapped_column(_enum(TeamScope), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "team_id"], ["teams.tenant_id", "teams.id"]),
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        Index("ix_agents_tenant_team", "tenant_id", "team_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    # channel -> how many tickets of it the agent may hold at once, within ``capacity``
    channel_capacity: Mapped[dict[str, int]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[AgentStatus] = mapped_column(_enum(AgentStatus), default=AgentStatus.AVAILABLE)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    skills: Mapped[list[AgentSkill]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="AgentSkill.skill_id",
    )


class AgentSkill(Base):
    __tablename__ = "agent_skills"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["tenant_id", "skill_id"], ["skills.tenant_id", "skills.id"]),
        CheckConstraint("level BETWEEN 1 AND 5", name="level_range"),
        Index("ix_agent_skills_tenant_skill", "tenant_id", "skill_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)


class Shift(Base):
    __tablename__ = "shifts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"], ondelete="CASCADE"
        ),
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_shifts_tenant_agent_start", "tenant_id", "agent_id", "start_at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BusyInterval(Base):
    """Time an agent cannot work (a meeting, a booked call). Contents never stored: only when."""

    __tablename__ = "busy_intervals"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"], ondelete="CASCADE"
        ),
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_busy_intervals_tenant_agent_start", "tenant_id", "agent_id", "start_at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(SOURCE_LENGTH), default="manual")
    # When a calendar sync last confirmed this interval (None: not from a calendar).
    synced_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Capability(Base):
    """A bookable requirement set: customers book calls against it, never against a person."""

    __tablename__ = "capabilities"
    __table_args__ = (
        CheckConstraint("call_minutes > 0", name="call_minutes_positive"),
        CheckConstraint("horizon_days > 0", name="horizon_days_positive"),
        CheckConstraint("min_notice_minutes >= 0", name="min_notice_non_negative"),
        CheckConstraint("buffer_minutes >= 0", name="buffer_non_negative"),
        CheckConstraint("granularity_minutes > 0", name="granularity_positive"),
        CheckConstraint("reserve_share >= 0 AND reserve_share < 1", name="reserve_share_range"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    call_minutes: Mapped[int] = mapped_column(Integer)
    horizon_days: Mapped[int] = mapped_column(Integer)
    min_notice_minutes: Mapped[int] = mapped_column(Integer)
    buffer_minutes: Mapped[int] = mapped_column(Integer)
    granularity_minutes: Mapped[int] = mapped_column(Integer)
    reserve_share: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    requirements: Mapped[list[CapabilitySkill]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="CapabilitySkill.skill_id",
    )


class CapabilitySkill(Base):
    __tablename__ = "capability_skills"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "capability_id"],
            ["capabilities.tenant_id", "capabilities.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["tenant_id", "skill_id"], ["skills.tenant_id", "skills.id"]),
        CheckConstraint("level BETWEEN 1 AND 5", name="level_range"),
        Index("ix_capability_skills_tenant_skill", "tenant_id", "skill_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    capability_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)


class Ticket(Base):
    """A helpdesk ticket, keyed by the helpdesk's own id.

    ``team_id`` is the accountable team (the owner when no agent holds it); ``owner_agent_id``
    and ``previous_agent_id`` are plain ids, not foreign keys: the helpdesk may name an agent who
    has since left, and the solver accepts that.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "team_id"], ["teams.tenant_id", "teams.id"]),
        CheckConstraint("effort_minutes > 0", name="effort_positive"),
        Index("ix_tickets_tenant_status", "tenant_id", "status"),
        Index("ix_tickets_tenant_team", "tenant_id", "team_id"),
        Index("ix_tickets_tenant_owner", "tenant_id", "owner_agent_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    priority: Mapped[TicketPriority] = mapped_column(_enum(TicketPriority))
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus))
    first_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    effort_minutes: Mapped[int] = mapped_column(Integer)
    owner_agent_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    previous_agent_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    requester: Mapped[str | None] = mapped_column(String(200))
    # where the customer reached out: a built-in channel or one the tenant declared
    channel: Mapped[str] = mapped_column(String(ID_LENGTH), default="email", server_default="email")
    created_at: Mapped[datetime]  # when the helpdesk created it
    received_at: Mapped[datetime]  # when we first saw it
    updated_at: Mapped[datetime]
    # SLA clocks (api.tickets.sla): which deadlines the service computed from the tenant's SLA
    # policy (the helpdesk's own are never moved), and since when the clocks are paused.
    first_response_due_computed: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    resolution_due_computed: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    sla_paused_at: Mapped[datetime | None]

    required_skills: Mapped[list[TicketSkill]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="TicketSkill.skill_id",
    )


class TicketSkill(Base):
    __tablename__ = "ticket_skills"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "ticket_id"], ["tickets.tenant_id", "tickets.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["tenant_id", "skill_id"], ["skills.tenant_id", "skills.id"]),
        CheckConstraint("level BETWEEN 1 AND 5", name="level_range"),
        Index("ix_ticket_skills_tenant_skill", "tenant_id", "skill_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)


class TicketEvent(Base):
    """One entry of a ticket's history. Append-only: the migration adds a trigger refusing UPDATE.

    The typed from/to columns are what KPIs query; ``data`` keeps anything else worth showing.
    """

    __tablename__ = "ticket_events"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "ticket_id"], ["tickets.tenant_id", "tickets.id"]),
        Index("ix_ticket_events_tenant_ticket_seq", "tenant_id", "ticket_id", "seq"),
        Index("ix_ticket_events_tenant_at", "tenant_id", "at"),
    )

    # SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk())
    ticket_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    kind: Mapped[TicketEventKind] = mapped_column(_enum(TicketEventKind))
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(64))  # API key id, or "system"
    from_agent: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    to_agent: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    from_team: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    to_team: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IdempotencyRecord(Base):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed on retries by
    the same API key.

    ``status_code`` is NULL while the first request is still running; it is set in the same
    transaction as the work the response describes (:mod:`api.idempotency.middleware`).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    # Each API key has its own Idempotency-Keys: a response is replayed only to its maker.
    api_key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(2048))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class CallStatus(enum.StrEnum):
    """A booked call's life: booked until it is cancelled, completed (its agent says so, or its
    time has passed) or marked a no-show by its bound agent."""

    BOOKED = "booked"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


class CallNote(enum.StrEnum):
    """Why a call was cancelled or flagged, in words a customer page can show."""

    TICKET_SOLVED = "ticket_solved"
    """Its ticket was solved."""
    TICKET_CLOSED = "ticket_closed"
    """Its ticket was closed."""
    REQUESTED = "requested"
    """Cancelled through the bookings API (``DELETE /v1/bookings/{id}``)."""
    RESCHEDULED = "rescheduled"
    """Replaced by a call at another time, through its call link (the link names the new one)."""
    CUSTOMER = "customer"
    """Cancelled by the customer through their call link."""


class Call(Base):
    """A call a customer booked against a capability (``/v1/bookings``), for one ticket.

    ``bound_agent`` stays NULL until just-in-time binding names somebody; ``cover_agent`` is the
    booking engine's tentative cover of an unbound call, kept only so the engine rebuilds the
    cover it had (see ``solver.capability.BookingState.cover``) — never shown to anybody.
    ``occupied_until`` is the end plus the capability's buffer when booked or bound: the agent is
    taken until then, also once the call is ``completed`` (stored at its end: the wrap-up still
    holds the agent). ``at_risk_since`` is set while no agent can cover the call. On PostgreSQL
    the migrations add an exclusion constraint so that one agent's booked or completed, bound
    calls can never overlap in ``[start_at, occupied_until)``.
    """

    __tablename__ = "calls"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "capability_id"], ["capabilities.tenant_id", "capabilities.id"]
        ),
        ForeignKeyConstraint(["tenant_id", "ticket_id"], ["tickets.tenant_id", "tickets.id"]),
        CheckConstraint("end_at > start_at", name="end_after_start"),
        CheckConstraint("occupied_until >= end_at", name="occupied_after_end"),
        Index("ix_calls_tenant_status_start", "tenant_id", "status", "start_at"),
        Index("ix_calls_tenant_ticket", "tenant_id", "ticket_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    capability_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    ticket_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    occupied_until: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[CallStatus] = mapped_column(_enum(CallStatus), default=CallStatus.BOOKED)
    bound_agent: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    bound_at: Mapped[datetime | None]
    cover_agent: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    at_risk_since: Mapped[datetime | None]  # nobody can cover it: offer another time
    cancelled_at: Mapped[datetime | None]
    # Why it was cancelled (customer-visible); NULL while booked.
    cancel_reason: Mapped[CallNote | None] = mapped_column(_enum(CallNote, "cancelreason"))
    # Kept although its ticket is done (policy calls_on_done=keep): when, and why.
    flagged_at: Mapped[datetime | None]
    flag_reason: Mapped[CallNote | None] = mapped_column(_enum(CallNote, "flagreason"))
    # The call link it was booked through (None: booked with an API key).
    link_id: Mapped[str | None] = mapped_column(String(40))
    # The bound agent let the customer in (the waiting room reveals the join URL from then on).
    admitted_at: Mapped[datetime | None]
    admitted_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    completed_at: Mapped[datetime | None]  # the agent marked it completed (or no-show)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CallLink(Base):
    """A single-use link a helpdesk issues for one ticket (``/v1/tickets/{id}/call-links``):
    the customer books one call of ``capability_id`` through it, then keeps it as the handle of
    that call (see it, reschedule, cancel, wait to be admitted).

    Only ``token_hash`` (SHA-256 of the URL's token) is stored: the token itself is shown once.
    ``form_key`` is the link's own secret for the anti-forgery token its pages embed.
    ``booking_id`` is the call booked through it (the latest one, after a reschedule);
    ``sequence`` counts the changes of that call, as the .ics file's SEQUENCE.
    """

    __tablename__ = "call_links"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "capability_id"], ["capabilities.tenant_id", "capabilities.id"]
        ),
        ForeignKeyConstraint(["tenant_id", "ticket_id"], ["tickets.tenant_id", "tickets.id"]),
        Index("ix_call_links_tenant_ticket", "tenant_id", "ticket_id"),
        Index("ix_call_links_token_hash", "token_hash", unique=True),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    capability_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    token_hash: Mapped[str] = mapped_column(String(64))
    form_key: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime | None]
    not_after: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    reschedules_allowed: Mapped[int] = mapped_column(Integer, default=1)
    reschedules_used: Mapped[int] = mapped_column(Integer, default=0)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(35), default="en")
    display_name: Mapped[str | None] = mapped_column(String(200))
    booking_id: Mapped[str | None] = mapped_column(String(40))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OrgVersion(Base):
    """How many times a tenant's organisation changed: the validity key of every cache built
    from it (:mod:`api.org_version`)."""

    __tablename__ = "org_versions"

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger)


class TenantPolicies(Base):
    """The tenant's policies document (:mod:`api.policies`); no row means the defaults."""

    __tablename__ = "tenant_policies"

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class CalendarConnection(Base):
    """One agent's calendar account: where busy time comes from (:mod:`api.calendar_sync`).

    ``settings`` is what may be shown (endpoints, the mailbox or user, write-back choices);
    ``credentials`` is the secret part (refresh token, service-account key, client secret,
    secret iCal URL) as JSON encrypted with the service's keyring (:mod:`api.crypto`), never
    returned by any read. ``calendars`` lists the provider's calendar ids that are read.

    ``status``: ``active``, ``paused`` (not synced, and the agent is not blocked by it), or
    ``failed`` (the credential is dead: the agent is unavailable for new calls until a good
    sync). ``cursors`` holds each calendar's incremental cursor (sync token, delta link, HTTP
    validators); an empty one means that calendar needs a full sync. The mirror is the busy
    intervals whose ``source`` is ``calendar:<id>``; ``last_success_at`` is how fresh it is.
    ``channels`` holds push subscriptions (channel id, resource id, expiry per calendar) and
    ``channel_token`` the secret they prove themselves with (encrypted).
    """

    __tablename__ = "calendar_connections"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"], ondelete="CASCADE"
        ),
        CheckConstraint(
            "provider IN ('google', 'microsoft', 'ics')", name="calendar_provider_known"
        ),
        CheckConstraint("status IN ('active', 'paused', 'failed')", name="calendar_status_known"),
        Index("ix_calendar_connections_tenant_agent", "tenant_id", "agent_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    provider: Mapped[str] = mapped_column(String(16))
    calendars: Mapped[list[str]] = mapped_column(JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    credentials: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    failure: Mapped[str | None] = mapped_column(Text)
    cursors: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    busy_count: Mapped[int] = mapped_column(Integer, default=0)
    requests_total: Mapped[int] = mapped_column(BigInteger, default=0)
    channels: Mapped[dict[str, Any]] = mapped_column(JSON)
    channel_token: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CalendarWrite(Base):
    """An event the service wrote into a bound agent's calendar for a call (write-back,
    :mod:`api.calendar_sync.writeback`): which connection and calendar, the provider's key, and
    the times it was written with. The write-back job reconciles these rows with the call (move,
    delete, write), so a retry never writes twice; the sync skips these keys (the service's own
    events are never read back as busy time)."""

    __tablename__ = "calendar_writes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "connection_id"],
            ["calendar_connections.tenant_id", "calendar_connections.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "call_id"], ["calls.tenant_id", "calls.id"], ondelete="CASCADE"
        ),
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_calendar_writes_tenant_connection", "tenant_id", "connection_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    calendar: Mapped[str] = mapped_column(String(1024))
    event_key: Mapped[str] = mapped_column(String(1024))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    written_at: Mapped[datetime]


class CalendarChannel(Base):
    """A push subscription a provider holds for one calendar of a connection (a Google channel,
    a Graph subscription; :mod:`api.calendar_sync.channels`). ``channel_id`` (unique) finds the
    connection from a notification; the connection's ``channel_token`` is the secret the
    notification must carry. Renewed before ``expires_at``."""

    __tablename__ = "calendar_channels"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "connection_id"],
            ["calendar_connections.tenant_id", "calendar_connections.id"],
            ondelete="CASCADE",
        ),
        Index("ix_calendar_channels_channel_id", "channel_id", unique=True),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), _tenant_fk(), primary_key=True)
    connection_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    calendar: Mapped[str] = mapped_column(String(1024), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str] = mapped_column(String(255))
    resource_id: Mapped[str | None] = mapped_column(String(1024))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
