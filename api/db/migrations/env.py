"""Alembic environment: migrates the database named by the settings (or by the caller).

``api.db.migrate`` passes the URL in ``config.attributes``; the plain ``alembic`` command falls
back to :class:`~api.settings.Settings` (``DATABASE_URL``). SQLite runs in batch mode so later
migrations can alter tables it cannot ALTER in place.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import api.assignment.cache  # org_versions
import api.db.jobs  # the jobs table
import api.db.models  # registers every table on Base.metadata
import api.db.planning  # scenario runs
import api.db.webhooks  # noqa: F401  (the webhook outbox tables)
from api.db.base import Base
from api.db.engine import make_engine
from api.settings import Settings

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if isinstance(url, str):
        return url
    return Settings().database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            # Foreign keys were off while tables were rebuilt: prove nothing dangles now.
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")


def run_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=_database_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    # A migration may rewrite a big table or build an index for minutes: the service's statement
    # and reply timeouts would cut it off (and the reply timeout must stay above the statement
    # timeout). The lock timeout stays: a migration queued behind a long transaction would
    # otherwise block every request behind itself.
    settings = Settings(
        database_url=_database_url(),
        db_statement_timeout_seconds=0,
        db_reply_timeout_seconds=24 * 3600,
    )
    engine = make_engine(settings, sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
