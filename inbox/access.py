"""What a principal may see: conversations by team and assignment, confidential ones by link."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, true

from inbox.auth import Principal
from inbox.models import Conversation


def visible_conversations(p: Principal) -> ColumnElement[bool]:
    """Admins see all; a bot token its channel; others their teams' and their own."""
    if p.scope == "bot":
        return Conversation.channel_id == p.channel_id if p.channel_id else false()
    if p.is_admin:
        return true()
    mine = Conversation.assignee_id == p.user_id
    teams = Conversation.team_id.in_(p.team_ids) if p.team_ids else false()
    return or_(mine, and_(teams, ~Conversation.confidential))
