"""``/docs`` (Swagger UI) and ``/redoc``, served with no CDN: their scripts, styles and icon come
from the installed ``fastapi-offline`` package (MIT; it ships the swagger-ui and redoc dist
files), mounted at ``/docs/assets``. FastAPI's own pages load them from a CDN, so documentation
would not load on a network without one (or would leak a visit to a third party).

Swagger UI's validator badge is switched off too: it loads an image from a public validator.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS = "/docs"
REDOC = "/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
ASSETS = "/docs/assets"


def assets_dir() -> Path:
    """Where the installed package keeps swagger-ui-bundle.js, swagger-ui.css,
    redoc.standalone.js and favicon.png."""
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


def install(app: FastAPI) -> None:
    """Serve the documentation pages and their assets (build ``app`` with ``docs_url=None,
    redoc_url=None``: these replace FastAPI's)."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    title = app.title

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
