"""JSON Merge Patch (RFC 7396): apply a patch document to a JSON value.

The whole algorithm is RFC 7396 section 2's ``MergePatch`` function: an object patch changes
the members it names (``null`` removes one), recursively; any other patch replaces the target.
Small enough that a dependency would cost more than it saves (the one on PyPI implements the
obsoleted RFC 7386 and is barely maintained).
"""

from __future__ import annotations

from typing import Any

MEDIA_TYPE = "application/merge-patch+json"


def apply(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` merged in; neither argument is modified."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = apply(merged.get(name), value)
    return merged
