"""Reading a planner's baseline: the examples, the CSV tables, every error with file, line and
field, and world_to_dict as the exact inverse of baseline_from_dict."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.inputs import (
    EXPORT_MARKER,
    CellAt,
    InputError,
    PlannerLoader,
    baseline_from_dict,
    dump_baseline,
    format_shifts,
    load_baseline,
    parse_shifts,
    world_to_dict,
)
from scenarios.model import (
    AgentPlan,
    Break,
    Demand,
    HistoryScale,
    Routing,
    ShiftPattern,
    SlaTarget,
    TicketSpec,
    VolumeRow,
    World,
    shift_intervals,
)
from scenarios.spec import EXAMPLES
from solver.capability import Capability
from solver.errors import ProblemError
from solver.problem import Priority, Skill, SkillKind, Team, TeamScope

BERLIN = ZoneInfo("Europe/Berlin")

BASELINE = """\
name: tiny
start: 2026-03-23T00:00:00+01:00
days: 2
timezone: Europe/Berlin
skills: [{id: networking, kind: skill}, {id: de, kind: language}, no]
teams: [{id: tier1, scope: borrow}, tier2]
agents: agents.csv
demand:
  history: tickets.csv
  volume: volume.csv
sla:
  - {priority: normal, first_response_minutes: 240, resolution_minutes: 1440}
routing: {policy: production}
capabilities:
  - {id: net-de, requirements: {networking: 2, de: 1}, call_minutes: 30}
"""
AGENTS = """\
id,team,skills,timezone,capacity,shrinkage,channel_capacity,shifts
a1,tier1,networking:2;de:1,,8,0.3,phone:1,mon-fri 09:00-17:00 break 12:30+30
a2,tier2,networking:3,Europe/Lisbon,5,0.2,,sat 10:00-14:00; sun 22:00-06:00
"""
TICKETS = """\
id,created,channel,team,skills,priority,effort_minutes,first_response_at,resolved_at,call
t1,2026-03-23T09:15:00+01:00,email,tier1,networking:2,normal,20,,,
t2,2026-03-23 10:00,phone,tier2,de:1,urgent,5,2026-03-23T10:01+01:00,,net-de
"""
VOLUME = """\
team,channel,hour,per_hour,skills,weekday,priority,effort_minutes,effort_cv,call,call_share
tier1,chat,9,4.5,de:1,mon,high,12,0.5,,
tier2,email,10,2,,,,,,net-de,0.1
"""


def write(tmp: Path, **files: str) -> Path:
    for name, content in files.items():
        (tmp / name.replace("_", ".")).write_text(content, encoding="utf-8")
    return tmp / "baseline.yaml"


def files(**override: str) -> dict[str, str]:
    out = {
        "baseline_yaml": BASELINE,
        "agents_csv": AGENTS,
        "tickets_csv": TICKETS,
        "volume_csv": VOLUME,
    }
    out.update(override)
    return out


def error(tmp: Path, **override: str) -> InputError:
    with pytest.raises(InputError) as caught:
        load_baseline(write(tmp, **files(**override)))
    return caught.value


# --- good files ----------------------------------------------------------------------------


def test_a_baseline_with_csv_tables_loads(tmp_path: Path) -> None:
    world = load_baseline(write(tmp_path, **files()))
    assert world.start == datetime(2026, 3, 22, 23, tzinfo=UTC)
    assert [s.id for s in world.skills] == ["networking", "de", "no"]  # "no" is not False
    assert world.teams[0].scope is TeamScope.BORROW and world.teams[1].scope is None
    a1, a2 = world.agents
    assert a1.timezone == "Europe/Berlin" and a2.timezone == "Europe/Lisbon"  # default: world's
    assert dict(a1.skills) == {"networking": 2, "de": 1} and dict(a1.channel_capacity) == {
        "phone": 1
    }
    assert a1.shifts == (
        ShiftPattern((0, 1, 2, 3, 4), time(9), time(17), (Break(time(12, 30), 30),)),
    )
    assert a2.shifts[1].end == time(6) and a2.shifts[1].length_minutes == 8 * 60
    _, t2 = world.demand.history
    assert t2.created_at == datetime(2026, 3, 23, 9, tzinfo=UTC)  # naive: Berlin wall time
    assert t2.priority is Priority.URGENT and t2.call == "net-de"
    assert t2.first_response_at == datetime(2026, 3, 23, 9, 1, tzinfo=UTC)
    v1, v2 = world.demand.volume
    assert (v1.weekday, v1.priority, v1.effort_cv) == (0, Priority.HIGH, 0.5)
    assert (v2.weekday, v2.priority, v2.call_share) == (None, Priority.NORMAL, 0.1)
    assert world.capabilities[0].requirements == {"networking": 2, "de": 1}


def test_the_example_baseline_loads_small_and_realistic() -> None:
    world = load_baseline(EXAMPLES / "baseline.yaml")
    assert world.timezone == "Europe/Berlin" and world.days == 7
    assert world.start.astimezone(BERLIN).weekday() == 0
    assert world.start.astimezone(BERLIN).time() == time(0)
    assert 25 <= len(world.agents) <= 40 and 3 <= len(world.teams) <= 4
    kinds = {s.kind for s in world.skills}
    assert {SkillKind.LANGUAGE, SkillKind.TIER} <= kinds
    channels = {v.channel for v in world.demand.volume} | {t.channel for t in world.demand.history}
    assert channels == {"phone", "chat", "email"}
    assert len(world.capabilities) == 1
    assert any(t.call for t in world.demand.history)
    weekly = sum(v.per_hour for v in world.demand.volume) + len(world.demand.history)
    assert 2000 <= weekly <= 4000
    assert all(world.start <= t.created_at < world.end for t in world.demand.history)


def test_yaml_reads_times_and_norwegian_as_planners_write_them() -> None:
    data = yaml.load("a: 17:00\nb: no\nc: true\nd: 1.5\ne: 1e3\nf: 09", Loader=PlannerLoader)
    assert data == {"a": "17:00", "b": "no", "c": True, "d": 1.5, "e": 1000.0, "f": "09"}


def test_shift_grammar_reads_ranges_wraps_and_breaks_and_writes_back() -> None:
    at = CellAt("agents.csv", 2, "shifts")
    patterns = parse_shifts(
        at,
        "Mon-Wed,fri 08:00-16:30 break 12:00+30, 15:00+10; fri-mon 22:00-24:00; daily 06:00-07:00",
    )
    assert patterns[0].weekdays == (0, 1, 2, 4) and len(patterns[0].breaks) == 2
    assert patterns[1].weekdays == (0, 4, 5, 6) and patterns[1].end == time(0)
    assert patterns[1].length_minutes == 120
    assert patterns[2].weekdays == tuple(range(7))
    assert parse_shifts(at, format_shifts(patterns)) == patterns
    assert parse_shifts(at, "weekdays 09:00-17:00 break 12:00+30 break 15:00+15")[0].breaks[1] == (
        Break(time(15), 15)
    )


def test_a_history_shift_across_the_spring_change_keeps_its_local_time(tmp_path: Path) -> None:
    """Berlin springs forward on Sunday 29 March 2026: 09:00-17:00 local is 08:00 UTC before
    and 07:00 UTC after."""
    world = load_baseline(write(tmp_path, **files()))
    agent = AgentPlan(
        "x", "tier1", shifts=parse_shifts(CellAt("a", 2, "shifts"), "daily 09:00-17:00"),
        timezone="Europe/Berlin",
    )  # fmt: skip
    start = datetime(2026, 3, 27, tzinfo=UTC)
    spans = list(shift_intervals(agent, start, start + timedelta(days=4)))
    assert [s.start.astimezone(BERLIN).time() for s in spans] == [time(9)] * 4
    assert [s.start.hour for s in spans] == [8, 8, 7, 7]
    assert all(s.end - s.start == timedelta(hours=8) for s in spans)
    assert world.agents[0].timezone == "Europe/Berlin"


# --- errors: YAML --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "reason"),
    [
        ("days: 2", "days: -2", 3, "days", "negative"),
        ("timezone: Europe/Berlin", "timezone: Mars/Olympus", 4, "timezone", "time zone"),
        ("start: 2026-03-23T00:00:00+01:00", "start: soon", 2, "start", "ISO 8601"),
        ("{priority: normal, first", "{priority: sometimes, first", 12, "sla[0].priority",
         "urgent"),
        ("policy: production", "policy: fastest", 13, "routing.policy", "optimizer"),
        ("{policy: production}", "{policy: production, max_moves: -1}", 13, "routing.max_moves",
         "negative"),
        ("{policy: production}", "{policy: production, max_moves: many}", 13,
         "routing.max_moves", "whole number"),
        ("{policy: production}", "{policy: production, max_moves: 1000001}", 13,
         "routing.max_moves", "[0, 1000000]"),
        ("call_minutes: 30", "call_minutes: -5", 15, "capabilities[0].call_minutes", "negative"),
        ("{networking: 2, de: 1}", "{networking: 2, dk: 1}", 15, "capabilities[0].requirements.dk",
         "unknown skill"),
        ("tier2]", "tier2, tier2]", 6, "teams[2]", "duplicate team"),
        ("days: 2", "days: 2\ncolour: blue", 4, "colour", "unknown field"),
        ("  volume: volume.csv", "  volume: missing.csv", 10, "demand.volume", "no such file"),
    ],
)  # fmt: skip
def test_a_bad_yaml_value_names_its_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, reason: str
) -> None:
    assert old in BASELINE
    err = error(tmp_path, baseline_yaml=BASELINE.replace(old, new))
    assert (err.source, err.line, err.field) == (str(tmp_path / "baseline.yaml"), line, field)
    assert reason in err.reason
    assert str(err).startswith(f"{tmp_path / 'baseline.yaml'}:{line}: {field}: ")


def test_inline_agents_errors_point_into_the_yaml(tmp_path: Path) -> None:
    inline = BASELINE.replace(
        "agents: agents.csv",
        textwrap.dedent("""\
        agents:
          - id: a1
            team: tier1
            shifts:
              - {days: [mon, tue], start: "09:00", end: 17:00}
          - id: a2
            team: tier1
            shifts:
              - {days: [mon, funday], start: "09:00", end: "17:00"}
        """),
    )
    err = error(tmp_path, baseline_yaml=inline)
    assert (err.line, err.field) == (15, "agents[1].shifts[0].days[1]")
    assert "unknown weekday 'funday'" in err.reason
    late_break = inline.replace("funday], start", "fri], start").replace(
        'end: "17:00"}', 'end: "17:00", breaks: [{start: "16:45", minutes: 30}]}'
    )
    err = error(tmp_path, baseline_yaml=late_break)
    assert (err.line, err.field) == (15, "agents[1].shifts[0].breaks[0]")
    assert "inside the shift" in err.reason
    duplicate = late_break.replace("- id: a2", "- id: a1").replace(
        ', breaks: [{start: "16:45", minutes: 30}]', ""
    )
    err = error(tmp_path, baseline_yaml=duplicate)
    assert (err.line, err.field) == (12, "agents[1].id") and "duplicate agent 'a1'" in err.reason


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    err = error(tmp_path, baseline_yaml=BASELINE.replace("days: 2", "days: [2"))
    assert err.field == "<yaml>" and err.line is not None and 3 <= err.line <= 6


# --- errors: CSV ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new", "line", "column", "reason"),
    [
        ("agents_csv", "a2,tier2", "a2,tier9", 3, "team", "unknown team 'tier9'"),
        ("agents_csv", "networking:3,", "networking:3;klingon:2,", 3, "skills", "unknown skill"),
        ("agents_csv", "networking:3,", "networking:9,", 3, "skills", "[1, 5]"),
        ("agents_csv", ",5,0.2", ",-5,0.2", 3, "capacity", "negative"),
        ("agents_csv", ",0.3,", ",1.0,", 2, "shrinkage", "[0, 1)"),
        ("agents_csv", "sat 10:00", "caturday 10:00", 3, "shifts", "unknown weekday"),
        ("agents_csv", "22:00-06:00", "22:00-26:00", 3, "shifts", "HH:MM"),
        ("agents_csv", "12:30+30", "18:30+30", 2, "shifts", "inside the shift"),
        ("agents_csv", "Europe/Lisbon", "Europe/Atlantis", 3, "timezone", "time zone"),
        ("agents_csv", "phone:1,", "phone:one,", 2, "channel_capacity", "whole number"),
        ("agents_csv", "a2,tier2", "a1,tier2", 3, "id", "duplicate agent"),
        ("tickets_csv", "09:15:00+01:00", "09:75:00+01:00", 2, "created", "ISO 8601"),
        ("tickets_csv", "urgent", "asap", 3, "priority", "low, normal, high, urgent"),
        ("tickets_csv", "normal,20", "normal,-20", 2, "effort_minutes", "negative"),
        ("tickets_csv", "normal,20", "normal,0", 2, "effort_minutes", "> 0"),
        ("tickets_csv", "normal,20", "normal,twenty", 2, "effort_minutes", "number"),
        ("tickets_csv", ",net-de\n", ",net-fr\n", 3, "call", "unknown capability"),
        ("tickets_csv", "t2,", "t1,", 3, "id", "duplicate ticket"),
        ("volume_csv", "9,4.5", "9,-4.5", 2, "per_hour", "negative"),
        ("volume_csv", ",mon,", ",someday,", 2, "weekday", "unknown weekday"),
        ("volume_csv", "tier1,chat,9", "tier1,chat,24", 2, "hour", "[0, 23]"),
        ("volume_csv", "0.5,,", "zero,,", 2, "effort_cv", "number"),
        ("volume_csv", "net-de,0.1", "net-de,1.5", 3, "call_share", "at most 1"),
        ("volume_csv", "\ntier2", "\n\n\ntier2,mail", 5, "<csv>", "fields"),
    ],
)  # fmt: skip
def test_a_bad_csv_cell_names_file_line_and_column(
    tmp_path: Path, name: str, old: str, new: str, line: int, column: str, reason: str
) -> None:
    content = files()[name]
    assert old in content
    err = error(tmp_path, **{name: content.replace(old, new, 1)})
    assert (Path(err.source).name, err.line, err.field) == (name.replace("_", "."), line, column)
    assert reason in err.reason, err.reason


def test_csv_headers_are_checked(tmp_path: Path) -> None:
    err = error(tmp_path, agents_csv=AGENTS.replace("shrinkage", "shrink"))
    assert (err.line, err.field) == (1, "shrink") and "unknown column" in err.reason
    err = error(tmp_path, tickets_csv=TICKETS.replace("effort_minutes,", ""))
    assert (err.line, err.field) == (1, "effort_minutes") and "missing" in err.reason


def test_decimal_effort_minutes_round_to_whole_minutes(tmp_path: Path) -> None:
    tickets = TICKETS.replace("normal,20,", "normal,12.5,").replace("urgent,5,", "urgent,0.2,")
    world = load_baseline(write(tmp_path, **files(tickets_csv=tickets)))
    assert [t.effort_minutes for t in world.demand.history] == [12, 1]


def test_spreadsheet_exports_read_windows_line_ends_and_a_bom_and_name_semicolons(
    tmp_path: Path,
) -> None:
    excel = "\ufeff" + AGENTS.replace("\n", "\r\n")
    world = load_baseline(write(tmp_path, **files(agents_csv=excel)))
    assert [a.id for a in world.agents] == ["a1", "a2"]
    err = error(tmp_path, agents_csv=excel.replace("a2,tier2", "a2,tier7"))
    assert (err.line, err.field) == (3, "team")
    german = AGENTS.replace(",", ";").replace("networking:2;de:1", '"networking:2;de:1"')
    err = error(tmp_path, agents_csv=german)
    assert (err.line, err.field) == (1, "<csv>") and "';'" in err.reason


def test_csv_lines_count_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    agents = AGENTS.replace("\na2,", '\n\n"a\nx",tier1,,,,,,\na2,').replace("a2,tier2", "a2,tier0")
    err = error(tmp_path, agents_csv=agents)
    assert (err.line, err.field) == (6, "team")


def test_inline_data_cannot_read_files() -> None:
    data = yaml.load(BASELINE, Loader=PlannerLoader)
    with pytest.raises(InputError) as caught:
        baseline_from_dict(data)
    assert caught.value.field == "agents" and "inline" in caught.value.reason
    assert str(caught.value).startswith("<inline>: agents: ")


# --- round trip ----------------------------------------------------------------------------


def test_the_example_round_trips_through_dict_and_yaml_text() -> None:
    world = load_baseline(EXAMPLES / "baseline.yaml")
    assert baseline_from_dict(world_to_dict(world)) == world
    again = baseline_from_dict(yaml.load(dump_baseline(world), Loader=PlannerLoader))
    assert again == world


def test_the_tmp_baseline_round_trips_and_writes_to_a_file(tmp_path: Path) -> None:
    world = load_baseline(write(tmp_path, **files()))
    out = tmp_path / "export.yaml"
    out.write_text(dump_baseline(world), encoding="utf-8")
    assert load_baseline(out) == world


def test_an_export_reads_json_rows_fast_and_still_names_lines(tmp_path: Path) -> None:
    world = load_baseline(write(tmp_path, **files()))
    odd = 'Zo\u00eb \U0001f3a7 \u2028 "q" \\ #x: - {y}'
    world = replace(world, agents=(replace(world.agents[0], id=odd), *world.agents[1:]))
    text = dump_baseline(world)
    assert text.startswith(EXPORT_MARKER)
    out = tmp_path / "export.yaml"
    out.write_text(text, encoding="utf-8")
    assert load_baseline(out) == world
    rows = text.splitlines()
    row = next(i for i, r in enumerate(rows) if '"id": "t2"' in r)
    rows[row] = rows[row].replace('"effort_minutes": 5', '"effort_minutes": -5')
    out.write_text("\n".join(rows), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_baseline(out)
    assert (caught.value.line, caught.value.field) == (
        row + 1,
        "demand.history[1].effort_minutes",
    )
    # without the marker the same text is plain YAML (JSON is YAML): same world, same lines
    out.write_text("\n".join(rows[1:]), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_baseline(out)
    assert caught.value.line == row


IDS = st.sampled_from(["a", "b", "c", "de", "no", "x-1"])
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
MINUTE = st.integers(0, 24 * 60 - 1)
MOMENT = st.integers(0, 14 * 24 * 60).map(
    lambda m: datetime(2026, 3, 20, tzinfo=UTC) + timedelta(minutes=m)
)
NUMBER = st.one_of(st.integers(1, 500), st.floats(0.01, 500, allow_nan=False, allow_infinity=False))


def _clock(m: int) -> time:
    return time(m // 60, m % 60)


@st.composite
def patterns(draw: st.DrawFn) -> ShiftPattern:
    start = draw(MINUTE)
    length = draw(st.integers(60, 24 * 60))
    brk = draw(st.none() | st.integers(0, length - 31))
    breaks = () if brk is None else (Break(_clock((start + brk) % 1440), 30),)
    days = draw(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True))
    return ShiftPattern(tuple(days), _clock(start), _clock((start + length) % 1440), breaks)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    skills = [
        Skill(s, draw(st.sampled_from(["", "Name"])), draw(st.sampled_from(list(SkillKind))))
        for s in draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    ]
    skill_ids = [s.id for s in skills]
    teams = [
        Team(t, "", draw(st.none() | st.sampled_from(list(TeamScope))))
        for t in draw(st.lists(st.sampled_from(["t1", "t2", "t3"]), min_size=1, unique=True))
    ]
    team = st.sampled_from([t.id for t in teams])
    levels = st.dictionaries(st.sampled_from(skill_ids), st.integers(1, 5), max_size=3)
    caps = draw(
        st.lists(
            st.builds(
                Capability,
                id=st.sampled_from(["c1", "c2"]),
                requirements=levels,
                call_minutes=st.integers(1, 120),
                horizon=st.sampled_from([timedelta(days=7), timedelta(minutes=90)]),
                min_notice=st.integers(0, 600).map(lambda m: timedelta(minutes=m)),
                buffer_minutes=st.integers(0, 15),
                granularity_minutes=st.sampled_from([5, 15, 30]),
                reserve=st.floats(0, 1),
            ),
            max_size=2,
            unique_by=lambda c: c.id,
        )
    )
    call = st.none() | st.sampled_from([c.id for c in caps]) if caps else st.none()
    agents = [
        AgentPlan(
            id=f"ag{i}",
            team=draw(team),
            skills=draw(levels),
            shifts=tuple(draw(st.lists(patterns(), max_size=2))),
            timezone=draw(ZONES),
            capacity=draw(st.integers(0, 20)),
            shrinkage=draw(st.floats(0, 0.9)),
            channel_capacity=draw(st.dictionaries(st.sampled_from(["phone", "chat"]),
                                                  st.integers(0, 3))),
        )
        for i in range(draw(st.integers(0, 4)))
    ]  # fmt: skip
    history = [
        TicketSpec(
            id=f"h{i}",
            created_at=draw(MOMENT),
            team=draw(team),
            channel=draw(st.sampled_from(["email", "chat"])),
            required_skills=draw(levels),
            priority=draw(st.sampled_from(list(Priority))),
            effort_minutes=draw(st.integers(1, 600)),
            first_response_at=draw(st.none() | MOMENT),
            resolved_at=draw(st.none() | MOMENT),
            call=draw(call),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    volume = [
        VolumeRow(
            team=draw(team),
            channel=draw(st.sampled_from(["phone", "chat"])),
            hour=draw(st.integers(0, 23)),
            per_hour=draw(NUMBER),
            required_skills=draw(levels),
            weekday=draw(st.none() | st.integers(0, 6)),
            priority=draw(st.sampled_from(list(Priority))),
            effort_minutes=draw(NUMBER),
            effort_cv=draw(st.floats(0, 10)),
            call=draw(call),
            call_share=draw(st.floats(0, 0.99)),
        )
        for _ in range(draw(st.integers(0 if history else 1, 3)))
    ]
    demand = Demand(
        history=tuple(history),
        volume=tuple(volume),
        scale=draw(st.floats(0.1, 100)),
        shape=draw(st.dictionaries(st.integers(0, 23), st.floats(0, 5), max_size=3)),
        history_scale=tuple(
            draw(st.lists(st.builds(HistoryScale, factor=st.floats(0.1, 3), team=team,
                                    channel=st.none() | st.just("email")), max_size=2))
        ),
    )  # fmt: skip
    sla = draw(
        st.lists(
            st.builds(
                SlaTarget,
                priority=st.sampled_from(list(Priority)),
                first_response_minutes=st.none() | st.integers(1, 10_000),
                resolution_minutes=st.none() | st.integers(1, 10_000),
                channel=st.none() | st.just("phone"),
            ),
            max_size=3,
        )
    )
    routing = Routing(
        policy=draw(st.sampled_from(["production", "realtime", "optimizer", "round-robin"])),
        reoptimize_minutes=draw(st.integers(1, 600)),
        dispatch_minutes=draw(st.integers(1, 60)),
        time_limit_s=draw(st.floats(0.01, 600)),
        patience_minutes=draw(st.none() | st.floats(0.5, 60)),
        max_moves=draw(st.none() | st.integers(0, 1_000_000)),
    )
    return World(
        name=draw(st.sampled_from(["w", "acme support"])),
        start=draw(MOMENT),
        days=draw(st.integers(1, 30)),
        skills=tuple(skills),
        teams=tuple(teams),
        agents=tuple(agents),
        demand=demand,
        sla=tuple(sla),
        routing=routing,
        capabilities=tuple(caps),
        timezone=draw(ZONES),
        interval_minutes=draw(st.sampled_from([15, 30, 60])),
    )


@settings(max_examples=30, deadline=None)
@given(worlds())
def test_world_to_dict_is_the_exact_inverse(world: World) -> None:
    data = world_to_dict(world)
    assert baseline_from_dict(data) == world
    text: Any = yaml.safe_dump(data, sort_keys=False)
    assert baseline_from_dict(yaml.load(text, Loader=PlannerLoader)) == world
    assert baseline_from_dict(json.loads(json.dumps(data))) == world  # JSON too (the API)


def test_a_routing_move_budget_loads_and_round_trips(tmp_path: Path) -> None:
    text = BASELINE.replace("{policy: production}", "{policy: production, max_moves: 3}")
    world = load_baseline(write(tmp_path, **files(baseline_yaml=text)))
    assert world.routing.max_moves == 3
    data = world_to_dict(world)
    assert data["routing"]["max_moves"] == 3
    assert baseline_from_dict(data) == world
    unbudgeted = load_baseline(write(tmp_path, **files()))
    assert unbudgeted.routing.max_moves is None
    assert world_to_dict(unbudgeted)["routing"]["max_moves"] is None
    assert baseline_from_dict(world_to_dict(unbudgeted)) == unbudgeted


@pytest.mark.parametrize("bad", [-1, 1_000_001, 2.5, True, "3"])
def test_a_bad_routing_move_budget_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(ProblemError) as caught:
        Routing(max_moves=bad)  # type: ignore[arg-type]
    assert caught.value.field == "max_moves"
