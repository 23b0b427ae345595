"""``/metrics`` in the Prometheus text format. Not tenant-authenticated, so it carries no tenant
data: only counts by route template and outcome (see :mod:`api.metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (no tenant data)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
