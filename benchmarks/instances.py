"""Seeded benchmark instances with named sizes: S, M, L and the demo organisation.

The generator itself lives in :mod:`scenarios.generate` (the service's demo and the planner's
simulator use it too, and ``api``/``scenarios`` must not import ``benchmarks``); this module is
the benchmarks' front door to it.

    >>> problem = generate("M", seed=1, tight=True)   # 200 agents, 2,000 tickets, 100 skills
"""

from __future__ import annotations

from scenarios.generate import (
    DEFAULT_NOW,
    SIZES,
    InstanceSpec,
    generate,
    generate_problem,
    spec_for,
)

__all__ = ["DEFAULT_NOW", "SIZES", "InstanceSpec", "generate", "generate_problem", "spec_for"]
