"""What an ``Idempotency-Key`` header may hold: exactly what the OpenAPI document promises.

The document (``api.main.IDEMPOTENCY_PARAMETER``) says: printable ASCII, 1 to 255 characters,
inner spaces allowed but no leading or trailing one (the pattern ``^[!-~]([ -~]*[!-~])?$``).
Decoding the header as Latin-1 and asking ``str.isprintable`` let ``é`` and other non-ASCII
bytes through; a key the document refuses must be refused by the server too, so a client and
a generator that follow the document never disagree with it.

    key = valid_idempotency_key(raw_header_bytes)
    if key is None:
        ...  # 422 naming header.idempotency-key
"""

from __future__ import annotations

import re

MAX_LENGTH = 255
# Visible ASCII (0x21-0x7E) at both ends, any printable ASCII (0x20-0x7E) between.
PATTERN = "^[!-~]([ -~]*[!-~])?$"
_KEY = re.compile(rb"[!-~](?:[ -~]*[!-~])?")


def valid_idempotency_key(raw: bytes) -> str | None:
    """The key as text when ``raw`` (the header's bytes, as received) matches the documented
    pattern and length; None otherwise (empty, too long, non-ASCII, control characters, or a
    leading or trailing space)."""
    if not 1 <= len(raw) <= MAX_LENGTH or _KEY.fullmatch(raw) is None:
        return None
    return raw.decode("ascii")
