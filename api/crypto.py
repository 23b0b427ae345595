"""Encryption at rest for the few things we must store but must not keep readable.

One Fernet key per purpose, each derived (HKDF-SHA256) from ``SWITCHBOARD_SECRET_KEY``, so a
database dump alone reveals neither webhook signing secrets nor the API keys and secrets held in
stored idempotent responses.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from api.settings import Settings

__all__ = ["InvalidToken", "fernet"]


def fernet(settings: Settings, purpose: str) -> Fernet:
    """The Fernet for ``purpose`` (e.g. ``"webhook-secrets/v1"``) under the service's key."""
    master = settings.secret_key.get_secret_value().encode()
    info = b"switchboard/" + purpose.encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)
    return Fernet(base64.urlsafe_b64encode(key))
