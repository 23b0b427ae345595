"""/problems: the page behind each problem ``type`` URI (HTML, public, no API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from api.common.problem import PROBLEM_RESPONSES
from api.errors import NotFound
from api.problems import service as problems

router = APIRouter(prefix="/problems", tags=["problems"], responses=PROBLEM_RESPONSES)


@router.get(
    "",
    summary="Every problem type this API answers with",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "An HTML page"}},
)
async def list_problem_types() -> HTMLResponse:
    """An HTML page linking the page of every problem type."""
    return HTMLResponse(problems.index())


@router.get(
    "/{slug}",
    summary="What a problem type means and how to fix it",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "An HTML page"}},
)
async def read_problem_type(
    slug: Annotated[str, Path(max_length=64, description="The last part of a problem's type")],
) -> HTMLResponse:
    """The page a problem's ``type`` URI points to: its title, status, meaning and fix."""
    found = problems.CATALOG.get(slug)
    if found is None:
        raise NotFound("problem type", slug)
    return HTMLResponse(problems.page(found))
