"""OpenAPI links: which value of a response is the input of which next request.

A link on POST /v1/agents' 201 says that the ``id`` it answers is the ``agent_id`` of GET,
PATCH and DELETE /v1/agents/{agent_id}; one on POST /v1/teams' 201 that its ``id`` is the
``team`` of a new agent or ticket. Clients and code generators read them as the API's flows,
and schemathesis' stateful phase builds its state machine from them (tests/api/
test_schemathesis.py): create something, then read, change, use and delete *that* object.

Operations are named here by method and path, not by FastAPI's generated operationIds, and
resolved to the operationId when the document is built: :func:`add_links` raises
:class:`LookupError` if a route named here no longer exists or lost the response a link
starts from, so a renamed route fails every test that builds the document instead of leaving
a dangling link.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    source: str  # "POST /v1/agents"
    status: str  # the source response the link starts from: "201"
    target: str  # "GET /v1/agents/{agent_id}"
    description: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    # Fields of the target's JSON body (merged into the rest of the body the client sends).
    body: Mapping[str, str] | None = None


ID = "$response.body#/id"

_TICKET_FLOWS = (
    ("GetTicket", "GET /v1/tickets/{ticket_id}", "Read the ticket as stored"),
    ("PatchTicket", "PATCH /v1/tickets/{ticket_id}", "Change some of its fields (merge patch)"),
    ("TicketHistory", "GET /v1/tickets/{ticket_id}/history", "What happened to it"),
    ("AssignTicket", "POST /v1/tickets/{ticket_id}/assign", "Route it to an agent"),
    ("EscalateTicket", "POST /v1/tickets/{ticket_id}/escalate", "Escalate it"),
)

# (source, status, name, target, description): the source response's ``id`` is the target's
# one path parameter.
_BY_ID: tuple[tuple[str, str, str, str, str], ...] = (
    *(
        (f"POST {collection}", "201", f"{verb}{kind}", f"{method} {collection}/{{{param}}}", what)
        for kind, collection, param in (
            ("Skill", "/v1/skills", "skill_id"),
            ("Team", "/v1/teams", "team_id"),
            ("Agent", "/v1/agents", "agent_id"),
            ("Shift", "/v1/shifts", "shift_id"),
            ("Busy", "/v1/busy", "busy_id"),
            ("Capability", "/v1/capabilities", "capability_id"),
            ("Webhook", "/v1/webhooks", "webhook_id"),
            ("CalendarConnection", "/v1/calendar-connections", "connection_id"),
        )
        for verb, method, what in (
            ("Get", "GET", "Read the object just created"),
            ("Update", "PATCH", "Change the object just created"),
            ("Delete", "DELETE", "Delete the object just created"),
        )
    ),
    ("POST /v1/agents", "201", "SetAgentStatus", "POST /v1/agents/{agent_id}/status",
     "Change the new agent's status (rerouting their tickets)"),
    ("POST /v1/capabilities", "201", "ListSlots", "GET /v1/capabilities/{capability_id}/slots",
     "The call slots the new capability offers"),
    # PUT upserts: 201 when the ticket is new, 200 when it replaced one; both lead on.
    *(
        ("PUT /v1/tickets/{ticket_id}", status, name, target, what)
        for status in ("201", "200")
        for name, target, what in _TICKET_FLOWS
    ),
    *(
        ("POST /v1/calendar-connections", "201", f"{verb}CalendarConnection",
         f"POST /v1/calendar-connections/{{connection_id}}/{action}", what)
        for verb, action, what in (
            ("Pause", "pause", "Stop syncing the new connection"),
            ("Resume", "resume", "Sync the new connection again"),
            ("Resync", "resync", "Read the new connection's calendars afresh"),
        )
    ),
    ("POST /v1/webhooks", "201", "RotateWebhookSecret",
     "POST /v1/webhooks/{webhook_id}/rotate-secret", "Give the new webhook another secret"),
    ("POST /v1/webhooks", "201", "ListDeliveries", "GET /v1/webhooks/{webhook_id}/deliveries",
     "The new webhook's delivery log"),
    ("POST /v1/api-keys", "201", "RevokeApiKey", "DELETE /v1/api-keys/{key_id}",
     "Revoke the key just made"),
    ("POST /v1/bookings", "201", "GetBooking", "GET /v1/bookings/{booking_id}",
     "Read the booked call"),
    ("POST /v1/bookings", "201", "CancelBooking", "POST /v1/bookings/{booking_id}/cancel",
     "Cancel the booked call"),
    ("POST /v1/queue/optimize", "202", "GetJob", "GET /v1/jobs/{job_id}",
     "Poll the optimisation job"),
    ("POST /v1/queue/optimize", "202", "CancelJob", "POST /v1/jobs/{job_id}/cancel",
     "Cancel the optimisation job"),
)  # fmt: skip

# (source, status, name, target, description, body field): the source response's ``id`` is
# that field of the target's body.
_INTO_BODY: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("POST /v1/teams", "201", "CreateAgentInTeam", "POST /v1/agents",
     "Add an agent to the new team", "team"),
    ("POST /v1/teams", "201", "PutTicketForTeam", "PUT /v1/tickets/{ticket_id}",
     "Make the new team accountable for a ticket", "team"),
    ("POST /v1/agents", "201", "CreateShiftForAgent", "POST /v1/shifts",
     "Give the new agent a shift", "agent"),
    ("POST /v1/agents", "201", "CreateBusyForAgent", "POST /v1/busy",
     "Block time in the new agent's calendar", "agent"),
)  # fmt: skip


def _links() -> Iterator[Link]:
    for source, status, name, target, description in _BY_ID:
        [param] = re.findall(r"{(\w+)}", target)
        yield Link(name, source, status, target, description, {param: ID})
    for source, status, name, target, description, into in _INTO_BODY:
        yield Link(name, source, status, target, description, body={into: ID})
    # Working the queue: the first ticket of a page of GET /v1/tickets.
    for name, target, description in _TICKET_FLOWS:
        first = "$response.body#/items/0/id"
        yield Link(name, "GET /v1/tickets", "200", target, description, {"ticket_id": first})
    # Browsing capabilities: the first of a page, to the call slots it offers.
    yield Link(
        "ListSlots",
        "GET /v1/capabilities",
        "200",
        "GET /v1/capabilities/{capability_id}/slots",
        "The call slots the first capability offers",
        {"capability_id": "$response.body#/items/0/id"},
    )
    # Booking: the first slot offered, in the time zone it was offered in.
    yield Link(
        "BookFirstSlot",
        "GET /v1/capabilities/{capability_id}/slots",
        "200",
        "POST /v1/bookings",
        "Book the first slot offered (name the ticket)",
        body={
            "capability_id": "$response.body#/capability_id",
            "start": "$response.body#/slots/0/start",
            "tz": "$response.body#/tz",
        },
    )
    # An assignment answers with the ticket's id as ``ticket``.
    for name, target, description in (
        ("GetTicket", "GET /v1/tickets/{ticket_id}", "Read the ticket with its new owner"),
        ("TicketHistory", "GET /v1/tickets/{ticket_id}/history", "The assignment, recorded"),
    ):
        assign = "POST /v1/tickets/{ticket_id}/assign"
        yield Link(
            name, assign, "200", target, description, {"ticket_id": "$response.body#/ticket"}
        )


LINKS: tuple[Link, ...] = tuple(_links())


def _operation(document: dict[str, Any], name: str) -> dict[str, Any]:
    method, path = name.split(" ", 1)
    operation: dict[str, Any] | None = document.get("paths", {}).get(path, {}).get(method.lower())
    if operation is None:
        raise LookupError(f"OpenAPI link names {name}, which the document has no operation for")
    return operation


def add_links(document: dict[str, Any], links: tuple[Link, ...] = LINKS) -> None:
    """Add ``links`` to the responses of ``document`` (an OpenAPI 3 dict), in place."""
    for link in links:
        response = _operation(document, link.source).get("responses", {}).get(link.status)
        if response is None:
            raise LookupError(f"OpenAPI link {link.name}: {link.source} has no {link.status}")
        target = _operation(document, link.target)
        declared = {p["name"] for p in target.get("parameters", ())}
        unknown = set(link.parameters) - declared
        if unknown:
            raise LookupError(f"OpenAPI link {link.name}: {link.target} has no {sorted(unknown)}")
        out: dict[str, Any] = {
            "operationId": target["operationId"],
            "description": link.description,
        }
        if link.parameters:
            out["parameters"] = dict(link.parameters)
        if link.body is not None:
            out["requestBody"] = dict(link.body)
        named = response.setdefault("links", {})
        if link.name in named:
            raise LookupError(f"OpenAPI link {link.name} twice on {link.source} {link.status}")
        named[link.name] = out
