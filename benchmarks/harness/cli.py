"""What the benchmark command lines share: argparse types."""

from __future__ import annotations

import argparse


def ints(text: str) -> list[int]:
    """An argparse type: comma-separated integers."""
    return [int(x) for x in text.split(",") if x.strip()]


def backend_list(text: str) -> list[str]:
    """An argparse type: comma-separated backends, each sqlite or postgresql."""
    backends = [b.strip() for b in text.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            raise argparse.ArgumentTypeError(f"unknown backend {b!r}: sqlite or postgresql")
    return backends
