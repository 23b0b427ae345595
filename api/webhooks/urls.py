"""Where a webhook may point: URL rules, address checks, and a connection pinned to a checked IP.

A webhook URL is a request our server makes on a tenant's behalf, so it must not reach the
operator's own network (server-side request forgery): loopback, private, link-local, multicast,
unspecified, reserved and other non-global addresses are refused unless the operator allows
them (``SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE_URLS``); plain ``http://`` likewise
(``SWITCHBOARD_WEBHOOK_ALLOW_HTTP``). Each refusal names the setting that would lift it. A host
name is resolved and *every* address it resolves to is checked, and IPv6 forms that embed an
IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that address too.

A refusal never says what a host name resolved to, nor which kind of address it was: that
would let a tenant map the operator's internal DNS ("host 'vm' resolves to 127.0.0.1"). A name
that does not resolve and one that resolves to a private address get the same answer. Only an
address the client wrote itself (a literal IP) is described.

The check runs when a subscription is saved (a 422 naming ``url`` and the reason) and again
before each delivery: DNS may answer differently later (rebinding). The delivery then connects
to the very address that was checked — the URL's host is replaced by that IP, with the original
``Host`` header and TLS server name (SNI and certificate check) kept — so a second, different DNS
answer between check and connect cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from api.settings import env_name

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (strings). Raises OSError when it does not resolve.
Resolver = Callable[[str, int], Sequence[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOW_PRIVATE = env_name("webhook_allow_private_urls")
_ALLOW_HTTP = env_name("webhook_allow_http")


def _not_public(host: str) -> UrlRejected:
    return UrlRejected(
        f"host {host!r} is not allowed: a webhook target must resolve to public addresses only "
        "(private, loopback and unresolvable names are refused; the operator may allow private "
        f"targets with {_ALLOW_PRIVATE})"
    )


class UrlRejected(ValueError):
    """The URL may not be used as a webhook target; ``str()`` is the reason for the client."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen[str(sockaddr[0]).split("%", 1)[0]] = None  # drop an IPv6 zone id
    return list(seen)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or None when it is."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = forbidden_reason(inner)
        if reason is not None:
            return reason
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """A checked webhook URL and the addresses it may be sent to."""

    url: httpx.URL
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        host = self.url.raw_host.decode("ascii")
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        port = self.url.port
        return host if port in (None, default) else f"{host}:{port}"

    def pinned(self) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
        """URL with the host replaced by the first checked address, the Host header to send,
        and the request extensions that keep TLS verifying the original host name."""
        url = self.url.copy_with(host=self.addresses[0], fragment=None)
        extensions: dict[str, str] = {}
        if self.url.scheme == "https":
            extensions["sni_hostname"] = self.url.raw_host.decode("ascii")
        return url, {"Host": self.host_header}, extensions


def check_url(raw: str, *, allow_http: bool, allow_private: bool, resolver: Resolver) -> Target:
    """The :class:`Target` for ``raw``, or :class:`UrlRejected` saying why it may not be used."""
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UrlRejected(f"not a valid URL ({exc})") from None
    if url.scheme not in ("https", "http"):
        raise UrlRejected("must be an https:// URL")
    if url.scheme == "http" and not allow_http:
        raise UrlRejected(
            f"must use https (plain http is not allowed on this server; the operator may allow it "
            f"for local receivers with {_ALLOW_HTTP})"
        )
    if not url.host:
        raise UrlRejected("must name a host")
    if url.userinfo:
        raise UrlRejected("must not contain a user name or password")
    if url.fragment:
        raise UrlRejected("must not contain a #fragment")
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[str] = [str(literal)]
    else:
        try:
            addresses = list(resolver(host, port))
        except (OSError, ValueError):
            addresses = []
        if not addresses:
            if not allow_private:
                raise _not_public(host)
            raise UrlRejected(f"host {host!r} does not resolve")
    checked: list[str] = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise UrlRejected(f"host {host!r} resolved to an invalid address") from None
        if not allow_private:
            reason = forbidden_reason(ip)
            if reason is not None and literal is not None:
                raise UrlRejected(
                    f"host {host!r} is {reason}, which is not allowed (the operator may allow "
                    f"private targets with {_ALLOW_PRIVATE})"
                )
            if reason is not None:
                raise _not_public(host)
        checked.append(str(ip))
    return Target(url=url, addresses=tuple(checked))
