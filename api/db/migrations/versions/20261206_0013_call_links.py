"""Call links (single-use customer links for one ticket), and calls' admission and closing.

Revision ID: 0013_call_links
Revises: 0012_webhook_rotation
Create Date: 2026-12-06 17:00:00

``call_links`` holds each link's policy (booking window, expiry, reschedules), the customer's
time zone and locale hints, the SHA-256 of its token (never the token) and the call booked
through it. ``calls`` gains the link it was booked through, who admitted the customer and when,
and when its agent closed it; its status may now be ``no_show``, and a cancellation's reason
``rescheduled`` or ``customer``. The ticket history learns the links' and calls' new kinds of
step (issued, revoked, rescheduled, admitted, no-show, completed).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_call_links"
down_revision: str | Sequence[str] | None = "0012_webhook_rotation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATUS = ("booked", "cancelled", "completed")
_NEW_STATUS = (*_OLD_STATUS, "no_show")
_OLD_NOTES = ("ticket_solved", "ticket_closed", "requested")
_NEW_NOTES = (*_OLD_NOTES, "rescheduled", "customer")
_OLD_KINDS = (
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
_NEW_KINDS = (
    *_OLD_KINDS,
    "call_link_created",
    "call_link_revoked",
    "call_rescheduled",
    "call_admitted",
    "call_no_show",
    "call_completed",
)
_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS ticket_events_append_only BEFORE UPDATE ON ticket_events "
    "BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END"
)


def _check(values: Sequence[str], column: str) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({listed})"


def _swap_checks(status: Sequence[str], notes: Sequence[str]) -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_constraint(op.f("ck_calls_callstatus"), type_="check")
        batch.drop_constraint(op.f("ck_calls_cancelreason"), type_="check")
        batch.drop_constraint(op.f("ck_calls_flagreason"), type_="check")
        batch.create_check_constraint(op.f("ck_calls_callstatus"), _check(status, "status"))
        batch.create_check_constraint(op.f("ck_calls_cancelreason"), _check(notes, "cancel_reason"))
        batch.create_check_constraint(op.f("ck_calls_flagreason"), _check(notes, "flag_reason"))


def _kinds(kinds: Sequence[str]) -> None:
    """Change the CHECK of ``ticket_events.kind`` (as 0007 does). On SQLite batch mode copies
    the table, which drops its triggers: the append-only guard of 0001 is put back after."""
    with op.batch_alter_table("ticket_events") as batch:
        batch.alter_column(
            "kind",
            existing_type=sa.Enum(
                *(_NEW_KINDS if kinds == _OLD_KINDS else _OLD_KINDS),
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
    op.create_table(
        "call_links",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("ticket_id", sa.String(128), nullable=False),
        sa.Column("capability_id", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("form_key", sa.String(64), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reschedules_allowed", sa.Integer(), nullable=False),
        sa.Column("reschedules_used", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("booking_id", sa.String(40), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_call_links_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "capability_id"],
            ["capabilities.tenant_id", "capabilities.id"],
            name=op.f("fk_call_links_tenant_id_capability_id_capabilities"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "ticket_id"],
            ["tickets.tenant_id", "tickets.id"],
            name=op.f("fk_call_links_tenant_id_ticket_id_tickets"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_call_links")),
    )
    op.create_index("ix_call_links_tenant_ticket", "call_links", ["tenant_id", "ticket_id"])
    op.create_index("ix_call_links_token_hash", "call_links", ["token_hash"], unique=True)
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("link_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("admitted_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    _swap_checks(_NEW_STATUS, _NEW_NOTES)
    _kinds(_NEW_KINDS)


def downgrade() -> None:
    # A history that tells of links cannot go back to a schema without them: its steps go.
    listed = ", ".join(f"'{k}'" for k in _NEW_KINDS[len(_OLD_KINDS) :])
    op.execute(sa.text(f"DELETE FROM ticket_events WHERE kind IN ({listed})"))
    _kinds(_OLD_KINDS)
    op.execute(sa.text("UPDATE calls SET status = 'completed' WHERE status = 'no_show'"))
    op.execute(
        sa.text(
            "UPDATE calls SET cancel_reason = 'requested' "
            "WHERE cancel_reason IN ('rescheduled', 'customer')"
        )
    )
    _swap_checks(_OLD_STATUS, _OLD_NOTES)
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("completed_at")
        batch.drop_column("admitted_by")
        batch.drop_column("admitted_at")
        batch.drop_column("link_id")
    op.drop_index("ix_call_links_token_hash", table_name="call_links")
    op.drop_index("ix_call_links_tenant_ticket", table_name="call_links")
    op.drop_table("call_links")
