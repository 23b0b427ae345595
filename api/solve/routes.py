"""/v1/solve: stateless solving for tools that keep their own data (nothing is stored).

The route checks the size limits and hands the rest (mapping and the solver's validation
included: a big problem takes a while to map) to the app's bounded solve pool
(``api/solve/pool.py``), which runs it off the request threads and refuses, at once, a
tenant's solve over its concurrency cap (429) or any solve when every solver is busy (503).
The pool returns the response already serialized (:func:`api.solve.service.solve_in_pool`:
the posted problem mapped to the solver's, solved, and the plan mapped back and written as
JSON, all there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.auth import Principal
from api.common.problem import PROBLEM_RESPONSES, ProblemDetails
from api.enums import Scope
from api.errors import InvalidInput, Overloaded, TooManyRequests
from api.http import ratelimit
from api.http.deps import SettingsDep, require
from api.solve import service as solve_service
from api.solve.pool import Slot, SolvePool
from api.solve.schemas import SolveRequest, SolveResponse

router = APIRouter(prefix="/v1", tags=["solve"], responses=PROBLEM_RESPONSES)


# One callable, so FastAPI solves it once per request (it takes a rate-limit token).
_solve_auth = require(Scope.HELPDESK, Scope.PLANNER)
SolveAuth = Annotated[Principal, Depends(_solve_auth)]


async def solve_slot(
    request: Request, settings: SettingsDep, auth: SolveAuth
) -> AsyncIterator[Slot]:
    """A place in the solve pool, taken before the body is validated (a refused solve costs
    no parsing of its problem); given back here unless a solve started on it."""
    pool: SolvePool = request.app.state.solve_pool
    try:
        slot = pool.reserve(tenant_id=auth.tenant_id, seconds=settings.solve_max_seconds)
    except (TooManyRequests, Overloaded):
        # Late, like a rate-limit refusal (api/http/ratelimit.py): a client looping on refusals
        # then costs the event loop little.
        await ratelimit.refuse_late(settings.rate_limit_reject_delay_seconds)
        raise
    try:
        yield slot
    finally:
        if not slot.started:
            pool.release(slot)


@router.post(
    "/solve",
    summary="Solve a posted problem (agents, shifts, tickets) and return the plan",
    description=(
        "Runs the batch optimizer (or a baseline policy) on the problem in the body and returns "
        "every assignment with its reasons, the queue left to teams, the solve's status and "
        "objective parts, an evaluation, and the hard-rule check. Nothing is stored. A tenant "
        "runs a few solves at once (429 with Retry-After beyond that) and the server a few in "
        "all (503 with Retry-After when every solver is busy)."
    ),
    response_model=SolveResponse,
    responses={
        503: {"model": ProblemDetails, "description": "Every solver is busy; see Retry-After"}
    },
)
async def solve(
    request: Request,
    settings: SettingsDep,
    auth: SolveAuth,
    slot: Annotated[Slot, Depends(solve_slot)],
    body: SolveRequest,
) -> Response:
    solve_service.check_limits(
        agents=len(body.agents),
        tickets=len(body.tickets),
        seconds=body.time_limit_seconds,
        settings=settings,
    )
    pool: SolvePool = request.app.state.solve_pool
    outcome = await pool.run(
        slot, seconds=body.time_limit_seconds, fn=solve_service.solve_in_pool, request=body
    )
    if outcome.errors:
        raise InvalidInput(outcome.errors)
    return Response(outcome.document, media_type="application/json")
