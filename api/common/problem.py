"""The RFC 9457 problem document every error response carries (for the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.common.bulk import ROW_MEANING


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. skills.billing")
    reason: str
    row: int | None = Field(default=None, description=ROW_MEANING)


class ProblemDetails(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldProblem] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemDetails, "description": description}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem("Missing, unknown or revoked API key"),
    403: _problem("The API key lacks the scope"),
    404: _problem("Not found (also another tenant's object)"),
    409: _problem("Conflicts with the stored state"),
    413: _problem("The body is longer than the limit (`errors` names `body` and the limit)"),
    422: _problem("Invalid input; `errors` names each field"),
    429: _problem("Over the tenant's rate limit (Retry-After, RateLimit, RateLimit-Policy)"),
}
