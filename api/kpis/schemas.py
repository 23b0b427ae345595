"""KPI report schema (see :mod:`api.kpis.service` for each definition; the report becomes
this document in :func:`api.mapping.kpis_json`). Every figure is counted in the window (or trend
bucket) ``[from, to)`` in which its moment falls, so adjacent windows add up."""

from __future__ import annotations

import enum

from pydantic import Field

from api.common.schemas import Schema, Timestamp


class Interval(enum.StrEnum):
    """Trend buckets: local hours, local days (from midnight), or weeks (from Monday 00:00)."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


class DurationsOut(Schema):
    count: int = Field(description="How many durations were measured")
    p50: float | None = Field(description="Median, minutes (linear between ranks)")
    p90: float | None = Field(description="90th percentile, minutes (linear between ranks)")
    mean: float | None = Field(description="Mean, minutes")


class ComplianceOut(Schema):
    met: int = Field(
        description=(
            "Deadlines met, counted when the response or resolution happened (in the window), "
            "at or before its deadline"
        )
    )
    breached: int = Field(
        description=(
            "Deadlines breached, counted when the deadline passed (in the window, before now) "
            "without the response or resolution, whether it came later or never"
        )
    )
    compliance: float | None = Field(description="met / (met + breached); null when none")


class SlaOut(Schema):
    first_response: ComplianceOut = Field(description="Against each ticket's first_response_due")
    resolution: ComplianceOut = Field(
        description=(
            "Against each ticket's resolution_due; after a reopen, the resolution that counts "
            "is the one after the last reopen"
        )
    )
    overall: ComplianceOut = Field(description="Both deadlines together")


class KpiFigures(Schema):
    """The figures of a window or of one trend bucket."""

    start: Timestamp = Field(serialization_alias="from", description="Window start (inclusive)")
    end: Timestamp = Field(serialization_alias="to", description="Window end (exclusive)")
    tickets_created: int = Field(description="Tickets whose created_at is in the window")
    tickets_resolved: int = Field(
        description="Tickets first changed to solved or closed in the window"
    )
    first_response_minutes: DurationsOut = Field(
        description=(
            "From created_at to the first status change out of new, for first responses in "
            "the window"
        )
    )
    resolution_minutes: DurationsOut = Field(
        description="From created_at to the first solved/closed, for resolutions in the window"
    )
    backlog: int = Field(
        description="Tickets created before the end, not solved or closed as of the end"
    )
    open_unassigned: int = Field(description="Of the backlog, those no agent held at the end")
    sla: SlaOut
    assignments: int = Field(description="Tickets given to an agent who held none, in the window")
    reassignments: int = Field(description="Tickets moved from an agent, in the window")
    escalations: int = Field(description="Escalations in the window")
    reopens: int = Field(
        description="Status changes from solved/closed back to new, open or pending"
    )
    calls_booked: int = Field(
        description="Live calls booked in the window for these tickets, cancelled later or not"
    )
    calls_at_risk: int = Field(
        description=(
            "Calls still booked and not started at min(end, now) that no agent can cover "
            "(at risk since before that moment)"
        )
    )
    waiting_on_call: DurationsOut = Field(
        description=(
            "Tickets not solved/closed at min(end, now) with a booked call, not cancelled by "
            "then, that starts after it: count, and per ticket the wait in minutes from the "
            "booking to the start of its earliest such call"
        )
    )
    link_lead_time_minutes: DurationsOut = Field(
        description=(
            "Calls booked in the window through a call link (a rescheduled call counts once, "
            "as the call it was moved to): minutes from the link's creation to the call's start"
        )
    )
    call_reassignments: int = Field(
        description=(
            "Booked calls moved from their bound agent to another in the window (agent_rebound "
            "steps: a shift, status or calendar change took the first agent away)"
        )
    )
    admission_wait_minutes: DurationsOut = Field(
        description=(
            "Calls whose customer was admitted in the window: minutes from the call's start to "
            "the admission (admitted before the start counts as 0)"
        )
    )
    no_shows: int = Field(
        description="Calls their bound agent marked a no-show in the window (customer absent)"
    )


class TrendBucketOut(KpiFigures):
    local_start: str = Field(
        description="The bucket's start in the requested time zone, ISO 8601 with its offset"
    )


class KpiOut(KpiFigures):
    team: str | None = Field(description="The team (tickets it holds now); null: all")
    timezone: str = Field(description="The time zone the trend buckets are cut in")
    interval: Interval | None = Field(description="The trend's bucket size; null: no trend")
    trend: list[TrendBucketOut] = Field(
        description=(
            "The same figures per bucket: local hours, days (from midnight) or weeks (from "
            "Monday 00:00) of the time zone; the first and last clipped to the window"
        )
    )
