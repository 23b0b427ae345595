"""Where the browser tests' tools are and how they are driven: Debian's Chromium (through
Playwright's Python package, never a browser of its own), axe-core's bundle from npm, and
running axe in a page."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

# Headless, and nothing the browser would fetch or start on its own: the tests need no update,
# sync or component service (nor would this machine reach one), only the loopback server.
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
