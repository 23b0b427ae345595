"""The link's token is the customer's key, and it is in every ``/c`` URL: access logs must not
keep it. :class:`RedactTokens` rewrites the path uvicorn's access log line carries
(``uvicorn.access``: ``client, method, path, http version, status``), ``/c/<token>/...`` becoming
``/c/<redacted>/...``; static files keep their paths."""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_TOKEN = re.compile(r"^(/c/)(?!static/)[^/?#]+")
REDACTED = "<redacted>"


def redact(path: str) -> str:
    return _TOKEN.sub(r"\g<1>" + REDACTED, path)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def install() -> None:
    """Add the filter to uvicorn's access logger, once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
