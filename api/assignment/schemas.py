"""Schemas of the assignment endpoints: assign one ticket, escalate, re-route, re-optimize."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from api.common.schemas import NO_NUL, Bool, Id, Int, Levels, Schema, Timestamp
from api.enums import AgentStatus
from api.tickets.schemas import Owner

Note = Annotated[
    str,
    StringConstraints(max_length=1000),
    NO_NUL,
    Field(description="Why, for the ticket's history"),
]


class ReasonOut(Schema):
    rule: str = Field(description="The rule or objective part, e.g. first_response, load_balance")
    detail: str
    value: float = Field(description="Its share of the score (a cost: lower is better)")


class AlternativeOut(Schema):
    agent: str
    score: float
    reasons: list[ReasonOut]


class AssignIn(Schema):
    """Optional: everything has a default, so an empty body (or none) assigns."""

    alternatives: Int = Field(default=3, ge=0, le=20, description="How many runners-up to show")
    dry_run: Bool = Field(default=False, description="Decide and explain, but change nothing")
    reason: Note | None = None


class AssignmentOut(Schema):
    ticket: str
    owner: Owner = Field(description="Who holds the ticket now: the agent, else the team queue")
    agent: str | None = Field(description="The chosen agent; null when it stays with the team")
    team: str
    previous_owner: Owner
    changed: bool = Field(description="Whether the owner changed (false on a dry run)")
    event: Literal["assigned", "reassigned"] | None = Field(
        description="The history event recorded, if any"
    )
    score: float | None
    reasons: list[ReasonOut]
    alternatives: list[AlternativeOut]
    expected_start: Timestamp | None
    expected_end: Timestamp | None
    dry_run: bool


ESCALATIONS = ("capability", "required_skills", "team")


def _names_an_escalation(schema: dict[str, Any]) -> None:
    # The service refuses a body naming none of them (422 naming ``body``); say so. Null is
    # "not named" here, so each branch wants its field present and not null.
    schema["anyOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ESCALATIONS
    ]


class EscalateIn(Schema):
    """Raise what the ticket needs (a capability's requirements, a tier, skills) and/or hand it
    to another team. One accountable owner stays on record throughout: the current agent
    keeps it if they still qualify, else it is re-assigned (or held by the new team's queue).
    Name at least one of ``capability``, ``required_skills`` and ``team``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_names_an_escalation)

    capability: Id | None = Field(
        default=None, description="Add this capability's requirements (levels only go up)"
    )
    required_skills: Levels | None = Field(
        default=None, description="Add these skills at these levels (a tier is a skill: tier:2)"
    )
    replace_skills: Bool = Field(
        default=False,
        description="Replace the requirements instead of adding to them",
    )
    team: Id | None = Field(default=None, description="The team accountable from now on")
    reassign: Bool = Field(
        default=True,
        description="Re-assign through the real-time path when the owner no longer qualifies "
        "(false: the ticket goes to the team queue)",
    )
    reason: Note


class EscalationOut(Schema):
    ticket: str
    team: str
    previous_team: str
    required_skills: dict[str, int]
    previous_required_skills: dict[str, int]
    owner: Owner
    previous_owner: Owner
    assignment: AssignmentOut | None = Field(
        description="The real-time decision when the owner no longer qualified"
    )


ReroutePolicy = Literal["reassign", "queue", "keep"]


class AgentStatusIn(Schema):
    status: AgentStatus
    reroute: ReroutePolicy = Field(
        default="reassign",
        description="What happens to the agent's unstarted tickets (status new) when they go "
        "away or offline: reassign through the real-time path (the team queue when nobody "
        "fits), back to the team queue, or keep them",
    )
    reason: Note | None = None


class RerouteChange(Schema):
    ticket: str
    to: Owner
    event: Literal["assigned", "reassigned"] | None
    reasons: list[ReasonOut]


class RerouteOut(Schema):
    agent: str
    status: AgentStatus
    policy: ReroutePolicy
    rerouted: list[RerouteChange]
    kept: list[str] = Field(description="Tickets left with the agent (started, or policy keep)")
