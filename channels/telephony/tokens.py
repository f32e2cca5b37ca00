"""The channel token check shared by the generic, Asterisk and 3CX dialects."""

from __future__ import annotations

import base64
import binascii

from channels.base import Delivery, JsonObject, Unauthorized
from channels.signatures import same


def authenticate(config: JsonObject, delivery: Delivery) -> None:
    """Accept `Authorization: Bearer <token>`, `?token=<token>` or HTTP Basic carrying the token."""
    token = config.get("token")
    if not isinstance(token, str) or not token:
        raise Unauthorized("this channel has no token configured")
    offered = _offered(delivery)
    if not offered:
        raise Unauthorized("no token given (Authorization header or ?token=)")
    # Compare every candidate so the time taken does not tell which one was close.
    if not sum(same(candidate, token) for candidate in offered):
        raise Unauthorized("wrong token")


def _offered(delivery: Delivery) -> list[str]:
    offered = [delivery.query.get("token", "")]
    scheme, _, credentials = delivery.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        offered.append(credentials.strip())
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user, _, password = decoded.partition(":")
        # 3CX templates send "token:<token>"; others put the token in the user name.
        offered += [password, user]
    return [candidate for candidate in offered if candidate]
