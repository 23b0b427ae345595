"""``switchboard staffing erlang`` through ``api.cli.main``: the worked example, Erlang A, the
range table, and bad arguments as argparse usage errors (exit 2) naming the option."""

from __future__ import annotations

import pytest

from api.cli import main


def test_worked_example(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["staffing", "erlang", "--calls", "100", "--interval", "30m", "--aht", "180"]
    code = main([*argv, "--target", "80/20", "--shrinkage", "0.3"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Erlang C" in out and "10.00 Erlangs" in out
    row = next(line for line in out.splitlines() if "88.8 %" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == ["14", "20", "88.8 %", "7.8 s", "71.4 %"]


def test_erlang_a_with_range(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["staffing", "erlang", "--calls", "100", "--aht", "3m", "--target", "80%/20s"]
    options = ["--shrinkage", "30%", "--max-occupancy", "0.85", "--patience", "60", "--range"]
    code = main([*argv, *options])
    out = capsys.readouterr().out
    assert code == 0
    assert "Erlang A (mean patience 60 s)" in out and "abandoned" in out
    assert "Service level around 12 agents" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    agents = [r.strip("│ ").split("│")[0].strip() for r in rows[1:]]
    assert agents == ["9", "10", "11", "12 ←", "13", "14", "15"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "100/20"], "argument --target"),
        (["--target", "eighty"], "argument --target"),
        (["--interval", "0m"], "argument --interval"),
        (["--shrinkage", "1"], "argument --shrinkage"),
        (["--max-occupancy", "0"], "argument --max-occupancy"),
        (["--patience", "-5"], "argument --patience"),
        (["--calls", "-1"], "argument --calls"),
    ],
)
def test_bad_arguments_exit_2(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["staffing", "erlang", "--calls", "100", "--aht", "180", *extra])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
