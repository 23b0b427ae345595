"""Errors raised by the solver package.

    SolverError
     ├── ProblemError      bad input: names the offending field and the reason
     └── ModelError        a model we built is broken (a bug, never bad input)

Solver *status* (infeasible, time limit) is data on the plan, not an exception.
"""

from __future__ import annotations


class SolverError(Exception):
    """Base class of every error the solver raises."""


class ProblemError(SolverError, ValueError):
    """Input that cannot be solved as given.

    ``field`` is a dotted/indexed path to the offending value (``tickets[3].resolution_due``),
    ``reason`` a sentence a person can act on.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def at(self, prefix: str) -> ProblemError:
        """The same error, located under ``prefix`` (``agents[2]`` + ``shifts[0].end``)."""
        joined = f"{prefix}.{self.field}" if not self.field.startswith("[") else prefix + self.field
        return ProblemError(joined, self.reason)


class ModelError(SolverError, RuntimeError):
    """An optimization model was built wrongly; this is a bug in the solver."""
