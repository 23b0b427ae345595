"""What-if planning runs (issue 13), and a running job's progress.

Revision ID: 0018_scenario_runs
Revises: 0017_job_dedupe_key
Create Date: 2026-12-06 22:30:00

``scenario_runs`` holds each scenario run or sweep a planner submitted: the request as sent,
the baseline it ran against (frozen at submission), the job that simulates it and, once done,
its KPI summary. ``scenario_run_files`` holds the report's files (HTML, CSV, xlsx) as bytes.
``jobs.progress`` (0..1) is how far a running job is, for the handlers that say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_scenario_runs"
down_revision: str | Sequence[str] | None = "0017_job_dedupe_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("progress", sa.Float(), nullable=True))
    op.create_table(
        "scenario_runs",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("request_format", sa.String(8), nullable=False),
        sa.Column("baseline", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scenario_runs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scenario_runs")),
    )
    op.create_index(
        "ix_scenario_runs_tenant_created", "scenario_runs", ["tenant_id", "created_at", "id"]
    )
    op.create_table(
        "scenario_run_files",
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("media_type", sa.String(128), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "run_id"],
            ["scenario_runs.tenant_id", "scenario_runs.id"],
            name=op.f("fk_scenario_run_files_tenant_id_run_id_scenario_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "run_id", "name", name=op.f("pk_scenario_run_files")),
    )


def downgrade() -> None:
    op.drop_table("scenario_run_files")
    op.drop_index("ix_scenario_runs_tenant_created", table_name="scenario_runs")
    op.drop_table("scenario_runs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("progress")
