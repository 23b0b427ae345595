"""Calls say why they were cancelled, and carry a flag when kept for a done ticket.

Revision ID: 0008_call_notes
Revises: 0007_tenant_policies
Create Date: 2026-12-06 15:00:00

``calls.cancel_reason`` is the customer-visible reason of a cancellation (the ticket was solved
or closed, or the booking was cancelled through the API); ``flagged_at``/``flag_reason`` mark a
call kept although its ticket is done (policy ``calls_on_done=keep``). Existing cancelled calls
were all cancelled through the API: they get ``requested``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_call_notes"
down_revision: str | Sequence[str] | None = "0007_tenant_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOTES = ("ticket_solved", "ticket_closed", "requested")


def _note(name: str) -> sa.Enum:
    return sa.Enum(*_NOTES, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("cancel_reason", _note("cancelreason"), nullable=True))
        batch.add_column(sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("flag_reason", _note("flagreason"), nullable=True))
    op.execute(sa.text("UPDATE calls SET cancel_reason = 'requested' WHERE status = 'cancelled'"))
    if op.get_bind().dialect.name == "sqlite":
        # 0007 rebuilt ticket_events on SQLite (batch mode copies the table), which drops its
        # triggers: put the append-only guard of 0001 back (no-op where it survived).
        op.execute(
            "CREATE TRIGGER IF NOT EXISTS ticket_events_append_only BEFORE UPDATE ON "
            "ticket_events BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END"
        )


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        # The CHECKs first: SQLite's table copy would keep them, naming dropped columns.
        batch.drop_constraint(op.f("ck_calls_flagreason"), type_="check")
        batch.drop_constraint(op.f("ck_calls_cancelreason"), type_="check")
        batch.drop_column("flag_reason")
        batch.drop_column("flagged_at")
        batch.drop_column("cancel_reason")
