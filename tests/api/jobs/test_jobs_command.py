"""``switchboard worker --once`` runs the due jobs of any tenant against the configured
database (SQLite and PostgreSQL), the same way a long-running worker process would."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from api.assignment import optimize as optimize_job
from api.cli import main
from api.db.engine import make_session_factory
from api.db.jobs import Job, JobStatus
from api.jobs import queue
from api.keys import tenants
from tests.api.conftest import T0


def test_worker_command_runs_due_jobs_once(
    db: Engine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = make_session_factory(db)
    with factory() as session:
        tenant, _ = tenants.create(session=session, name="cli", now=T0)
        job = optimize_job.enqueue_optimize(
            session=session,
            tenant_id=tenant.id,
            now=T0,
            team=None,
            time_limit_s=1.0,
            seed=0,
            max_attempts=1,
        )
        queue.enqueue(session=session, tenant_id=tenant.id, kind="unknown", payload={}, now=T0)
        session.commit()
    assert main(["worker", "--once", "--database-url", db_url, "--log-level", "warning"]) == 0
    assert "ran 1 job(s), 0 failed" in capsys.readouterr().out
    with factory() as session:
        done = session.get(Job, job.id)
        assert done is not None and done.status is JobStatus.SUCCEEDED
        assert done.result is not None and done.result["changes"] == []
        assert {j.status for j in session.query(Job).filter(Job.kind == "unknown")} == {
            JobStatus.QUEUED
        }
