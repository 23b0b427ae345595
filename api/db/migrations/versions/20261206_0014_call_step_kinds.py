"""The ticket history's kinds of step for call links and the call's own steps.

Revision ID: 0014_call_step_kinds
Revises: 0013_call_links
Create Date: 2026-12-06 18:00:00

0013 added the kinds to ``TicketEventKind`` (``call_link_created``, ``call_link_revoked``,
``call_rescheduled``, ``call_admitted``, ``call_no_show``, ``call_completed``) but not to the
CHECK constraint of ``ticket_events.kind``, so writing any of those steps failed (a 409 from
the integrity error). This revision lets the database hold them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_call_step_kinds"
down_revision: str | Sequence[str] | None = "0013_call_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS_BEFORE = (
    "created",
    "updated",
    "assigned",
    "reassigned",
    "status_changed",
    "escalated",
    "call_booked",
    "call_cancelled",
    "call_flagged",
    "breach_risk",
    "due_dates_set",
)
_ADDED = (
    "call_link_created",
    "call_link_revoked",
    "call_rescheduled",
    "call_admitted",
    "call_no_show",
    "call_completed",
)
_KINDS_AFTER = (*_KINDS_BEFORE, *_ADDED)

_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS ticket_events_append_only BEFORE UPDATE ON ticket_events "
    "BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END"
)


def _kinds(kinds: Sequence[str]) -> None:
    """Change the CHECK of ``ticket_events.kind``. On SQLite batch mode copies the table,
    which drops its triggers: the append-only guard of 0001 is put back after (as 0007 does)."""
    with op.batch_alter_table("ticket_events") as batch:
        batch.alter_column(
            "kind",
            existing_type=sa.Enum(
                *(_KINDS_AFTER if kinds == _KINDS_BEFORE else _KINDS_BEFORE),
                name="ticketeventkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            type_=sa.Enum(
                *kinds, name="ticketeventkind", native_enum=False, create_constraint=True, length=32
            ),
            existing_nullable=False,
        )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE_APPEND_ONLY)


def upgrade() -> None:
    _kinds(_KINDS_AFTER)


def downgrade() -> None:
    # The history is append-only (0001's trigger refuses UPDATE, not DELETE): steps of the
    # kinds this revision allowed have no place in the older schema.
    op.execute(sa.text("DELETE FROM ticket_events WHERE kind IN " + str(_ADDED)))
    _kinds(_KINDS_BEFORE)
