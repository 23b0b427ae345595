"""Scenario and sweep files in YAML and TOML: the examples, errors naming line and field, the
TOML line scan, and a sweep's readable, stable grid order."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scenarios.changes import AddAgents, MoveAgents, ScaleVolume, SetRouting
from scenarios.inputs import InputError, load_baseline
from scenarios.model import World
from scenarios.spec import (
    EXAMPLES,
    load_scenario,
    load_sweep,
    scenario_from_text,
    sweep_from_text,
    toml_lines,
)

TIER2 = ("t2-02", "t2-03", "t2-05")


BASELINE = load_baseline(EXAMPLES / "baseline.yaml")


@pytest.fixture
def baseline() -> World:
    return BASELINE


def test_the_example_scenarios_load_and_answer_the_issue(baseline: World) -> None:
    late = load_scenario(EXAMPLES / "late-shift.yaml")
    assert (late.name, late.seed, late.replications) == ("late-shift-tier2", 7, 5)
    assert late.baseline == baseline
    (move,) = late.changes
    assert isinstance(move, MoveAgents) and move.agents == TIER2 and move.keep_paid_hours
    world = late.world()
    assert world.name == "late-shift-tier2"
    before = {a.id: a for a in baseline.agents}
    for agent in world.agents:
        assert agent.paid_minutes_per_week == before[agent.id].paid_minutes_per_week
        if agent.id in TIER2:
            assert agent.shifts[0].start.hour == 13 and agent.shifts != before[agent.id].shifts
            assert agent.team == "tier2"

    german = load_scenario(EXAMPLES / "german-speakers.toml")
    (add,) = german.changes
    assert isinstance(add, AddAgents) and (add.count, add.like) == (2, "t2-01")
    new = german.world().agents[len(baseline.agents) :]
    assert [a.id for a in new] == ["t2-de-1", "t2-de-2"]
    assert all(a.skills["de"] == 4 and a.team == "tier2" for a in new)

    up = load_scenario(EXAMPLES / "volume-up-optimizer.yaml")
    assert up.changes == (ScaleVolume(1.3), SetRouting(policy="optimizer", dispatch_minutes=5))
    assert (up.world().demand.scale, up.world().routing.policy) == (1.3, "optimizer")


def test_the_example_sweep_is_a_named_grid_in_a_stable_order() -> None:
    sweep = load_sweep(EXAMPLES / "sweep.yaml")
    assert (sweep.name, sweep.seed, sweep.replications) == ("tier2-staffing", 1, 5)
    assert [s.name for s in sweep.scenarios] == [
        f"add_agents={n}, scale_volume={v}" for n in (0, 2, 4) for v in ("1", "1.3")
    ]
    assert sweep.baseline is not None
    assert all(s.baseline == sweep.baseline and s.seed == 1 for s in sweep.scenarios)
    sizes = [len(s.world().agents) for s in sweep.scenarios]
    assert sizes == [36, 36, 38, 38, 40, 40]
    assert [s.world().demand.scale for s in sweep.scenarios[:2]] == [1.0, 1.3]
    assert [s.name for s in load_sweep(EXAMPLES / "sweep.yaml").scenarios] == [
        s.name for s in sweep.scenarios
    ]


def test_a_sweep_on_a_scenario_keeps_its_changes_and_labels_collisions(baseline: World) -> None:
    text = textwrap.dedent("""\
        name: s
        scenario: late-shift.yaml
        replications: 2
        grid:
          add_agents: [{count: 1, like: t2-01}, {count: 1, like: t2-02}]
          routing: [optimizer, round-robin]
    """)
    sweep = sweep_from_text(text, base_dir=EXAMPLES)
    assert (sweep.seed, sweep.replications) == (7, 2)  # seed from the scenario file
    names = [s.name for s in sweep.scenarios]
    assert names[0] == 'add_agents={"count":1,"like":"t2-01"}, routing=optimizer'
    assert len(set(names)) == 4
    assert all(isinstance(s.changes[0], MoveAgents) for s in sweep.scenarios)


def scenario_error(text: str, fmt: str = "yaml") -> InputError:
    """The error of a scenario text (on the example baseline, read once for all the tests)."""
    with pytest.raises(InputError) as caught:
        scenario_from_text(textwrap.dedent(text), fmt=fmt, baseline=BASELINE, source=f"s.{fmt}")
    return caught.value


YAML = """\
name: x
baseline: baseline.yaml
seed: 3
replications: 2
changes:
  - add_agents: {count: 1, like: t2-01}
  - remove_agents: [t1-01, t1-02]
  - move_agents:
      agents: [t2-01, t2-02]
      shift: "mon-fri 13:00-21:00 break 17:00+30"
      keep_paid_hours: true
  - routing: {policy: optimizer}
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "reason"),
    [
        ("  - routing: {", "  - rerouting: {", 12, "changes[3].rerouting",
         "unknown change 'rerouting'"),
        ("t1-02]", "t1-99]", 7, "changes[1].remove_agents[1]", "unknown agent 't1-99'"),
        ("[t2-01, t2-02]", "[t2-01, t1-01]", 9, "changes[2].move_agents.agents[1]",
         "unknown agent 't1-01'"),  # removed by the change before
        ("policy: optimizer", "policy: fastest", 12, "changes[3].routing.policy", "optimizer"),
        ("{policy: optimizer}", "{policy: optimizer, max_moves: -2}", 12,
         "changes[3].routing.max_moves", "negative"),
        ("{policy: optimizer}", "{policy: optimizer, max_moves: lots}", 12,
         "changes[3].routing.max_moves", "whole number"),
        ("replications: 2", "replications: 0", 4, "replications", "[1, 1000]"),
        ("replications: 2", "replications: 1001", 4, "replications", "[1, 1000]"),
        ("seed: 3", "seed: -1", 3, "seed", "negative"),
        ("like: t2-01}", "like: nobody}", 6, "changes[0].add_agents.like", "unknown agent"),
        ("13:00-21:00", "13:00-21:00 break 22:00+30", 10, "changes[2].move_agents.shift.breaks[0]",
         "inside the shift"),
        ("keep_paid_hours: true", "keep_paid_hours: maybe", 11,
         "changes[2].move_agents.keep_paid_hours", "true or false"),
        ("seed: 3", "seed: 3\ncolor: red", 4, "color", "unknown field"),
    ],
)  # fmt: skip
def test_a_bad_yaml_scenario_names_line_and_field(
    old: str, new: str, line: int, field: str, reason: str
) -> None:
    assert old in YAML
    err = scenario_error(YAML.replace(old, new))
    assert (err.source, err.line, err.field) == ("s.yaml", line, field)
    assert reason in err.reason, err.reason


def test_a_routing_change_sets_a_move_budget_and_keeps_the_rest(baseline: World) -> None:
    text = YAML.replace("{policy: optimizer}", "{max_moves: 0}")
    scenario = scenario_from_text(text, base_dir=EXAMPLES)
    assert scenario.changes[-1] == SetRouting(max_moves=0)
    world = scenario.world()
    assert world.routing.max_moves == 0
    assert world.routing.policy == baseline.routing.policy  # not given: unchanged
    assert baseline.routing.max_moves is None


def test_the_good_yaml_scenario_loads() -> None:
    scenario = scenario_from_text(YAML, base_dir=EXAMPLES)
    world = scenario.world()
    assert [a.id for a in world.agents][-1] == "t2-01-new-1"
    assert "t1-01" not in [a.id for a in world.agents]


TOML = """\
name = "x"
baseline = "baseline.yaml"
seed = 3
replications = 2
days = 2

[[changes]]
add_agents = { count = 1, like = "t2-01", skills = { de = 2 } }

[[changes]]
scale_volume = { factor = 1.2, team = "tier2" }

[[changes]]
[changes.move_agents]
agents = ["t2-01",
          "t2-02"]
shift = { days = ["mon", "tue"], start = "13:00", end = "21:00" }
keep_paid_hours = true

[[changes]]
routing = "optimizer"
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "reason"),
    [
        ('routing = "optimizer"', 'routing = "fastest"', 21, "changes[3].routing", "optimizer"),
        ('routing = "optimizer"', 'reroute = "x"', 21, "changes[3].reroute",
         "unknown change 'reroute'"),
        ('"t2-02"]', '"t2-99"]', 16, "changes[2].move_agents.agents[1]", "unknown agent"),
        ("de = 2", "de = 7", 8, "changes[0].add_agents.skills.de", "[1, 5]"),
        ("de = 2", "xx = 2", 8, "changes[0].add_agents.skills.xx", "unknown skill"),
        ('team = "tier2"', 'team = "tier9"', 11, "changes[1].scale_volume.team", "unknown team"),
        ("factor = 1.2", "factor = -1.2", 11, "changes[1].scale_volume.factor", "negative"),
        ("replications = 2", "replications = 5000", 4, "replications", "[1, 1000]"),
        ("seed = 3", "seed = -3", 3, "seed", "negative"),
        ('end = "21:00"', 'end = "21:60"', 17, "changes[2].move_agents.shift.end", "HH:MM"),
        ('["mon", "tue"]', '["mon", "tuesday", "moon"]', 17,
         "changes[2].move_agents.shift.days[2]", "unknown weekday"),
        ("days = 2", "days = 0", 5, "days", "[1, 366]"),
        ("keep_paid_hours = true", "keep_paid_hours = true\nspeed = 1", 19,
         "changes[2].move_agents.speed", "unknown field"),
    ],
)  # fmt: skip
def test_a_bad_toml_scenario_names_line_and_field(
    old: str, new: str, line: int, field: str, reason: str
) -> None:
    assert old in TOML
    err = scenario_error(TOML.replace(old, new), fmt="toml")
    assert (err.source, err.line, err.field) == ("s.toml", line, field)
    assert reason in err.reason, err.reason


def test_the_good_toml_scenario_loads() -> None:
    scenario = scenario_from_text(TOML, fmt="toml", base_dir=EXAMPLES)
    assert scenario.baseline.days == 2
    world = scenario.world()
    assert world.routing.policy == "optimizer"
    assert world.demand.history_factor("tier2", "email") == 1.2


def test_a_toml_syntax_error_names_its_line() -> None:
    err = scenario_error(TOML.replace("seed = 3", "seed = = 3"), fmt="toml")
    assert (err.line, err.field) == (3, "<toml>")


def test_toml_lines_follow_tables_arrays_and_inline_values() -> None:
    lines = toml_lines(
        textwrap.dedent('''\
        a = 1  # comment with = and [brackets]
        "quoted.key" = """multi
        line ] } """
        b.c = { d = [1, { e = 'x]' }], f = 2 }
        [t]
        g = [
          "one",
          "two",
        ]
        [[arr]]
        h = 1
        [[arr]]
        [arr.sub]
        i = 2
        ''')
    )
    assert lines[("a",)] == 1 and lines[("quoted.key",)] == 2
    assert lines[("b", "c", "d", "1", "e")] == 4 and lines[("b", "c", "f")] == 4
    assert lines[("t", "g", "1")] == 8
    assert lines[("arr", "0", "h")] == 11 and lines[("arr", "1")] == 12
    assert lines[("arr", "1", "sub", "i")] == 14


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "reason"),
    [
        ("scale_volume: [1.0, 1.3]", "scale_volume: [1.0, 1.0]", 7, "grid.scale_volume[1]",
         "same value"),
        ("scale_volume: [1.0, 1.3]", "scale_volume: [1.0, -1.3]", 7, "grid.scale_volume[1]",
         "negative"),
        ("scale_volume: [1.0, 1.3]", "scale_volumes: [1.0, 1.3]", 7, "grid.scale_volumes",
         "unknown change"),
        ("like: t2-02}]", "like: t2-99}]", 6, "grid.add_agents[0].like", "unknown agent"),
        ("replications: 5", "replications: 0", 4, "replications", "[1, 1000]"),
    ],
)  # fmt: skip
def test_a_bad_sweep_names_line_and_field(
    old: str, new: str, line: int, field: str, reason: str
) -> None:
    text = (EXAMPLES / "sweep.yaml").read_text().split("\n")
    body = "\n".join(row for row in text if not row.startswith("#"))
    body = body.replace("{count: 0, like: t2-02}, ", "").replace("{count: 4, like: t2-02}", "")
    body = body.replace("{count: 2, like: t2-02}, ]", "{count: 2, like: t2-02}]")
    assert old in body, body
    with pytest.raises(InputError) as caught:
        sweep_from_text(body.replace(old, new), baseline=BASELINE, source="sw.yaml")
    err = caught.value
    assert (err.source, err.line, err.field) == ("sw.yaml", line, field)
    assert reason in err.reason, err.reason


def test_a_missing_baseline_file_names_its_line() -> None:
    with pytest.raises(InputError) as caught:
        scenario_from_text(
            YAML.replace("baseline.yaml", "nowhere.yaml"), base_dir=EXAMPLES, source="s.yaml"
        )
    err = caught.value
    assert (err.line, err.field) == (2, "baseline") and "no such file" in err.reason


def test_a_given_baseline_replaces_the_file_reference(baseline: World) -> None:
    scenario = scenario_from_text(
        "name: inline\nchanges:\n  - scale_volume: 2\n", baseline=baseline
    )
    assert scenario.world().demand.scale == 2.0
    with pytest.raises(InputError) as caught:
        scenario_from_text("name: inline\n")
    assert caught.value.field == "baseline" and "required" in caught.value.reason


def test_examples_ship_in_the_package() -> None:
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"scenarios" = ["examples/*.yaml", "examples/*.toml", "examples/*.csv"]' in text
    names = {p.name for p in EXAMPLES.iterdir()}
    assert {"baseline.yaml", "agents.csv", "volume.csv", "tickets.csv", "late-shift.yaml",
            "german-speakers.toml", "volume-up-optimizer.yaml", "sweep.yaml"} <= names  # fmt: skip


def test_a_toml_sweep_with_its_own_changes_and_hour_keys() -> None:
    text = textwrap.dedent("""\
        name = "evening"
        seed = 4
        replications = 3

        [[changes]]
        routing = { policy = "realtime" }

        [grid]
        reshape_volume = [{ hours = { 19 = 1.5, 20 = 2 } }, { hours = { "19" = 1 } }]
        routing = ["production", "optimizer"]
    """)
    sweep = sweep_from_text(text, fmt="toml", baseline=BASELINE)
    assert [s.name for s in sweep.scenarios] == [
        "reshape_volume=19:1.5,20:2, routing=production",
        "reshape_volume=19:1.5,20:2, routing=optimizer",
        "reshape_volume=19:1, routing=production",
        "reshape_volume=19:1, routing=optimizer",
    ]
    first = sweep.scenarios[0].world()
    assert dict(first.demand.shape) == {19: 1.5, 20: 2.0} and first.routing.policy == "production"
    assert sweep.scenarios[3].world().routing.policy == "optimizer"
    with pytest.raises(InputError) as caught:
        sweep_from_text(text.replace("20 = 2", "24 = 2"), fmt="toml", baseline=BASELINE)
    assert (caught.value.line, caught.value.field) == (9, "grid.reshape_volume[0].hours.24")


def test_unreadable_text_is_an_input_error_not_a_crash() -> None:
    """A control character (the YAML reader refuses it while it is built) and nesting deep
    enough to exhaust tomllib's recursion are input errors naming the document."""
    from scenarios.inputs import InputError
    from scenarios.spec import scenario_from_text

    with pytest.raises(InputError, match="<yaml>"):
        scenario_from_text("name: x\x07\n", fmt="yaml")
    with pytest.raises(InputError, match="nested too deeply"):
        scenario_from_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n", fmt="toml")
