"""``python -m benchmarks.dense_flow`` at a tiny size, so the runner cannot rot."""

from __future__ import annotations

import pytest

from benchmarks import dense_flow


def test_dense_flow_runs_the_core_and_the_optimizer(capsys: pytest.CaptureFixture[str]) -> None:
    code = dense_flow.main(
        [
            "--agents", "40", "--tickets", "200", "--skills", "12", "--topics", "3",
            "--cores", "500", "--optimize", "0.5",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "(equal)" in out  # the priced core's optimum is plain OR-Tools'
    assert "optimizer, limit 0.5 s: unassigned" in out and "violations 0" in out
    assert "least-loaded: unassigned" in out
