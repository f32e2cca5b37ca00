"""Visitor tokens: a random visitor id signed with the channel's secret. The widget keeps the
token in the page's localStorage and sends it in a header, so no cookie is needed cross-site."""

from __future__ import annotations

import secrets

from channels.signatures import hmac_hex, same

PREFIX = "v1"


def signature(secret: str, visitor_id: str) -> str:
    return hmac_hex(secret, f"webchat-visitor:{visitor_id}".encode())[:40]


def issue_token(secret: str) -> tuple[str, str]:
    """A new visitor: (visitor id, token)."""
    visitor_id = secrets.token_hex(12)
    return visitor_id, f"{PREFIX}.{visitor_id}.{signature(secret, visitor_id)}"


def visitor_of(secret: str, token: str | None) -> str | None:
    """The visitor id a token was issued for; None when it is not one of ours."""
    parts = (token or "").split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1].isalnum() or len(parts[1]) > 64:
        return None
    return parts[1] if same(parts[2], signature(secret, parts[1])) else None
