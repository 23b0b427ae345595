"""/v1/jobs: background jobs of the caller's tenant (status URLs of asynchronous requests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.common import service as common
from api.common.problem import PROBLEM_RESPONSES
from api.db.jobs import JobStatus
from api.http.deps import HelpdeskAuth, NowDep, PageDep, ReadAuth, SessionDep
from api.jobs import queue
from api.jobs.schemas import JobList, JobOut

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

JobId = Annotated[str, Path(min_length=1, max_length=36)]


@router.get("", summary="List jobs, newest first")
def list_jobs(
    session: SessionDep,
    auth: ReadAuth,
    page: PageDep,
    status: Annotated[JobStatus | None, Query()] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
) -> JobList:
    """One page of the tenant's jobs, newest first."""
    rows = queue.list_jobs(
        session=session,
        tenant_id=auth.tenant_id,
        limit=page.limit + 1,
        after=common.decode_time_cursor(page.cursor),
        status=status,
        kind=kind,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    last = rows[-1] if more and rows else None
    cursor = common.encode_time_cursor(last.created_at, last.id) if last else None
    return JobList(items=[JobOut.from_row(r) for r in rows], next_cursor=cursor)


@router.get("/{job_id}", summary="A job: its status, and its result once finished")
def read_job(job_id: JobId, session: SessionDep, auth: ReadAuth) -> JobOut:
    """One job: its status, and its result once it has finished."""
    row = queue.get_or_raise(session=session, tenant_id=auth.tenant_id, job_id=job_id)
    return JobOut.from_row(row)


@router.post(
    "/{job_id}/cancel", summary="Cancel a queued or running job (its changes are not applied)"
)
def cancel_job(job_id: JobId, session: SessionDep, auth: HelpdeskAuth, now: NowDep) -> JobOut:
    """Cancels a queued or running job; a cancelled job applies none of its changes."""
    row = queue.cancel(session=session, tenant_id=auth.tenant_id, job_id=job_id, now=now)
    session.commit()
    return JobOut.from_row(row)
