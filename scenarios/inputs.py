"""A planner's baseline, read from their files into a :class:`scenarios.model.World`.

A baseline is one YAML file (see ``scenarios/examples/baseline.yaml``) whose big tables may live
in CSV files next to it, read with pandas: the staffing plan (``agents``), a ticket history to
replay (``demand.history``) and hourly volume profiles (``demand.volume``). Every table may be
given inline instead, which is what the service's tenant export writes and what
:func:`world_to_dict` returns: ``baseline_from_dict(world_to_dict(w)) == w``.

Every bad value is an :class:`InputError` naming the file, the line and the field, because a
planner fixes a file, not a traceback. YAML lines come from PyYAML's node tree
(``compose``: each node's ``start_mark``), kept as a map from key path to line; CSV lines are
counted with header = line 1, as a spreadsheet shows them. When the model's own validation
(:class:`solver.errors.ProblemError`, e.g. a duplicate agent id) rejects a value, the error is
moved to the line of the entry it came from.

YAML is read as planners write it, not as YAML 1.1 would: ``17:00`` is a time, not the
sexagesimal number 1020, and ``no`` (Norwegian) is a skill id, not ``False``; only
``true``/``false`` are booleans.

Times in a history without a UTC offset are wall-clock times in the baseline's ``timezone``.
Inline data (``base_dir=None``) may not reference files: the service feeds uploaded baselines
through :func:`baseline_from_dict` and must not let them read the server's disk.

Shift grammar (the ``shifts`` column of agents.csv, or a string in place of the YAML list)::

    shifts  := shift (";" shift)*
    shift   := days start "-" end ("break" HH:MM "+" minutes ("," HH:MM "+" minutes)*)*
    days    := dayspec ("," dayspec)*
    dayspec := day | day "-" day | "daily" | "weekdays" | "weekends"
    day     := mon | tue | wed | thu | fri | sat | sun   (full names too; any case)

for example ``mon-fri 09:00-17:00 break 12:30+30; sat 10:00-14:00``. A range may wrap
(``fri-mon``); ``end <= start`` is an overnight shift (``22:00-06:00``) and ``24:00`` ends at
midnight. Breaks are unpaid minutes from a local wall-clock time inside the shift.
:func:`format_shifts` writes patterns back in this grammar.
"""

from __future__ import annotations

import abc
import csv
import functools
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml

from scenarios.model import (
    INTERVALS,
    MAX_MOVES,
    ROUTING_POLICIES,
    WEEKDAYS,
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
)
from solver.capability import Capability
from solver.errors import ProblemError
from solver.problem import MAX_LEVEL, MIN_LEVEL, Priority, Skill, SkillKind, Team, TeamScope

Path_ = tuple[str | int, ...]
T = TypeVar("T")


class InputError(ValueError):
    """A planner's input that cannot be used: ``source`` (file), ``line`` (1-based; None when the
    data came without lines), ``field`` (a dotted path, or a CSV column) and the ``reason``."""

    def __init__(self, source: str, line: int | None, field: str, reason: str) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.reason = reason
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {field}: {reason}")


# --- YAML as planners write it -------------------------------------------------------------


# libyaml's parser when PyYAML has it (several times faster on a big inline export).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class PlannerLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader without YAML 1.1's surprises (see the module docstring)."""


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
PlannerLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _BOOL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
PlannerLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
PlannerLoader.add_implicit_resolver(
    _INT, re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)
PlannerLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)"
        r"|[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _key(part: str | int) -> str:
    return str(part)


# dump_baseline's first line. Under it, a table row on a line of its own that is a JSON object
# is read with json (one object, not thousands of YAML nodes: ~20x faster on a big export), left
# in the YAML as a tagged index so lines and structure stay the YAML's. Hand-written files lack
# the marker and are read as plain YAML.
EXPORT_MARKER = "# switchboard baseline (table rows are JSON objects, one a line)"
_JSON_ROW = re.compile(r"^( *- )(\{.*\})[ \t]*$", re.MULTILINE)
_ROW_TAG = "!switchboard/json-row"


def _json_rows(text: str) -> tuple[str, list[Any]]:
    rows: list[Any] = []
    if not text.startswith(EXPORT_MARKER):
        return text, rows

    def swap(m: re.Match[str]) -> str:
        try:
            row = json.loads(m[2])
        except ValueError:
            return m[0]
        rows.append(row)
        return f"{m[1]}{_ROW_TAG} {len(rows) - 1}"

    return _JSON_ROW.sub(swap, text), rows


def _json_row(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    rows: list[Any] = getattr(loader, "json_rows", [])
    index = int(node.value) if str(node.value).isdigit() else -1
    if not 0 <= index < len(rows):
        raise yaml.constructor.ConstructorError(
            None, None, f"{_ROW_TAG} {node.value!r} is not a row of this file", node.start_mark
        )
    return rows[index]


PlannerLoader.add_constructor(_ROW_TAG, _json_row)


def yaml_document(text: str, source: str) -> tuple[Any, Doc]:
    """The document of a YAML text, and its :class:`Doc` (lines found only if an error needs
    them: composing a big export's node tree just in case would cost more than reading it)."""
    text, rows = _json_rows(text)
    try:
        # The reader checks the characters as it is built: a control character is an error here.
        loader = PlannerLoader(text)
    except yaml.YAMLError as exc:
        raise InputError(source, None, "<yaml>", str(exc)) from None
    loader.json_rows = rows
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InputError(source, line, "<yaml>", str(exc.problem or exc)) from None
    except yaml.YAMLError as exc:
        raise InputError(source, None, "<yaml>", str(exc)) from None
    except RecursionError:
        raise InputError(source, None, "<yaml>", "nested too deeply to read") from None
    finally:
        loader.dispose()
    return data, Doc(source, lambda: yaml_lines(text))


def yaml_lines(text: str) -> dict[tuple[str, ...], int]:
    """For every key path of a valid YAML text (keys and list indices as strings), its 1-based
    line: a mapping key's own line, a list item's first line (PyYAML's node ``start_mark``)."""
    node = yaml.compose(text, Loader=PlannerLoader)
    lines: dict[tuple[str, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[str, ...]) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                child = (*path, str(k.value))
                lines[child] = k.start_mark.line + 1
                walk(v, child)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, str(i)))

    if node is not None:
        walk(node, ())
    return lines


def field_name(path: Path_) -> str:
    """``("agents", 3, "shifts")`` -> ``agents[3].shifts``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<document>"


def problem_path(field: str) -> Path_:
    """The inverse of :func:`field_name` for a ProblemError's field (``agents[3].skills.de``)."""
    out: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        out.append(int(index) if index else name)
    return tuple(out)


# --- where a value came from ---------------------------------------------------------------


class At(abc.ABC):
    """The place of one value: raises :class:`InputError` pointing at it."""

    @property
    @abc.abstractmethod
    def source(self) -> str: ...

    @property
    @abc.abstractmethod
    def line(self) -> int | None: ...

    @property
    @abc.abstractmethod
    def field(self) -> str: ...

    @abc.abstractmethod
    def child(self, key: str | int) -> At: ...

    def fail(self, reason: str) -> NoReturn:
        raise InputError(self.source, self.line, self.field, reason)

    def problem(self, exc: ProblemError) -> NoReturn:
        """A model validation error, moved to the line of the field it names."""
        at: At = self
        for part in problem_path(exc.field):
            at = at.child(part)
        raise InputError(at.source, at.line, at.field, exc.reason) from None


class Doc:
    """A parsed YAML/TOML document's lines (key path -> line), shared by its :class:`DocAt`;
    ``lines`` may be a function, called the first time a line is asked for."""

    def __init__(
        self,
        source: str,
        lines: Mapping[tuple[str, ...], int] | Callable[[], Mapping[tuple[str, ...], int]],
    ) -> None:
        self.source = source
        self._lines = lines

    @functools.cached_property
    def lines(self) -> Mapping[tuple[str, ...], int]:
        return self._lines() if callable(self._lines) else self._lines

    def at(self, *path: str | int) -> DocAt:
        return DocAt(self, tuple(path))


@dataclass(frozen=True)
class DocAt(At):
    doc: Doc
    path: Path_

    @property
    def source(self) -> str:
        return self.doc.source

    def child(self, key: str | int) -> DocAt:
        return DocAt(self.doc, (*self.path, key))

    @property
    def line(self) -> int | None:
        path = tuple(_key(p) for p in self.path)
        while path:
            if path in self.doc.lines:
                return self.doc.lines[path]
            path = path[:-1]
        return self.doc.lines.get(())

    @property
    def field(self) -> str:
        return field_name(self.path)


@dataclass(frozen=True)
class CellAt(At):
    """A CSV cell (or a row, ``column=None``): a value inside a cell stays at the cell."""

    file: str
    row_line: int
    column: str | None = None

    @property
    def source(self) -> str:
        return self.file

    def child(self, key: str | int) -> CellAt:
        if self.column is not None:
            return self
        return CellAt(self.file, self.row_line, _CSV_COLUMN.get(str(key), str(key)))

    @property
    def line(self) -> int | None:
        return self.row_line

    @property
    def field(self) -> str:
        return self.column or "<row>"


# Model field -> CSV column, where they differ.
_CSV_COLUMN = {"required_skills": "skills", "created_at": "created", "weekdays": "shifts"}


# --- values --------------------------------------------------------------------------------


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(at: At, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or _blank(value):
        at.fail(f"must be a non-empty text, got {value!r}")
    return str(value).strip()


def opt_text(at: At, value: object) -> str | None:
    return None if _blank(value) else text(at, value)


def integer(at: At, value: object, *, minimum: int = 0, maximum: int = 10**9) -> int:
    out: int | None = None
    if isinstance(value, bool):
        out = None
    elif isinstance(value, int):
        out = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value)
    ):
        out = int(value)
    if out is None:
        at.fail(f"must be a whole number, got {value!r}")
    if not minimum <= out <= maximum:
        if out < 0 <= minimum:
            at.fail(f"must not be negative, got {out}")
        at.fail(f"must be in [{minimum}, {maximum}], got {out}")
    return out


def number(
    at: At, value: object, *, minimum: float = 0.0, maximum: float = math.inf, strict: bool = False
) -> float:
    out: float | None = None
    if isinstance(value, bool):
        out = None
    elif isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            out = None
    if out is None or not math.isfinite(out):
        at.fail(f"must be a number, got {value!r}")
    if out < minimum or (strict and out == minimum):
        if out < 0 <= minimum:
            at.fail(f"must not be negative, got {value!r}")
        at.fail(f"must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    if out > maximum:
        at.fail(f"must be at most {maximum:g}, got {value!r}")
    return out


def plain_number(value: float) -> float | int:
    """A float that is a whole number, as an int (files read ``8`` rather than ``8.0``)."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def boolean(at: At, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    at.fail(f"must be true or false, got {value!r}")


def clock(at: At, value: object, *, end: bool = False) -> time:
    """``HH:MM`` (or ``HH:MM:SS``) local wall-clock time; ``24:00`` only as an end."""
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*", value)
        if m:
            hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
            if end and (hour, minute, second) == (24, 0, 0):
                return time(0, 0)
            if hour < 24 and minute < 60 and second < 60:
                return time(hour, minute, second)
    at.fail(f"must be a time HH:MM (00:00-23:59{', or 24:00' if end else ''}), got {value!r}")


def clock_text(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def moment(at: At, value: object, zone: ZoneInfo | None = None) -> datetime:
    """An ISO 8601 moment; without an offset it is wall-clock time in ``zone`` (an error when
    there is none)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(0))
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            at.fail(
                f"must be an ISO 8601 date-time such as 2026-03-23T09:15:00+01:00, got {value!r}"
            )
    else:
        at.fail(f"must be an ISO 8601 date-time, got {value!r}")
    if parsed.tzinfo is None:
        if zone is None:
            at.fail(f"needs a UTC offset (e.g. 2026-03-23T09:00:00+01:00), got {value!r}")
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def opt_moment(at: At, value: object, zone: ZoneInfo | None = None) -> datetime | None:
    return None if _blank(value) else moment(at, value, zone)


def moment_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def zone_name(at: At, value: object) -> str:
    name = text(at, value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        at.fail(f"unknown IANA time zone {name!r} (e.g. Europe/Berlin)")
    return name


_PRIORITY_NAMES = ", ".join(p.name.lower() for p in Priority)


def priority(at: At, value: object) -> Priority:
    if isinstance(value, str) and value.strip().upper() in Priority.__members__:
        return Priority[value.strip().upper()]
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return Priority(int(value))
        except ValueError:
            pass
    at.fail(f"must be one of {_PRIORITY_NAMES} (or 1-4), got {value!r}")


_DAY_NAMES = {
    **{d: i for i, d in enumerate(WEEKDAYS)},
    **{
        d: i
        for i, d in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}


def weekday(at: At, value: object) -> int:
    if isinstance(value, str) and value.strip().lower() in _DAY_NAMES:
        return _DAY_NAMES[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    at.fail(f"unknown weekday {value!r}: use mon, tue, wed, thu, fri, sat, sun")


def opt_weekday(at: At, value: object) -> int | None:
    return None if _blank(value) else weekday(at, value)


def _pairs(at: At, value: object, what: str) -> list[tuple[str, str | int, At]]:
    """``{a: 2, b: 1}`` or ``a:2;b:1`` as (key, raw value, place) triples."""
    if isinstance(value, Mapping):
        return [(str(k), v, at.child(str(k))) for k, v in value.items()]
    if _blank(value):
        return []
    if isinstance(value, str):
        out: list[tuple[str, str | int, At]] = []
        for part in value.split(";"):
            if not part.strip():
                continue
            key, sep, raw = part.partition(":")
            if not sep or not key.strip():
                at.fail(f"must read {what}, got {part.strip()!r}")
            out.append((key.strip(), raw.strip(), at.child(key.strip())))
        return out
    at.fail(f"must be a mapping or text {what}, got {value!r}")


def levels(at: At, value: object, known: Sequence[str] | None) -> dict[str, int]:
    """Skill levels ``{networking: 2, de: 1}`` or ``networking:2;de:1``; each skill known."""
    out: dict[str, int] = {}
    for skill, raw, where in _pairs(at, value, "like networking:2;de:1"):
        if known is not None and skill not in known:
            where.fail(f"unknown skill {skill!r} (the baseline's skills: {', '.join(known)})")
        if skill in out:
            where.fail(f"skill {skill!r} given twice")
        out[skill] = integer(where, raw, minimum=MIN_LEVEL, maximum=MAX_LEVEL)
    return out


def counts(at: At, value: object) -> dict[str, int]:
    """Per-channel caps ``{phone: 1}`` or ``phone:1;chat:2``."""
    out: dict[str, int] = {}
    for channel, raw, where in _pairs(at, value, "like phone:1;chat:2"):
        out[channel] = integer(where, raw, minimum=0, maximum=10_000)
    return out


def mapping(
    at: At, value: object, allowed: Sequence[str], *, required: Sequence[str] = ()
) -> Mapping[str, Any]:
    """A mapping with only ``allowed`` keys (a typo is an error, not a silently ignored key)."""
    if not isinstance(value, Mapping):
        at.fail(f"must be a mapping with {', '.join(allowed)}, got {value!r}")
    for key in value:
        if key not in allowed:
            at.child(str(key)).fail(f"unknown field; expected one of {', '.join(allowed)}")
    for key in required:
        if _blank(value.get(key)):
            at.child(key).fail("is required")
    return value


def sequence(at: At, value: object) -> list[Any]:
    if not isinstance(value, list | tuple):
        at.fail(f"must be a list, got {value!r}")
    return list(value)


def build(at: At, make: Callable[[], T]) -> T:
    """``make()``, its ProblemError moved to the line of the field it names."""
    try:
        return make()
    except ProblemError as exc:
        at.problem(exc)


# --- shifts --------------------------------------------------------------------------------


def _days(at: At, spec: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip().lower()
        if part == "daily":
            out.extend(range(7))
        elif part == "weekdays":
            out.extend(range(5))
        elif part == "weekends":
            out.extend((5, 6))
        elif "-" in part:
            first, last = (weekday(at, p) for p in part.split("-", 1))
            out.extend((first + k) % 7 for k in range((last - first) % 7 + 1))
        else:
            out.append(weekday(at, part))
    return tuple(sorted(set(out)))


_SHIFT = re.compile(
    r"^(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})"
    r"(?P<breaks>(?:\s+break\s+.+)?)$",
    re.IGNORECASE,
)


def parse_shifts(at: At, value: str) -> tuple[ShiftPattern, ...]:
    """Patterns in the shift grammar of the module docstring."""
    out = []
    for piece in value.split(";"):
        piece = piece.strip()
        if not piece:
            continue
        m = _SHIFT.match(piece)
        if m is None:
            at.fail(f"shift {piece!r} must read like 'mon-fri 09:00-17:00 break 12:30+30'")
        days = _days(at, m["days"].replace(" ", ""))
        start, end = clock(at, m["start"]), clock(at, m["end"], end=True)
        breaks = []
        for spec in re.split(r"\s*(?:\bbreak\b|,)\s*", m["breaks"].strip(), flags=re.I):
            if not spec:
                continue
            bm = re.fullmatch(r"(\d{1,2}:\d{2})\s*\+\s*(\S+)", spec)
            if bm is None:
                at.fail(f"break {spec!r} must read like 12:30+30 (start + minutes)")
            breaks.append(Break(clock(at, bm[1]), integer(at, bm[2], minimum=1, maximum=24 * 60)))
        pattern = build(at, lambda: ShiftPattern(days, start, end, tuple(breaks)))  # noqa: B023
        out.append(pattern)
    return tuple(out)


def _day_ranges(days: Sequence[int]) -> str:
    if tuple(days) == tuple(range(7)):
        return "daily"
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(
        WEEKDAYS[r[0]] if len(r) == 1 else f"{WEEKDAYS[r[0]]}-{WEEKDAYS[r[-1]]}" for r in runs
    )


def format_shifts(patterns: Sequence[ShiftPattern]) -> str:
    """Patterns in the shift grammar; :func:`parse_shifts` reads them back equal."""
    out = []
    for p in patterns:
        piece = f"{_day_ranges(p.weekdays)} {clock_text(p.start)}-{clock_text(p.end)}"
        if p.breaks:
            piece += " break " + ", ".join(f"{clock_text(b.start)}+{b.minutes}" for b in p.breaks)
        out.append(piece)
    return "; ".join(out)


def shift_patterns(at: At, value: object) -> tuple[ShiftPattern, ...]:
    """Shifts as grammar text or a list of ``{days, start, end, breaks}`` (or of texts)."""
    if isinstance(value, str):
        return parse_shifts(at, value)
    if isinstance(value, Mapping):
        return (shift_pattern(at, value),)
    out: list[ShiftPattern] = []
    for i, item in enumerate(sequence(at, value)):
        if isinstance(item, str):
            out.extend(parse_shifts(at.child(i), item))
        else:
            out.append(shift_pattern(at.child(i), item))
    return tuple(out)


def shift_pattern(at: At, value: object) -> ShiftPattern:
    data = mapping(at, value, ("days", "start", "end", "breaks"), required=("days", "start", "end"))
    raw_days = data["days"]
    if isinstance(raw_days, str):
        days = _days(at.child("days"), raw_days)
    else:
        days_at = at.child("days")
        days = tuple(
            weekday(days_at.child(i), d) for i, d in enumerate(sequence(days_at, raw_days))
        )
    start = clock(at.child("start"), data["start"])
    end = clock(at.child("end"), data["end"], end=True)
    breaks = []
    breaks_at = at.child("breaks")
    for i, item in enumerate(sequence(breaks_at, data.get("breaks") or [])):
        b_at = breaks_at.child(i)
        b = mapping(b_at, item, ("start", "minutes"), required=("start", "minutes"))
        breaks.append(
            Break(
                clock(b_at.child("start"), b["start"]),
                integer(b_at.child("minutes"), b["minutes"], minimum=1, maximum=24 * 60),
            )
        )
    return build(at, lambda: ShiftPattern(days, start, end, tuple(breaks)))


def shift_dict(pattern: ShiftPattern) -> dict[str, Any]:
    out: dict[str, Any] = {
        "days": [WEEKDAYS[d] for d in pattern.weekdays],
        "start": clock_text(pattern.start),
        "end": clock_text(pattern.end),
    }
    if pattern.breaks:
        out["breaks"] = [
            {"start": clock_text(b.start), "minutes": b.minutes} for b in pattern.breaks
        ]
    return out


# --- CSV tables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A CSV file as text cells, each row with its 1-based line (header = line 1)."""

    source: str
    columns: tuple[str, ...]
    rows: tuple[tuple[int, Mapping[str, str]], ...]


def read_table(
    path: Path, *, required: Sequence[str], optional: Sequence[str], shown: str | None = None
) -> Table:
    """Read ``path`` with pandas, every cell as text ("" when empty); check the header.

    pandas skips nothing here (``skip_blank_lines=False``) so row ``i`` is the ``i``-th record;
    its line is where the csv module saw that record start (a quoted cell may span lines)."""
    source = shown or str(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(source, None, "<file>", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(source, None, "<file>", "is not UTF-8 text") from None
    try:
        frame = pd.read_csv(
            io.StringIO(raw), dtype=str, keep_default_na=False, skip_blank_lines=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise InputError(
            source, int(found[1]) if found else 1, "<csv>", str(exc).strip().splitlines()[-1]
        ) from None
    columns = tuple(str(c).strip() for c in frame.columns)
    if len(columns) == 1 and ";" in columns[0]:
        raise InputError(
            source, 1, "<csv>", "columns are separated by ';': save the table as CSV with commas"
        )
    for column in columns:
        if column not in (*required, *optional):
            raise InputError(
                source, 1, column, f"unknown column; expected {', '.join((*required, *optional))}"
            )
    for column in required:
        if column not in columns:
            raise InputError(source, 1, column, "required column is missing")
    starts = []
    reader = csv.reader(io.StringIO(raw))
    at_line = 1
    for _ in reader:
        starts.append(at_line)
        at_line = reader.line_num + 1
    rows = []
    records = frame.to_numpy().tolist()
    for i, record in enumerate(records):
        cells = {c: str(v).strip() for c, v in zip(columns, record, strict=True)}
        if not any(cells.values()):
            continue  # a blank line
        line = starts[i + 1] if i + 1 < len(starts) else i + 2
        rows.append((line, cells))
    return Table(source, columns, tuple(rows))


# --- the baseline --------------------------------------------------------------------------

_TOP = (
    "name", "start", "days", "timezone", "interval_minutes", "skills", "teams", "agents",
    "demand", "sla", "routing", "capabilities",
)  # fmt: skip
_AGENT = (
    "id", "team", "skills", "timezone", "capacity", "shrinkage", "channel_capacity", "shifts",
)  # fmt: skip
_TICKET = (
    "id", "created", "channel", "team", "skills", "priority", "effort_minutes",
    "first_response_at", "resolved_at", "call", "handle_minutes",
)  # fmt: skip
_VOLUME = (
    "team", "channel", "hour", "per_hour", "skills", "weekday", "priority", "effort_minutes",
    "effort_cv", "call", "call_share", "effort_distribution",
)  # fmt: skip
_ROUTING = (
    "policy", "reoptimize_minutes", "dispatch_minutes", "time_limit_s", "patience_minutes",
    "max_moves",
)  # fmt: skip
_CAPABILITY = (
    "id", "name", "requirements", "call_minutes", "buffer_minutes", "min_notice_minutes",
    "horizon_days", "horizon_minutes", "granularity_minutes", "reserve",
)  # fmt: skip


@dataclass
class _Org:
    """What entries are checked against while the baseline is read."""

    skills: list[str]
    teams: list[str]
    capabilities: list[str]
    zone: ZoneInfo

    def team(self, at: At, value: object) -> str:
        team = text(at, value)
        if team not in self.teams:
            at.fail(f"unknown team {team!r} (the baseline's teams: {', '.join(self.teams)})")
        return team

    def call(self, at: At, value: object) -> str | None:
        call = opt_text(at, value)
        if call is not None and call not in self.capabilities:
            at.fail(f"unknown capability {call!r} (the baseline's: {', '.join(self.capabilities)})")
        return call


def _agent(org: _Org, at: At, row: Mapping[str, Any], default_zone: str) -> AgentPlan:
    data = mapping(at, row, _AGENT, required=("id", "team"))
    timezone = (
        default_zone
        if _blank(data.get("timezone"))
        else zone_name(at.child("timezone"), data["timezone"])
    )
    return build(
        at,
        lambda: AgentPlan(
            id=text(at.child("id"), data["id"]),
            team=org.team(at.child("team"), data["team"]),
            skills=levels(at.child("skills"), data.get("skills"), org.skills),
            shifts=shift_patterns(at.child("shifts"), data.get("shifts") or []),
            timezone=timezone,
            capacity=10
            if _blank(data.get("capacity"))
            else integer(at.child("capacity"), data["capacity"], maximum=10_000),
            shrinkage=0.0
            if _blank(data.get("shrinkage"))
            else number(at.child("shrinkage"), data["shrinkage"], maximum=1.0),
            channel_capacity=counts(at.child("channel_capacity"), data.get("channel_capacity")),
        ),
    )


def _effort(at: At, value: object) -> int:
    """Whole minutes; a helpdesk's decimal minutes (``12.5``) round to the nearest, at least 1."""
    return max(1, round(number(at, value, strict=True, maximum=7 * 24 * 60)))


def _ticket(org: _Org, at: At, row: Mapping[str, Any], index: int) -> TicketSpec:
    data = mapping(at, row, _TICKET, required=("created", "channel", "team"))
    return build(
        at,
        lambda: TicketSpec(
            id=f"h{index + 1}" if _blank(data.get("id")) else text(at.child("id"), data["id"]),
            created_at=moment(at.child("created"), data["created"], org.zone),
            team=org.team(at.child("team"), data["team"]),
            channel=text(at.child("channel"), data["channel"]),
            required_skills=levels(at.child("skills"), data.get("skills"), org.skills),
            priority=Priority.NORMAL
            if _blank(data.get("priority"))
            else priority(at.child("priority"), data["priority"]),
            effort_minutes=30
            if _blank(data.get("effort_minutes"))
            else _effort(at.child("effort_minutes"), data["effort_minutes"]),
            first_response_at=opt_moment(
                at.child("first_response_at"), data.get("first_response_at"), org.zone
            ),
            resolved_at=opt_moment(at.child("resolved_at"), data.get("resolved_at"), org.zone),
            call=org.call(at.child("call"), data.get("call")),
            handle_minutes=None
            if _blank(data.get("handle_minutes"))
            else number(
                at.child("handle_minutes"), data["handle_minutes"], strict=True, maximum=7 * 24 * 60
            ),
        ),
    )


def _volume(org: _Org, at: At, row: Mapping[str, Any]) -> VolumeRow:
    data = mapping(at, row, _VOLUME, required=("team", "channel", "hour", "per_hour"))

    def opt(name: str, default: float, **kw: Any) -> float:
        raw = data.get(name)
        return default if _blank(raw) else number(at.child(name), raw, **kw)

    return build(
        at,
        lambda: VolumeRow(
            team=org.team(at.child("team"), data["team"]),
            channel=text(at.child("channel"), data["channel"]),
            hour=integer(at.child("hour"), data["hour"], maximum=23),
            per_hour=plain_number(number(at.child("per_hour"), data["per_hour"])),
            required_skills=levels(at.child("skills"), data.get("skills"), org.skills),
            weekday=opt_weekday(at.child("weekday"), data.get("weekday")),
            priority=Priority.NORMAL
            if _blank(data.get("priority"))
            else priority(at.child("priority"), data["priority"]),
            effort_minutes=opt("effort_minutes", 30.0, strict=True, maximum=7 * 24 * 60),
            effort_cv=opt("effort_cv", 0.0, maximum=10),
            call=org.call(at.child("call"), data.get("call")),
            call_share=opt("call_share", 0.0, maximum=1.0),
            effort_distribution="lognormal"
            if _blank(data.get("effort_distribution"))
            else text(at.child("effort_distribution"), data["effort_distribution"]),
        ),
    )


def _rows(
    at: At,
    value: object,
    base_dir: Path | None,
    *,
    required: Sequence[str],
    optional: Sequence[str],
) -> Iterator[tuple[At, Mapping[str, Any]]]:
    """The entries of a table given inline (a list) or as a CSV path relative to ``base_dir``."""
    if isinstance(value, str):
        if base_dir is None:
            at.fail("inline data cannot reference a file; give the entries inline")
        path = base_dir / value
        if not path.is_file():
            at.fail(f"no such file {str(path)!r}")
        table = read_table(path, required=required, optional=optional)
        for line, cells in table.rows:
            row_at = CellAt(table.source, line)
            yield row_at, {k: v for k, v in cells.items() if v != ""}
        return
    for i, item in enumerate(sequence(at, value)):
        yield at.child(i), item


def _skill(at: At, value: object) -> Skill:
    if isinstance(value, str):
        return build(at, lambda: Skill(id=value))
    data = mapping(at, value, ("id", "name", "kind"), required=("id",))
    kind = data.get("kind", "skill")
    if kind not in [k.value for k in SkillKind]:
        at.child("kind").fail(f"must be one of {', '.join(k.value for k in SkillKind)}")
    return build(
        at,
        lambda: Skill(
            id=text(at.child("id"), data["id"]), name=str(data.get("name") or ""), kind=kind
        ),
    )


def _team(at: At, value: object) -> Team:
    if isinstance(value, str):
        return build(at, lambda: Team(id=value))
    data = mapping(at, value, ("id", "name", "scope"), required=("id",))
    scope = data.get("scope")
    if scope is not None and scope not in [s.value for s in TeamScope]:
        at.child("scope").fail(f"must be one of {', '.join(s.value for s in TeamScope)}")
    return build(
        at,
        lambda: Team(
            id=text(at.child("id"), data["id"]), name=str(data.get("name") or ""), scope=scope
        ),
    )


def _unique(at: At, items: Sequence[Any], what: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            at.child(i).fail(f"duplicate {what} {item.id!r}")
        seen.add(item.id)


def _sla(org: _Org, at: At, value: object) -> SlaTarget:
    data = mapping(
        at,
        value,
        ("priority", "channel", "first_response_minutes", "resolution_minutes"),
        required=("priority",),
    )

    def minutes(name: str) -> int | None:
        raw = data.get(name)
        if _blank(raw):
            return None
        return integer(at.child(name), raw, minimum=1, maximum=365 * 24 * 60)

    return build(
        at,
        lambda: SlaTarget(
            priority=priority(at.child("priority"), data["priority"]),
            first_response_minutes=minutes("first_response_minutes"),
            resolution_minutes=minutes("resolution_minutes"),
            channel=opt_text(at.child("channel"), data.get("channel")),
        ),
    )


def routing(at: At, value: object, base: Routing | None = None) -> Routing:
    """A routing section (or just a policy name); fields not given keep ``base``'s."""
    base = base or Routing()
    if isinstance(value, str):
        value = {"policy": value}
    data = mapping(at, value, _ROUTING)
    policy = base.policy
    if "policy" in data:
        policy = text(at.child("policy"), data["policy"])
        if policy not in ROUTING_POLICIES:
            at.child("policy").fail(f"must be one of {', '.join(ROUTING_POLICIES)}, got {policy!r}")
    patience = base.patience_minutes
    if "patience_minutes" in data:
        raw = data["patience_minutes"]
        patience = (
            None
            if _blank(raw)
            else plain_number(number(at.child("patience_minutes"), raw, strict=True))
        )
    max_moves = base.max_moves
    if "max_moves" in data:
        raw = data["max_moves"]
        max_moves = None if _blank(raw) else integer(at.child("max_moves"), raw, maximum=MAX_MOVES)
    return build(
        at,
        lambda: Routing(
            policy=policy,
            reoptimize_minutes=integer(
                at.child("reoptimize_minutes"),
                data.get("reoptimize_minutes", base.reoptimize_minutes),
                minimum=1,
                maximum=7 * 24 * 60,
            ),
            dispatch_minutes=integer(
                at.child("dispatch_minutes"),
                data.get("dispatch_minutes", base.dispatch_minutes),
                minimum=1,
                maximum=24 * 60,
            ),
            time_limit_s=number(
                at.child("time_limit_s"), data.get("time_limit_s", base.time_limit_s), strict=True
            ),
            patience_minutes=patience,
            max_moves=max_moves,
        ),
    )


def _capability(org: _Org, at: At, value: object) -> Capability:
    data = mapping(at, value, _CAPABILITY, required=("id",))
    if "horizon_days" in data and "horizon_minutes" in data:
        at.child("horizon_minutes").fail("give horizon_days or horizon_minutes, not both")
    horizon = timedelta(days=14)
    if "horizon_days" in data:
        horizon = timedelta(
            days=number(at.child("horizon_days"), data["horizon_days"], strict=True)
        )
    elif "horizon_minutes" in data:
        horizon = timedelta(
            minutes=number(at.child("horizon_minutes"), data["horizon_minutes"], strict=True)
        )

    def whole(name: str, default: int, minimum: int = 0) -> int:
        return integer(at.child(name), data.get(name, default), minimum=minimum, maximum=24 * 60)

    return build(
        at,
        lambda: Capability(
            id=text(at.child("id"), data["id"]),
            name=str(data.get("name") or ""),
            requirements=levels(at.child("requirements"), data.get("requirements"), org.skills),
            call_minutes=whole("call_minutes", 30, 1),
            buffer_minutes=whole("buffer_minutes", 0),
            min_notice=timedelta(
                minutes=number(at.child("min_notice_minutes"), data.get("min_notice_minutes", 60))
            ),
            horizon=horizon,
            granularity_minutes=whole("granularity_minutes", 15, 1),
            reserve=number(at.child("reserve"), data.get("reserve", 0.0), maximum=1.0),
        ),
    )


def _history_scale(org: _Org, at: At, value: object) -> HistoryScale:
    data = mapping(at, value, ("factor", "team", "channel"), required=("factor",))
    team = None if _blank(data.get("team")) else org.team(at.child("team"), data["team"])
    return build(
        at,
        lambda: HistoryScale(
            factor=plain_number(number(at.child("factor"), data["factor"], strict=True)),
            team=team,
            channel=opt_text(at.child("channel"), data.get("channel")),
        ),
    )


def _demand(
    org: _Org, at: At, value: object, base_dir: Path | None
) -> tuple[Demand, dict[str, list[At]]]:
    data = mapping(at, value, ("history", "volume", "scale", "shape", "history_scale"))
    if _blank(data.get("history")) and _blank(data.get("volume")):
        at.fail("needs a ticket history, volume profiles, or both")
    sites: dict[str, list[At]] = {"history": [], "volume": []}
    history = []
    if not _blank(data.get("history")):
        for i, (row_at, row) in enumerate(
            _rows(
                at.child("history"),
                data["history"],
                base_dir,
                required=("created", "channel", "team", "skills", "priority", "effort_minutes"),
                optional=("id", "first_response_at", "resolved_at", "call"),
            )
        ):
            history.append(_ticket(org, row_at, row, i))
            sites["history"].append(row_at)
        ids: dict[str, int] = {}
        for i, ticket in enumerate(history):
            if ticket.id in ids:
                sites["history"][i].child("id").fail(f"duplicate ticket id {ticket.id!r}")
            ids[ticket.id] = i
    volume = []
    if not _blank(data.get("volume")):
        for row_at, row in _rows(
            at.child("volume"),
            data["volume"],
            base_dir,
            required=("team", "channel", "hour", "per_hour"),
            optional=_VOLUME[4:],
        ):
            volume.append(_volume(org, row_at, row))
            sites["volume"].append(row_at)
    shape: dict[int, float] = {}
    shape_at = at.child("shape")
    raw_shape = data.get("shape") or {}
    if not isinstance(raw_shape, Mapping):
        shape_at.fail(f"must map a local hour (0-23) to a factor, got {raw_shape!r}")
    for hour, factor in raw_shape.items():
        h_at = shape_at.child(str(hour))
        shape[integer(h_at, hour, maximum=23)] = number(h_at, factor)
    rules_at = at.child("history_scale")
    rules = [
        _history_scale(org, rules_at.child(i), item)
        for i, item in enumerate(sequence(rules_at, data.get("history_scale") or []))
    ]
    demand = build(
        at,
        lambda: Demand(
            history=tuple(history),
            volume=tuple(volume),
            scale=plain_number(
                number(at.child("scale"), data.get("scale", 1.0), strict=True, maximum=100)
            ),
            shape=shape,
            history_scale=tuple(rules),
        ),
    )
    return demand, sites


def baseline_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "<inline>",
    base_dir: Path | str | None = None,
    lines: Mapping[tuple[str, ...], int]
    | Callable[[], Mapping[tuple[str, ...], int]]
    | None = None,
) -> World:
    """The world a baseline mapping describes (the format of ``scenarios/examples/baseline.yaml``).

    ``base_dir`` resolves CSV references (None: everything must be inline); ``lines`` maps key
    paths to lines of ``source`` (or is a function returning that map, called only when an error
    needs a line: :func:`yaml_lines`) so errors point at them."""
    doc = Doc(source, lines if lines is not None else {})
    at = doc.at()
    base = Path(base_dir) if base_dir is not None else None
    data = mapping(at, data, _TOP, required=("name", "start", "days", "skills", "teams", "agents"))
    timezone = zone_name(at.child("timezone"), data.get("timezone", "UTC"))
    skills_at = at.child("skills")
    skills = [
        _skill(skills_at.child(i), s) for i, s in enumerate(sequence(skills_at, data["skills"]))
    ]
    _unique(skills_at, skills, "skill")
    teams_at = at.child("teams")
    teams = [_team(teams_at.child(i), t) for i, t in enumerate(sequence(teams_at, data["teams"]))]
    _unique(teams_at, teams, "team")
    caps_at = at.child("capabilities")
    org = _Org([s.id for s in skills], [t.id for t in teams], [], ZoneInfo(timezone))
    capabilities = [
        _capability(org, caps_at.child(i), c)
        for i, c in enumerate(sequence(caps_at, data.get("capabilities") or []))
    ]
    _unique(caps_at, capabilities, "capability")
    org.capabilities = [c.id for c in capabilities]
    agents_at = at.child("agents")
    agents, agent_sites = [], []
    for row_at, row in _rows(
        agents_at, data["agents"], base, required=("id", "team"), optional=_AGENT[2:]
    ):
        agents.append(_agent(org, row_at, row, timezone))
        agent_sites.append(row_at)
    seen: set[str] = set()
    for agent, site in zip(agents, agent_sites, strict=True):
        if agent.id in seen:
            site.child("id").fail(f"duplicate agent {agent.id!r}")
        seen.add(agent.id)
    demand, sites = _demand(org, at.child("demand"), data.get("demand"), base)
    sites["agents"] = agent_sites
    sla_at = at.child("sla")
    sla = [
        _sla(org, sla_at.child(i), s) for i, s in enumerate(sequence(sla_at, data.get("sla") or []))
    ]
    interval = integer(at.child("interval_minutes"), data.get("interval_minutes", 30))
    if interval not in INTERVALS:
        at.child("interval_minutes").fail(f"must be one of 15, 30, 60, got {interval}")
    try:
        return World(
            name=text(at.child("name"), data["name"]),
            start=moment(at.child("start"), data["start"], ZoneInfo(timezone)),
            days=integer(at.child("days"), data["days"], minimum=1, maximum=366),
            skills=tuple(skills),
            teams=tuple(teams),
            agents=tuple(agents),
            demand=demand,
            sla=tuple(sla),
            routing=routing(at.child("routing"), data.get("routing") or {}),
            capabilities=tuple(capabilities),
            timezone=timezone,
            interval_minutes=interval,
        )
    except ProblemError as exc:
        path = problem_path(exc.field)
        if path and path[0] in sites and len(path) > 1 and isinstance(path[1], int):
            site = sites[str(path[0])][path[1]]
            for part in path[2:]:
                site = site.child(part)
            raise InputError(site.source, site.line, site.field, exc.reason) from None
        if path and path[0] == "history_scale":
            at.child("demand").problem(exc)
        at.problem(exc)


def load_baseline(path: Path | str) -> World:
    """The world of a baseline YAML file (CSV tables relative to it)."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), None, "<file>", f"cannot read: {exc.strerror or exc}") from None
    data, doc = yaml_document(raw, str(path))
    if not isinstance(data, Mapping):
        raise InputError(
            str(path), 1, "<document>", "a baseline is a YAML mapping (name:, start:, ...)"
        )
    return baseline_from_dict(data, source=str(path), base_dir=path.parent, lines=lambda: doc.lines)


# --- back to plain data --------------------------------------------------------------------


def _levels_dict(value: Mapping[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in value.items()}


def _minutes(value: timedelta) -> float | int:
    return plain_number(value.total_seconds() / 60)


def world_to_dict(world: World) -> dict[str, Any]:
    """The baseline mapping of ``world``, everything inline, YAML- and JSON-safe (strings,
    numbers, lists, mappings): ``baseline_from_dict(world_to_dict(w)) == w``."""
    demand = world.demand
    out: dict[str, Any] = {
        "name": world.name,
        "start": moment_text(world.start),
        "days": world.days,
        "timezone": world.timezone,
        "interval_minutes": world.interval_minutes,
        "skills": [
            {"id": s.id, **({"name": s.name} if s.name else {}), "kind": s.kind.value}
            for s in world.skills
        ],
        "teams": [
            {
                "id": t.id,
                **({"name": t.name} if t.name else {}),
                **({"scope": t.scope.value} if t.scope is not None else {}),
            }
            for t in world.teams
        ],
        "agents": [
            {
                "id": a.id,
                "team": a.team,
                "skills": _levels_dict(a.skills),
                "timezone": a.timezone,
                "capacity": a.capacity,
                "shrinkage": a.shrinkage,
                "channel_capacity": _levels_dict(a.channel_capacity),
                "shifts": [shift_dict(p) for p in a.shifts],
            }
            for a in world.agents
        ],
        "demand": {
            "history": [
                {
                    "id": t.id,
                    "created": moment_text(t.created_at),
                    "channel": t.channel,
                    "team": t.team,
                    "skills": _levels_dict(t.required_skills),
                    "priority": t.priority.name.lower(),
                    "effort_minutes": t.effort_minutes,
                    **(
                        {"first_response_at": moment_text(t.first_response_at)}
                        if t.first_response_at
                        else {}
                    ),
                    **({"resolved_at": moment_text(t.resolved_at)} if t.resolved_at else {}),
                    **({"call": t.call} if t.call is not None else {}),
                    **(
                        {"handle_minutes": t.handle_minutes} if t.handle_minutes is not None else {}
                    ),
                }
                for t in demand.history
            ],
            "volume": [
                {
                    "team": v.team,
                    "channel": v.channel,
                    "hour": v.hour,
                    "per_hour": v.per_hour,
                    "skills": _levels_dict(v.required_skills),
                    **({"weekday": WEEKDAYS[v.weekday]} if v.weekday is not None else {}),
                    "priority": v.priority.name.lower(),
                    "effort_minutes": v.effort_minutes,
                    "effort_cv": v.effort_cv,
                    **({"call": v.call} if v.call is not None else {}),
                    "call_share": v.call_share,
                    "effort_distribution": v.effort_distribution,
                }
                for v in demand.volume
            ],
            "scale": demand.scale,
            "shape": {int(h): f for h, f in demand.shape.items()},
            "history_scale": [
                {
                    "factor": r.factor,
                    **({"team": r.team} if r.team is not None else {}),
                    **({"channel": r.channel} if r.channel is not None else {}),
                }
                for r in demand.history_scale
            ],
        },
        "sla": [
            {
                "priority": s.priority.name.lower(),
                **({"channel": s.channel} if s.channel is not None else {}),
                **(
                    {"first_response_minutes": s.first_response_minutes}
                    if s.first_response_minutes is not None
                    else {}
                ),
                **(
                    {"resolution_minutes": s.resolution_minutes}
                    if s.resolution_minutes is not None
                    else {}
                ),
            }
            for s in world.sla
        ],
        "routing": {
            "policy": world.routing.policy,
            "reoptimize_minutes": world.routing.reoptimize_minutes,
            "dispatch_minutes": world.routing.dispatch_minutes,
            "time_limit_s": world.routing.time_limit_s,
            "patience_minutes": world.routing.patience_minutes,
            "max_moves": world.routing.max_moves,
        },
        "capabilities": [
            {
                "id": c.id,
                **({"name": c.name} if c.name else {}),
                "requirements": _levels_dict(c.requirements),
                "call_minutes": c.call_minutes,
                "buffer_minutes": c.buffer_minutes,
                "min_notice_minutes": _minutes(c.min_notice),
                **(
                    {"horizon_days": c.horizon.days}
                    if c.horizon == timedelta(days=c.horizon.days)
                    else {"horizon_minutes": _minutes(c.horizon)}
                ),
                "granularity_minutes": c.granularity_minutes,
                "reserve": c.reserve,
            }
            for c in world.capabilities
        ],
    }
    return out


# Characters JSON leaves as they are but YAML reads as line breaks.
_YAML_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _flow(row: Mapping[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False).translate(_YAML_BREAKS)


def dump_baseline(world: World) -> str:
    """``world`` as baseline YAML text (everything inline): :func:`load_baseline` reads it back
    equal.

    The big tables (agents, history, volume) are written one entry a line, each a flow mapping
    in JSON syntax (which YAML reads as it is): a block-style dump of a 50,000-ticket export is
    ten times slower to write and read, and no easier to look through."""
    data = world_to_dict(world)
    out: list[str] = [EXPORT_MARKER]

    def block(value: Mapping[str, Any], indent: str) -> None:
        text = yaml.dump(
            dict(value), Dumper=_SafeDumper, sort_keys=False, allow_unicode=True, width=100
        )
        out.extend(indent + row for row in text.splitlines())

    def table(key: str, rows: Sequence[Mapping[str, Any]], indent: str) -> None:
        if not rows:
            out.append(f"{indent}{key}: []")
            return
        out.append(f"{indent}{key}:")
        out.extend(f"{indent}  - {_flow(row)}" for row in rows)

    for key, value in data.items():
        if key == "agents":
            table(key, value, "")
        elif key == "demand":
            out.append("demand:")
            for sub, part in value.items():
                if sub in ("history", "volume"):
                    table(sub, part, "  ")
                else:
                    block({sub: part}, "  ")
        else:
            block({key: value}, "")
    return "\n".join(out) + "\n"
