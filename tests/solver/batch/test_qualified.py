"""The sparse qualification join against the ticket x agent matrix it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from solver.batch.data import qualified_pairs


def _dense(levels: np.ndarray, req_skill: np.ndarray, req_level: np.ndarray) -> np.ndarray:
    ok = np.ones((len(req_skill), len(levels)), dtype=bool)
    for k in range(req_skill.shape[1]):
        ok &= levels.T[req_skill[:, k]] >= req_level[:, k, None]
    return np.stack(np.nonzero(ok))


@pytest.mark.parametrize("seed", range(6))
def test_same_pairs_in_the_same_order_as_the_dense_matrix(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_a, n_s, n_t, k_max = int(rng.integers(1, 40)), 7, int(rng.integers(0, 200)), 3
    levels = np.zeros((n_a, n_s + 1), dtype=np.int8)  # the last column: the dummy, level 0
    levels[:, :n_s] = rng.integers(0, 6, size=(n_a, n_s)) * (rng.random((n_a, n_s)) < 0.4)
    req_skill = np.full((n_t, k_max), n_s, dtype=np.int64)
    req_level = np.zeros((n_t, k_max), dtype=np.int8)
    for t in range(n_t):
        # 0..3 requirements: a ticket with none pairs with every agent.
        skills = rng.choice(n_s, size=int(rng.integers(0, k_max + 1)), replace=False)
        req_skill[t, : len(skills)] = skills
        req_level[t, : len(skills)] = rng.integers(1, 6, size=len(skills))
    pt, pa = qualified_pairs(levels, req_skill, req_level)
    want = _dense(levels, req_skill, req_level)
    assert np.array_equal(pt, want[0]) and np.array_equal(pa, want[1])
    assert pt.dtype == pa.dtype == np.int64


def test_chunks_split_between_tickets(monkeypatch: pytest.MonkeyPatch) -> None:
    import solver.batch.data as data

    monkeypatch.setattr(data, "_CANDIDATES", 5)  # smaller than one ticket's candidates
    levels = np.zeros((12, 2), dtype=np.int8)
    levels[::2, 0] = 3
    req_skill = np.array([[0], [1], [0], [0]], dtype=np.int64)  # ticket 1: the dummy
    req_level = np.array([[2], [0], [4], [3]], dtype=np.int8)
    pt, pa = qualified_pairs(levels, req_skill, req_level)
    want = _dense(levels, req_skill, req_level)
    assert np.array_equal(pt, want[0]) and np.array_equal(pa, want[1])
    assert len(pt) == 6 + 12 + 0 + 6
