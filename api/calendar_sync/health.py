"""Which agents fail closed and why: :mod:`api.calendar_trust`, under the calendar sync's name.

The rules live in :mod:`api.calendar_trust` so the booking engine can read them without
importing the calendar sync (which itself calls into the bookings).
"""

from api.calendar_trust import (
    DEFAULT_MAX_STALENESS,
    ConnectionHealth,
    Trust,
    block_reason,
    blocked_agents,
    trust,
)

__all__ = [
    "DEFAULT_MAX_STALENESS",
    "ConnectionHealth",
    "Trust",
    "block_reason",
    "blocked_agents",
    "trust",
]
