"""Team scope: who may work a team's tickets, per team.

Revision ID: 0010_team_scope
Revises: 0009_channels
Create Date: 2026-12-06 15:00:00

``teams.scope`` (``team_only`` or ``borrow``; NULL follows the tenant's ``team_scope``
policy) is a VARCHAR with a CHECK constraint, like every enum column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_team_scope"
down_revision: str | Sequence[str] | None = "0009_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.add_column(
            sa.Column(
                "scope",
                sa.Enum(
                    "team_only",
                    "borrow",
                    name="teamscope",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_constraint(op.f("ck_teams_teamscope"), type_="check")
        batch.drop_column("scope")
