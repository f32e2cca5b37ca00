"""The website chat: an embeddable widget whose visitors talk to the inbox."""

from __future__ import annotations

from channels.webchat.config import ChatConfig
from channels.webchat.tokens import issue_token, visitor_of

__all__ = ["ChatConfig", "issue_token", "visitor_of"]
