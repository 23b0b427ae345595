"""Rows of the webhook outbox: events, subscriptions, deliveries and delivery attempts.

They share the ``Base`` of :mod:`api.db.models`, so ``Base.metadata`` (migrations, test
truncation) sees them once this module is imported, which ``api/db/migrations/env.py`` and
everything that emits events do.

- ``webhook_events`` is the outbox: :func:`api.events.emit` adds a row in the caller's
  transaction, so an event exists exactly when the change it describes was committed.
- ``webhook_deliveries``: one row per (event, subscription), written by the fan-out. The
  deliverer claims due rows; ``attempts`` doubles as the row's version for the conditional
  claim, and ``claim_token`` fences a worker whose lease ran out.
- ``webhook_attempts``: the delivery log, one row per HTTP attempt (never the secret).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base

WEBHOOK_ID_LENGTH = 40
URL_MAX_LENGTH = 2048


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its first attempt, a retry, or in flight (claimed)
    DELIVERED = "delivered"  # a 2xx answered
    FAILED = "failed"  # gave up after the last allowed attempt


class WebhookEvent(Base):
    """One event in the outbox. ``dispatched_at`` is set once it is fanned out to deliveries."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # The fan-out only ever looks for undispatched events: a partial index stays tiny.
        Index(
            "ix_webhook_events_undispatched",
            "created_at",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
    )

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(WEBHOOK_ID_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]


class WebhookSubscription(Base):
    """A tenant's endpoint. The signing secret is stored Fernet-encrypted, never returned."""

    __tablename__ = "webhook_subscriptions"

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(WEBHOOK_ID_LENGTH), primary_key=True)
    url: Mapped[str] = mapped_column(String(URL_MAX_LENGTH))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # After a rotation, the secret it replaced (encrypted the same way) keeps signing every
    # attempt until ``previous_secret_expires_at``, beside the new one: receivers switch over
    # without losing a delivery.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event to one subscription, with its retry state."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subscription_id"],
            ["webhook_subscriptions.tenant_id", "webhook_subscriptions.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["webhook_events.tenant_id", "webhook_events.id"],
            ondelete="CASCADE",
        ),
        # A second fan-out of the same event (a bug or a race) fails instead of sending twice.
        UniqueConstraint("tenant_id", "event_id", "subscription_id"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_subscription", "tenant_id", "subscription_id", "id"),
    )

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(WEBHOOK_ID_LENGTH), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(WEBHOOK_ID_LENGTH))
    event_id: Mapped[str] = mapped_column(String(WEBHOOK_ID_LENGTH))
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(
            DeliveryStatus,
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda e: [m.value for m in e],
            name="deliverystatus",
        )
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The attempt number after which a failure is final (moves on when replayed).
    give_up_after: Mapped[int] = mapped_column(Integer)
    # When the next attempt is due; while claimed, when the claim's lease runs out.
    next_attempt_at: Mapped[datetime]
    claim_token: Mapped[str | None] = mapped_column(String(36))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(WEBHOOK_ID_LENGTH), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered / retry / failed
