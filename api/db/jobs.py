"""The ``jobs`` table: background work claimed from the database by any service process.

A job belongs to a tenant (its result may name tickets and agents), has a ``kind`` that picks
its handler, and moves ``queued -> running -> succeeded | failed``, or ``cancelled``. A running
job holds a *lease* (``locked_by`` until ``locked_until``) that its worker renews while it
works; a lease that runs out means the worker died, and the job is queued again (or failed
once it has used its attempts). Claimed by :mod:`api.jobs.queue`; it shares the declarative
base and naming convention of :mod:`api.db.models`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Enum, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        # What a claim scans: the oldest due queued job.
        Index("ix_jobs_status_run_after", "status", "run_after"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        # What finds "the job already waiting for X" (:func:`api.jobs.queue.waiting`).
        Index("ix_jobs_tenant_dedupe", "tenant_id", "dedupe_key", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the job is about when at most one such job should wait (a calendar sync: its
    # connection id); None for kinds that queue freely.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[JobStatus] = mapped_column(
        Enum(
            JobStatus,
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda e: [m.value for m in e],
            name="jobstatus",
        ),
        default=JobStatus.QUEUED,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    # How far a running job is (0..1), for handlers that say so (scenario runs); else None.
    progress: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
