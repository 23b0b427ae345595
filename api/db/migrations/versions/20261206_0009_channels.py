"""Channels: a ticket's channel, and an agent's capacity per channel.

Revision ID: 0009_channels
Revises: 0007_tenant_policies
Create Date: 2026-12-06 15:00:00

``tickets.channel`` is where the customer reached out: ``email`` (what every existing ticket
was), ``web_form``, ``chat``, ``messaging``, ``phone`` or an id the tenant declared in its
policies (``channels``), so it is a plain string checked by the API, not a database enum.
``agents.channel_capacity`` maps a channel to how many tickets of it the agent may hold at once,
within the total ``capacity`` (``{}``: only the total applies).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_channels"
down_revision: str | Sequence[str] | None = "0007_tenant_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=128), server_default="email", nullable=False)
        )
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("channel_capacity", sa.JSON(), server_default="{}", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("channel_capacity")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("channel")
