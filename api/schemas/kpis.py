"""KPI report schema (see :mod:`api.services.kpis` for each definition)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from api.schemas.common import Schema, Timestamp

if TYPE_CHECKING:  # the report's plain types, named only: schemas never call a service
    from api.services.kpis import Compliance, Durations, Report


class DurationsOut(Schema):
    count: int
    p50: float | None = Field(description="Median, minutes")
    p90: float | None = Field(description="90th percentile, minutes")
    mean: float | None

    @classmethod
    def of(cls, d: Durations) -> DurationsOut:
        return cls(count=d.count, p50=d.p50, p90=d.p90, mean=d.mean)


class ComplianceOut(Schema):
    met: int
    breached: int
    compliance: float | None = Field(description="met / (met + breached); null when none")

    @classmethod
    def of(cls, c: Compliance) -> ComplianceOut:
        return cls(met=c.met, breached=c.breached, compliance=c.rate)


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

    @classmethod
    def of(cls, r: Report) -> KpiOut:
        return cls(
            team=r.team,
            start=r.start,
            end=r.end,
            tickets_created=r.created,
            tickets_resolved=r.resolved,
            first_response_minutes=DurationsOut.of(r.first_response),
            resolution_minutes=DurationsOut.of(r.resolution),
            backlog=r.backlog,
            open_unassigned=r.open_unassigned,
            sla=SlaOut(
                first_response=ComplianceOut.of(r.sla_first_response),
                resolution=ComplianceOut.of(r.sla_resolution),
                overall=ComplianceOut.of(r.sla_overall),
            ),
            assignments=r.assignments,
            reassignments=r.reassignments,
            escalations=r.escalations,
        )
