"""Re-encrypting every stored secret under the newest key of the keyring (``switchboard
rotate-secrets``).

Every column holding a Fernet token is listed in :data:`STORED_SECRETS` with the keyring purpose
it was sealed for (:mod:`api.crypto`): webhook signing secrets and the rotated-out ones that still
sign during an overlap (migration 0012), stored ``Idempotency-Key`` answers, calendar credentials
and push-channel tokens. For each, rows are read in primary-key order, ``batch_size`` per
transaction, and each token is

- left alone when the newest key already opens it (*current*: re-running costs only reads);
- re-encrypted with :meth:`MultiFernet.rotate` when an older key of the ring opens it
  (*rotated*); the write is a compare-and-set on the token read, so a value the running service
  changed meanwhile (a PATCHed credential, a webhook secret rotated through the API) is never
  overwritten with an older one (*changed*: the service wrote it, under the newest key);
- counted and named when no key of the ring opens it (*unreadable*), never overwritten: its key
  is missing from ``SWITCHBOARD_PREVIOUS_SECRET_KEYS``.

Safe to re-run and to run while the service serves: each batch is a short transaction of its
own (SQLite: ``BEGIN IMMEDIATE``, so it waits its turn as a writer), nothing is locked between
batches, and nothing a request could be reading is ever left undecryptable -- old tokens stay
readable through the previous keys until the operator drops them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Engine, Table, func, select, tuple_, update

from api.calendar_sync import connectors
from api.crypto import InvalidToken, fernet, newest_fernet
from api.db.base import table_of
from api.db.engine import writer_engine
from api.db.models import CalendarConnection, IdempotencyRecord
from api.db.results import affected_rows
from api.db.webhooks import WebhookSubscription
from api.idempotency import service as idempotency
from api.settings import Settings
from api.webhooks import secrets as webhook_secrets

# Rows named per kind when their token is unreadable (the count is always complete).
NAMED_UNREADABLE = 10


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One column of Fernet tokens: what it is, where, and the purpose its key is derived for."""

    kind: str
    table: Table
    column: str
    purpose: str

    @property
    def binary(self) -> bool:
        """Whether the column holds bytes (else text)."""
        return self.table.c[self.column].type.python_type is bytes


STORED_SECRETS: tuple[StoredSecret, ...] = (
    StoredSecret(
        "webhook secrets",
        table_of(WebhookSubscription),
        "secret_encrypted",
        webhook_secrets.PURPOSE,
    ),
    StoredSecret(
        "rotated-out webhook secrets",
        table_of(WebhookSubscription),
        "previous_secret_encrypted",
        webhook_secrets.PURPOSE,
    ),
    StoredSecret(
        "idempotent responses",
        table_of(IdempotencyRecord),
        "response_body",
        idempotency.SEAL_PURPOSE,
    ),
    StoredSecret(
        "calendar credentials",
        table_of(CalendarConnection),
        "credentials",
        connectors.PURPOSE,
    ),
    StoredSecret(
        "calendar channel tokens",
        table_of(CalendarConnection),
        "channel_token",
        connectors.CHANNEL_TOKEN_PURPOSE,
    ),
)


@dataclass(slots=True)
class KindReport:
    """What one run did to one kind of secret."""

    kind: str
    rotated: int = 0
    current: int = 0
    changed: int = 0
    unreadable: int = 0
    # Primary keys ("tenant/id") of the first unreadable rows, to find them.
    unreadable_rows: list[str] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.rotated + self.current + self.changed + self.unreadable


@dataclass(frozen=True, slots=True)
class Report:
    kinds: tuple[KindReport, ...]

    @property
    def unreadable(self) -> int:
        return sum(k.unreadable for k in self.kinds)

    @property
    def rotated(self) -> int:
        return sum(k.rotated for k in self.kinds)


Progress = Callable[[StoredSecret, int], None]
"""Told after each batch: the kind, and how many of its tokens the batch went through."""


def _key_columns(target: StoredSecret) -> list[Column[Any]]:
    return list(target.table.primary_key.columns)


def _present(target: StoredSecret) -> Any:
    return target.table.c[target.column].is_not(None)


def count(engine: Engine) -> dict[str, int]:
    """How many tokens of each kind are stored now (for the progress bar's totals)."""
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for target in STORED_SECRETS:
            n = conn.execute(select(func.count()).select_from(target.table).where(_present(target)))
            out[target.kind] = int(n.scalar_one())
    return out


def _named(key: Sequence[Any]) -> str:
    return "/".join(str(part) for part in key)


def rotate_batch(
    engine: Engine,
    settings: Settings,
    target: StoredSecret,
    report: KindReport,
    *,
    after: tuple[Any, ...] | None,
    batch_size: int,
) -> tuple[tuple[Any, ...] | None, int]:
    """Rotate the next ``batch_size`` tokens of ``target`` after primary key ``after`` (None:
    from the start) in one transaction; the last key seen (None when no row was left) and how
    many rows the batch read."""
    keys = _key_columns(target)
    column = target.table.c[target.column]
    ring = fernet(settings, target.purpose)
    newest = newest_fernet(settings, target.purpose)
    stmt = select(*keys, column).where(_present(target)).order_by(*keys).limit(batch_size)
    if after is not None:
        stmt = stmt.where(tuple_(*keys) > tuple_(*after))
    with writer_engine(engine).begin() as conn:
        rows = conn.execute(stmt).all()
        for row in rows:
            key, stored = tuple(row[: len(keys)]), row[len(keys)]
            token: bytes = stored if target.binary else stored.encode()
            try:
                newest.decrypt(token)
            except InvalidToken:
                pass
            else:
                report.current += 1
                continue
            try:
                fresh = ring.rotate(token)
            except InvalidToken:
                report.unreadable += 1
                if len(report.unreadable_rows) < NAMED_UNREADABLE:
                    report.unreadable_rows.append(_named(key))
                continue
            written = conn.execute(
                update(target.table)
                .where(*(c == v for c, v in zip(keys, key, strict=True)), column == stored)
                .values({target.column: fresh if target.binary else fresh.decode()})
            )
            if affected_rows(written) == 1:
                report.rotated += 1
            else:
                report.changed += 1
    if not rows:
        return None, 0
    return tuple(rows[-1][: len(keys)]), len(rows)


def rotate_all(
    engine: Engine,
    settings: Settings,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
    targets: Sequence[StoredSecret] = STORED_SECRETS,
) -> Report:
    """Re-encrypt every stored token under the newest key, ``batch_size`` rows per
    transaction; what was done, kind by kind."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    reports = []
    for target in targets:
        report = KindReport(target.kind)
        after: tuple[Any, ...] | None = None
        while True:
            after, n = rotate_batch(
                engine, settings, target, report, after=after, batch_size=batch_size
            )
            if progress is not None and n:
                progress(target, n)
            if after is None or n < batch_size:
                break
        reports.append(report)
    return Report(tuple(reports))
