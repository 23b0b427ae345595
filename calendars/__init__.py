"""Calendar connectors: provider calendars in, busy intervals out (:mod:`calendars.base`).

``connect(provider, settings, credentials)`` builds the connector of one connection: its
``settings`` are what may be shown (calendar endpoints, the mailbox, the user to impersonate),
its ``credentials`` what must stay secret (a refresh token, a service account key, a client
secret, a secret iCal URL). ``problems(provider, settings, credentials)`` says what is wrong
with them, field by field, before anything is stored. Each provider's module is imported only
when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from calendars.base import Connector, Retry

PROVIDERS = ("google", "microsoft", "ics")

_MODULES = {
    "google": "calendars.google",
    "microsoft": "calendars.microsoft",
    "ics": "calendars.ics",
}


def _module(provider: str) -> Any:
    if provider not in _MODULES:
        raise ValueError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
    return importlib.import_module(_MODULES[provider])


def problems(
    provider: str, settings: Mapping[str, Any], credentials: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """``(field, reason)`` for each thing wrong with a connection's settings or credentials
    (field names as ``settings.<name>`` / ``credentials.<name>``); empty when it is usable."""
    found: list[tuple[str, str]] = _module(provider).problems(settings, credentials)
    return found


def connect(
    provider: str,
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    *,
    timeout: float = 10.0,
    retry: Retry | None = None,
) -> Connector:
    """The connector for one connection."""
    connector: Connector = _module(provider).from_config(
        settings, credentials, timeout=timeout, retry=retry or Retry()
    )
    return connector
