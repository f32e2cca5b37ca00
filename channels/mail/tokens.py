"""Our reply token: in the plus-address we reply from and in the Message-IDs we send."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PLUS_ADDRESS = re.compile(r"^reply\+([A-Za-z0-9_-]{1,64})@(.+)$", re.IGNORECASE)
OUR_MESSAGE_ID = re.compile(r"^sb\.([A-Za-z0-9_-]{1,64})(?:\.[A-Za-z0-9_-]+)?@[^@\s]+$")


def make_message_id(token: str, domain: str, unique: str | int | None = None) -> str:
    """Our Message-ID without angle brackets: sb.<token>.<unique>@<domain>.

    `unique` (the outbound message's own id, say) keeps ids of one conversation apart; without
    it a random one is made. Wrap the result in <> for the header.
    """
    if not TOKEN.match(token):
        raise ValueError(f"a reply token is 1-64 letters, digits, '-' or '_': {token!r}")
    if unique is None:
        unique = secrets.token_hex(6)
    if not TOKEN.match(str(unique)):
        raise ValueError(f"the unique part is 1-64 letters, digits, '-' or '_': {unique!r}")
    domain = domain.strip().strip(".")
    if not domain or any(c in domain for c in "@<> \t"):
        raise ValueError(f"not a domain: {domain!r}")
    return f"sb.{token}.{unique}@{domain}"


def reply_address(token: str, domain: str) -> str:
    """The plus-address replies to a conversation go to: reply+<token>@<domain>."""
    if not TOKEN.match(token):
        raise ValueError(f"a reply token is 1-64 letters, digits, '-' or '_': {token!r}")
    return f"reply+{token}@{domain}"


def find_reply_token(
    addresses: Iterable[str], references: Iterable[str], reply_domain: str | None = None
) -> str | None:
    """Our token from a reply+<token>@<reply_domain> recipient, else from a referenced id of ours.

    `references` are bare message ids, most recent first (In-Reply-To, then References).
    """
    if reply_domain:
        domain = reply_domain.strip().lower()
        for address in addresses:
            plus = PLUS_ADDRESS.match(address.strip())
            if plus and plus.group(2).lower() == domain:
                return plus.group(1)
    for message_id in references:
        ours = OUR_MESSAGE_ID.match(message_id.strip().strip("<>"))
        if ours:
            return ours.group(1)
    return None
