"""Webhook secret rotation with an overlap: the rotated-out secret and when it stops signing.

Revision ID: 0012_webhook_rotation
Revises: 0011_sla
Create Date: 2026-12-06 15:00:00

Both columns are nullable: a subscription that was never rotated (every existing one) has no
previous secret.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_webhook_rotation"
down_revision: str | Sequence[str] | None = "0011_sla"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(sa.Column("previous_secret_encrypted", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret_encrypted")
