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

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.db import migrate
from tests.browser.live import Live, live_service

ROOT = Path(__file__).resolve().parents[2]

# Headless, and nothing the browser would fetch or start on its own (this machine reaches no
# update or sync service; QUIC would bypass the loopback-only server anyway).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}  # an iPhone 12-15 in CSS pixels


def chromium_path() -> Path:
    return Path(os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium"))


def axe_path() -> Path:
    """axe-core's browser bundle: SWITCHBOARD_AXE_JS, or where ``make browser`` puts it in
    the venv running the tests."""
    default = Path(sys.prefix) / "node" / "node_modules" / "axe-core" / "axe.min.js"
    return Path(os.environ.get("SWITCHBOARD_AXE_JS", default))


def missing_browser_tools() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright's Python package is not installed (the dev extras bring it)"
    if not os.access(chromium_path(), os.X_OK):
        return f"no Chromium at {chromium_path()} (`make browser` installs Debian's, as root)"
    if not axe_path().is_file():
        return f"no axe-core at {axe_path()} (`make browser` installs it with npm)"
    return None


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


# --- axe-core ------------------------------------------------------------------------------

# WCAG 2.1 A and AA, and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
_AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html})),
  }));
}"""


def axe_violations(page: Any, name: str, artefacts: Path) -> list[dict[str, Any]]:
    """axe-core's violations on ``page`` as it is now (every impact), also written to
    ``artefacts/axe-<name>.json``. axe is evaluated through the DevTools protocol, which the
    page's Content-Security-Policy does not govern: the page itself still loads no script but
    its own."""
    page.evaluate(axe_path().read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(_AXE_RUN, AXE_TAGS)
    (artefacts / f"axe-{name}.json").write_text(json.dumps(found, indent=2), encoding="utf-8")
    return found


def serious(violations: list[dict[str, Any]]) -> list[str]:
    """The serious and critical violations, one readable line each."""
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


# --- the service ---------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The service on a fresh, migrated SQLite file."""
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    migrate.upgrade(url)
    with live_service(url) as running:
        yield running
