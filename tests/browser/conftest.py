"""What the real-browser tests share: Debian's Chromium driven by Playwright, axe-core, the
service under a real uvicorn on loopback with a clock the test can move (``live``, from
:mod:`tests.browser.live`), and the artefacts directory (screenshots, axe reports).

Chromium is the system's (``/usr/bin/chromium``, Debian's ``chromium`` package, installed by
``make browser``); Playwright only drives it (``executable_path``): its own browser downloads
(``playwright install``) are never used. axe-core is the npm package ``make browser`` installs
into the venv (``<venv>/node/node_modules/axe-core``). Without either, or without Playwright's
Python package, every test here skips with the reason, unless SWITCHBOARD_REQUIRE_BROWSER=1
(set by ``.ci/run``): then they fail. SWITCHBOARD_CHROMIUM and SWITCHBOARD_AXE_JS point
elsewhere; SWITCHBOARD_ARTEFACTS_DIR moves the artefacts (default ``tmp/artefacts``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.db import migrate
from tests.browser.live import Live, live_service
from tests.browser.tools import CHROMIUM_ARGS, chromium_path, missing_browser_tools

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for a test module. Not for the session: while Playwright's sync
    API is open, this thread counts as running an event loop, and ``asyncio.run`` elsewhere in
    the session (the benchmarks' smoke tests) would refuse to start."""
    reason = missing_browser_tools()
    if reason is not None:
        if os.environ.get("SWITCHBOARD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SWITCHBOARD_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artefacts() -> Path:
    where = Path(os.environ.get("SWITCHBOARD_ARTEFACTS_DIR", ROOT / "tmp" / "artefacts"))
    where.mkdir(parents=True, exist_ok=True)
    return where


# --- the service ---------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The service on a fresh, migrated SQLite file."""
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    migrate.upgrade(url)
    with live_service(url) as running:
        yield running
