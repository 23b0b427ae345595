"""Smoke test of ``benchmarks.waiting_room``, so the customer pages' benchmark cannot rot
unnoticed: a tiny tenant on SQLite, the real app under uvicorn in a thread, every run with the
benchmark's own code and client, then the report. No timing is asserted; what is asserted is
what the figures mean: every view counted is a picker answered, every booking counted is a row
written through the customer's own link, and nothing failed."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.db.engine import make_engine
from api.db.models import Call, CallLink
from benchmarks import waiting_room as wr
from tests.browser.live import live_service


def test_both_runs_against_the_real_service(tmp_path: Path) -> None:
    url, tokens = wr.prepare("sqlite", tmp_path, n_agents=16, n_links=9, now=datetime.now(UTC))
    assert len(tokens) == len(set(tokens)) == 9
    with live_service(url) as live:
        asyncio.run(wr.warm_up(live.base, tokens[-1]))
        paced = asyncio.run(
            wr.run_customers(
                live.base,
                tokens[:3],
                backend="sqlite",
                mode=wr.PACED,
                ramp=0.2,
                think=0.05,
                views=2,
            )
        )
        burst = asyncio.run(
            wr.run_customers(
                live.base, tokens[3:6], backend="sqlite", mode=wr.BURST, ramp=0, think=0, views=3
            )
        )
        alone = asyncio.run(
            wr.run_customers(
                live.base, tokens[6:8], backend="sqlite", mode=wr.ALONE, ramp=0, think=0, views=1
            )
        )
    assert alone.picker == {"200": 2} and alone.booked == 2 and alone.failures() == "none"
    for run, views in ((paced, 2), (burst, 3)):
        assert run.errors == 0, (run.picker, run.booking)
        assert run.picker == {"200": 3 * views} and len(run.picker_ms) == 3 * views
        assert run.booked + run.taken == 3 == len(run.booking_ms), run.booking
        assert run.booked >= 1 and run.elapsed_s > 0
        assert run.load_before[0] >= 0 and run.load_after[0] >= 0
        assert run.picker_pct(50) <= run.picker_pct(99) <= run.picker_pct(100)

    engine = make_engine(live.settings)
    try:
        with engine.connect() as conn:
            calls = conn.scalar(
                select(func.count()).select_from(Call).where(Call.link_id.is_not(None))
            )
            used = conn.scalar(
                select(func.count()).select_from(CallLink).where(CallLink.booking_id.is_not(None))
            )
    finally:
        engine.dispose()
    assert calls == used == paced.booked + burst.booked + alone.booked

    table = wr.results_table([alone, paced, burst])
    assert table.row_count == 3
    assert wr.line(paced).startswith("sqlite paced, 3 customers: picker p50/p99 ")
    assert "target met" in wr.line(paced) or "target missed" in wr.line(paced)
    assert wr.line(burst).endswith("target no target")


def test_the_picker_form_reads_what_a_browser_would_post() -> None:
    page = b"""<form method="get"><select name="tz" id="tz"><option>UTC</option></select></form>
    <form method="post" action="/c/t/book">
      <fieldset><legend>Monday</legend>
        <input type="radio" name="start" id="s1" value="2026-03-02T09:00:00Z">
        <label for="s1">10:00</label>
        <input type="radio" name="start" id="s2" value="2026-03-02T09:15:00Z">
      </fieldset>
      <input type="hidden" name="form_token" value="abc.def">
      <input type="hidden" name="tz" value="America/New_York">
      <button type="submit" id="book">Book</button>
    </form>"""
    form = wr.PickerForm.read(page)
    assert form.starts == ["2026-03-02T09:00:00Z", "2026-03-02T09:15:00Z"]
    assert form.form_token == "abc.def" and form.tz == "America/New_York"
    assert wr.picker_path("tok", "America/New_York") == "/c/tok?tz=America%2FNew_York"


def test_the_command_line_takes_postgres_for_postgresql() -> None:
    assert wr.backends("sqlite,postgres") == ["sqlite", "postgresql"]
    assert wr.backends("postgresql") == ["postgresql"]
    with pytest.raises(argparse.ArgumentTypeError):
        wr.backends("mysql")
    assert wr.modes_list("alone,paced,burst") == [wr.ALONE, wr.PACED, wr.BURST]
    with pytest.raises(argparse.ArgumentTypeError):
        wr.modes_list("steady")
