"""Webhook building blocks without a database: address rules, pinning, backoff, Retry-After,
secrets at rest."""

from __future__ import annotations

import base64
import ipaddress
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from api.settings import Environment, Settings
from api.webhooks import secrets
from api.webhooks.delivery import Policy, backoff_seconds, message_body, parse_retry_after
from api.webhooks.urls import UrlRejected, check_url, forbidden_reason

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.20.30.40", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("192.0.2.1", "private"),  # documentation range (Python counts it private)
        ("240.0.0.1", "private"),  # reserved (ditto)
        # IPv6 spellings of an internal IPv4 address are judged by that address:
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
    ],
)
def test_forbidden_reason(address: str, reason: str | None) -> None:
    got = forbidden_reason(ipaddress.ip_address(address))
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got


def _dns(host: str, port: int) -> list[str]:
    return {"v6.example.test": ["2606:4700::1111"], "hooks.example.test": ["93.184.216.34"]}[host]


def test_pinned_request_keeps_host_and_tls_name() -> None:
    target = check_url(
        "https://hooks.example.test/in?x=1", allow_http=False, allow_private=False, resolver=_dns
    )
    url, headers, extensions = target.pinned()
    assert str(url) == "https://93.184.216.34/in?x=1"
    assert headers == {"Host": "hooks.example.test"}
    assert extensions == {"sni_hostname": "hooks.example.test"}

    v6 = check_url(
        "https://v6.example.test:8443/", allow_http=False, allow_private=False, resolver=_dns
    )
    url, headers, _ = v6.pinned()
    assert str(url) == "https://[2606:4700::1111]:8443/"
    assert headers == {"Host": "v6.example.test:8443"}

    plain = check_url(
        "http://hooks.example.test:80/", allow_http=True, allow_private=False, resolver=_dns
    )
    url, headers, extensions = plain.pinned()
    assert headers == {"Host": "hooks.example.test"} and extensions == {}


def test_resolver_errors_and_flags() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise OSError("no DNS")

    with pytest.raises(UrlRejected, match="public addresses only"):
        check_url("https://x.example.test/", allow_http=False, allow_private=False, resolver=broken)
    with pytest.raises(UrlRejected, match="does not resolve"):
        check_url("https://x.example.test/", allow_http=False, allow_private=True, resolver=broken)
    with pytest.raises(UrlRejected, match="fragment"):
        check_url(
            "https://93.184.216.34/#x", allow_http=False, allow_private=False, resolver=broken
        )
    # The operator's flags lift exactly their own rule.
    check_url("http://127.0.0.1:8080/", allow_http=True, allow_private=True, resolver=broken)
    with pytest.raises(UrlRejected, match=r"https.*SWITCHBOARD_WEBHOOK_ALLOW_HTTP"):
        check_url("http://127.0.0.1:8080/", allow_http=False, allow_private=True, resolver=broken)
    with pytest.raises(UrlRejected, match="loopback"):
        check_url("http://127.0.0.1:8080/", allow_http=True, allow_private=False, resolver=broken)


POLICY = Policy(
    max_attempts=8,
    backoff_base=10.0,
    backoff_max=3600.0,
    retry_after_max=86400.0,
    timeout=10.0,
    batch_size=20,
    allow_http=False,
    allow_private=False,
)


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_exponential_capped_and_jittered(attempt: int, seed: int) -> None:
    ceiling = min(POLICY.backoff_max, POLICY.backoff_base * 2.0 ** (attempt - 1))
    delay = backoff_seconds(attempt, POLICY, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling
    # The rng is the only source of randomness: same seed, same delay.
    assert delay == backoff_seconds(attempt, POLICY, random.Random(seed))


def test_backoff_jitter_spreads_senders() -> None:
    delays = {round(backoff_seconds(3, POLICY, random.Random(s)), 6) for s in range(50)}
    assert len(delays) > 40 and min(delays) >= 20 and max(delays) <= 40


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after(" 0 ", NOW) == 0
    later = NOW + timedelta(seconds=90)
    assert parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), NOW) == 90
    earlier = NOW - timedelta(hours=1)
    assert parse_retry_after(earlier.strftime("%a, %d %b %Y %H:%M:%S GMT"), NOW) == 0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_message_body_is_the_standard_envelope() -> None:
    body = message_body("ticket.assigned", NOW, {"ticket_id": "T-1", "note": "café"})
    assert body == (
        '{"type":"ticket.assigned","timestamp":"2026-03-02T08:00:00+00:00",'
        '"data":{"ticket_id":"T-1","note":"café"}}'
    )


def _settings(key: str) -> Settings:
    return Settings(environment=Environment.TEST, secret_key=SecretStr(key))


def test_secrets_are_random_whsec_and_round_trip() -> None:
    one, two = secrets.generate(), secrets.generate()
    assert one != two
    assert one.startswith("whsec_") and len(base64.b64decode(one.removeprefix("whsec_"))) == 32
    settings = _settings("k" * 40)
    token = secrets.encrypt(settings, one)
    assert one not in token
    assert secrets.decrypt(settings, token) == one
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(_settings("other" * 10), token)
