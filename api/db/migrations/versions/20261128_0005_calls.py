"""Booked calls (``/v1/bookings``), and on PostgreSQL a constraint against double-booked agents.

Revision ID: 0005_calls
Revises: 0004_org_versions
Create Date: 2026-11-28 16:30:00

The booking engine already guarantees, inside the per-tenant lock, that no agent holds two
calls at once; on PostgreSQL the database holds that invariant too: an exclusion constraint
(``btree_gist``) refuses two *booked, bound* calls of one agent whose ``[start_at,
occupied_until)`` overlap. It is DEFERRABLE INITIALLY DEFERRED because re-binding may swap two
calls between agents within one transaction, which is only consistent once both rows changed.

``btree_gist`` is created in ``public`` when that schema exists: extensions belong to the whole
database, and one created in some private schema would be dropped with that schema (the tests
run each session in a private schema of a shared database). The downgrade leaves the extension
in place since other objects may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_calls"
down_revision: str | Sequence[str] | None = "0004_org_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("capability_id", sa.String(length=128), nullable=False),
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("start_at", _TS, nullable=False),
        sa.Column("end_at", _TS, nullable=False),
        sa.Column("occupied_until", _TS, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "booked",
                "cancelled",
                "completed",
                name="callstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("bound_agent", sa.String(length=128), nullable=True),
        sa.Column("bound_at", _TS, nullable=True),
        sa.Column("cover_agent", sa.String(length=128), nullable=True),
        sa.Column("at_risk_since", _TS, nullable=True),
        sa.Column("cancelled_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_calls_end_after_start")),
        sa.CheckConstraint("occupied_until >= end_at", name=op.f("ck_calls_occupied_after_end")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "capability_id"],
            ["capabilities.tenant_id", "capabilities.id"],
            name=op.f("fk_calls_tenant_id_capability_id_capabilities"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "ticket_id"],
            ["tickets.tenant_id", "tickets.id"],
            name=op.f("fk_calls_tenant_id_ticket_id_tickets"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_calls_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_calls")),
    )
    op.create_index("ix_calls_tenant_status_start", "calls", ["tenant_id", "status", "start_at"])
    op.create_index("ix_calls_tenant_ticket", "calls", ["tenant_id", "ticket_id"])

    if op.get_bind().dialect.name == "postgresql":
        public = (
            op.get_bind()
            .execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'public'"))
            .first()
        )
        op.execute(
            "CREATE EXTENSION IF NOT EXISTS btree_gist" + (" WITH SCHEMA public" if public else "")
        )
        op.execute(
            "ALTER TABLE calls ADD CONSTRAINT ex_calls_agent_no_overlap "
            "EXCLUDE USING gist (tenant_id WITH =, bound_agent WITH =, "
            "tstzrange(start_at, occupied_until) WITH &&) "
            "WHERE (status = 'booked' AND bound_agent IS NOT NULL) "
            "DEFERRABLE INITIALLY DEFERRED"
        )


def downgrade() -> None:
    op.drop_index("ix_calls_tenant_ticket", table_name="calls")
    op.drop_index("ix_calls_tenant_status_start", table_name="calls")
    op.drop_table("calls")
