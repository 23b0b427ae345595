"""SLA clocks on tickets.

Revision ID: 0011_sla
Revises: 0010_team_scope
Create Date: 2026-12-06 15:00:00

A ticket learns which of its deadlines the service computed from the tenant's SLA policy (the
helpdesk's own deadlines are never moved) and since when its clocks are paused (``pending``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_sla"
down_revision: str | Sequence[str] | None = "0010_team_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column(
                "first_response_due_computed",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )
        batch.add_column(
            sa.Column(
                "resolution_due_computed", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch.add_column(sa.Column("sla_paused_at", sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # 0007 rebuilt ticket_events in batch mode on SQLite, which dropped 0001's append-only
        # trigger with the old table; put it back (a no-op once 0007 keeps it itself).
        op.execute(
            "CREATE TRIGGER IF NOT EXISTS ticket_events_append_only BEFORE UPDATE ON "
            "ticket_events BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END"
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("sla_paused_at")
        batch.drop_column("resolution_due_computed")
        batch.drop_column("first_response_due_computed")
