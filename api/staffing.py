"""``switchboard staffing erlang``: agents for a live-call service level, by Erlang C or A.

The planner's inputs are the words of a WFM sheet: calls per interval, the interval (``30m``),
average handling time, a target written ``80/20`` (80 % answered within 20 s), shrinkage and an
occupancy cap; with ``--patience`` callers hang up (Erlang A) and abandonment is shown. The
formulas are :mod:`scenarios.erlang`; this module parses and prints. The argument parsers here
raise :class:`argparse.ArgumentTypeError`, so a bad value is argparse's usage error (exit 2)
naming the option.
"""

from __future__ import annotations

import argparse
import math
import re

from rich.console import Console
from rich.table import Table

from scenarios.erlang import Staffing, agents_needed, erlang_a, service_level
from scenarios.erlang import asa as erlang_c_asa
from scenarios.erlang import occupancy as erlang_c_occupancy

_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h)?\s*$", re.IGNORECASE)


def _duration(text: str, *, bare_unit: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a number with s, m or h (a bare number is {bare_unit})"
        )
    value = float(match.group(1)) * _UNITS[(match.group(2) or bare_unit[0]).lower()]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be longer than 0")
    return value


def parse_interval(text: str) -> float:
    """``30m``, ``1h``, ``900s`` or minutes (``30``) -> seconds."""
    return _duration(text, bare_unit="minutes")


def parse_seconds(text: str) -> float:
    """``180``, ``180s``, ``3m`` -> seconds (a bare number is seconds)."""
    return _duration(text, bare_unit="seconds")


def parse_calls(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of calls") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"calls must be a number >= 0, not {text!r}")
    return value


def parse_target(text: str) -> tuple[float, float]:
    """``80/20`` (or ``80%/20s``, ``0.8/20``) -> (0.8, 20.0): a share answered within seconds."""
    match = re.match(r"^\s*(\d+(?:\.\d*)?)\s*(%?)\s*/\s*(\d+(?:\.\d*)?)\s*s?\s*$", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a target: write PERCENT/SECONDS, e.g. 80/20 (80 % within 20 s)"
        )
    share = float(match.group(1))
    if match.group(2) or share > 1:
        share /= 100.0
    if not 0 < share < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the service level must be above 0 and below 100 %"
        )
    return share, float(match.group(3))


def _fraction(text: str, what: str, *, allow_zero: bool, allow_one: bool) -> float:
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None
    if percent or value > 1:
        value /= 100.0
    low_ok = value >= 0 if allow_zero else value > 0
    high_ok = value <= 1 if allow_one else value < 1
    if not (math.isfinite(value) and low_ok and high_ok):
        low = "at least 0 %" if allow_zero else "above 0 %"
        bounds = f"{low} and {'at most' if allow_one else 'below'} 100 %"
        raise argparse.ArgumentTypeError(f"{text!r}: the {what} must be {bounds}")
    return value


def parse_shrinkage(text: str) -> float:
    """``0.3`` or ``30%`` -> 0.3 (from 0 to below 100 %)."""
    return _fraction(text, "shrinkage", allow_zero=True, allow_one=False)


def parse_occupancy(text: str) -> float:
    """``0.85`` or ``85%`` -> 0.85 (above 0, up to 100 %)."""
    return _fraction(text, "occupancy cap", allow_zero=False, allow_one=True)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _secs(x: float) -> str:
    return "∞" if math.isinf(x) else f"{x:.1f} s"


def run_erlang(args: argparse.Namespace, *, console: Console | None = None) -> int:
    console = console or Console()
    share, target_s = args.target
    calls, interval_s, aht_s, patience = args.calls, args.interval, args.aht, args.patience
    try:
        s = agents_needed(
            calls,
            interval_s,
            aht_s,
            share,
            target_s,
            max_occupancy=args.max_occupancy,
            shrinkage=args.shrinkage,
            patience_s=patience,
        )
    except ValueError as exc:
        console.print(f"switchboard staffing erlang: error: {exc}", style="red")
        return 2
    model = "Erlang C" if patience is None else f"Erlang A (mean patience {patience:g} s)"
    console.print(
        f"{model}: {calls:g} calls per {interval_s / 60:g} min, AHT {aht_s:g} s "
        f"({s.erlangs:.2f} Erlangs offered); target {_pct(share)} within {target_s:g} s"
        + (f", occupancy at most {_pct(args.max_occupancy)}" if args.max_occupancy else "")
        + f"; shrinkage {_pct(args.shrinkage)}"
    )
    console.print(_summary(s, patience is not None))
    if args.range:
        console.print(_range_table(s.agents, args, patience))
    return 0


def _summary(s: Staffing, abandonment: bool) -> Table:
    table = Table(title="Staffing")
    for column in ("agents", "scheduled", "service level", "ASA", "occupancy"):
        table.add_column(column, justify="right")
    row = [
        str(s.agents),
        str(s.scheduled),
        _pct(s.service_level),
        _secs(s.asa),
        _pct(s.occupancy),
    ]
    if abandonment:
        table.add_column("abandoned", justify="right")
        row.append(_pct(s.abandonment))
    table.add_row(*row)
    return table


def _range_table(agents: int, args: argparse.Namespace, patience: float | None) -> Table:
    share, target_s = args.target
    table = Table(title=f"Service level around {agents} agents")
    for column in ("agents", "service level", "ASA", "occupancy"):
        table.add_column(column, justify="right")
    if patience is not None:
        table.add_column("abandoned", justify="right")
    for n in range(max(1, agents - 3), agents + 4):
        if patience is None:
            sl = service_level(n, args.calls, args.interval, args.aht, target_s)
            cells = [
                _pct(sl),
                _secs(erlang_c_asa(n, args.calls, args.interval, args.aht)),
                _pct(erlang_c_occupancy(n, args.calls, args.interval, args.aht)),
            ]
        else:
            r = erlang_a(n, args.calls, args.interval, args.aht, patience, target_s)
            sl = r.service_level
            cells = [_pct(sl), _secs(r.asa), _pct(r.occupancy), _pct(r.abandonment)]
        mark = " ←" if n == agents else ""
        style = "bold" if n == agents else ("dim" if sl < share else None)
        table.add_row(f"{n}{mark}", *cells, style=style)
    return table
