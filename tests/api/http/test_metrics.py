"""/metrics: Prometheus text without authentication, labelled by route template, with the
assignment and job counts, and nothing that identifies a tenant, a ticket or an agent."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.assignment.test_assign import org, put_ticket
from tests.api.conftest import As, TenantCtx


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_assignments_and_jobs_without_tenant_data(
    a: As, client: TestClient, app: FastAPI, tenant_a: TenantCtx
) -> None:
    org(a)
    put_ticket(a, "SECRET-TICKET-1")
    assert a.post("/v1/tickets/SECRET-TICKET-1/assign").json()["agent"] == "ben"
    put_ticket(a, "SECRET-TICKET-2", required_skills={"billing": 5})
    assert a.post("/v1/tickets/SECRET-TICKET-2/assign").json()["agent"] is None
    assert a.post("/v1/queue/optimize", json={"time_limit_s": 1}).status_code == 202
    a.get("/v1/tickets/no-such-ticket")

    r = client.get("/metrics")  # no API key
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    got = samples(r.text)
    route = "/v1/tickets/{ticket_id}/assign"
    key = (
        "switchboard_http_requests_total",
        (("method", "POST"), ("route", route), ("status", "200")),
    )
    assert got[key] == 2
    assert (
        got[
            (
                "switchboard_http_requests_total",
                (("method", "GET"), ("route", "/v1/tickets/{ticket_id}"), ("status", "404")),
            )
        ]
        == 1
    )
    assert got[("switchboard_assignments_total", (("outcome", "agent"),))] == 1
    assert got[("switchboard_assignments_total", (("outcome", "team_queue"),))] == 1
    assert got[("switchboard_jobs", (("status", "queued"),))] == 1
    count = got[
        ("switchboard_http_request_duration_seconds_count", (("method", "POST"), ("route", route)))
    ]
    assert count == 2

    app.state.job_worker.run_once()
    got = samples(client.get("/metrics").text)
    assert got[("switchboard_jobs", (("status", "queued"),))] == 0
    assert (
        got[
            (
                "switchboard_jobs_finished_total",
                (("kind", "queue.optimize"), ("status", "succeeded")),
            )
        ]
        == 1
    )

    text = client.get("/metrics").text
    for secret in ("SECRET-TICKET", "ben", tenant_a.id, "no-such-ticket", "support"):
        assert secret not in text
