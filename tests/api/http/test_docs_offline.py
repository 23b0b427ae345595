"""/docs and /redoc work offline: every script, style and icon they load is served by us,
from the installed fastapi-offline package, not fetched from a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.http import docs

_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


def _references(page: str) -> set[str]:
    found = {a or b for a, b in _REFERENCE.findall(page)}
    # Swagger UI's parameters are JSON in the page: the spec and the OAuth redirect.
    found |= set(re.findall(r'"(?:url|oauth2RedirectUrl)"\s*:\s*"([^"]+)"', page))
    # ReDoc names the spec in its tag.
    found |= set(re.findall(r"""spec-url\s*=\s*["']([^"']+)["']""", page))
    return found


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_reference_only_local_urls_and_each_loads(client: TestClient, path: str) -> None:
    r = client.get(path)  # no key: the docs are public
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "cdn." not in page and "fonts.googleapis" not in page
    assert not re.search(r"https?://", page), re.findall(r"https?://\S+", page)
    refs = _references(page)
    assert refs, page
    assets = [ref for ref in refs if ref.startswith(docs.ASSETS)]
    assert assets, refs
    for ref in refs:
        assert ref.startswith("/"), ref
        loaded = client.get(ref)
        assert loaded.status_code == 200, (ref, loaded.status_code)
        assert loaded.content, ref


def test_swagger_ui_does_not_call_the_public_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_assets_are_the_installed_packages_files(client: TestClient) -> None:
    directory = docs.assets_dir()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        served = client.get(f"{docs.ASSETS}/{name}")
        assert served.status_code == 200
        assert served.content == (Path(directory) / name).read_bytes()
    assert client.get(f"{docs.ASSETS}/nope.js").status_code == 404
