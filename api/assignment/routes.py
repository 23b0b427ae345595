"""Assignment endpoints: assign one ticket now, escalate it, set an agent's status with
re-routing, and re-optimize a queue (202 + a job to poll)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request, Response

from api import mapping
from api.assignment import escalate, live, optimize, reroute
from api.assignment import service as assignment
from api.assignment.batch import AssignBatcher
from api.assignment.cache import RealtimeCache
from api.assignment.schemas import (
    AgentStatusIn,
    AssignIn,
    AssignmentOut,
    EscalateIn,
    EscalationOut,
    RerouteChange,
    RerouteOut,
)
from api.common.problem import PROBLEM_RESPONSES
from api.common.schemas import ID_PATTERN
from api.enums import AgentStatus
from api.errors import InvalidInput
from api.http.deps import HelpdeskAuth, NowDep, SessionDep, SettingsDep
from api.idempotency import middleware as idempotency
from api.jobs.schemas import JobOut, OptimizeIn
from api.mapping import Owner
from api.tickets.owner import take_freed
from solver.plan import Decision

router = APIRouter(tags=["assignment"], responses=PROBLEM_RESPONSES)

TicketId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="The helpdesk's id")
]
AgentId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
# Agent presence comes from the helpdesk (an agent logs off). Not from a planner: a planner
# key never changes the live organisation (it simulates changes in /v1/planning instead).
StatusAuth = HelpdeskAuth


async def get_realtime_cache(request: Request) -> RealtimeCache:
    cache: RealtimeCache = request.app.state.realtime_cache
    return cache


RealtimeCacheDep = Annotated[RealtimeCache, Depends(get_realtime_cache)]


def _metrics_assignment(request: Request, agent: str | None, dry_run: bool) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None and not dry_run:
        metrics.assignment(queued=agent is None)


def get_batcher(request: Request) -> AssignBatcher:
    """The app's assignment batcher, made on first use (it needs the lifespan's sessions)."""
    state = request.app.state
    batcher: AssignBatcher | None = getattr(state, "assign_batcher", None)
    if batcher is None or batcher.session_factory is not state.session_factory:
        batcher = AssignBatcher(state.session_factory, state.realtime_cache)
        state.assign_batcher = batcher
    return batcher


def _dry_run(
    request: Request, tenant_id: str, ticket_id: str, now: datetime, top_k: int
) -> assignment.AssignResult:
    with request.app.state.session_factory() as session:
        return assignment.assign_ticket(
            session=session,
            cache=request.app.state.realtime_cache,
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            now=now,
            actor=None,
            top_k=top_k,
            dry_run=True,
        )


def _assign_keyed(
    request: Request,
    keyed: idempotency.KeyedRequest,
    tenant_id: str,
    wanted: assignment.AssignRequest,
) -> assignment.AssignResult:
    state = request.app.state
    session = keyed.session(state.write_engine)
    (outcome,) = assignment.assign_many(
        session=session, cache=state.realtime_cache, tenant_id=tenant_id, requests=[wanted]
    )
    if isinstance(outcome, BaseException):
        raise outcome
    session.commit()  # held until the answer is stored with it
    return outcome


def assignment_json(
    decision: Decision, *, previous: Owner, changed: bool, event: str | None, dry_run: bool
) -> bytes:
    """:class:`AssignmentOut` as JSON bytes, the mapping's document written directly: the same
    document as ``AssignmentOut.model_validate(doc).model_dump_json()`` (a test holds them
    equal) for a fraction of the CPU: building and validating ~20 nested models is a sizeable
    share of a request's cost (figures: benchmarks/README.md, Figures behind design choices)."""
    doc = mapping.decision_json(
        decision, previous=previous, changed=changed, event=event, dry_run=dry_run
    )
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


@router.post(
    "/v1/tickets/{ticket_id}/assign",
    summary="Assign the ticket now (real-time): the agent or the team queue, with reasons",
    response_model=AssignmentOut,
)
async def assign_ticket(
    ticket_id: TicketId,
    request: Request,
    auth: HelpdeskAuth,
    body: AssignIn | None = None,
) -> Response:
    """Picks the best qualified, free agent for the ticket now (else its team's queue), with why."""
    # Async on purpose: the route runs on the event loop and hands the database work to a worker
    # thread once per batch of concurrent requests (api.assignment.batch), not once per
    # dependency and request. "Now" is read here rather than through NowDep: one dependency
    # less to solve on the hot path (same clock, read once).
    now: datetime = request.app.state.clock()
    body = body or AssignIn()
    wanted = assignment.AssignRequest(
        ticket_id=ticket_id, now=now, actor=auth.key_id, top_k=body.alternatives, note=body.reason
    )
    keyed = idempotency.claimed(request)
    if body.dry_run:
        result = await anyio.to_thread.run_sync(
            partial(_dry_run, request, auth.tenant_id, ticket_id, now, body.alternatives)
        )
    elif keyed is not None:
        # Its answer must be stored in the transaction of its assignment: the request's own unit
        # of work, not a shared batch.
        result = await anyio.to_thread.run_sync(
            partial(_assign_keyed, request, keyed, auth.tenant_id, wanted)
        )
    else:
        result = await get_batcher(request).assign(auth.tenant_id, wanted)
    _metrics_assignment(request, result.decision.agent_id, body.dry_run)
    content = assignment_json(
        result.decision,
        previous=result.previous,
        changed=result.event is not None,
        event=result.event,
        dry_run=body.dry_run,
    )
    return Response(content=content, media_type="application/json")


@router.post(
    "/v1/tickets/{ticket_id}/escalate",
    summary="Escalate to a capability, tier or team; one accountable owner stays on record",
)
def escalate_ticket(
    ticket_id: TicketId,
    body: EscalateIn,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    cache: RealtimeCacheDep,
) -> EscalationOut:
    """Moves the ticket to a capability, tier or team, recording why on its history."""
    result = escalate.escalate(
        session=session,
        cache=cache,
        tenant_id=auth.tenant_id,
        ticket_id=ticket_id,
        now=now,
        actor=auth.key_id,
        reason=body.reason,
        capability=body.capability,
        required_skills=body.required_skills,
        replace_skills=body.replace_skills,
        team=body.team,
        reassign=body.reassign,
    )
    # Escalating a ticket away from its agent frees them: the live channels' queue is theirs to
    # take now, under the tenant lock the escalation holds.
    live.offer(
        session=session,
        cache=cache,
        tenant_id=auth.tenant_id,
        agents=take_freed(session, auth.tenant_id),
        now=now,
        actor=auth.key_id,
    )
    session.commit()
    row = result.row
    assigned = result.assignment
    return EscalationOut.model_validate(
        {
            "ticket": row.id,
            "team": row.team_id,
            "previous_team": result.previous_team,
            "required_skills": {s.skill_id: s.level for s in row.required_skills},
            "previous_required_skills": result.previous_skills,
            "owner": mapping.owner_of(row).as_json(),
            "previous_owner": result.previous_owner.as_json(),
            "assignment": None
            if assigned is None
            else mapping.decision_json(
                assigned.decision,
                previous=assigned.previous,
                changed=assigned.event is not None,
                event=assigned.event,
                dry_run=False,
            ),
        }
    )


@router.post(
    "/v1/agents/{agent_id}/status",
    summary="Set an agent's status; away/offline re-routes their unstarted tickets by policy",
)
def set_agent_status(
    agent_id: AgentId,
    body: AgentStatusIn,
    session: SessionDep,
    auth: StatusAuth,
    now: NowDep,
    cache: RealtimeCacheDep,
) -> RerouteOut:
    """Sets an agent's status; going away or offline re-routes their unstarted tickets."""
    result = reroute.reroute_agent(
        session=session,
        cache=cache,
        tenant_id=auth.tenant_id,
        agent_id=agent_id,
        now=now,
        actor=auth.key_id,
        policy=body.reroute,
        status=body.status,
        note=body.reason,
    )
    if result.agent.status is AgentStatus.AVAILABLE:
        # Back at work: the live channels' queue is theirs to take now, in this unit of work.
        live.offer(
            session=session,
            cache=cache,
            tenant_id=auth.tenant_id,
            agents=[agent_id],
            now=now,
            actor=auth.key_id,
        )
    session.commit()
    return RerouteOut(
        agent=result.agent.id,
        status=result.agent.status,
        policy=body.reroute,
        rerouted=[
            RerouteChange.model_validate(
                {
                    "ticket": row.id,
                    "to": mapping.owner_of(row).as_json(),
                    "event": event,
                    "reasons": mapping.reasons_json(reasons),
                }
            )
            for row, reasons, event in result.changes
        ],
        kept=result.kept,
    )


@router.post(
    "/v1/queue/optimize",
    status_code=202,
    summary="Re-optimize a team's (or the whole) queue as a job; poll the status URL",
    responses={202: {"description": "Accepted: the job and its status URL (Location)"}},
)
def optimize_queue(
    request: Request,
    response: Response,
    session: SessionDep,
    auth: HelpdeskAuth,
    now: NowDep,
    settings: SettingsDep,
    body: OptimizeIn | None = None,
) -> JobOut:
    """Starts a job re-planning the queue of a team (or all); the answer links to the job."""
    body = body or OptimizeIn()
    if body.time_limit_s > settings.optimize_max_time_limit_seconds:
        raise InvalidInput.one(
            "time_limit_s", f"must be at most {settings.optimize_max_time_limit_seconds:g}"
        )
    job = optimize.enqueue_optimize(
        session=session,
        tenant_id=auth.tenant_id,
        now=now,
        team=body.team,
        time_limit_s=body.time_limit_s,
        seed=body.seed,
        max_moves=body.max_moves,
        move_saving=body.move_saving,
        max_attempts=settings.jobs_max_attempts,
    )
    session.commit()
    worker = getattr(request.app.state, "job_worker", None)
    if worker is not None:
        worker.notify()
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobOut.from_row(job)
