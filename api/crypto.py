"""Encryption at rest for the few things we must store but must not keep readable.

One Fernet key per purpose, each derived (HKDF-SHA256) from a secret of the service's *keyring*:
``SWITCHBOARD_SECRET_KEY`` (the newest) and ``SWITCHBOARD_PREVIOUS_SECRET_KEYS`` (older ones,
newest first). So a database dump alone reveals neither webhook signing secrets, calendar
credentials nor the API keys and secrets held in stored idempotent responses.

:func:`fernet` answers a :class:`~cryptography.fernet.MultiFernet`: it encrypts with the newest
key only and decrypts with any key of the ring, so the key is rotated without downtime:

1. deploy with a new ``SWITCHBOARD_SECRET_KEY`` and the old one first in
   ``SWITCHBOARD_PREVIOUS_SECRET_KEYS`` (everything stored still opens; new writes use the new);
2. run ``switchboard rotate-secrets`` (:mod:`api.rotation`): every stored token is re-encrypted
   under the newest key;
3. drop the old key from ``SWITCHBOARD_PREVIOUS_SECRET_KEYS``.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from api.settings import Settings

__all__ = ["InvalidToken", "MultiFernet", "fernet", "newest_fernet"]


@lru_cache(maxsize=64)
def _derive(master: str, purpose: str) -> Fernet:
    info = b"switchboard/" + purpose.encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def fernet(settings: Settings, purpose: str) -> MultiFernet:
    """The keyring for ``purpose`` (e.g. ``"webhook-secrets/v1"``): encrypts under the newest
    key, decrypts under any key of ``settings.keyring`` (newest first)."""
    return MultiFernet([_derive(secret, purpose) for secret in settings.keyring])


def newest_fernet(settings: Settings, purpose: str) -> Fernet:
    """The newest key alone for ``purpose``: what opens a token that needs no rotation."""
    return _derive(settings.keyring[0], purpose)
