"""The tenant's policies: each field a documented choice with the default helpdesks expect."""

from __future__ import annotations

import enum
import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from api.common.schemas import Id, Int, Schema, Timestamp, TimeZone, _keys_are_ids
from api.enums import Channel, TeamScope, TicketPriority
from solver import business_hours


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


class Admission(enum.StrEnum):
    """Who lets a customer waiting for their call in."""

    AGENT = "agent"
    """The call's bound agent admits them (``POST /v1/bookings/{id}/admit``)."""
    AUTO = "auto"
    """They are let in by themselves at the call's start (or when the bound agent admits
    them earlier)."""


_PLACEHOLDERS = frozenset({"booking_id", "ticket_id", "capability_id", "link_id"})
_FIELD = re.compile(r"{([^{}]*)}")


def _meeting_template(value: str) -> str:
    names = set(_FIELD.findall(value))
    unknown = sorted(names - _PLACEHOLDERS)
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; use "
            + ", ".join("{" + n + "}" for n in sorted(_PLACEHOLDERS))
        )
    if not value.startswith("https://") and not value.startswith("http://"):
        raise ValueError("must be an http(s) URL")
    return value


MeetingTemplate = Annotated[str, Field(max_length=2000), AfterValidator(_meeting_template)]


class CallRoom(Schema):
    """The customer's waiting room: where the call happens and who lets them in."""

    meeting_url_template: MeetingTemplate | None = Field(
        default=None,
        description=(
            "The join URL of every call, with placeholders {booking_id}, {ticket_id}, "
            "{capability_id}, {link_id}, e.g. https://meet.example.com/support-{booking_id}; "
            "null: the waiting room says the agent will call the customer"
        ),
    )
    capability_meeting_urls: Annotated[
        dict[Id, MeetingTemplate], Field(max_length=500, json_schema_extra=_keys_are_ids)
    ] = Field(
        default_factory=dict,
        description="A capability's own join URL template, overriding meeting_url_template",
    )
    admission: Admission = Field(
        default=Admission.AGENT, description="Who lets a waiting customer in"
    )
    show_agent_name: bool = Field(
        default=False,
        description=(
            "Show the customer the admitting agent's display name once they are admitted "
            "(never before)"
        ),
    )
    opens_minutes_before: Annotated[Int, Field(ge=0, le=120)] = Field(
        default=10, description="How long before the call the link shows the waiting room"
    )

    def template_for(self, capability_id: str) -> str | None:
        return self.capability_meeting_urls.get(capability_id, self.meeting_url_template)


class CalendarEvents(Schema):
    """The event written into a bound agent's calendar for each call (calendar write-back)."""

    customer_details: bool = Field(
        default=False,
        description=(
            "Put the customer's name (the call link's display name) and the ticket's requester "
            "in the event; false (the default): the event names only the ticket, e.g. "
            '"Customer call — ticket #ZD-1"'
        ),
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


_CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _clock(value: str) -> str:
    if not _CLOCK.match(value):
        raise ValueError("must be a local time HH:MM from 00:00 to 24:00")
    return value


Clock = Annotated[
    str,
    AfterValidator(_clock),
    Field(
        pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$",
        description="Local wall time HH:MM (24:00 is the end of the day)",
        examples=["09:00"],
    ),
]


def clock_minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class Weekday(enum.StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """Monday 0 .. Sunday 6, as ``date.weekday()``."""
        return list(Weekday).index(self)


class OpenRange(Schema):
    """One opening range of a weekday, ``[start, end)`` in local wall time."""

    start: Clock
    end: Clock

    @model_validator(mode="after")
    def _ordered(self) -> OpenRange:
        if clock_minutes(self.end) <= clock_minutes(self.start):
            raise ValueError("end must be after start (a range cannot cross midnight: split it)")
        return self


class BusinessSchedule(Schema):
    """When the SLA clocks run: weekly opening hours in a time zone, minus holidays.

    Business time is real elapsed time inside the open ranges, in the schedule's time zone (so
    09:00-17:00 stays 09:00-17:00 local across a daylight-saving change). A local time that the
    clocks skip is the moment of the change; one that they repeat is its first occurrence.
    """

    timezone: TimeZone
    hours: dict[Weekday, list[OpenRange]] = Field(
        description=(
            "Opening ranges per weekday (several a day allowed; overlapping ranges merge); a "
            "weekday not listed is closed. At least one range in the week."
        ),
        examples=[{"monday": [{"start": "09:00", "end": "17:00"}]}],
    )
    holidays: list[date] = Field(
        default_factory=list,
        max_length=1000,
        description="Local dates on which the schedule is closed all day",
    )

    @model_validator(mode="after")
    def _some_hours(self) -> BusinessSchedule:
        if not any(self.hours.values()):
            raise ValueError("hours: at least one opening range in the week is needed")
        return self


Minutes = Annotated[Int, Field(ge=1, le=525_600)]


class SlaTarget(Schema):
    """The targets of one priority, in business minutes of the schedule (null: no target)."""

    first_response_minutes: Minutes | None = Field(
        default=None, description="Business minutes from creation to the first response"
    )
    resolution_minutes: Minutes | None = Field(
        default=None, description="Business minutes from creation to resolution"
    )


class SlaRules(Schema):
    """Targets per priority, measured on a business schedule."""

    schedule: BusinessSchedule
    targets: dict[TicketPriority, SlaTarget] = Field(
        description="Targets per priority; a priority not listed gets no computed deadline",
        examples=[
            {
                "urgent": {"first_response_minutes": 60, "resolution_minutes": 240},
                "normal": {"first_response_minutes": 480, "resolution_minutes": 2400},
            }
        ],
    )

    def business_schedule(self) -> business_hours.BusinessSchedule:
        """The schedule as the pure arithmetic's plain data."""
        s = self.schedule
        return business_hours.BusinessSchedule(
            timezone=s.timezone,
            weekly={
                day.number: [(clock_minutes(r.start), clock_minutes(r.end)) for r in ranges]
                for day, ranges in s.hours.items()
            },
            holidays=frozenset(s.holidays),
        )

    @model_validator(mode="after")
    def _targets_fit(self) -> SlaRules:
        # The arithmetic looks ten years ahead at most: a target must fit in five years of the
        # schedule's weeks (holidays and clock changes take the rest of the headroom).
        weekly = sum(
            len({m for r in ranges for m in range(clock_minutes(r.start), clock_minutes(r.end))})
            for ranges in self.schedule.hours.values()
        )  # the minutes open, overlapping ranges counted once
        for priority, target in self.targets.items():
            for name in ("first_response_minutes", "resolution_minutes"):
                value = getattr(target, name)
                if value is not None and value > weekly * 52 * 5:
                    raise ValueError(
                        f"targets.{priority.value}.{name}: {value} business minutes is more "
                        "than five years of this schedule"
                    )
        return self


class SlaPolicy(SlaRules):
    """The tenant's SLA policy: targets per priority, measured on a business schedule, and the
    teams that have their own.

    Which applies to a ticket: its team's entry in ``teams`` if there is one (schedule and
    targets both replace the tenant's, like a Freshdesk SLA policy for a group with its own
    business hours), else the tenant's. A deadline the helpdesk sends always wins; the service
    computes only the ones it leaves out, from ``created_at``, and recomputes them on changes:
    a new priority, ``created_at`` or team (when that changes which SLA applies) computes them
    afresh; ``pending`` pauses the clocks; back to ``new``/``open`` the resolution deadline
    moves later by the business time spent pending; ``solved``/``closed`` stops them; a reopen
    (solved/closed to any other status) restarts the resolution clock from the reopen with the
    full target. Each change is a ``due_dates_set`` step in the ticket's history.
    """

    teams: dict[Id, SlaRules] = Field(
        default_factory=dict,
        max_length=1000,
        json_schema_extra=_keys_are_ids,
        description="Teams with their own schedule and targets (they replace the tenant's)",
    )

    def for_team(self, team: str) -> SlaRules:
        """The rules that apply to a ticket of ``team``."""
        return self.teams.get(team, self)


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
    call_room: CallRoom = Field(default_factory=CallRoom)
    calendar_events: CalendarEvents = Field(default_factory=CalendarEvents)
    channels: Annotated[list[CustomChannel], Field(max_length=100)] = Field(
        default_factory=list,
        description=(
            "The tenant's own channels, beside the built-in email, web_form, chat, messaging and "
            "phone; a ticket's ``channel`` and an agent's ``channel_capacity`` accept these ids"
        ),
    )

    sla: SlaPolicy | None = Field(
        default=None,
        description=(
            "SLA targets and the business schedule they run on; null (the default): deadlines "
            "come only from the helpdesk"
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
