"""Scenario and sweep files: a baseline, its changes, a seed and a number of replications.

A scenario file (YAML or TOML, the same keys; see ``scenarios/examples/``) names a baseline file
relative to itself and a list of changes, each a one-key mapping ``{kind: value}`` read into the
typed changes of :mod:`scenarios.changes`. A sweep file is a scenario file plus a ``grid``: for
each change kind a list of values; every combination is one scenario (the Cartesian product,
in the grid's key order as written, the last key varying fastest), named after its values
(``add_agents=2, scale_volume=1.3``) so a name is readable and the same from run to run.

Files are checked whole when they load, against the baseline: each change is applied in turn
(as :meth:`Scenario.world` will), so an unknown agent in ``remove_agents``, a policy the
simulator does not have or a shift that cannot keep its paid hours is an
:class:`~scenarios.inputs.InputError` naming the file, the line and the field, before anything
runs.

TOML lines. :mod:`tomllib` gives values without positions, so :func:`toml_lines` scans the text
once more (after tomllib has accepted it, so it may assume valid TOML): it tracks the current
table from ``[table]`` and ``[[array.of.tables]]`` headers (counting each array's entries),
reads every ``key =`` (dotted keys too) and walks inline tables ``{...}`` and arrays ``[...]``
value by value, skipping strings of all four kinds and comments. Every key path and array index
it passes is recorded with its line; a path it cannot place takes the line of its nearest
recorded parent.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from scenarios.changes import (
    KINDS,
    AddAgents,
    Change,
    ChangeSkills,
    MoveAgents,
    RemoveAgents,
    ReshapeVolume,
    ScaleVolume,
    SetRouting,
    apply,
    apply_one,
)
from scenarios.inputs import (
    At,
    Doc,
    InputError,
    boolean,
    build,
    format_shifts,
    integer,
    levels,
    load_baseline,
    mapping,
    number,
    opt_text,
    plain_number,
    sequence,
    shift_patterns,
    text,
    yaml_document,
)
from scenarios.model import INTERVALS, MAX_MOVES, ROUTING_POLICIES, World
from solver.errors import ProblemError

EXAMPLES = Path(__file__).parent / "examples"
MAX_REPLICATIONS = 1000
DEFAULT_REPLICATIONS = 5

_SCENARIO = (
    "name", "description", "baseline", "seed", "replications", "days", "interval_minutes",
    "changes",
)  # fmt: skip
_SWEEP = (*_SCENARIO, "scenario", "grid")


@dataclass(frozen=True)
class Scenario:
    """A baseline world and the changes that make this scenario of it.

    ``baseline`` already carries the file's ``days`` / ``interval_minutes`` overrides, so the
    baseline run a scenario is compared with covers the same period."""

    name: str
    baseline: World
    changes: tuple[Change, ...] = ()
    seed: int = 0
    replications: int = DEFAULT_REPLICATIONS
    source: str | None = None
    description: str = ""

    def world(self) -> World:
        """The world to simulate: the baseline with the changes, named after the scenario."""
        return replace(apply(self.baseline, self.changes), name=self.name)


@dataclass(frozen=True)
class Sweep:
    """Grid points as scenarios (in grid order), each run ``replications`` times from ``seed``;
    ``baseline`` is the world they are all compared with."""

    name: str
    scenarios: tuple[Scenario, ...]
    seed: int
    replications: int
    baseline: World | None = None
    source: str | None = None


# --- TOML lines ----------------------------------------------------------------------------


class _TomlScanner:
    _BARE = re.compile(r"[A-Za-z0-9_-]+")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.lines: dict[tuple[str, ...], int] = {}

    def line(self) -> int:
        return bisect.bisect_left(self.newlines, self.i) + 1

    def record(self, path: Sequence[str | int]) -> None:
        self.lines.setdefault(tuple(str(p) for p in path), self.line())

    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def skip(self, newlines: bool) -> None:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def key(self) -> list[str]:
        parts = []
        while True:
            self.skip(False)
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                m = self._BARE.match(self.s, self.i)
                if m is None:
                    raise ValueError("key expected")
                parts.append(m.group())
                self.i = m.end()
            self.skip(False)
            if self.peek() != ".":
                return parts
            self.i += 1

    def string(self) -> str:
        for quote in ('"""', "'''"):
            if self.peek(3) == quote:
                end = self.s.index(quote, self.i + 3)
                while self.s[end : end + 4] == quote + quote[0]:
                    end += 1
                value = self.s[self.i + 3 : end]
                self.i = end + 3
                return value
        quote = self.s[self.i]
        j = self.i + 1
        while self.s[j] != quote:
            j += 2 if quote == '"' and self.s[j] == "\\" else 1
        value = self.s[self.i + 1 : j]
        self.i = j + 1
        return json.loads(f'"{value}"') if quote == '"' else value

    def value(self, path: tuple[str | int, ...]) -> None:
        c = self.peek()
        if c == "{":
            self.i += 1
            while True:
                self.skip(False)
                if self.peek() == "}":
                    self.i += 1
                    return
                if self.peek() == ",":
                    self.i += 1
                    continue
                self.assignment(path)
        elif c == "[":
            self.i += 1
            index = 0
            while True:
                self.skip(True)
                if self.peek() == "]":
                    self.i += 1
                    return
                if self.peek() == ",":
                    self.i += 1
                    index += 1
                    continue
                self.record((*path, index))
                self.value((*path, index))
        elif c in ('"', "'"):
            self.string()
        else:
            m = re.compile(r"[^,\]}\n#]*").match(self.s, self.i)
            assert m is not None
            self.i = m.end()

    def assignment(self, table: tuple[str | int, ...]) -> None:
        parts = self.key()
        for k in range(1, len(parts) + 1):
            self.record((*table, *parts[:k]))
        self.skip(False)
        if self.peek() != "=":
            raise ValueError("= expected")
        self.i += 1
        self.skip(False)
        self.value((*table, *parts))

    def scan(self) -> dict[tuple[str, ...], int]:
        table: tuple[str | int, ...] = ()
        arrays: dict[tuple[str | int, ...], int] = {}
        try:
            while True:
                self.skip(True)
                if self.i >= len(self.s):
                    break
                if self.peek() == "[":
                    double = self.peek(2) == "[["
                    self.i += 2 if double else 1
                    parts = self.key()
                    self.i += 2 if double else 1
                    resolved: tuple[str | int, ...] = ()
                    for part in parts[:-1]:
                        resolved = (*resolved, part)
                        if resolved in arrays:
                            resolved = (*resolved, arrays[resolved])
                    resolved = (*resolved, parts[-1])
                    self.record(resolved)
                    if double:
                        arrays[resolved] = arrays.get(resolved, -1) + 1
                        resolved = (*resolved, arrays[resolved])
                        self.record(resolved)
                    table = resolved
                else:
                    self.assignment(table)
        except (ValueError, IndexError):
            pass  # keep what was placed; the rest falls back to parents
        return self.lines


def toml_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path (strings; list indices as strings) -> 1-based line, for valid TOML ``text``."""
    return _TomlScanner(text).scan()


def parse_text(text: str, fmt: str, source: str) -> tuple[Any, Doc]:
    """A YAML or TOML document and its lines."""
    if fmt == "toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise InputError(source, int(m[1]) if m else None, "<toml>", str(exc)) from None
        except RecursionError:
            # tomllib reads nested arrays and tables recursively.
            raise InputError(source, None, "<toml>", "nested too deeply to read") from None
        return data, Doc(source, lambda: toml_lines(text))
    if fmt != "yaml":
        raise ValueError(f"fmt must be 'yaml' or 'toml', got {fmt!r}")
    return yaml_document(text, source)


def _fmt(path: Path) -> str:
    return "toml" if path.suffix.lower() == ".toml" else "yaml"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), None, "<file>", f"cannot read: {exc.strerror or exc}") from None


# --- changes -------------------------------------------------------------------------------


def _agents(at: At, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    items = sequence(at, value)
    if not items:
        at.fail("must name at least one agent")
    return tuple(text(at.child(i), v) for i, v in enumerate(items))


def _skill_levels(at: At, value: object) -> dict[str, int]:
    return levels(at, value, None)


def parse_change(at: At, kind: str, value: object) -> Change:
    """One change of ``kind`` from its file value (checked, not yet applied)."""
    if kind == "add_agents":
        d = mapping(at, value, ("count", "like", "id_prefix", "team", "skills"), required=("like",))
        return build(
            at,
            lambda: AddAgents(
                count=integer(at.child("count"), d.get("count", 1), maximum=1000),
                like=text(at.child("like"), d["like"]),
                id_prefix=opt_text(at.child("id_prefix"), d.get("id_prefix")),
                team=opt_text(at.child("team"), d.get("team")),
                skills=_skill_levels(at.child("skills"), d.get("skills")),
            ),
        )
    if kind == "remove_agents":
        if isinstance(value, Mapping):
            value = mapping(at, value, ("agents",), required=("agents",))["agents"]
            at = at.child("agents")
        return build(at, lambda: RemoveAgents(_agents(at, value)))
    if kind == "move_agents":
        d = mapping(
            at, value, ("agents", "shift", "shifts", "keep_paid_hours"), required=("agents",)
        )
        if ("shift" in d) == ("shifts" in d):
            at.child("shift").fail("give the new shift (shift:) or shifts (shifts:), one of them")
        key = "shift" if "shift" in d else "shifts"
        return build(
            at,
            lambda: MoveAgents(
                agents=_agents(at.child("agents"), d["agents"]),
                shifts=shift_patterns(at.child(key), d[key]),
                keep_paid_hours=boolean(
                    at.child("keep_paid_hours"), d.get("keep_paid_hours", False)
                ),
            ),
        )
    if kind == "change_skills":
        d = mapping(at, value, ("agents", "set", "remove"), required=("agents",))
        remove_at = at.child("remove")
        raw_remove = d.get("remove") or []
        if isinstance(raw_remove, str):
            raw_remove = [raw_remove]
        return build(
            at,
            lambda: ChangeSkills(
                agents=_agents(at.child("agents"), d["agents"]),
                set=_skill_levels(at.child("set"), d.get("set")),
                remove=tuple(
                    text(remove_at.child(i), s)
                    for i, s in enumerate(sequence(remove_at, raw_remove))
                ),
            ),
        )
    if kind == "scale_volume":
        if not isinstance(value, Mapping):
            value = {"factor": value}
            at_factor = at
        else:
            at_factor = at.child("factor")
        d = mapping(at, value, ("factor", "team", "channel"), required=("factor",))
        return build(
            at,
            lambda: ScaleVolume(
                factor=plain_number(number(at_factor, d["factor"], strict=True, maximum=100)),
                team=opt_text(at.child("team"), d.get("team")),
                channel=opt_text(at.child("channel"), d.get("channel")),
            ),
        )
    if kind == "reshape_volume":
        d = mapping(at, value, ("hours",), required=("hours",))
        hours_at = at.child("hours")
        raw = d["hours"]
        if not isinstance(raw, Mapping):
            hours_at.fail(f"must map a local hour (0-23) to a factor, got {raw!r}")
        hours = {
            integer(hours_at.child(str(h)), h, maximum=23): number(hours_at.child(str(h)), f)
            for h, f in raw.items()
        }
        return build(at, lambda: ReshapeVolume(hours))
    if kind == "routing":
        if isinstance(value, str):
            value = {"policy": value}
            at_policy = at
        else:
            at_policy = at.child("policy")
        d = mapping(
            at,
            value,
            (
                "policy",
                "reoptimize_minutes",
                "dispatch_minutes",
                "time_limit_s",
                "patience_minutes",
                "max_moves",
            ),
        )
        policy = opt_text(at_policy, d.get("policy"))
        if policy is not None and policy not in ROUTING_POLICIES:
            at_policy.fail(f"must be one of {', '.join(ROUTING_POLICIES)}, got {policy!r}")

        def opt_int(name: str, minimum: int = 1, maximum: int = 10**9) -> int | None:
            if d.get(name) is None:
                return None
            return integer(at.child(name), d[name], minimum=minimum, maximum=maximum)

        def opt_num(name: str) -> float | None:
            raw = d.get(name)
            return None if raw is None else plain_number(number(at.child(name), raw, strict=True))

        return build(
            at,
            lambda: SetRouting(
                policy=policy,
                reoptimize_minutes=opt_int("reoptimize_minutes"),
                dispatch_minutes=opt_int("dispatch_minutes"),
                time_limit_s=opt_num("time_limit_s"),
                patience_minutes=opt_num("patience_minutes"),
                max_moves=opt_int("max_moves", minimum=0, maximum=MAX_MOVES),
            ),
        )
    at.fail(f"unknown change {kind!r}; the changes are {', '.join(KINDS)}")


@dataclass(frozen=True)
class _Flat(At):
    """A change written in its short form (``remove_agents: [a, b]``, ``scale_volume: 1.3``,
    ``routing: optimizer``): the field ``key`` of its long form is the value itself."""

    base: At
    key: str

    @property
    def source(self) -> str:
        return self.base.source

    @property
    def line(self) -> int | None:
        return self.base.line

    @property
    def field(self) -> str:
        return self.base.field

    def child(self, key: str | int) -> At:
        return self.base if key == self.key else self.base.child(key)


_SHORT = {"remove_agents": "agents", "scale_volume": "factor", "routing": "policy"}


def located(at: At, kind: str, raw: object) -> At:
    """Where the fields of a change of ``kind`` written as ``raw`` are."""
    if kind in _SHORT and not isinstance(raw, Mapping):
        return _Flat(at, _SHORT[kind])
    return at


def _one_key(at: At, item: object) -> tuple[str, object]:
    if not isinstance(item, Mapping) or len(item) != 1:
        at.fail(f"a change is one 'kind: value' entry ({', '.join(KINDS)}), got {item!r}")
    ((kind, value),) = item.items()
    return str(kind), value


def parse_changes(at: At, value: object, world: World) -> tuple[tuple[Change, ...], World]:
    """The changes of a file's ``changes:`` list, each applied to ``world`` in turn to check it
    (an error names the entry's line); returns them and the changed world."""
    out = []
    for i, item in enumerate(sequence(at, value or [])):
        item_at = at.child(i)
        kind, raw = _one_key(item_at, item)
        change_at = item_at.child(kind)
        change = parse_change(change_at, kind, raw)
        world = _applied(located(change_at, kind, raw), world, change)
        out.append(change)
    return tuple(out), world


def _applied(at: At, world: World, change: Change) -> World:
    try:
        return apply_one(world, change)
    except ProblemError as exc:
        at.problem(exc)


# --- scenarios -----------------------------------------------------------------------------


def _header(at: At, data: Mapping[str, Any], baseline: World) -> tuple[World, int, int]:
    """The file's seed and replications, and the baseline with its days/interval overrides."""
    seed = integer(at.child("seed"), data.get("seed", 0), minimum=0, maximum=2**63 - 1)
    replications = integer(
        at.child("replications"),
        data.get("replications", DEFAULT_REPLICATIONS),
        minimum=1,
        maximum=MAX_REPLICATIONS,
    )
    if "days" in data:
        days = integer(at.child("days"), data["days"], minimum=1, maximum=366)
        baseline = replace(baseline, days=days)
    if "interval_minutes" in data:
        interval = integer(at.child("interval_minutes"), data["interval_minutes"])
        if interval not in INTERVALS:
            at.child("interval_minutes").fail(f"must be one of 15, 30, 60, got {interval}")
        baseline = replace(baseline, interval_minutes=interval)
    return baseline, seed, replications


def _baseline(at: At, data: Mapping[str, Any], given: World | None, base_dir: Path | None) -> World:
    if given is not None:
        return given
    if "baseline" not in data:
        at.child("baseline").fail("is required: the baseline file this scenario changes")
    name = text(at.child("baseline"), data["baseline"])
    if base_dir is None:
        at.child("baseline").fail("cannot be read here (no directory to resolve it from)")
    path = base_dir / name
    if not path.is_file():
        at.child("baseline").fail(f"no such file {str(path)!r}")
    return load_baseline(path)


def _scenario(
    data: object, doc: Doc, baseline: World | None, base_dir: Path | None, keys: Sequence[str]
) -> tuple[Scenario, Mapping[str, Any]]:
    at = doc.at()
    if not isinstance(data, Mapping):
        at.fail("must be a mapping (name:, baseline:, changes: ...)")
    d = mapping(at, data, keys, required=("name",))
    world = _baseline(at, d, baseline, base_dir)
    world, seed, replications = _header(at, d, world)
    changes, _ = parse_changes(at.child("changes"), d.get("changes"), world)
    scenario = Scenario(
        name=text(at.child("name"), d["name"]),
        baseline=world,
        changes=changes,
        seed=seed,
        replications=replications,
        source=doc.source,
        description=str(d.get("description") or ""),
    )
    return scenario, d


def scenario_from_text(
    text: str,
    *,
    fmt: str = "yaml",
    baseline: World | None = None,
    base_dir: Path | str | None = None,
    source: str = "<scenario>",
) -> Scenario:
    """The scenario of a YAML/TOML text. ``baseline`` (when given) replaces the file's
    ``baseline:``; otherwise that is read relative to ``base_dir``."""
    data, doc = parse_text(text, fmt, source)
    base = Path(base_dir) if base_dir is not None else None
    return _scenario(data, doc, baseline, base, _SCENARIO)[0]


def load_scenario(path: Path | str) -> Scenario:
    """The scenario file at ``path`` (``.toml``: TOML, anything else: YAML)."""
    path = Path(path)
    return scenario_from_text(_read(path), fmt=_fmt(path), base_dir=path.parent, source=str(path))


# --- sweeps --------------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:g}"


def _label(change: Change, raw: object) -> str:
    """A short readable text for a grid value."""
    if isinstance(change, AddAgents):
        return str(change.count)
    if isinstance(change, RemoveAgents):
        return "+".join(change.agents)
    if isinstance(change, ScaleVolume):
        where = "/".join(v for v in (change.team, change.channel) if v)
        return _num(change.factor) + (f" {where}" if where else "")
    if isinstance(change, ReshapeVolume):
        return ",".join(f"{h}:{_num(f)}" for h, f in change.hours.items())
    if isinstance(change, SetRouting) and change.policy is not None and isinstance(raw, str):
        return change.policy
    if isinstance(change, MoveAgents):
        return format_shifts(change.shifts)
    return _compact(raw)


def _compact(raw: object) -> str:
    return json.dumps(raw, separators=(",", ":"), sort_keys=True, default=str)


class _Value(NamedTuple):
    """One value of a grid key."""

    kind: str
    change: Change
    label: str
    place: At


def _grid(at: At, value: object) -> list[list[_Value]]:
    """Per grid key (in file order), its values (in file order)."""
    if not isinstance(value, Mapping) or not value:
        at.fail(f"must map change kinds ({', '.join(KINDS)}) to lists of values")
    axes = []
    for kind, values in value.items():
        key_at = at.child(str(kind))
        if kind not in KINDS:
            key_at.fail(f"unknown change {kind!r}; the changes are {', '.join(KINDS)}")
        items = sequence(key_at, values)
        if not items:
            key_at.fail("must list at least one value")
        axis = [
            _Value(
                str(kind),
                change := parse_change(key_at.child(j), str(kind), raw),
                _label(change, raw),
                located(key_at.child(j), str(kind), raw),
            )
            for j, raw in enumerate(items)
        ]
        if len({v.label for v in axis}) < len(axis):  # short labels collide: say it all
            axis = [v._replace(label=_compact(raw)) for v, raw in zip(axis, items, strict=True)]
        seen: dict[str, int] = {}
        for j, v in enumerate(axis):
            if v.label in seen:
                key_at.child(j).fail(f"the same value as entry {seen[v.label]}")
            seen[v.label] = j
        axes.append(axis)
    return axes


def _sweep(data: object, doc: Doc, baseline: World | None, base_dir: Path | None) -> Sweep:
    at = doc.at()
    if not isinstance(data, Mapping):
        at.fail("must be a mapping (name:, scenario: or baseline:, grid: ...)")
    d = mapping(at, data, _SWEEP, required=("name", "grid"))
    base_changes: tuple[Change, ...] = ()
    if "scenario" in d:
        if "baseline" in d:
            at.child("baseline").fail("give a scenario or a baseline, not both")
        name = text(at.child("scenario"), d["scenario"])
        if base_dir is None:
            at.child("scenario").fail("cannot be read here (no directory to resolve it from)")
        path = base_dir / name
        if not path.is_file():
            at.child("scenario").fail(f"no such file {str(path)!r}")
        inner = load_scenario(path)
        world, base_changes = inner.baseline, inner.changes
        d = {"seed": inner.seed, "replications": inner.replications, **d}
    else:
        world = _baseline(at, d, baseline, base_dir)
    world, seed, replications = _header(at, d, world)
    own, changed = parse_changes(at.child("changes"), d.get("changes"), apply(world, base_changes))
    base_changes = (*base_changes, *own)
    grid_at = at.child("grid")
    axes = _grid(grid_at, d["grid"])
    scenarios = []
    for point in itertools.product(*axes):
        name = ", ".join(f"{v.kind}={v.label}" for v in point)
        point_world = changed
        for v in point:
            point_world = _applied(v.place, point_world, v.change)
        scenarios.append(
            Scenario(
                name=name,
                baseline=world,
                changes=(*base_changes, *(v.change for v in point)),
                seed=seed,
                replications=replications,
                source=doc.source,
            )
        )
    return Sweep(
        name=text(at.child("name"), d["name"]),
        scenarios=tuple(scenarios),
        seed=seed,
        replications=replications,
        baseline=world,
        source=doc.source,
    )


def sweep_from_text(
    text: str,
    *,
    fmt: str = "yaml",
    baseline: World | None = None,
    base_dir: Path | str | None = None,
    source: str = "<sweep>",
) -> Sweep:
    """The sweep of a YAML/TOML text (``scenario:`` / ``baseline:`` relative to ``base_dir``,
    or ``baseline`` given)."""
    data, doc = parse_text(text, fmt, source)
    return _sweep(data, doc, baseline, Path(base_dir) if base_dir is not None else None)


def load_sweep(path: Path | str) -> Sweep:
    """The sweep file at ``path`` (``.toml``: TOML, anything else: YAML)."""
    path = Path(path)
    return sweep_from_text(_read(path), fmt=_fmt(path), base_dir=path.parent, source=str(path))
