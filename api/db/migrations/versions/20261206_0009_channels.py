"""Channels: a ticket's channel, and an agent's capacity per channel.

Revision ID: 0009_channels
Revises: 0008_call_notes
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
down_revision: str | Sequence[str] | None = "0008_call_notes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD/DROP COLUMN on both backends: a batch (copy-and-move) rebuild of
    # ``tickets`` on SQLite would drop the table its history refers to and lose its triggers.
    op.add_column(
        "tickets",
        sa.Column("channel", sa.String(length=128), server_default="email", nullable=False),
    )
    op.add_column(
        "agents",
        sa.Column("channel_capacity", sa.JSON(), server_default="{}", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("agents", "channel_capacity")
    op.drop_column("tickets", "channel")
