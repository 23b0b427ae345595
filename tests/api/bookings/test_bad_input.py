"""Bad input to booking and slot queries is a 4xx naming the field, never a 5xx, on SQLite and
PostgreSQL: dates at datetime's limits, numbers (which pydantic would read as Unix times), a
start outside the booking window (named and said in words), and whatever else a client sends
as ``start`` (a Hypothesis property)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.bookings.test_bookings import DAY, book, org, slots
from tests.api.conftest import As, assert_problem

EXTREMES = [
    "9999-12-31T23:59:00Z",
    "9999-12-31T23:59:00-14:00",
    "9999-01-04T10:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T10:00:00+01:00",
    "2200-01-01T00:01:00Z",
    "1969-12-31T23:59:00Z",
]


def test_a_start_at_datetimes_limits_is_a_422_naming_start(a: As) -> None:
    org(a)
    for start in EXTREMES:
        assert_problem(book(a, start=start), 422, "start")
        assert_problem(slots(a, **{"from": start}), 422, "query.from")
        assert_problem(slots(a, to=start), 422, "query.to")


def test_a_number_is_not_a_start(a: As) -> None:
    org(a)
    unix = int(datetime.fromisoformat(f"{DAY}09:00:00+00:00").timestamp())
    for start in (unix, float(unix), unix * 1000, "1772442000", True, None, [], {}):
        assert_problem(book(a, start=start), 422, "start")
    for raw in (str(unix), f"{unix}.5", "0"):
        assert_problem(slots(a, **{"from": raw}), 422, "query.from")
        assert_problem(slots(a, to=raw), 422, "query.to")


def test_a_start_outside_the_booking_window_is_named_and_said_in_words(a: As) -> None:
    """One hour's notice (it is 08:00 UTC) and the default 14-day horizon."""
    org(a)
    for start in (f"{DAY}09:30:00+01:00", "2026-04-01T10:00:00+02:00"):
        problem = assert_problem(book(a, start=start), 409, "start")
        assert problem["reason"]["rule"] == "outside_booking_window"
        said = problem["errors"][0]["reason"]
        assert said == problem["reason"]["detail"]
        assert "1 hour to 14 days ahead" in said, said
        assert "Mon 2 Mar 09:00" in said and "Mon 16 Mar 07:59 UTC" in said, said
        assert "day," not in said and ":00:00" not in said  # no raw timedeltas
    r = slots(a, **{"from": "2026-04-01T00:00:00Z", "to": "2026-04-02T00:00:00Z"})
    assert r.status_code == 200 and r.json()["reason"]["rule"] == "outside_booking_window"
    assert "14 days ahead" in r.json()["reason"]["detail"]


def _offsets() -> st.SearchStrategy[timezone]:
    return st.builds(
        timezone,
        st.timedeltas(
            min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
        ),
    )


STARTS: st.SearchStrategy[Any] = st.one_of(
    st.datetimes(timezones=_offsets()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive
    st.sampled_from(EXTREMES),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.booleans(),
    st.none(),
)
QUERY: st.SearchStrategy[str] = st.one_of(
    st.datetimes(timezones=_offsets()).map(lambda d: d.isoformat()),
    st.sampled_from(EXTREMES),
    st.integers().map(str),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=STARTS, lo=QUERY, hi=QUERY)
def test_no_start_ever_yields_a_server_error(a: As, start: Any, lo: str, hi: str) -> None:
    if a.get("/v1/capabilities/net").status_code != 200:
        org(a)
    r = book(a, start=start)
    assert r.status_code < 500, r.text
    assert r.status_code in (201, 409, 422), r.text
    for params in ({"from": lo}, {"to": hi}, {"from": lo, "to": hi}):
        r = slots(a, **params)
        assert r.status_code < 500, (params, r.text)
        assert r.status_code in (200, 422), (params, r.text)
