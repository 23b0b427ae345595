"""The service's closed vocabularies, shared by rows, schemas and services.

Agent status, skill kind and team scope are the solver's own enums (one meaning everywhere); ticket
priority and status are the helpdesk's words, mapped to the solver's ``Priority`` in
``mapping.py``.
"""

from __future__ import annotations

import enum

from solver.problem import AgentStatus, Priority, SkillKind, TeamScope

__all__ = [
    "AgentStatus",
    "Scope",
    "SkillKind",
    "TeamScope",
    "TicketEventKind",
    "TicketPriority",
    "TicketStatus",
]


class Scope(enum.StrEnum):
    """What an API key may do. ``admin`` may do everything, including managing keys."""

    HELPDESK = "helpdesk"
    PLANNER = "planner"
    ADMIN = "admin"


class TicketPriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    def to_solver(self) -> Priority:
        return Priority[self.name]


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"

    @property
    def is_active(self) -> bool:
        """Work still to do: the solver plans active tickets only."""
        return self in (TicketStatus.NEW, TicketStatus.OPEN)

    @property
    def is_done(self) -> bool:
        return self in (TicketStatus.SOLVED, TicketStatus.CLOSED)


class Channel(enum.StrEnum):
    """The built-in channels a customer reaches a helpdesk through; a tenant may declare more
    in its policies (``channels``)."""

    EMAIL = "email"
    WEB_FORM = "web_form"
    CHAT = "chat"
    MESSAGING = "messaging"
    PHONE = "phone"

    @property
    def is_live(self) -> bool:
        """The customer waits on the line (or in the conversation) for an answer: chat, phone and
        messaging, whose customers expect a reply in minutes (Zendesk and Freshdesk route
        messaging with the live channels too)."""
        return self in (Channel.CHAT, Channel.MESSAGING, Channel.PHONE)


class TicketEventKind(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    ASSIGNED = "assigned"
    REASSIGNED = "reassigned"
    STATUS_CHANGED = "status_changed"
    ESCALATED = "escalated"
    CALL_BOOKED = "call_booked"
    CALL_CANCELLED = "call_cancelled"
    CALL_FLAGGED = "call_flagged"
    BREACH_RISK = "breach_risk"
    DUE_DATES_SET = "due_dates_set"
    CALL_LINK_CREATED = "call_link_created"
    CALL_LINK_REVOKED = "call_link_revoked"
    CALL_RESCHEDULED = "call_rescheduled"
    CALL_ADMITTED = "call_admitted"
    CALL_NO_SHOW = "call_no_show"
    CALL_COMPLETED = "call_completed"
