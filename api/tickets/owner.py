"""The one writer of a ticket's owner changes.

Every change of hands — an assignment (one or a batch), an escalation, an agent's work
re-routed when they go away, a re-optimization plan applied, a helpdesk's own ``PUT`` — goes
through :class:`OwnerWriter`, so each lands the same way: the ticket row, one history event
and its webhook event (``ticket.<kind>``, :func:`api.events.ticket_step_notice`) in the same
transaction.

What kind of change it is, said once (:func:`change_kind`): the owner is the agent, or the team
when no agent holds the ticket, and the team is part of it. A ticket no agent held that gets
an agent *in its own team* is **assigned**; every other move — to another agent, back to the
queue, or to another team, with the same agent too — is **reassigned** (the accountable
owner, or the queue that holds the ticket, changed hands). **Escalated** is a change of what
the ticket needs (and possibly its team) recorded before the owner move it causes.

The writer collects a unit of work's changes and writes them with one statement per kind of
row (owners, history, outbox) and one read of the tenant's subscriptions, with prebuilt Core
statements: the real-time path writes hundreds a second. Callers holding ORM rows get them
updated in memory as committed, so the session does not write the owner a second time.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import (
    Connection,
    Table,
    Text,
    TextClause,
    bindparam,
    column,
    func,
    insert,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from api import events, mapping
from api.db.models import Ticket as TicketRow
from api.db.models import TicketEvent
from api.db.webhooks import WebhookEvent
from api.enums import TicketEventKind
from solver.plan import Reason

# How many reason details go into the history's one-line ``reason``; all are kept in ``data``.
REASONS_IN_LINE = 3


class Held(Protocol):
    """What the writer reads of a ticket: an ORM row or the hot path's plain view."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def team_id(self) -> str: ...
    @property
    def owner_agent_id(self) -> str | None: ...


_FREED = "switchboard.freed_agents"


def note_freed(session: Session, tenant_id: str, agent_id: str) -> None:
    """Remember, on the session, that ``agent_id`` gave up a ticket in this unit of work (it was
    moved away from them, or solved or closed): the live channels' queue is re-offered to the
    agents freed (:mod:`api.assignment.live`)."""
    session.info.setdefault(_FREED, {}).setdefault(tenant_id, set()).add(agent_id)


def take_freed(session: Session, tenant_id: str) -> set[str]:
    """The agents noted freed for ``tenant_id`` since the last call (and forget them)."""
    freed: dict[str, set[str]] = session.info.get(_FREED, {})
    return freed.pop(tenant_id, set())


def change_kind(
    from_team: str, from_agent: str | None, to_team: str, to_agent: str | None
) -> TicketEventKind | None:
    """Assigned, reassigned, or None when neither the team nor the agent changes (see the
    module docstring)."""
    if to_team == from_team and to_agent == from_agent:
        return None
    if from_agent is None and to_team == from_team:
        return TicketEventKind.ASSIGNED
    return TicketEventKind.REASSIGNED


def kind_name(kind: TicketEventKind | None) -> str | None:
    """The name an answer gives a change (``"assigned"``, ``"reassigned"``), None for none."""
    return None if kind is None else kind.value


def event_type(kind: TicketEventKind) -> events.EventType:
    """The webhook event of an owner change's history kind."""
    if kind is TicketEventKind.ASSIGNED:
        return events.EventType.TICKET_ASSIGNED
    return events.EventType.TICKET_REASSIGNED


def reason_line(reasons: Sequence[Reason], note: str | None, source: str) -> str:
    """The history's one-line reason: the caller's note, then the first reasons."""
    line = f"{source}: " + "; ".join(r.detail for r in reasons[:REASONS_IN_LINE])
    return f"{note} ({line})" if note else line


_T = cast(Table, TicketRow.__table__)
_SET_OWNER = (
    update(_T)
    .where(_T.c.tenant_id == bindparam("tenant"), _T.c.id == bindparam("ticket"))
    .values(
        team_id=bindparam("new_team"),
        owner_agent_id=bindparam("new_agent"),
        updated_at=bindparam("now"),
    )
)
# PostgreSQL: a batch's owner changes in one statement whose parameters are arrays (unnest):
# fixed text, so prepared once, whatever the batch size. An executemany sends one UPDATE per
# ticket through psycopg's pipeline, which costs the server more CPU under load. (Not for the
# history and outbox INSERTs: psycopg escapes text arrays element by element with a regex, and
# their JSON documents make that dearer than an executemany.) Figures: benchmarks/README.md,
# Figures behind design choices.
_NEW_OWNERS = (
    func.unnest(
        bindparam("ids", type_=postgresql.ARRAY(Text)),
        bindparam("teams", type_=postgresql.ARRAY(Text)),
        bindparam("agents", type_=postgresql.ARRAY(Text)),
    )
    .table_valued(column("id", Text), column("team", Text), column("agent", Text))
    .render_derived(name="new_owners")
)
_SET_OWNERS_PG = (
    update(_T)
    .values(
        team_id=_NEW_OWNERS.c.team,
        owner_agent_id=_NEW_OWNERS.c.agent,
        updated_at=bindparam("now"),
    )
    .where(_T.c.tenant_id == bindparam("tenant"), _T.c.id == _NEW_OWNERS.c.id)
)
_HISTORY = cast(Table, TicketEvent.__table__)
_OUTBOX = cast(Table, WebhookEvent.__table__)
_ADD_HISTORY = insert(_HISTORY)
_ADD_OUTBOX = insert(_OUTBOX)


def _insert_json_rows(table: Table, columns: Sequence[str]) -> TextClause:
    """PostgreSQL: ``INSERT`` the rows of one JSON array parameter ``:rows`` (objects keyed by
    ``columns``), in array order. One ``json.dumps`` of the batch in place of an executemany,
    whose pipeline and per-row JSON adaptation cost more CPU than the statement saves
    (figures: benchmarks/README.md, Figures behind design choices)."""
    pg = postgresql.dialect()  # type: ignore[no-untyped-call]
    typed = ", ".join(f"{c} {table.c[c].type.compile(dialect=pg)}" for c in columns)
    names = ", ".join(columns)
    return text(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM ROWS FROM "
        f"(json_to_recordset(CAST(:rows AS json)) AS ({typed})) WITH ORDINALITY "
        f"AS r({names}, n) ORDER BY n"
    )


_HISTORY_COLUMNS = (
    "tenant_id",
    "ticket_id",
    "kind",
    "at",
    "actor",
    "from_agent",
    "to_agent",
    "from_team",
    "to_team",
    "from_status",
    "to_status",
    "reason",
    "data",
)
_OUTBOX_COLUMNS = ("tenant_id", "id", "type", "data", "created_at", "dispatched_at")
_ADD_HISTORY_PG = _insert_json_rows(_HISTORY, _HISTORY_COLUMNS)
_ADD_OUTBOX_PG = _insert_json_rows(_OUTBOX, _OUTBOX_COLUMNS)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()  # aware: the request's clock
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_rows(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_json_value, separators=(",", ":"), allow_nan=False)


class OwnerWriter:
    """One unit of work's owner changes of one tenant, at one request time ``now``.

    :meth:`move` records a change (and answers its kind at once); :meth:`write` writes every
    change recorded since the last write. Write before the unit of work commits, and before
    anything reads the tickets' owners back from the database.
    """

    def __init__(self, tenant_id: str, now: datetime) -> None:
        self.tenant_id = tenant_id
        self.now = now
        self._owners: list[tuple[str, str, str | None]] = []
        self._freed: set[str] = set()
        self._history: list[dict[str, Any]] = []
        self._notices: list[tuple[events.EventType, Mapping[str, Any]]] = []

    def move(
        self,
        ticket: Held,
        *,
        agent: str | None,
        actor: str | None,
        source: str | None,
        reasons: Sequence[Reason] = (),
        team: str | None = None,
        note: str | None = None,
        detail: Mapping[str, Any] | None = None,
        job_id: str | None = None,
    ) -> TicketEventKind | None:
        """Give ``ticket`` to ``agent`` (None: the queue of ``team``, default its own team).

        ``source`` names the use case (realtime, escalation, reroute, optimizer) and puts it,
        the reasons, ``detail`` and ``job_id`` into the history's data and the webhook event;
        None is the helpdesk's own change: the history keeps only ``note``, and the event says
        ``source: null`` (its ``actor`` is the helpdesk's key). Returns the kind, or None when
        the owner stays."""
        to_team = team or ticket.team_id
        from_team, from_agent = ticket.team_id, ticket.owner_agent_id
        kind = change_kind(from_team, from_agent, to_team, agent)
        if kind is None:
            return None
        self._owners.append((ticket.id, to_team, agent))
        if from_agent is not None and from_agent != agent:
            self._freed.add(from_agent)
        data: dict[str, Any] = {}
        line = note
        if source is not None:
            data = {"source": source, "reasons": mapping.reasons_json(reasons), **(detail or {})}
            if job_id is not None:
                data["job_id"] = job_id
            line = reason_line(reasons, note, source)
        owner_fields = events.ticket_owner_payload(
            ticket_id=ticket.id,
            agent_id=agent,
            team_id=to_team,
            from_agent_id=from_agent,
            from_team_id=from_team,
            source=source,
            reasons=reasons,
            job_id=job_id,
        )
        self._add(
            self._history_row(
                ticket.id, kind, actor, line, data, from_team, to_team, from_agent, agent
            ),
            owner_fields,
        )
        if isinstance(ticket, TicketRow):
            # The row now says what the database will hold once written; as committed state,
            # so a flush of the session does not write the owner again.
            set_committed_value(ticket, "team_id", to_team)
            set_committed_value(ticket, "owner_agent_id", agent)
            set_committed_value(ticket, "updated_at", self.now)
        return kind

    def escalated(
        self,
        ticket: Held,
        *,
        to_team: str,
        actor: str | None,
        reason: str | None,
        data: Mapping[str, Any],
    ) -> None:
        """Record that ``ticket``'s needs (and maybe team) were raised; its owner is unchanged
        here: the move it causes, if any, is a :meth:`move` after this."""
        agent = ticket.owner_agent_id
        self._add(
            self._history_row(
                ticket.id,
                TicketEventKind.ESCALATED,
                actor,
                reason,
                dict(data),
                ticket.team_id,
                to_team,
                agent,
                agent,
            )
        )

    def _add(self, row: dict[str, Any], extra: Mapping[str, Any] | None = None) -> None:
        """Queue one history row and its webhook event (:func:`api.events.ticket_step_notice`,
        plus ``extra`` fields): every row this writer writes has its event."""
        self._history.append(row)
        event_type, payload = events.ticket_step_notice(row)
        self._notices.append((event_type, {**payload, **(extra or {})}))

    def _history_row(
        self,
        ticket_id: str,
        kind: TicketEventKind,
        actor: str | None,
        reason: str | None,
        data: dict[str, Any],
        from_team: str,
        to_team: str,
        from_agent: str | None,
        to_agent: str | None,
    ) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "ticket_id": ticket_id,
            "kind": kind,
            "at": self.now,
            "actor": actor,
            "from_agent": from_agent,
            "to_agent": to_agent,
            "from_team": from_team,
            "to_team": to_team,
            "from_status": None,
            "to_status": None,
            "reason": reason,
            "data": data,
        }

    def write(self, session: Session) -> None:
        """Write the changes recorded since the last write: one statement per kind of row."""
        outbox = events.outbox_rows(session, self.tenant_id, self._notices, self.now)
        _write(session.connection(), self.tenant_id, self.now, self._owners, self._history, outbox)
        for agent in self._freed:
            note_freed(session, self.tenant_id, agent)
        self._owners, self._history, self._notices = [], [], []
        self._freed = set()


def _write(
    conn: Connection,
    tenant_id: str,
    now: datetime,
    owners: Sequence[tuple[str, str, str | None]],
    history: Sequence[dict[str, Any]],
    outbox: Sequence[dict[str, Any]],
) -> None:
    if owners:
        if conn.dialect.name == "postgresql":
            ids, teams, agents = zip(*owners, strict=True)
            conn.execute(
                _SET_OWNERS_PG,
                {
                    "tenant": tenant_id,
                    "now": now,
                    "ids": list(ids),
                    "teams": list(teams),
                    "agents": list(agents),
                },
            )
        else:  # SQLite: no round trips to save
            conn.execute(
                _SET_OWNER,
                [
                    {"tenant": tenant_id, "ticket": t, "new_team": team, "new_agent": a, "now": now}
                    for t, team, a in owners
                ],
            )
    postgres = conn.dialect.name == "postgresql"
    if history:
        if postgres:
            conn.execute(_ADD_HISTORY_PG, {"rows": _json_rows(history)})
        else:
            conn.execute(_ADD_HISTORY, history)
    if outbox:
        if postgres:
            conn.execute(_ADD_OUTBOX_PG, {"rows": _json_rows(outbox)})
        else:
            conn.execute(_ADD_OUTBOX, outbox)
