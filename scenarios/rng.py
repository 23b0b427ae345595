"""Random streams: one seed, independent replications, common random numbers across scenarios.

Every source of randomness in a run draws from its own named stream, derived from the run's seed
and replication with :class:`numpy.random.SeedSequence` (``spawn_key`` = (replication, stream)):

- replications are statistically independent (distinct spawn keys), and replication ``r`` of a
  seed is the same whatever the number of replications run, or the process that runs it;
- two scenarios run with the same seed and replication get the same arrivals, efforts,
  patience and absences *draw for draw*, because each purpose has its own stream: adding an
  agent consumes absence draws, never arrival draws. Their KPI deltas are therefore paired
  (common random numbers), and the deltas' intervals are much narrower than the KPIs'.

Per-agent and per-ticket draws are keyed by position in a stream consumed in a fixed order
(tickets by arrival, agents by id), never by iteration over a set or dict of strings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STREAMS = ("arrivals", "efforts", "patience", "absences", "calls", "routing")


@dataclass(frozen=True, slots=True)
class Streams:
    seed: int
    replication: int
    arrivals: np.random.Generator
    efforts: np.random.Generator
    patience: np.random.Generator
    absences: np.random.Generator
    calls: np.random.Generator
    routing: np.random.Generator


def streams(seed: int, replication: int) -> Streams:
    """The named generators of replication ``replication`` of ``seed``."""
    if seed < 0 or replication < 0:
        raise ValueError("seed and replication must be >= 0")
    gens = {
        name: np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(replication, k)))
        for k, name in enumerate(STREAMS)
    }
    return Streams(seed=seed, replication=replication, **gens)


def keyed(seed: int, replication: int, *key: int) -> np.random.Generator:
    """A generator for one entity (e.g. agent number ``k`` of the absences stream), so that a
    change elsewhere in the world does not shift its draws."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(replication, *key)))
