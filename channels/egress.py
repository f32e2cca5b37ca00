"""Where the service may connect when it calls a URL it did not choose itself (a channel's or a
subscription's settings, a provider's answer): the one SSRF guard of the service. Public
addresses only by default, checked per connection after DNS (a name that resolves to 10.0.0.1
or 169.254.169.254 is refused too, and cannot rebind inward after a check), literal addresses
and redirects included. Settings widen it: loopback (outbound webhooks under
SWITCHBOARD_WEBHOOK_ALLOW_LOOPBACK), or loopback and private networks (channel and bot calls
under SWITCHBOARD_ALLOW_PRIVATE_URLS). Link-local, multicast, reserved and unspecified
addresses are never allowed."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp


class NonPublicAddress(OSError):
    """A connection to an address the egress policy refuses."""


@dataclass(frozen=True)
class Egress:
    """Which destinations outside the public internet a client may reach."""

    loopback: bool = False  # 127.0.0.0/8, ::1
    private: bool = False  # RFC 1918, unique-local, shared address space (and loopback)

    def refused(self, address: str) -> str | None:
        """Why we will not connect to this IP address, or None; ValueError if it is no address."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            return None if self.loopback or self.private else f"{ip} is a loopback address"
        if ip.is_link_local:
            return f"{ip} is a link-local address"
        if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            return f"{ip} is a private or reserved address"
        if not ip.is_global and not self.private:
            return f"{ip} is a private or reserved address"
        return None

    def socket(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """aiohttp's socket_factory: a socket, but only towards an address the policy allows."""
        family, type_, proto, _, sockaddr = addr_info
        reason = self.refused(str(sockaddr[0]))
        if reason:  # errno and text: aiohttp's ClientConnectorError shows the text
            raise NonPublicAddress(errno.EACCES, f"refused to connect: {reason}")
        return socket.socket(family=family, type=type_, proto=proto)

    def connector_options(self) -> dict[str, Any]:
        """TCPConnector keyword arguments that put its connections behind the guard."""
        return {"socket_factory": self.socket}

    def connector(self, **kwargs: Any) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(**self.connector_options(), **kwargs)

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=self.connector(), **kwargs)

    async def refused_url(self, url: str) -> str | None:
        """Why this URL is no destination (scheme, credentials, where it resolves), or None: the
        early answer for a setting; connections are checked again when they are made."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "the URL must be http(s)://host/…"
        if parts.username or parts.password:
            return "the URL must not carry credentials"
        try:
            return self.refused(parts.hostname)
        except ValueError:
            pass  # a name, not an address
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname, parts.port or 443, type=socket.SOCK_STREAM
            )
        except OSError:
            return f"{parts.hostname} does not resolve"
        for info in infos:
            reason = self.refused(str(info[4][0]))
            if reason:
                return f"{parts.hostname} resolves to an address we refuse: {reason}"
        return None


PUBLIC = Egress()


def for_channels(allow_private_urls: bool) -> Egress:
    """The policy of channel and bot calls (SWITCHBOARD_ALLOW_PRIVATE_URLS)."""
    return Egress(loopback=allow_private_urls, private=allow_private_urls)


def for_webhooks(allow_loopback: bool) -> Egress:
    """The policy of outbound webhook deliveries (SWITCHBOARD_WEBHOOK_ALLOW_LOOPBACK)."""
    return Egress(loopback=allow_loopback)


_channels = PUBLIC


def configure(allow_private_urls: bool) -> None:
    """Set this process's policy for channel calls, from its settings, at start-up."""
    global _channels
    _channels = for_channels(allow_private_urls)


def channels_policy() -> Egress:
    """This process's policy for channel calls (public only until `configure` says otherwise)."""
    return _channels
