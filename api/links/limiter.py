"""Failed link lookups, counted per client address: too many and the address gets a 429.

A customer's page looks its link up by the URL's token. Someone guessing tokens fails lookups;
after ``link_lookup_failures`` failures (``"20/minute"``) within the moving window, every lookup
from that address is refused with a 429 and ``Retry-After`` until the window has room again,
found or not, so guessing gets no further answers. A found link costs nothing.

The counting is the ``limits`` library's moving window (a maintained limiter: a window of
failures is what this needs, with a test that does not count). Counts live in Redis when
``SWITCHBOARD_REDIS_URL`` is set, so every process and replica shares them, and in process
memory otherwise. A Redis that does not answer lets lookups through (with one warning per
outage): a link's token is 256 bits, the limit only slows a guesser, and customers must not be
locked out by a cache outage.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.settings import Settings

log = logging.getLogger(__name__)

RETRY_REDIS_SECONDS = 5.0


class LookupLimiter:
    def __init__(self, limit: str, storage: Storage | None = None, prefix: str = "") -> None:
        self.item: RateLimitItem = parse(limit)
        self.storage = storage or MemoryStorage()
        self.prefix = prefix
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._down_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LookupLimiter:
        if settings.redis_url is None:
            return cls(settings.link_lookup_failures)
        url = settings.redis_url.get_secret_value()
        storage = storage_from_string(
            url, key_prefix=settings.link_lookup_redis_prefix.rstrip(":"), socket_timeout=0.25
        )
        assert isinstance(storage, Storage)  # a sync URL gives a sync storage
        return cls(settings.link_lookup_failures, storage)

    def _key(self, address: str) -> str:
        return f"{self.prefix}fail:{address}"

    def _guard(self, step: Any, default: Any) -> Any:
        if self._down_until and time.monotonic() < self._down_until:
            return default
        try:
            out = step()
        except Exception as exc:  # the storage's client errors: redis, sockets
            if not self._down_until:
                log.warning(
                    "link lookup limits: storage did not answer (%s); not limiting lookups, "
                    "asking again every %.0f s",
                    type(exc).__name__,
                    RETRY_REDIS_SECONDS,
                )
            self._down_until = time.monotonic() + RETRY_REDIS_SECONDS
            return default
        self._down_until = 0.0
        return out

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may look up again, or None when it may now (counts
        nothing)."""
        key = self._key(address)
        if self._guard(lambda: self.strategy.test(self.item, key), True):
            return None
        stats = self._guard(lambda: self.strategy.get_window_stats(self.item, key), None)
        if stats is None:
            return 1
        reset: float = stats.reset_time
        return max(1, math.ceil(reset - time.time()))

    def failed(self, address: str) -> None:
        """Count one failed lookup from ``address``."""
        key = self._key(address)
        self._guard(lambda: self.strategy.hit(self.item, key), True)

    def reset(self) -> None:
        self._guard(lambda: self.storage.reset(), None)
