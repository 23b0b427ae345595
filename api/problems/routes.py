"""/problems: the page behind each problem ``type`` URI (HTML, public, no API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from api.common.problem import PROBLEM_RESPONSES
from api.errors import PROBLEM_JSON, NotFound
from api.problems import service as problems

# Public pages: no key, so no 401/403/429; an unknown slug is a 404, a malformed one a 422.
_REF = {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
router = APIRouter(
    prefix="/problems",
    tags=["problems"],
    default_response_class=HTMLResponse,
    responses={
        status: {
            "description": PROBLEM_RESPONSES[status]["description"],
            "content": {PROBLEM_JSON: _REF},
        }
        for status in (404, 422)
    },
)
_HTML: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "A page"}
}


@router.get(
    "",
    summary="Every problem type this API answers with",
    responses=_HTML,
)
async def list_problem_types() -> HTMLResponse:
    """An HTML page linking the page of every problem type."""
    return HTMLResponse(problems.index())


@router.get(
    "/{slug}",
    summary="What a problem type means and how to fix it",
    responses=_HTML,
)
async def read_problem_type(
    slug: Annotated[str, Path(max_length=64, description="The last part of a problem's type")],
) -> HTMLResponse:
    """The page a problem's ``type`` URI points to: its title, status, meaning and fix."""
    found = problems.CATALOG.get(slug)
    if found is None:
        raise NotFound("problem type", slug)
    return HTMLResponse(problems.page(found))
