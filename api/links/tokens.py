"""A link's secrets: the URL token (shown once, stored only as its SHA-256) and the
anti-forgery token its pages embed in every form.

The URL token is 256 bits from :mod:`secrets`, URL-safe base64 (43 characters). Its hash is
the lookup key (a unique index), compared again in constant time after the lookup, so the
comparison leaks nothing even where an index lookup's timing might. The form token is an
HMAC of the link's id under the link's own random ``form_key``: a page served for the link
carries it, a cross-site form cannot know it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bits: the issue asks for at least 128
_MAX_TOKEN_LENGTH = 100  # longer is never one of ours: refused before hashing


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_form_key() -> str:
    return secrets.token_hex(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def plausible(token: str) -> bool:
    """Whether ``token`` could be one of ours at all (length and alphabet)."""
    return 0 < len(token) <= _MAX_TOKEN_LENGTH and all(
        c.isascii() and (c.isalnum() or c in "-_") for c in token
    )


def same_hash(stored: str, token: str) -> bool:
    return hmac.compare_digest(stored, token_hash(token))


def form_token(form_key: str, link_id: str) -> str:
    return hmac.new(form_key.encode(), f"form:{link_id}".encode(), hashlib.sha256).hexdigest()


def check_form_token(form_key: str, link_id: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(form_token(form_key, link_id), given)
