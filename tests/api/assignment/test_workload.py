"""Tickets and calls are one workload, on SQLite and PostgreSQL: a booked call holds an agent
(the one it is bound to, else the booking engine's tentative cover) from its start to
``occupied_until``, and neither the real-time path nor the batch optimizer plans ticket work in
it. The real-time cache learns of calls without an organisation change."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, update

from api import solver_input
from api.db.engine import make_session_factory
from api.db.models import Call, CallStatus, Capability
from solver.batch import BatchParams, optimize
from tests.api.assignment.test_assign import DAY, put_ticket
from tests.api.conftest import T0, As, FakeClock, TenantCtx

NINE = T0.replace(hour=9)
HALF_PAST_NINE = T0.replace(hour=9, minute=30)


def one_agent(c: As) -> None:
    """Team support with one agent, ana (billing 4, capacity 4), on shift 07:00-17:00 today."""
    assert c.post("/v1/skills", json={"id": "billing"}).status_code == 201
    assert c.post("/v1/teams", json={"id": "support"}).status_code == 201
    r = c.post(
        "/v1/agents",
        json={"id": "ana", "team": "support", "skills": {"billing": 4}, "capacity": 4},
    )
    assert r.status_code == 201, r.text
    r = c.post(
        "/v1/shifts", json={"agent": "ana", "start": f"{DAY}07:00:00Z", "end": f"{DAY}17:00:00Z"}
    )
    assert r.status_code == 201, r.text


def add_call(
    engine: Engine,
    tenant_id: str,
    call_id: str,
    *,
    start: datetime = NINE,
    end: datetime = HALF_PAST_NINE,
    bound: str | None = None,
    cover: str | None = None,
    status: CallStatus = CallStatus.BOOKED,
) -> None:
    """A call of ticket CALL (created on first use) written straight to the database, as the
    booking engine would have left it: bound to ``bound`` or tentatively covered by ``cover``."""
    with make_session_factory(engine)() as session:
        if session.get(Capability, (tenant_id, "cap")) is None:
            session.add(
                Capability(
                    tenant_id=tenant_id,
                    id="cap",
                    name="",
                    call_minutes=30,
                    horizon_days=14,
                    min_notice_minutes=0,
                    buffer_minutes=0,
                    granularity_minutes=15,
                    reserve_share=0.0,
                    created_at=T0,
                    updated_at=T0,
                )
            )
            session.flush()
        session.add(
            Call(
                tenant_id=tenant_id,
                id=call_id,
                capability_id="cap",
                ticket_id="CALL",
                start_at=start,
                end_at=end,
                occupied_until=end,
                status=status,
                bound_agent=bound,
                bound_at=T0 if bound else None,
                cover_agent=cover,
                created_at=T0,
                updated_at=T0,
            )
        )
        session.commit()


def call_ticket(c: As) -> None:
    # The call's ticket waits on the customer (pending): it is nobody's work to plan.
    put_ticket(c, "CALL", status="pending", owner_agent="ana")


def test_a_bound_call_is_busy_time_for_real_time_assignment(
    a: As, db: Engine, tenant_a: TenantCtx, clock: FakeClock
) -> None:
    one_agent(a)
    call_ticket(a)
    # Built and cached before the call exists: the cache must learn of it without an org bump.
    put_ticket(a, "WARM", effort_minutes=10)
    assert a.post("/v1/tickets/WARM/assign").json()["agent"] == "ana"
    add_call(db, tenant_a.id, "c1", bound="ana")

    # 08:00: ana has 10 minutes of WARM, then 90 minutes of work; the call 09:00-09:30 is not
    # work time, so it ends at 10:10 instead of 09:40.
    put_ticket(a, "T1", effort_minutes=90)
    r = a.post("/v1/tickets/T1/assign")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["agent"] == "ana"
    assert out["expected_start"] == f"{DAY}08:10:00Z"
    assert out["expected_end"] == f"{DAY}10:10:00Z"

    # At 09:05, during the call, ana has worked 60 minutes (08:00-09:00) of her 10 minutes of
    # WARM; T1 decided again (a dry run leaves it out of her load) waits for the call's end and
    # WARM: 09:40, not 09:15 as it would if the call were work time.
    clock.advance(minutes=65)
    r = a.post("/v1/tickets/T1/assign", json={"dry_run": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["agent"] == "ana", out
    assert out["expected_start"] == f"{DAY}09:40:00Z", out


def test_cancelled_and_uncovered_calls_hold_nobody_and_a_cover_holds_its_agent(
    a: As, db: Engine, tenant_a: TenantCtx
) -> None:
    one_agent(a)
    call_ticket(a)
    add_call(db, tenant_a.id, "gone", status=CallStatus.CANCELLED, bound="ana")
    add_call(db, tenant_a.id, "risk")  # booked, unbound, nobody can cover it
    put_ticket(a, "T1", effort_minutes=90)
    out = a.post("/v1/tickets/T1/assign", json={"dry_run": True}).json()
    assert (out["expected_start"], out["expected_end"]) == (f"{DAY}08:00:00Z", f"{DAY}09:30:00Z")

    # An unbound call the engine holds ana for is her busy time too.
    add_call(db, tenant_a.id, "held", cover="ana")
    out = a.post("/v1/tickets/T1/assign", json={"dry_run": True}).json()
    assert (out["expected_start"], out["expected_end"]) == (f"{DAY}08:00:00Z", f"{DAY}10:00:00Z")

    # ... and once the call is gone again, she is free (the cache follows the calls).
    with make_session_factory(db)() as session:
        session.execute(delete(Call).where(Call.tenant_id == tenant_a.id, Call.id == "held"))
        session.execute(
            update(Call)
            .where(Call.tenant_id == tenant_a.id, Call.id == "risk")
            .values(bound_agent="ana")
        )
        session.commit()
    out = a.post("/v1/tickets/T1/assign", json={"dry_run": True}).json()
    assert out["expected_end"] == f"{DAY}10:00:00Z"


def test_the_batch_optimizer_plans_no_ticket_work_in_a_bound_call(
    a: As, db: Engine, tenant_a: TenantCtx
) -> None:
    one_agent(a)
    call_ticket(a)
    add_call(db, tenant_a.id, "c1", bound="ana")
    for i in range(3):
        put_ticket(a, f"Q{i}", effort_minutes=40, first_response_due=f"{DAY}12:00:00Z")
    with make_session_factory(db)() as session:
        problem = solver_input.build_problem(session=session, tenant_id=tenant_a.id, now=T0)
    [ana] = problem.agents
    assert [(b.start, b.end) for b in ana.busy] == [(NINE, HALF_PAST_NINE)]
    plan = optimize(problem, BatchParams(time_limit_s=1.0, seed=1))
    assert len(plan.assignments) == 3
    for x in plan.assignments:
        assert x.start is not None and x.end is not None
        # Work is preemptive across busy time: a ticket never starts or ends inside the call,
        # and its span holds exactly its effort outside the call.
        assert not (NINE <= x.start < HALF_PAST_NINE)
        assert not (NINE < x.end <= HALF_PAST_NINE)
        span = x.end - x.start
        inside = max(timedelta(0), min(x.end, HALF_PAST_NINE) - max(x.start, NINE))
        assert span - inside == timedelta(minutes=40)
    # The last of 120 minutes from 08:00 ends at 10:30, not 10:00.
    assert max(x.end for x in plan.assignments if x.end) == T0.replace(hour=10, minute=30)
