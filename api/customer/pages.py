"""What the customer's pages show, as plain values for the templates, and the rendering.

The templates get strings, never rows: what a page may say of a link is what
:func:`api.links.service.view` answers (no agent's id, calendar or name before admission), turned
here into words in the customer's zone and locale. Dates and times are written by Babel (CLDR)
in the link's locale (``?lang=`` may override it); the rest of the text is English, so the page
says ``lang="en"`` and every localized date says its own language (WCAG 3.1.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates

from api.db.models import CallNote
from api.links.service import Phase, View
from solver.capability import Slot

UI_LANG = "en"  # the language of the pages' own words

# Offered in the zone picker, beside the link's zone and the one shown.
COMMON_ZONES = (
    "UTC",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Africa/Lagos",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Mexico_City",
    "America/New_York",
    "America/Sao_Paulo",
    "America/Toronto",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Madrid",
    "Europe/Paris",
    "Europe/Warsaw",
    "Pacific/Auckland",
)

# Why a call was cancelled, in the customer's words.
CANCEL_WORDS: dict[CallNote | None, str] = {
    CallNote.TICKET_SOLVED: "your ticket was solved, so the call is no longer needed",
    CallNote.TICKET_CLOSED: "your ticket was closed",
    CallNote.REQUESTED: "the support team cancelled it",
    CallNote.RESCHEDULED: "it was moved to another time",
    CallNote.CUSTOMER: "you cancelled it",
    None: "it was cancelled",
}


@cache
def environment() -> jinja2.Environment:
    """The templates (built on first use, not at import), every value autoescaped."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("api.customer", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(ui_lang=UI_LANG, **context)


# --------------------------------------------------------------------------- zone and locale


def zone_of(name: str) -> ZoneInfo | None:
    """The IANA zone ``name``, or None when there is none by that name."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def locale_of(tag: str) -> Locale | None:
    if not tag or len(tag) > 35:
        return None
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def lang_tag(locale: Locale) -> str:
    """BCP 47 for the ``lang`` attribute: ``pt-BR`` of Babel's ``pt_BR``."""
    return str(locale).replace("_", "-")


@dataclass(frozen=True, slots=True)
class Shown:
    """The zone and locale a page is written in, and what was wrong with the asked ones."""

    tz: str
    zone: ZoneInfo
    locale: Locale
    lang_override: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def lang(self) -> str:
        return lang_tag(self.locale)

    def day(self, at: datetime) -> str:
        return _day_label(str(self.locale), at.astimezone(self.zone).date())

    def time(self, at: datetime) -> str:
        local = at.astimezone(self.zone)
        return _time_label(str(self.locale), local.hour, local.minute)

    def when(self, at: datetime) -> str:
        return f"{self.day(at)}, {self.time(at)}"

    def zone_label(self, now: datetime) -> str:
        """``Europe/Berlin, GMT+01:00`` at ``now``."""
        gmt = babel_dates.get_timezone_gmt(now.astimezone(self.zone), locale=self.locale)
        return f"{self.tz}, {gmt}"


# A picker writes up to a few hundred times and a week of days: Babel's formatting is a large
# share of a picker page's CPU, and its answers depend only on the locale and the wall time.
@lru_cache(maxsize=8192)
def _day_label(locale: str, day: date) -> str:
    return babel_dates.format_date(day, "full", locale=locale)


@lru_cache(maxsize=8192)
def _time_label(locale: str, hour: int, minute: int) -> str:
    return babel_dates.format_time(time(hour, minute), "short", locale=locale)


def shown(link_tz: str, link_locale: str, tz: str | None, lang: str | None) -> Shown:
    """The zone (``tz`` or the link's) and locale (``lang`` or the link's) of a page; an
    unknown ``tz`` or ``lang`` is reported (and the link's used), never silently dropped."""
    errors: list[str] = []
    name = link_tz
    if tz is not None:
        if zone_of(tz) is None:
            errors.append(f"Unknown time zone {tz[:64]!r}: times are shown in {link_tz}.")
        else:
            name = tz
    zone = zone_of(name) or ZoneInfo("UTC")
    locale = locale_of(link_locale) or Locale.parse("en")
    override = None
    if lang is not None:
        asked = locale_of(lang)
        if asked is None:
            errors.append(f"Unknown language {lang[:35]!r}: dates are written in {locale}.")
        else:
            locale, override = asked, lang
    return Shown(tz=name, zone=zone, locale=locale, lang_override=override, errors=tuple(errors))


def zones(*current: str) -> list[str]:
    return sorted({*COMMON_ZONES, *current})


# --------------------------------------------------------------------------- the picker


def iso_utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Choice:
    id: str
    value: str  # the start, ISO 8601 UTC
    label: str  # the time in the customer's zone


@dataclass(frozen=True, slots=True)
class Day:
    legend: str
    choices: list[Choice]


@dataclass(frozen=True, slots=True)
class Picker:
    action: str
    form_token: str
    tz: str
    button: str
    days: list[Day]
    alternatives: list[Day] = field(default_factory=list)
    picked: str | None = None

    @property
    def empty(self) -> bool:
        return not self.days and not self.alternatives


def days(starts: Iterable[datetime], how: Shown, prefix: str) -> list[Day]:
    """``starts`` grouped by their day in the customer's zone, in order."""
    out: list[Day] = []
    current = None
    for n, start in enumerate(sorted(set(starts))):
        date = start.astimezone(how.zone).date()
        if date != current:
            out.append(Day(legend=how.day(start), choices=[]))
            current = date
        choice = Choice(id=f"{prefix}-{n}", value=iso_utc(start), label=how.time(start))
        out[-1].choices.append(choice)
    return out


def picker(
    *,
    action: str,
    form_token: str,
    how: Shown,
    slots: Sequence[Slot],
    alternatives: Sequence[Slot] = (),
    button: str = "Book this time",
    picked: str | None = None,
) -> Picker:
    """The open starts by day; ``alternatives`` (the nearest to a start just taken) first."""
    first = {s.start for s in alternatives}
    return Picker(
        action=action,
        form_token=form_token,
        tz=how.tz,
        button=button,
        days=days((s.start for s in slots if s.start not in first), how, "slot"),
        alternatives=days(first, how, "alt"),
        picked=picked,
    )


# --------------------------------------------------------------------------- the view


@dataclass(frozen=True, slots=True)
class Call:
    """The call as a page writes it."""

    when: str
    day: str
    time: str
    minutes: int
    opens: str | None


def call_words(view: View, how: Shown) -> Call | None:
    call = view.call
    if call is None:
        return None
    return Call(
        when=how.when(call.start_at),
        day=how.day(call.start_at),
        time=how.time(call.start_at),
        minutes=view.call_minutes,
        opens=None if view.room_opens_at is None else how.when(view.room_opens_at),
    )


ROOM_PHASES = frozenset({Phase.WAITING, Phase.ADMITTED, Phase.AT_RISK})


def status_json(view: View) -> dict[str, str]:
    """What the waiting room's event stream and ``/status`` say: the phase, and the join URL
    and agent's name only when :func:`~api.links.service.view` carries them (admitted)."""
    out = {"phase": view.phase.value}
    if view.phase is Phase.ADMITTED:
        if view.join_url is not None:
            out["join_url"] = view.join_url
        if view.agent_name is not None:
            out["agent_name"] = view.agent_name
    return out
