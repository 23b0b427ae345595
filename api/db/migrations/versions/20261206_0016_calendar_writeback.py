"""Write-back of bound calls into agents' calendars, and push channels.

Revision ID: 0016_calendar_writeback
Revises: 0015_calendar_connections
Create Date: 2026-12-06 20:00:00

``calendar_writes`` records each event the service wrote for a call (connection, calendar,
the provider's key, the times written), so the write-back job moves or deletes what it wrote and
a retry never writes twice. ``calendar_channels`` holds the push subscriptions (a Google
channel, a Graph subscription) per calendar of a connection, found by ``channel_id`` when a
notification arrives.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_calendar_writeback"
down_revision: str | Sequence[str] | None = "0015_calendar_connections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_writes",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("call_id", sa.String(40), nullable=False),
        sa.Column("connection_id", sa.String(40), nullable=False),
        sa.Column("calendar", sa.String(1024), nullable=False),
        sa.Column("event_key", sa.String(1024), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_calendar_writes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "connection_id"],
            ["calendar_connections.tenant_id", "calendar_connections.id"],
            name=op.f("fk_calendar_writes_tenant_id_connection_id_calendar_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "call_id"],
            ["calls.tenant_id", "calls.id"],
            name=op.f("fk_calendar_writes_tenant_id_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_calendar_writes_end_after_start")),
        sa.PrimaryKeyConstraint(
            "tenant_id", "call_id", "connection_id", name=op.f("pk_calendar_writes")
        ),
    )
    op.create_index(
        "ix_calendar_writes_tenant_connection", "calendar_writes", ["tenant_id", "connection_id"]
    )
    op.create_table(
        "calendar_channels",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("connection_id", sa.String(40), nullable=False),
        sa.Column("calendar", sa.String(1024), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(255), nullable=False),
        sa.Column("resource_id", sa.String(1024), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_calendar_channels_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "connection_id"],
            ["calendar_connections.tenant_id", "calendar_connections.id"],
            name=op.f("fk_calendar_channels_tenant_id_connection_id_calendar_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "connection_id", "calendar", name=op.f("pk_calendar_channels")
        ),
    )
    op.create_index(
        "ix_calendar_channels_channel_id", "calendar_channels", ["channel_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_calendar_channels_channel_id", table_name="calendar_channels")
    op.drop_table("calendar_channels")
    op.drop_index("ix_calendar_writes_tenant_connection", table_name="calendar_writes")
    op.drop_table("calendar_writes")
