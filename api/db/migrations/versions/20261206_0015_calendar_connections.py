"""Calendar connections (an agent's Google, Microsoft 365 or ICS calendar), and busy intervals
that say when a sync last confirmed them.

Revision ID: 0015_calendar_connections
Revises: 0014_wrapup
Create Date: 2026-12-06 19:30:00

``calendar_connections`` holds one agent's calendar account: the provider, the calendars read,
settings that may be shown, the credentials encrypted, each calendar's sync cursor and the
sync's health (status, failure, last attempt and success, last error). ``busy_intervals.source``
widens to name a connection (``calendar:<id>``) and gains ``synced_at``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_calendar_connections"
down_revision: str | Sequence[str] | None = "0014_wrapup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_connections",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("calendars", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("cursors", sa.JSON(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("busy_count", sa.Integer(), nullable=False),
        sa.Column("requests_total", sa.BigInteger(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("channel_token", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_calendar_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "agent_id"],
            ["agents.tenant_id", "agents.id"],
            name=op.f("fk_calendar_connections_tenant_id_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "provider IN ('google', 'microsoft', 'ics')",
            name=op.f("ck_calendar_connections_calendar_provider_known"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'failed')",
            name=op.f("ck_calendar_connections_calendar_status_known"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_calendar_connections")),
    )
    op.create_index(
        "ix_calendar_connections_tenant_agent", "calendar_connections", ["tenant_id", "agent_id"]
    )
    with op.batch_alter_table("busy_intervals") as batch:
        batch.alter_column(
            "source", existing_type=sa.String(32), type_=sa.String(64), existing_nullable=False
        )
        batch.add_column(sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("busy_intervals") as batch:
        batch.drop_column("synced_at")
        batch.alter_column(
            "source", existing_type=sa.String(64), type_=sa.String(32), existing_nullable=False
        )
    op.drop_index("ix_calendar_connections_tenant_agent", table_name="calendar_connections")
    op.drop_table("calendar_connections")
