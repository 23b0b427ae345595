"""/v1/solve: stateless solving for tools that keep their own data (nothing is stored)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import SettingsDep, require
from api.enums import Scope
from api.schemas.problem import PROBLEM_RESPONSES
from api.schemas.solve import SolveRequest, SolveResponse
from api.services import solve as solve_service
from api.services.api_keys import Principal

router = APIRouter(prefix="/v1", tags=["solve"], responses=PROBLEM_RESPONSES)


@router.post(
    "/solve",
    summary="Solve a posted problem (agents, shifts, tickets) and return the plan",
    description=(
        "Runs the batch optimizer (or a baseline policy) on the problem in the body and returns "
        "every assignment with its reasons, the queue left to teams, the solve's status and "
        "objective parts, an evaluation, and the hard-rule check. Nothing is stored."
    ),
)
def solve(
    body: SolveRequest,
    settings: SettingsDep,
    _auth: Annotated[Principal, Depends(require(Scope.HELPDESK, Scope.PLANNER))],
) -> SolveResponse:
    return solve_service.solve(request=body, settings=settings)
