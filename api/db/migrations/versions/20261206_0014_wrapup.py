"""The exclusion constraint covers completed calls too: an agent in wrap-up stays taken.

Revision ID: 0014_wrapup
Revises: 0013_call_links
Create Date: 2026-12-06 17:00:00

A call holds its agent from ``start_at`` to ``occupied_until`` (its end plus the capability's
wrap-up buffer). The bookings job stores ``completed`` at the call's *end*, and the PostgreSQL
constraint of 0005 covered ``booked`` rows only, so from that moment another call could be bound
onto the agent while they were still in wrap-up. The constraint now covers ``booked`` and
``completed`` rows (cancelled calls hold nobody).

Rows written before this revision may already break the wider rule (that was the bug): a
completed call whose wrap-up a later call of the same agent started in. Its ``occupied_until``
is cut back to that call's start (never before its own end), which is what happened — the
agent took the next call then — so the constraint can be created. SQLite has no such
constraint (the per-tenant lock and the engine keep the rule there): nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_wrapup"
down_revision: str | Sequence[str] | None = "0013_call_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ex_calls_agent_no_overlap"


def _constraint(statuses: str) -> str:
    return (
        f"ALTER TABLE calls ADD CONSTRAINT {_NAME} "
        "EXCLUDE USING gist (tenant_id WITH =, bound_agent WITH =, "
        "tstzrange(start_at, occupied_until) WITH &&) "
        f"WHERE (status IN ({statuses}) AND bound_agent IS NOT NULL) "
        "DEFERRABLE INITIALLY DEFERRED"
    )


_NEXT = (
    "SELECT MIN(n.start_at) FROM calls n "
    "WHERE n.tenant_id = c.tenant_id AND n.bound_agent = c.bound_agent "
    "AND n.status IN ('booked', 'completed') AND n.id <> c.id "
    "AND n.start_at >= c.end_at AND n.start_at < c.occupied_until"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE calls DROP CONSTRAINT {_NAME}")
    op.execute(
        f"UPDATE calls c SET occupied_until = ({_NEXT}) "
        f"WHERE c.status = 'completed' AND c.bound_agent IS NOT NULL AND ({_NEXT}) IS NOT NULL"
    )
    op.execute(_constraint("'booked', 'completed'"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE calls DROP CONSTRAINT {_NAME}")
    op.execute(_constraint("'booked'"))
