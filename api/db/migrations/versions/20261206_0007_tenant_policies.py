"""Tenant policies, and the ticket history's new kinds of step.

Revision ID: 0007_tenant_policies
Revises: 0006_idempotency_per_key
Create Date: 2026-12-06 14:00:00

``tenant_policies`` holds one JSON document per tenant (:mod:`api.policies`); a tenant without
a row has the defaults. The history learns four kinds of step: a call cancelled or flagged when
its ticket is done, a breach risk noticed, and due dates set from an SLA policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_tenant_policies"
down_revision: str | Sequence[str] | None = "0006_idempotency_per_key"
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
)
_KINDS_AFTER = (*_KINDS_BEFORE, "call_cancelled", "call_flagged", "breach_risk", "due_dates_set")


_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS ticket_events_append_only BEFORE UPDATE ON ticket_events "
    "BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END"
)


def _kinds(kinds: Sequence[str]) -> None:
    """Change the CHECK of ``ticket_events.kind``. On SQLite batch mode copies the table,
    which drops its triggers: the append-only guard of 0001 is put back after."""
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
    op.create_table(
        "tenant_policies",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_policies")),
    )
    _kinds(_KINDS_AFTER)


def downgrade() -> None:
    # The history is append-only (0001's trigger refuses UPDATE, not DELETE): steps of the
    # kinds this revision added have no place in the older schema.
    op.execute(sa.text("DELETE FROM ticket_events WHERE kind IN " + str(_KINDS_AFTER[7:])))
    _kinds(_KINDS_BEFORE)
    op.drop_table("tenant_policies")
