"""Where a calendar connection may point the service: the provider's own endpoints only, unless
the operator opened it up (``SWITCHBOARD_CALENDAR_CUSTOM_ENDPOINTS``; open outside production).
A tenant admin must not be able to make the service send requests to an internal host."""

from __future__ import annotations

from typing import Any

import pytest

from api.calendar_sync.service import endpoint_errors
from api.settings import Environment, Settings

STRONG = "x" * 40


def closed() -> Settings:
    return Settings(environment=Environment.PRODUCTION, secret_key=STRONG)


def fields(provider: str, settings: dict[str, Any], credentials: dict[str, Any], app: Settings):
    return [e.field for e in endpoint_errors(provider, settings, credentials, app)]


def test_production_refuses_endpoint_overrides_and_names_each() -> None:
    app = closed()
    assert not app.calendar_endpoints_open
    google = {"api_endpoint": "http://10.0.0.5/calendar/v3/", "token_uri": "http://10.0.0.5/t"}
    assert fields("google", google, {}, app) == ["settings.api_endpoint", "settings.token_uri"]
    microsoft = {"authority": "https://evil.example/t", "graph_endpoint": "https://x/v1.0"}
    assert fields("microsoft", microsoft | {"ca_bundle": "/etc/passwd"}, {}, app) == [
        "settings.authority",
        "settings.graph_endpoint",
        "settings.ca_bundle",
    ]
    key = {"type": "service_account", "token_uri": "http://169.254.169.254/latest"}
    assert fields("google", {}, {"service_account_info": key}, app) == [
        "credentials.service_account_info.token_uri"
    ]


def test_production_accepts_the_providers_own_endpoints() -> None:
    app = closed()
    key = {"type": "service_account", "token_uri": "https://oauth2.googleapis.com/token"}
    assert fields("google", {"auth": "service_account"}, {"service_account_info": key}, app) == []
    assert fields("microsoft", {"tenant": "t", "mailbox": "a@b.c"}, {}, app) == []
    feed = {"url": "https://calendar.example.com/secret/basic.ics"}
    assert fields("ics", {}, feed, app) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://calendar.example.com/basic.ics",
        "https://127.0.0.1/feed.ics",
        "https://localhost:8443/feed.ics",
        "https://10.1.2.3/feed.ics",
        "https://[::1]/feed.ics",
        "https://169.254.169.254/latest/meta-data",
        "https://intranet.internal/feed.ics",
    ],
)
def test_production_refuses_ics_feeds_over_http_or_on_private_addresses(url: str) -> None:
    assert fields("ics", {}, {"url": url}, closed()) == ["credentials.url"]


def test_outside_production_or_when_the_operator_allows_it_anything_goes() -> None:
    anywhere = {"api_endpoint": "http://127.0.0.1:9/calendar/v3/"}
    assert fields("google", anywhere, {}, Settings(environment=Environment.TEST)) == []
    opened = Settings(
        environment=Environment.PRODUCTION, secret_key=STRONG, calendar_custom_endpoints=True
    )
    assert fields("google", anywhere, {}, opened) == []
    assert fields("ics", {}, {"url": "http://127.0.0.1:9/f.ics"}, opened) == []
    shut = Settings(environment=Environment.TEST, calendar_custom_endpoints=False)
    assert fields("google", anywhere, {}, shut) == ["settings.api_endpoint"]
