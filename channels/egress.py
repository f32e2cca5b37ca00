"""Where the service may connect when it calls a URL from a channel's settings or a provider's
answer (Telegram files, an external bot): public addresses only, checked per connection (after
DNS, so a name that resolves to 10.0.0.1 or 169.254.169.254 is refused too)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp


class NonPublicAddress(OSError):
    """A connection to a loopback, private, link-local, multicast or reserved address."""


def public_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp's socket_factory: a socket, but only towards a public address."""
    family, type_, proto, _, sockaddr = addr_info
    address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
    if not address.is_global:
        raise NonPublicAddress(f"refused to connect to the non-public address {address}")
    return socket.socket(family=family, type=type_, proto=proto)


def connector_options(public_only: bool) -> dict[str, Any]:
    """TCPConnector keyword arguments for the guard (none when private addresses are allowed)."""
    return {"socket_factory": public_socket} if public_only else {}


def guarded_session(public_only: bool, **kwargs: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(**connector_options(public_only)), **kwargs
    )
