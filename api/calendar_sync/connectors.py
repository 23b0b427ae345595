"""A stored connection's connector: the one place its credentials are decrypted.

Credentials are stored as JSON encrypted with the service's keyring (purpose
:data:`PURPOSE`, :func:`api.crypto.fernet`). Which connector a provider gets is
:func:`calendars.connect`, unless a test put another factory in place (:func:`use_factory`):
the service's tests drive the sync with an in-memory calendar, the end-to-end tests with the
real connectors against fake provider servers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import calendars
from api.crypto import InvalidToken, fernet
from api.db.models import CalendarConnection
from api.settings import Settings
from calendars.base import Connector, CredentialError, Retry

PURPOSE = "calendar-credentials/v1"

Factory = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Connector]
_factory: list[Factory] = []


def encrypt_credentials(settings: Settings, credentials: Mapping[str, Any]) -> str:
    """``credentials`` as stored: JSON, encrypted."""
    data = json.dumps(dict(credentials), sort_keys=True).encode()
    return fernet(settings, PURPOSE).encrypt(data).decode()


def decrypt_credentials(settings: Settings, stored: str) -> dict[str, Any]:
    """The stored credentials in clear. A token no key of the keyring opens is a dead
    credential (the key was dropped before a rotation re-encrypted it): :class:`CredentialError`."""
    try:
        value = json.loads(fernet(settings, PURPOSE).decrypt(stored.encode()))
    except InvalidToken:
        raise CredentialError("the stored credentials cannot be decrypted with any key") from None
    if not isinstance(value, dict):
        raise CredentialError("the stored credentials are not an object")
    return value


def connector_for(
    row: CalendarConnection, settings: Settings, *, retry: Retry | None = None
) -> Connector:
    """The connector of ``row``, its credentials decrypted."""
    credentials = decrypt_credentials(settings, row.credentials)
    if _factory:
        return _factory[-1](row.provider, row.settings, credentials)
    return calendars.connect(
        row.provider,
        row.settings,
        credentials,
        timeout=settings.calendar_timeout_seconds,
        retry=retry,
    )


@contextmanager
def use_factory(factory: Factory) -> Iterator[None]:
    """Within the block, connections get their connector from ``factory`` (tests)."""
    _factory.append(factory)
    try:
        yield
    finally:
        _factory.remove(factory)
