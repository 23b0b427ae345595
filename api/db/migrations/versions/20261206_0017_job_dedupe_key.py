"""A queued job's dedupe key, indexed: "the job of this kind already waiting for X" in one probe.

Revision ID: 0017_job_dedupe_key
Revises: 0016_calendar_writeback
Create Date: 2026-12-06 20:30:00

``jobs.dedupe_key`` names what a job is about when at most one such job should wait (a calendar
sync or watch: its connection id). Finding the waiting one was a filter on the JSON payload that
scanned every queued job of the tenant: with 500 connections each waiting for its next poll, a
sixth of an incremental sync round (benchmarks/README.md, "Calendar sync"). The index leads with
the tenant and the key, then the status, so a job's finished history never widens the probe.
Queued and running syncs and watches get their key from the payload.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_job_dedupe_key"
down_revision: str | Sequence[str] | None = "0016_calendar_writeback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JOBS = sa.table(
    "jobs",
    sa.column("id", sa.String(36)),
    sa.column("kind", sa.String(64)),
    sa.column("status", sa.String(16)),
    sa.column("payload", sa.JSON),
    sa.column("dedupe_key", sa.String(200)),
)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dedupe_key", sa.String(200), nullable=True))
        batch.create_index("ix_jobs_tenant_dedupe", ["tenant_id", "dedupe_key", "status"])
    bind = op.get_bind()
    waiting = bind.execute(
        sa.select(_JOBS.c.id, _JOBS.c.payload).where(
            _JOBS.c.kind.in_(("calendar.sync", "calendar.watch")),
            _JOBS.c.status.in_(("queued", "running")),
        )
    ).all()
    for job_id, payload in waiting:
        connection = (payload or {}).get("connection_id")
        if isinstance(connection, str):
            bind.execute(sa.update(_JOBS).where(_JOBS.c.id == job_id).values(dedupe_key=connection))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_tenant_dedupe")
        batch.drop_column("dedupe_key")
