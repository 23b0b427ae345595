"""How deeply a JSON document nests, found before anything parses it.

Python's ``json`` recurses once per ``[`` or ``{``: a body of 100,000 brackets raised
``RecursionError`` inside the parser, a 500. No request of ours nests deeper than a few levels
(a solve problem: request, agents, an agent, its shifts, a shift), so a document nested deeper
than :data:`MAX_DEPTH` is refused as bad input before it is parsed — by the gate for JSON
bodies (``api/http/gate.py``) and by the import parser for uploaded JSON files
(``api/common/bulk.py``).

The check runs at C speed: counting brackets (``bytes.count``) settles small bodies at once;
a body with more brackets than the limit has its escapes dropped (``bytes.replace``) and its
running depth, outside strings, summed with numpy, a fraction of what ``json.loads`` then
takes (figures: benchmarks/README.md, Figures behind design choices).
"""

from __future__ import annotations

import numpy as np

from api.errors import InvalidInput

MAX_DEPTH = 32

_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1
_QUOTE = ord('"')
_BLOCK = 1 << 20  # bytes per numpy pass: bounds the scratch arrays to a few MiB


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether ``body`` (JSON, not necessarily valid) nests arrays/objects deeper than
    ``limit``."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # Brackets inside strings are text, not nesting. Drop the escapes that could hide a quote
    # first: backslash pairs from the left (as a JSON reader pairs them), then escaped quotes;
    # every quote left opens or closes a string.
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    depth = 0
    inside = 0  # 1 while a string is open across a block boundary
    for start in range(0, len(text), _BLOCK):
        block = np.frombuffer(
            text, dtype=np.uint8, count=min(_BLOCK, len(text) - start), offset=start
        )
        # The quote count's parity says "inside a string"; uint8 wraps at 256, parity survives.
        parity = (np.cumsum(block == _QUOTE, dtype=np.uint8) + inside) & 1
        steps = _STEP[block]
        steps = steps[(steps != 0) & (parity == 0)]
        if steps.size:
            running = np.cumsum(steps, dtype=np.int32) + depth
            if int(running.max()) > limit:
                return True
            depth = int(running[-1])
        inside = int(parity[-1])
    return False


def check(body: bytes) -> None:
    """Refuse ``body`` as a 422 naming ``body`` when it nests deeper than :data:`MAX_DEPTH`."""
    if nested_deeper_than(body, MAX_DEPTH):
        raise InvalidInput.one("body", f"nested deeper than {MAX_DEPTH} levels")
