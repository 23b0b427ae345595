"""Agents' calendar connections, for one tenant at a time (the admin API's use cases).

Every lookup takes ``tenant_id``: another tenant's connection is a 404, exactly like one that
does not exist. What a connection needs to work is checked before anything is stored:
the agent exists (a 422 naming ``agent_id``), an ICS connection names exactly one feed, and the
provider's own checks (:func:`calendars.problems`) name ``settings.<x>`` / ``credentials.<x>``.
Credentials are encrypted here (:func:`api.calendar_sync.connectors.encrypt_credentials`) and
never leave the row again except to the connector.

Each write is one transaction with the sync it queues (:func:`api.calendar_sync.jobs.queue_sync`):
a new connection, changed settings or credentials, a resume or a resync never exist without
their sync waiting. Rows another unit of work may be writing (a sync storing its results) are
read ``FOR UPDATE`` on PostgreSQL; SQLite serializes writers anyway.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

import calendars
from api.calendar_sync import channels, connectors, writeback
from api.calendar_sync.jobs import SYNC_JOB, queue_sync
from api.calendar_sync.schemas import ConnectionCreate, ConnectionUpdate
from api.common import service as common
from api.db.jobs import Job, JobStatus
from api.db.models import BusyInterval, CalendarConnection
from api.db.results import affected_rows
from api.errors import Conflict, FieldError, InvalidInput, NotFound
from api.org_version import bump
from api.settings import Settings, env_name
from calendars.base import CredentialError

WHAT = "calendar connection"
ID_PREFIX = "cal"


def mirror_source(connection_id: str) -> str:
    """The ``source`` of the busy intervals mirrored from a connection."""
    return f"calendar:{connection_id}"


def get_or_raise(
    *, session: Session, tenant_id: str, connection_id: str, for_update: bool = False
) -> CalendarConnection:
    stmt = select(CalendarConnection).where(
        CalendarConnection.tenant_id == tenant_id, CalendarConnection.id == connection_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound(WHAT, connection_id)
    return row


def _shape_errors(provider: str, calendar_ids: Sequence[str]) -> list[FieldError]:
    if provider == "ics" and len(calendar_ids) != 1:
        return [FieldError("calendars", "an ICS connection reads exactly one feed: give one label")]
    return []


def _provider_errors(
    provider: str,
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    calendar_ids: Sequence[str],
) -> list[FieldError]:
    return [
        FieldError(name, reason)
        for name, reason in calendars.problems(provider, settings, credentials)
    ] + writeback.settings_problems(provider, settings, calendar_ids)


# The settings by which a connection names where its provider lives, and the credential that
# is itself an address (a secret ICS feed's URL): an admin of one tenant must not be able to make
# the service send requests to any host it can reach (an internal one, say).
_ENDPOINT_SETTINGS = {
    "google": ("api_endpoint", "token_uri"),
    "microsoft": ("authority", "graph_endpoint", "ca_bundle"),
    "ics": (),
}
_GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_OPERATOR_ONLY = (
    "names a provider endpoint, which only the operator may allow "
    f"({env_name('calendar_custom_endpoints')}): leave it out to use the provider's own"
)


def _private_host(host: str) -> bool:
    """Whether ``host`` is a name or address on this machine or a private network."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return not address.is_global


def endpoint_errors(
    provider: str,
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    app_settings: Settings,
) -> list[FieldError]:
    """Where a connection would point the service, when the operator has not opened that up
    (``calendar_custom_endpoints``; open outside production)."""
    if app_settings.calendar_endpoints_open:
        return []
    found = [
        FieldError(f"settings.{name}", _OPERATOR_ONLY)
        for name in _ENDPOINT_SETTINGS.get(provider, ())
        if name in settings
    ]
    info = credentials.get("service_account_info")
    if provider == "google" and isinstance(info, Mapping):
        uri = info.get("token_uri")
        if uri is not None and uri != _GOOGLE_TOKEN_URI:
            found.append(FieldError("credentials.service_account_info.token_uri", _OPERATOR_ONLY))
    url = credentials.get("url")
    if provider == "ics" and isinstance(url, str):
        parts = urlsplit(url)
        if parts.scheme != "https":
            found.append(FieldError("credentials.url", "must be an https:// address"))
        elif _private_host(parts.hostname or ""):
            found.append(
                FieldError(
                    "credentials.url",
                    "is on this machine or a private network, which only the operator may "
                    f"allow ({env_name('calendar_custom_endpoints')})",
                )
            )
    return found


def create(
    *,
    session: Session,
    tenant_id: str,
    data: ConnectionCreate,
    now: datetime,
    settings: Settings,
) -> tuple[CalendarConnection, Job]:
    """The new connection, active, with its first (full) sync queued in this transaction."""
    errors = common.unknown_agent(session, tenant_id, data.agent_id, field="agent_id")
    errors += _shape_errors(data.provider, data.calendars)
    common.raise_if(errors)
    common.raise_if(
        endpoint_errors(data.provider, data.settings, data.credentials, settings)
        + _provider_errors(data.provider, data.settings, data.credentials, data.calendars)
    )
    row = CalendarConnection(
        tenant_id=tenant_id,
        id=common.new_id(ID_PREFIX),
        agent_id=data.agent_id,
        provider=data.provider,
        calendars=list(data.calendars),
        settings=dict(data.settings),
        credentials=connectors.encrypt_credentials(settings, data.credentials),
        status="active",
        failure=None,
        cursors={},
        channels={},
        channel_token=None,
        consecutive_failures=0,
        busy_count=0,
        requests_total=0,
        created_at=now,
        updated_at=now,
    )
    common.insert(session, row)
    job = queue_sync(session, tenant_id, row.id, now=now, full=True)
    channels.queue_watch(session, tenant_id, row.id, now=now)
    return row, job


def update_connection(
    *,
    session: Session,
    tenant_id: str,
    connection_id: str,
    data: ConnectionUpdate,
    now: datetime,
    settings: Settings,
) -> CalendarConnection:
    """Replace the parts given. The provider checks see the connection as it would be. A
    failed connection stays failed until a sync with what was sent succeeds; any change queues
    a full sync unless the connection is paused (resuming queues one)."""
    row = get_or_raise(
        session=session, tenant_id=tenant_id, connection_id=connection_id, for_update=True
    )
    changes = data.changes()
    if not changes:
        return row
    calendar_ids = changes.get("calendars", row.calendars)
    new_settings = changes.get("settings", row.settings)
    common.raise_if(_shape_errors(row.provider, calendar_ids))
    if "credentials" in changes:
        credentials = changes["credentials"]
    else:
        try:
            credentials = connectors.decrypt_credentials(settings, row.credentials)
        except CredentialError:
            raise InvalidInput.one(
                "credentials",
                "the stored credentials open with no key of the service's keyring: send them "
                "again with this change",
            ) from None
    common.raise_if(
        endpoint_errors(row.provider, new_settings, credentials, settings)
        + _provider_errors(row.provider, new_settings, credentials, calendar_ids)
    )
    if "calendars" in changes:
        row.calendars = list(calendar_ids)
        # A calendar no longer read keeps no cursor; a new one starts from a full listing.
        row.cursors = {k: v for k, v in row.cursors.items() if k in calendar_ids}
    if "settings" in changes:
        row.settings = dict(new_settings)
    if "credentials" in changes:
        row.credentials = connectors.encrypt_credentials(settings, credentials)
    # A failed connection stays failed (its agent blocked) until a sync with what was sent
    # succeeds: the sync clears the failure and announces calendar.sync_recovered. Clearing it
    # here would make the agent look free before the new credentials were ever tried.
    row.updated_at = now
    session.flush()
    if row.status != "paused":
        queue_sync(session, tenant_id, row.id, now=now, full=True)
        if "settings" in changes or "calendars" in changes:
            # Write-back turned on or off, or another calendar chosen: move what was written.
            writeback.queue_for_connection(session, tenant_id, row.id, now)
    return row


def pause(
    *, session: Session, tenant_id: str, connection_id: str, now: datetime
) -> CalendarConnection:
    """Stop syncing the connection; its agent is no longer blocked by it. Its waiting sync is
    cancelled; the mirror is kept (a paused calendar's busy time still counts)."""
    row = get_or_raise(
        session=session, tenant_id=tenant_id, connection_id=connection_id, for_update=True
    )
    if row.status != "paused":
        row.status = "paused"
        row.updated_at = now
        session.flush()
        channels.release(session, row, now)
    _cancel_waiting_syncs(session, tenant_id, connection_id, now)
    return row


def resume(
    *, session: Session, tenant_id: str, connection_id: str, now: datetime
) -> CalendarConnection:
    """Sync the connection again (a paused one becomes active; a failed one stays failed until
    the sync succeeds) and queue a sync now.
    Until it succeeds its agent is blocked if the mirror is stale (fail closed)."""
    row = get_or_raise(
        session=session, tenant_id=tenant_id, connection_id=connection_id, for_update=True
    )
    if row.status == "paused":
        # A failed connection stays failed until a sync succeeds (fail closed; the sync
        # announces the recovery); a paused one syncs again and is judged by its mirror's age.
        row.status = "active"
        row.failure = None
        row.updated_at = now
        session.flush()
        channels.queue_watch(session, tenant_id, row.id, now=now)
        writeback.queue_for_connection(session, tenant_id, row.id, now)
    queue_sync(session, tenant_id, row.id, now=now)
    return row


def resync(*, session: Session, tenant_id: str, connection_id: str, now: datetime) -> Job:
    """Drop every cursor and queue a full sync now; the job. A paused connection is a 409."""
    row = get_or_raise(
        session=session, tenant_id=tenant_id, connection_id=connection_id, for_update=True
    )
    if row.status == "paused":
        raise Conflict(f"{WHAT} {connection_id!r} is paused; resume it to sync it")
    row.cursors = {}
    row.updated_at = now
    session.flush()
    return queue_sync(session, tenant_id, row.id, now=now, full=True)


def delete_connection(
    *, session: Session, tenant_id: str, connection_id: str, now: datetime
) -> int:
    """Delete the connection, its mirror (busy intervals whose source names it) and its
    waiting sync, in the caller's transaction; how many busy intervals went."""
    row = get_or_raise(
        session=session, tenant_id=tenant_id, connection_id=connection_id, for_update=True
    )
    _cancel_waiting_syncs(session, tenant_id, connection_id, now)
    channels.release(session, row, now)
    gone = session.execute(
        delete(BusyInterval)
        .where(
            BusyInterval.tenant_id == tenant_id,
            BusyInterval.source == mirror_source(connection_id),
        )
        .execution_options(synchronize_session=False)
    )
    removed = affected_rows(gone)
    if removed:
        # A Core delete passes the ORM flush listener by: say the organisation changed.
        bump(session, tenant_id)
    session.delete(row)
    session.flush()
    return removed


def _cancel_waiting_syncs(
    session: Session, tenant_id: str, connection_id: str, now: datetime
) -> None:
    """Cancel the connection's queued syncs (a running one finds its connection changed)."""
    waiting = [
        job.id
        for job in session.scalars(
            select(Job).where(
                Job.tenant_id == tenant_id, Job.kind == SYNC_JOB, Job.status == JobStatus.QUEUED
            )
        )
        if job.payload.get("connection_id") == connection_id
    ]
    if waiting:
        session.execute(
            update(Job)
            .where(Job.id.in_(waiting), Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.CANCELLED, finished_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def list_connections(
    *,
    session: Session,
    tenant_id: str,
    agent_id: str | None,
    provider: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[CalendarConnection], str | None]:
    stmt = select(CalendarConnection).where(CalendarConnection.tenant_id == tenant_id)
    if agent_id is not None:
        stmt = stmt.where(CalendarConnection.agent_id == agent_id)
    if provider is not None:
        stmt = stmt.where(CalendarConnection.provider == provider)
    if status is not None:
        stmt = stmt.where(CalendarConnection.status == status)
    return common.paginate(session, stmt, CalendarConnection.id, cursor, limit)
