"""E-mail: parsing raw messages, reply stripping, loop detection and our reply tokens."""

from __future__ import annotations

from channels.mail.accuracy import reply_accuracy, reply_pairs
from channels.mail.html_text import html_to_text
from channels.mail.loops import bounce_reason, bounced_message_id, classify
from channels.mail.parse import parse_message, read_message
from channels.mail.quotes import strip_reply
from channels.mail.tokens import find_reply_token, make_message_id, reply_address

__all__ = [
    "bounce_reason",
    "bounced_message_id",
    "classify",
    "find_reply_token",
    "html_to_text",
    "make_message_id",
    "parse_message",
    "read_message",
    "reply_accuracy",
    "reply_address",
    "reply_pairs",
    "strip_reply",
]
