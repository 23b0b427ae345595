"""Per-tenant organisation version: keeps cached real-time indexes correct across processes.

Revision ID: 0004_org_versions
Revises: 0003_webhooks
Create Date: 2026-11-28 15:30:00

Bumped in the same transaction as any change to agents, their skills, shifts, busy time, skills
or teams (see ``api.services.realtime_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_org_versions"
down_revision: str | Sequence[str] | None = "0003_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "org_versions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_org_versions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_org_versions")),
    )


def downgrade() -> None:
    op.drop_table("org_versions")
