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


def moved_rows(text: str) -> list[str]:
    """The rows of the demo's table of owned tickets moved (one line each at this width)."""
    return [
        line
        for line in text.splitlines()
        if line.startswith("│ T")
        and ("moved from its current owner" in line or "taken back from" in line)
    ]


@pytest.mark.parametrize(("seed", "budget"), [(2, 0), (3, 1)])
def test_a_move_budget_is_held_and_every_move_still_explained(seed: int, budget: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=400, color_system=None)
    code = run_demo(
        seed=seed, agents=20, tickets=80, time_limit=1.0, max_moves=budget, console=console
    )
    text = out.getvalue()
    assert code == 0
    rows = moved_rows(text)
    forced = [r for r in rows if "cannot hold it" in r]
    saving = [r for r in rows if ": saves " in r]
    assert len(forced) + len(saving) == len(rows)  # each move says why
    assert len(saving) <= budget
    if rows:
        assert f"a budget of {budget} move(s)" in text
        [note] = [line for line in text.splitlines() if line.startswith("churn guard:")]
        assert f"{len(saving)} owned ticket(s) moved" in note
        assert f"{len(forced)} moved because their owner cannot hold them" in note
        assert f"budget {budget} move(s)" in note
    else:
        assert "kept all" in text and f"(a budget of {budget} move(s))" in text


def test_switchboard_demo_takes_a_move_budget(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["demo", "--seed", "1", "--agents", "9", "--tickets", "25", "--time-limit", "0.5"]
    assert main([*args, "--max-moves", "0"]) == 0
    assert "a budget of 0 move(s)" in capsys.readouterr().out
    for bad in ("-1", "x"):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--max-moves", bad])
        assert exc.value.code == 2
        assert "--max-moves" in capsys.readouterr().err
