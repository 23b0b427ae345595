"""``switchboard demo`` end to end on a tiny organisation: it runs, compares, and explains."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from api.cli import main
from api.demo import run_demo


def test_run_demo_prints_every_policy_and_example_reasons() -> None:
    out = io.StringIO()
    console = Console(file=out, width=140, color_system=None)
    code = run_demo(seed=3, agents=14, tickets=50, time_limit=1.0, console=console)
    text = out.getvalue()
    assert code == 0
    for policy in ("round-robin", "least-loaded", "first-qualified", "optimizer"):
        assert policy in text
    for column in ("SLA breaches", "weighted lateness", "unassigned", "churn", "load spread"):
        assert column in text
    assert "14 agents" in text and "50 open tickets" in text
    assert "skills:" in text and "sla:" in text  # the optimizer's reasons are shown
    # Every owned ticket the optimizer moved is listed with from, to and why.
    assert "Owned tickets the optimizer moved" in text or "kept all" in text


def test_switchboard_demo_command_dispatches(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--seed", "1", "--agents", "9", "--tickets", "25", "--time-limit", "0.5"])
    assert code == 0
    assert "Same queue" in capsys.readouterr().out
