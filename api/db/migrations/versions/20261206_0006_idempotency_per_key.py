"""Idempotency records belong to the API key that made them, not only to the tenant.

Revision ID: 0006_idempotency_per_key
Revises: 0005_calls
Create Date: 2026-12-06 09:00:00

A stored response may be replayed only to the key that created it: an answer can hold a
secret shown once (a new API key, a webhook secret), and a lesser key of the same tenant that
re-sent the request with the same ``Idempotency-Key`` received it. The key's id joins the
primary key, so each API key has its own namespace of Idempotency-Keys (nor can one key learn
which Idempotency-Keys another used).

The table is recreated empty: its rows are replay caches that live 24 hours, and a record
that names no API key could only be replayed to every key of its tenant (the defect) or to
none (the same as no record). A request retried across this upgrade runs again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_idempotency_per_key"
down_revision: str | Sequence[str] | None = "0005_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(*, with_key: bool) -> None:
    key_columns = ["tenant_id", "api_key_id", "key"] if with_key else ["tenant_id", "key"]
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        *([sa.Column("api_key_id", sa.String(length=36), nullable=False)] if with_key else []),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_idempotency_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*key_columns, name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], unique=False
    )


def upgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    _create(with_key=True)


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    _create(with_key=False)
