"""The tenant's policies: each field a documented choice with the default helpdesks expect."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, field_validator

from api.common.schemas import Id, Int, Schema, Timestamp
from api.enums import Channel, TeamScope


class CallsOnDone(enum.StrEnum):
    """What happens to a ticket's open calls when it is solved or closed."""

    CANCEL = "cancel"
    """Cancel them, and tell the customer and the helpdesk."""
    KEEP = "keep"
    """Keep them, flagged on the call and on the ticket's history."""


class CapabilityCoverage(enum.StrEnum):
    """A booking whose capability does not cover the ticket's required skills."""

    REFUSE = "refuse"
    """Refuse it, naming the missing skills."""
    WARN = "warn"
    """Book it, with a warning naming the missing skills."""


class BreachAction(enum.StrEnum):
    """What to do with a ticket that will miss its deadline with its current owner."""

    NONE = "none"
    """Record the risk and send the webhook; move nothing."""
    REROUTE = "reroute"
    """Re-route within the owning team to an agent who can still make it."""
    BORROW = "borrow"
    """Re-route to an agent of any team who can still make it."""
    ESCALATE = "escalate"
    """Escalate to ``escalate_to_team`` (and/or the tier ``escalate_to_tier``)."""


class BreachRisk(Schema):
    """Breach-risk rules, checked by a periodic job."""

    action: BreachAction = Field(
        default=BreachAction.REROUTE,
        description="What to do with a ticket that will miss its deadline with its owner",
    )
    escalate_to_team: Id | None = Field(
        default=None,
        description="The team that takes escalated tickets (action escalate; with reroute or "
        "borrow, where a ticket nobody can make in time goes when this or the tier is set)",
    )
    escalate_to_tier: Id | None = Field(
        default=None,
        description="The tier skill (at level 1) escalated tickets then require (action "
        "escalate; with reroute or borrow, as for escalate_to_team)",
    )
    margin_minutes: Annotated[Int, Field(ge=0, le=1440)] = Field(
        default=0, description="A ticket is at risk when it would finish this close to its due"
    )


class CustomChannel(Schema):
    """A channel of the tenant's own, beside the built-in ones (email, web_form, chat,
    messaging, phone)."""

    id: Id = Field(description="What tickets send as ``channel`` and agents cap")
    live: bool = Field(
        default=False,
        description=(
            "The customer waits on the line: its team queue is re-offered the moment an agent "
            "frees up (as chat, phone and messaging are)"
        ),
    )


class Policies(Schema):
    """The tenant's policies. Every field has a default; PUT replaces the whole document (an
    omitted field returns to its default), PATCH changes the fields sent (RFC 7396)."""

    team_scope: TeamScope = Field(
        default=TeamScope.TEAM_ONLY,
        description="Who may work a team's tickets; a team's own ``scope`` overrides it",
    )
    calls_on_done: CallsOnDone = Field(
        default=CallsOnDone.CANCEL,
        description="What happens to a ticket's open calls when it is solved or closed",
    )
    live_calls_per_ticket: Annotated[Int, Field(ge=1, le=20)] = Field(
        default=1,
        description="How many booked calls one ticket may have at once (a link may allow more)",
    )
    capability_coverage: CapabilityCoverage = Field(
        default=CapabilityCoverage.REFUSE,
        description="A booking whose capability lacks skills the ticket requires",
    )
    breach_risk: BreachRisk = Field(default_factory=BreachRisk)
    channels: Annotated[list[CustomChannel], Field(max_length=100)] = Field(
        default_factory=list,
        description=(
            "The tenant's own channels, beside the built-in email, web_form, chat, messaging and "
            "phone; a ticket's ``channel`` and an agent's ``channel_capacity`` accept these ids"
        ),
    )

    @field_validator("channels")
    @classmethod
    def _distinct_channels(cls, value: list[CustomChannel]) -> list[CustomChannel]:
        seen: set[str] = set()
        for c in value:
            if c.id in {m.value for m in Channel}:
                raise ValueError(f"{c.id!r} is a built-in channel; declare only your own")
            if c.id in seen:
                raise ValueError(f"channel {c.id!r} is declared twice")
            seen.add(c.id)
        return value

    def channel_live(self) -> dict[str, bool]:
        """Every channel a ticket may name (built-in and the tenant's), and whether it is live."""
        out = {c.value: c.is_live for c in Channel}
        out.update({c.id: c.live for c in self.channels})
        return out


class PoliciesOut(Policies):
    updated_at: Timestamp | None = Field(
        description="When the document was last written; null while it is the defaults"
    )
