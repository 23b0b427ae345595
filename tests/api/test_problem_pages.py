"""Every problem ``type`` URI resolves to a page that explains it (GET /problems/{slug}).

The slugs are enumerated from the code, not listed by hand: every ServiceError subclass (every
module of api imported first, so none is missed) and every other slug a module answers with
(``slug="..."`` literals, the HTTP-status map in api.errors).
"""

from __future__ import annotations

import html
import importlib
import pkgutil
import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

import api
from api.errors import PROBLEM_BASE, ServiceError
from api.problems.service import CATALOG
from tests.api.conftest import As, assert_problem

for _module in pkgutil.walk_packages(api.__path__, "api."):
    if ".migrations" not in _module.name:
        importlib.import_module(_module.name)


def _subclasses(cls: type[ServiceError]) -> set[type[ServiceError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


ERROR_CLASSES = sorted(_subclasses(ServiceError), key=lambda c: c.__qualname__)
_LITERAL = re.compile(r"""slug\s*=\s*["']([a-z0-9-]+)["']""")
_STATUS_MAP = re.compile(r"slugs\s*=\s*\{([^}]*)\}")
_FALLBACK = re.compile(r"""slugs\.get\([^,]+,\s*["']([a-z0-9-]+)["']\)""")


def _slugs_in_source() -> set[str]:
    found: set[str] = set()
    for path in Path(api.__file__).parent.rglob("*.py"):
        text = path.read_text("utf-8")
        for match in _LITERAL.finditer(text):
            found.add(match.group(1))
        found |= set(_FALLBACK.findall(text))
        for block in _STATUS_MAP.finditer(text):
            found |= set(re.findall(r""":\s*["']([a-z0-9-]+)["']""", block.group(1)))
    return found


SLUGS = sorted({c.slug for c in ERROR_CLASSES} | _slugs_in_source())


def test_the_enumeration_finds_the_known_kinds() -> None:
    assert {"invalid-input", "not-found", "slot-unavailable", "method-not-allowed"} <= set(SLUGS)
    assert {"internal", "http-error", "unsupported-media-type"} <= set(SLUGS)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__qualname__)
def test_every_error_class_has_its_page_with_its_title_and_status(cls: type[ServiceError]) -> None:
    entry = CATALOG.get(cls.slug)
    assert entry is not None, f"{cls.__qualname__}: no page for /problems/{cls.slug}"
    assert (entry.title, entry.status) == (cls.title, cls.status), cls


def test_every_page_is_of_a_slug_the_service_emits() -> None:
    assert set(CATALOG) == set(SLUGS)


@pytest.mark.parametrize("slug", SLUGS)
def test_every_problem_uri_resolves_without_a_key(client: TestClient, slug: str) -> None:
    r = client.get(PROBLEM_BASE + slug)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    entry = CATALOG[slug]
    assert f"<h1>{html.escape(entry.title)}</h1>" in page
    assert html.escape(entry.meaning) in page and html.escape(entry.fix) in page
    assert f"<code>{PROBLEM_BASE}{slug}</code>" in page
    if slug != "http-error":
        assert f"<dd>{entry.status}</dd>" in page


def test_a_real_answers_type_resolves_against_the_request_url(a: As, client: TestClient) -> None:
    r = a.get("/v1/teams/nope")
    problem = assert_problem(r, 404)
    url = urljoin(str(r.request.url), problem["type"])
    page = client.get(url)
    assert page.status_code == 200 and "<h1>Not found</h1>" in page.text


def test_the_index_links_every_page_and_an_unknown_slug_is_a_404(client: TestClient) -> None:
    index = client.get("/problems")
    assert index.status_code == 200
    for slug in CATALOG:
        assert f'href="{PROBLEM_BASE}{slug}"' in index.text
    assert_problem(client.get("/problems/no-such-thing"), 404)
