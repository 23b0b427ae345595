"""Re-optimize a queue as a background job.

The job solves *outside* any transaction (it may take seconds), then applies the plan inside the
tenant lock, skipping every ticket that changed meanwhile and every assignment that no longer
fits (the agent went away or filled up), and finishes the job in that same transaction, so the
plan's changes and the job's result commit together or not at all.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    or_,
    select,
)
from sqlalchemy.orm import Session

from api import events, solver_input
from api.common import service as common
from api.db.jobs import Job
from api.db.locks import lock_tenant
from api.db.models import Agent as AgentRow
from api.db.models import Ticket as TicketRow
from api.enums import AgentStatus, TicketStatus
from api.jobs import queue as job_queue
from api.jobs.worker import JobContext, PermanentJobError
from api.mapping import owner_of, reasons_json
from api.solver_input import ACTIVE, held_work, without_tickets
from api.tickets.owner import OwnerWriter
from solver.batch import BatchParams, optimize
from solver.plan import Plan, Reason
from solver.validation import check_plan

OPTIMIZE_JOB = "queue.optimize"

log = logging.getLogger(__name__)


def enqueue_optimize(
    *,
    session: Session,
    tenant_id: str,
    now: datetime,
    team: str | None,
    time_limit_s: float,
    seed: int,
    max_attempts: int,
    max_moves: int | None = None,
    move_saving: int | None = None,
) -> Job:
    if team is not None:
        common.raise_if(common.unknown_team(session, tenant_id, team))
    return job_queue.enqueue(
        session=session,
        tenant_id=tenant_id,
        kind=OPTIMIZE_JOB,
        payload={
            "team": team,
            "time_limit_s": time_limit_s,
            "seed": seed,
            "max_moves": max_moves,
            "move_saving": move_saving,
        },
        now=now,
        max_attempts=max_attempts,
    )


def _optional_int(payload: Mapping[str, Any], key: str) -> int | None:
    """An optional whole number of a stored payload (absent or null: None; jobs stored before
    the key existed have none)."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PermanentJobError(f"bad payload: {key} must be a whole number, got {value!r}")
    return value


def _queue_ticket_ids(session: Session, tenant_id: str, team: str | None) -> list[str]:
    """The re-optimizable queue: active tickets nobody has started (no owner agent, or owned
    but still new). Open tickets with an owner are being worked and stay put."""
    stmt = select(TicketRow.id).where(
        TicketRow.tenant_id == tenant_id,
        TicketRow.status.in_(ACTIVE),
        or_(TicketRow.owner_agent_id.is_(None), TicketRow.status == TicketStatus.NEW),
    )
    if team is not None:
        stmt = stmt.where(TicketRow.team_id == team)
    return list(session.scalars(stmt.order_by(TicketRow.created_at, TicketRow.id)))


def _snapshot(row: TicketRow) -> tuple[Any, ...]:
    return (row.owner_agent_id, row.team_id, row.status, row.updated_at)


def run_optimize_job(ctx: JobContext) -> dict[str, Any]:
    """The ``queue.optimize`` handler: solve the queue, apply the plan, finish atomically."""
    payload = ctx.payload
    team = payload.get("team")
    try:
        params = BatchParams(
            time_limit_s=float(payload.get("time_limit_s", 10.0)),
            seed=int(payload.get("seed", 0)),
            max_moves=_optional_int(payload, "max_moves"),
            move_saving=_optional_int(payload, "move_saving"),
        )
    except (TypeError, ValueError) as exc:
        raise PermanentJobError(f"bad payload: {exc}") from None
    now = ctx.now()
    with ctx.session_factory() as session:
        ids = _queue_ticket_ids(session, ctx.tenant_id, team)
        problem = solver_input.build_problem(
            session=session, tenant_id=ctx.tenant_id, now=now, ticket_ids=ids
        )
        seen = (
            {
                r.id: _snapshot(r)
                for r in session.scalars(
                    select(TicketRow).where(
                        TicketRow.tenant_id == ctx.tenant_id, TicketRow.id.in_(ids)
                    )
                )
            }
            if ids
            else {}
        )
    plan = optimize(problem, params)
    violations = check_plan(problem, plan)
    if violations:
        # The solver promises valid plans; applying an invalid one would break capacity rules.
        raise PermanentJobError(
            "the optimizer returned an invalid plan: "
            + "; ".join(f"{v.rule}: {v.detail}" for v in violations[:5])
        )
    with ctx.session_factory() as session:
        lock_tenant(session, ctx.tenant_id)
        result = _apply_plan(session, ctx, plan, seen, team, now)
        events.emit(
            session=session,
            tenant_id=ctx.tenant_id,
            type=events.EventType.QUEUE_OPTIMIZED,
            data=events.queue_optimized_payload(
                job_id=ctx.job.id,
                team_id=team,
                changes=len(result["changes"]),
                skipped=len(result["skipped"]),
                status=result["stats"]["status"],
                objective=result["stats"]["objective"],
            ),
            now=ctx.now(),
        )
        ctx.complete(session, result)
        session.commit()
    return result


def _apply_plan(
    session: Session,
    ctx: JobContext,
    plan: Plan,
    seen: Mapping[str, tuple[Any, ...]],
    team: str | None,
    now: datetime,
) -> dict[str, Any]:
    tenant_id = ctx.tenant_id
    # The lock order: tickets, then agents (see the module docstring).
    rows = (
        {
            r.id: r
            for r in session.scalars(
                select(TicketRow)
                .where(TicketRow.tenant_id == tenant_id, TicketRow.id.in_(list(seen)))
                .order_by(TicketRow.id)
                .with_for_update()
            )
        }
        if seen
        else {}
    )
    skipped: list[dict[str, str]] = []
    current = {tid: row for tid, row in rows.items() if _snapshot(row) == seen.get(tid)}
    for tid in seen:
        if tid not in current:
            skipped.append({"ticket": tid, "why": "the ticket changed while the plan was solved"})

    agents = {
        a.id: a
        for a in session.scalars(
            select(AgentRow)
            .where(AgentRow.tenant_id == tenant_id)
            .order_by(AgentRow.id)
            .with_for_update()
        )
    }
    # Loads now (read under the agents' locks), without the tickets this plan decides: who can
    # still take how many.
    held = without_tickets(held_work(session, tenant_id), current.values())
    room = Counter(
        {
            a.id: a.capacity - held.get(a.id, (0, 0))[0]
            for a in agents.values()
            if a.status is AgentStatus.AVAILABLE
        }
    )
    # Per channel an agent caps: how many more of it they may take.
    channel_room = Counter(
        {
            (a.id, channel): cap - held.of_channel(a.id, channel)
            for a in agents.values()
            for channel, cap in (a.channel_capacity or {}).items()
        }
    )
    changes: list[dict[str, Any]] = []
    unchanged = 0
    moves: list[tuple[str, str | None, Sequence[Reason]]] = []
    for a in sorted(plan.assignments, key=lambda a: (a.agent_id, a.position)):
        if a.ticket_id not in current:
            continue
        if room[a.agent_id] <= 0:
            skipped.append(
                {"ticket": a.ticket_id, "why": f"agent {a.agent_id} is no longer free to take it"}
            )
            continue
        gate = (a.agent_id, current[a.ticket_id].channel)
        if gate in channel_room and channel_room[gate] <= 0:
            skipped.append(
                {
                    "ticket": a.ticket_id,
                    "why": f"agent {a.agent_id} is no longer free to take another {gate[1]}",
                }
            )
            continue
        if gate in channel_room:
            channel_room[gate] -= 1
        room[a.agent_id] -= 1
        moves.append((a.ticket_id, a.agent_id, a.reasons))
    for q in plan.queued:
        if q.ticket_id in current:
            moves.append((q.ticket_id, None, q.reasons))
    writer = OwnerWriter(tenant_id, now)
    for tid, agent, reasons in moves:
        row = current[tid]
        before = owner_of(row)
        kind = writer.move(
            row,
            agent=agent,
            actor=f"job:{ctx.job.id}"[:64],
            reasons=reasons,
            source="optimizer",
            job_id=ctx.job.id,
        )
        if kind is None:
            unchanged += 1
            continue
        changes.append(
            {
                "ticket": tid,
                "from": before.as_json(),
                "to": owner_of(row).as_json(),
                "event": kind.value,
                "why": reasons_json(reasons),
            }
        )
    writer.write(session)
    session.flush()
    stats = plan.stats
    return {
        "team": team,
        "tickets": len(seen),
        "changes": changes,
        "unchanged": unchanged,
        "skipped": skipped,
        "stats": {
            "policy": stats.policy,
            "status": stats.status.value,
            "objective": stats.objective,
            "bound": stats.bound,
            "gap": stats.gap,
            "parts": stats.parts.as_dict() if stats.parts is not None else None,
            "wall_seconds": stats.wall_seconds,
            "notes": list(stats.notes),
        },
    }
