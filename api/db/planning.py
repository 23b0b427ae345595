"""The ``scenario_runs`` table and its files: what-if runs a planner submitted (issue 13).

A run is one scenario (``kind='run'``) or a sweep of them (``kind='sweep'``), simulated by a
background job (``job_id``; the job holds the status while it waits and runs, and its progress).
The row keeps what was asked (``request``: the scenario text as sent; ``baseline``: the world it
ran against, frozen when submitted, so a live export is what the planner saw then, not what
the organisation became while the job waited), and once done, the KPI summary (JSON) and the
report's files, one row each in ``scenario_run_files`` (bytes: a report is a few hundred KB,
and a separate table keeps listing runs from reading them).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, ForeignKeyConstraint, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base


class RunKind(enum.StrEnum):
    RUN = "run"
    SWEEP = "sweep"


class RunStatus(enum.StrEnum):
    """The run's own status: ``queued`` until its job finishes it (the job's status says
    whether it is running, failed or was cancelled meanwhile)."""

    QUEUED = "queued"
    SUCCEEDED = "succeeded"


class ScenarioRun(Base):
    __tablename__ = "scenario_runs"
    __table_args__ = (Index("ix_scenario_runs_tenant_created", "tenant_id", "created_at", "id"),)

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    # No foreign key: finished jobs are pruned by housekeeping; the run outlives its job.
    job_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    request: Mapped[str] = mapped_column(Text)
    request_format: Mapped[str] = mapped_column(String(8))
    baseline: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ScenarioRunFile(Base):
    """One file of a finished run's report (report.html, kpis.csv, intervals.csv, report.xlsx)."""

    __tablename__ = "scenario_run_files"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "run_id"],
            ["scenario_runs.tenant_id", "scenario_runs.id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(128))
    content: Mapped[bytes] = mapped_column(LargeBinary)
