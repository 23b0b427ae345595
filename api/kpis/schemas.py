"""KPI report schema (see :mod:`api.kpis.service` for each definition; the report becomes
this document in :func:`api.mapping.kpis_json`)."""

from __future__ import annotations

from pydantic import Field

from api.common.schemas import Schema, Timestamp


class DurationsOut(Schema):
    count: int
    p50: float | None = Field(description="Median, minutes")
    p90: float | None = Field(description="90th percentile, minutes")
    mean: float | None


class ComplianceOut(Schema):
    met: int
    breached: int
    compliance: float | None = Field(description="met / (met + breached); null when none")


class SlaOut(Schema):
    first_response: ComplianceOut
    resolution: ComplianceOut
    overall: ComplianceOut


class KpiOut(Schema):
    team: str | None
    start: Timestamp = Field(serialization_alias="from")
    end: Timestamp = Field(serialization_alias="to")
    tickets_created: int
    tickets_resolved: int
    first_response_minutes: DurationsOut
    resolution_minutes: DurationsOut
    backlog: int = Field(description="Tickets not solved or closed at the window's end")
    open_unassigned: int = Field(description="Of the backlog, those no agent held")
    sla: SlaOut
    assignments: int
    reassignments: int
    escalations: int
