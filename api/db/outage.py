"""When the database does not answer: which errors mean that, how they are logged, how loops wait.

    found = classify(exc)           # None (a bug, a constraint...) or an Outage
    log_line = ThrottledLog(log)    # at most one line per kind every 10 s, with a count
    backoff = Backoff(1.0, 30.0)    # a background loop's wait after each failed round

An outage is loud by nature: during a partition every request and every background poll fails the
same way (figures: benchmarks/README.md, PostgreSQL outage). One line per kind of failure every few
seconds says all there is to say; the SQL and its parameters (customer data) never appear, only the
exception's class and the first line of the driver's message.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc

_REASON_MAX = 200
# Errors where the database answered but could not do the work now: retry in a moment.
_BUSY = (pg_errors.QueryCanceled, pg_errors.LockNotAvailable, pg_errors.TransactionRollback)
_DRIVER_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError)


@dataclass(frozen=True, slots=True)
class Outage:
    """Why the database could not serve: ``busy`` (locked, timed out, pool full: a second or
    so) or not (unreachable, connection lost: longer). ``kind`` and ``reason`` are safe to log."""

    busy: bool
    kind: str
    reason: str


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:_REASON_MAX]


def classify(exc: BaseException) -> Outage | None:
    """The outage ``exc`` reports, or None when it is something else (a bug, bad data)."""
    if isinstance(exc, sa_exc.TimeoutError):
        # The pool's: every connection is in use and none came back in time.
        return Outage(True, "PoolTimeout", "no database connection became free in time")
    if isinstance(exc, sa_exc.DisconnectionError):
        return Outage(False, "DisconnectionError", _first_line(exc))
    if isinstance(exc, sa_exc.DBAPIError):
        driver: BaseException = exc.orig if exc.orig is not None else exc
        wrapped = isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
        if not (wrapped or exc.connection_invalidated):
            return None
    elif isinstance(exc, _DRIVER_UNAVAILABLE):
        driver = exc
    else:
        return None
    busy = isinstance(driver, _BUSY) or "database is locked" in str(driver)
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        busy = False
    return Outage(busy, type(driver).__name__, _first_line(driver))


class ThrottledLog:
    """Logs at most one line per ``every`` seconds for each key; the next line that gets
    through says how many were held back meanwhile. Thread-safe."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[Hashable, tuple[float, int]] = {}  # key -> (last logged, held back)

    def log(self, level: int, key: Hashable, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``key`` was logged less than ``every`` s ago."""
        now = self._clock()
        with self._lock:
            last, held = self._state.get(key, (float("-inf"), 0))
            if now - last < self._every:
                self._state[key] = (last, held + 1)
                return False
            self._state[key] = (now, 0)
        if held:
            message += " (%d more like it in the last %.0f s)"
            args = (*args, held, now - last)
        self._logger.log(level, message, *args)
        return True

    def outage(self, where: str, outage: Outage) -> bool:
        """The one line for ``outage`` met by ``where`` (a route kind, a loop's name)."""
        return self.log(
            logging.WARNING,
            (where, outage.kind),
            "database unavailable (%s): %s: %s",
            where,
            outage.kind,
            outage.reason,
        )

    def recovered(self, where: str, failures: int) -> None:
        """Say the database answers again; the next outage is logged at once."""
        with self._lock:
            self._state.clear()
        self._logger.info("database answers again (%s) after %d failed round(s)", where, failures)


class Backoff:
    """A background loop's wait after failed rounds: ``base`` doubling to ``cap``, with
    jitter so several processes do not knock on a recovering database in step."""

    def __init__(self, base: float, cap: float, *, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = max(cap, base)
        self.failures = 0
        self._rng = rng or random.Random()

    def failed(self) -> float:
        """Count one failed round; the seconds to wait before the next."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2.0 ** (self.failures - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def succeeded(self) -> int:
        """Reset; returns how many rounds had failed in a row."""
        failures, self.failures = self.failures, 0
        return failures
