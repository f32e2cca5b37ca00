"""What a principal may see: conversations by team and assignment, confidential ones by link."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from crm.models import AccessGrant, Project
from crm.opportunities import Opportunity
from inbox.models import Conversation


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: str
    name: str
    team_ids: tuple[int, ...]
    via: str  # session or token
    scope: str = "api"  # api or bot (tokens)
    channel_id: str | None = None  # a bot token acts for one channel only
    csrf_token: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def granted(p: Principal, subject: ColumnElement[bool]) -> ColumnElement[bool]:
    """An access grant on the subject for the user or one of their teams."""
    grantee = AccessGrant.user_id == p.user_id
    if p.team_ids:
        grantee = or_(grantee, AccessGrant.team_id.in_(p.team_ids))
    return exists(select(AccessGrant.id).where(subject, grantee))


async def grantees(
    session: AsyncSession, column: InstrumentedAttribute[int | None], subject_id: int
) -> tuple[list[int], list[int]]:
    """(user ids, team ids) linked to a confidential conversation or project."""
    rows = (
        await session.execute(
            select(AccessGrant.user_id, AccessGrant.team_id).where(column == subject_id)
        )
    ).all()
    return (
        sorted(r.user_id for r in rows if r.user_id),
        sorted(r.team_id for r in rows if r.team_id),
    )


def visible_conversations(p: Principal) -> ColumnElement[bool]:
    """Admins see all; a bot token its channel; others their teams' and their own, and the
    confidential ones only when assigned or linked to them (or their team) by a grant."""
    if p.scope == "bot":
        return Conversation.channel_id == p.channel_id if p.channel_id else false()
    if p.is_admin:
        return true()
    mine = Conversation.assignee_id == p.user_id
    teams = Conversation.team_id.in_(p.team_ids) if p.team_ids else false()
    linked = and_(
        Conversation.confidential, granted(p, AccessGrant.conversation_id == Conversation.id)
    )
    return or_(mine, and_(teams, ~Conversation.confidential), linked)


def visible_projects(p: Principal) -> ColumnElement[bool]:
    """Confidential projects: admins and the users or teams linked to them."""
    if p.is_admin:
        return true()
    return or_(~Project.confidential, granted(p, AccessGrant.project_id == Project.id))


# The same rules as SQL text for the search query (aliases v: conversations, d: documents).
CONVERSATIONS_SQL = """(v.assignee_id = :me OR (v.team_id = ANY(:teams) AND NOT v.confidential)
  OR (v.confidential AND EXISTS (SELECT 1 FROM access_grants g WHERE g.conversation_id = v.id
      AND (g.user_id = :me OR g.team_id = ANY(:teams)))))"""
PROJECTS_SQL = """EXISTS (SELECT 1 FROM access_grants g WHERE g.project_id = d.record_id
  AND (g.user_id = :me OR g.team_id = ANY(:teams)))"""


def visible_opportunities(p: Principal) -> ColumnElement[bool]:
    """Admins and managers see every opportunity; agents their own and their teams'."""
    if p.scope == "bot":
        return false()
    if p.role in ("admin", "manager"):
        return true()
    mine = Opportunity.owner_id == p.user_id
    return or_(mine, Opportunity.team_id.in_(p.team_ids)) if p.team_ids else mine
