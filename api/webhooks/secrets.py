"""Webhook signing secrets: generated in the Standard Webhooks form, encrypted at rest.

A secret is ``whsec_`` + base64 of 32 random bytes (what the ``standardwebhooks`` libraries
accept). It is shown once, when the subscription is created, and stored encrypted with Fernet
under a key derived (HKDF-SHA256) from ``SWITCHBOARD_SECRET_KEY``: a database dump alone does not
let anyone forge our signatures. A key rotated out stays in ``SWITCHBOARD_PREVIOUS_SECRET_KEYS``
until ``switchboard rotate-secrets`` re-encrypted the secrets (:mod:`api.crypto`); a secret no
key of the ring opens makes the deliverer record the delivery as failing instead of sending
unsigned.
"""

from __future__ import annotations

import base64
import secrets as _random

from api.crypto import InvalidToken, MultiFernet, fernet
from api.settings import Settings

SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32
# The keyring purpose of stored signing secrets (also what api.rotation re-encrypts).
PURPOSE = "webhook-secrets/v1"


class SecretUnreadable(Exception):
    """The stored secret cannot be decrypted (the service's secret key changed)."""


def generate() -> str:
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(_SECRET_BYTES)).decode()


def _fernet(settings: Settings) -> MultiFernet:
    return fernet(settings, PURPOSE)


def encrypt(settings: Settings, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored webhook secret cannot be decrypted") from None
