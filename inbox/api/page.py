"""What the web inbox page loads for itself: its start-up data (me, colleagues, teams,
channels, features), the interface language, and the conversation list enriched with the
customer, the last message, the waiting time and the SLA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Contact, Lead, Relation, Team, TeamMember, User
from inbox.api.conversations import list_conversations
from inbox.api.router import API, ApiRequest
from inbox.models import Channel, Conversation, Message
from inbox.schemas import ConversationOut, ConversationQuery

DUE_SOON = timedelta(hours=1)
PREVIEW = 160


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- wire types (kept here: they describe what the page needs, not the CRM's resources) -----------


class UserBrief(BaseModel):
    id: int
    name: str
    role: str
    team_ids: list[int]
    away: bool


class NamedRef(BaseModel):
    id: int
    name: str


class ChannelBrief(BaseModel):
    id: str
    kind: str
    name: str


class Features(BaseModel):
    search: bool
    canned_replies: Literal["browser", "server"] = "server"  # /api/canned-replies


class Bootstrap(BaseModel):
    me: UserBrief
    language: str
    csrf_token: str | None
    users: list[UserBrief]
    teams: list[NamedRef]
    channels: list[ChannelBrief]
    features: Features
    server_time: datetime


class Preview(BaseModel):
    direction: str
    kind: str
    text: str
    sender_name: str | None
    status: str
    sent_at: datetime


class InboxConversation(ConversationOut):
    customer_name: str | None = None
    relation_name: str | None = None
    preview: Preview | None = None
    waiting_since: datetime | None = None  # the customer spoke last and is waiting since then
    due_at: datetime | None = None  # the earliest open task's due time
    sla: Literal["breached", "due_soon", "on_track"] | None = None


class InboxPage(BaseModel):
    items: list[InboxConversation]
    next_cursor: str | None
    server_time: datetime


class LanguageIn(BaseModel):
    language: Literal["nl", "en"]


# --- helpers --------------------------------------------------------------------------------------


def sla_state(
    due_at: datetime | None, now: datetime
) -> Literal["breached", "due_soon", "on_track"] | None:
    if due_at is None:
        return None
    if due_at <= now:
        return "breached"
    return "due_soon" if due_at - now <= DUE_SOON else "on_track"


def search_available(req: ApiRequest) -> bool:
    return any(
        getattr(r.resource, "canonical", None) == "/api/search"
        for r in req.request.app.router.routes()
    )


# --- start-up data --------------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/inbox/bootstrap",
    summary="What the web inbox needs at start: me, colleagues, teams, channels, features",
    tag="inbox",
    response=Bootstrap,
)
async def bootstrap(req: ApiRequest) -> Bootstrap:
    p = req.principal
    async with req.sessions() as session:
        users = (
            await session.scalars(select(User).where(User.is_active).order_by(User.name))
        ).all()
        members = (await session.execute(select(TeamMember.user_id, TeamMember.team_id))).all()
        teams = (await session.scalars(select(Team).order_by(Team.name))).all()
        channels = (
            await session.scalars(select(Channel).where(Channel.is_active).order_by(Channel.name))
        ).all()
    by_user: dict[int, list[int]] = {}
    for row in members:
        by_user.setdefault(row.user_id, []).append(row.team_id)
    briefs = {
        u.id: UserBrief(
            id=u.id, name=u.name, role=u.role, team_ids=sorted(by_user.get(u.id, [])), away=u.away
        )
        for u in users
    }
    me = briefs.get(p.user_id) or UserBrief(
        id=p.user_id, name=p.name, role=p.role, team_ids=list(p.team_ids), away=False
    )
    language = next((u.language for u in users if u.id == p.user_id), "nl") or "nl"
    return Bootstrap(
        me=me,
        language=language,
        csrf_token=p.csrf_token,
        users=list(briefs.values()),
        teams=[NamedRef(id=t.id, name=t.name) for t in teams],
        channels=[ChannelBrief(id=c.id, kind=c.kind, name=c.name) for c in channels],
        features=Features(search=search_available(req)),
        server_time=utcnow(),
    )


@API.route(
    "POST",
    "/api/me/language",
    summary="Remember the interface language (nl or en)",
    tag="auth",
    body=LanguageIn,
)
async def set_language(req: ApiRequest) -> dict[str, str]:
    body: LanguageIn = req.body
    async with req.sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.id == req.principal.user_id).values(language=body.language)
        )
    return {"language": body.language}


# --- the conversation list, enriched --------------------------------------------------------------


@API.route(
    "GET",
    "/api/inbox/conversations",
    summary="The inbox list: conversations with customer, last message, waiting time and SLA",
    tag="inbox",
    query=ConversationQuery,
    response=InboxPage,
)
async def inbox_list(req: ApiRequest) -> InboxPage:
    page = await list_conversations(req)
    now = utcnow()
    async with req.sessions() as session:
        extras = await list_extras(session, page.items, now)
    items = [
        InboxConversation.model_validate(c.model_dump() | extras.get(c.id, {})) for c in page.items
    ]
    return InboxPage(items=items, next_cursor=page.next_cursor, server_time=now)


async def list_extras(
    session: AsyncSession, items: list[ConversationOut], now: datetime
) -> dict[int, dict[str, Any]]:
    """Per conversation, in one query: who the customer is, the last message (not a note),
    waiting since when the customer spoke last, and the SLA state of the earliest due task."""
    if not items:
        return {}
    last = (
        select(
            Message.direction,
            Message.kind,
            func.left(Message.text, PREVIEW).label("text"),
            Message.sender_name,
            Message.status,
            Message.sent_at,
        )
        .where(Message.conversation_id == Conversation.id, Message.direction != "internal")
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
        .lateral("last")
    )
    rows = (
        await session.execute(
            select(
                Conversation.id,
                Contact.full_name.label("contact_name"),
                func.coalesce(Lead.name, Lead.company).label("lead_name"),
                Relation.name.label("relation_name"),
                last,
            )
            .select_from(Conversation)
            .outerjoin(Contact, Contact.id == Conversation.contact_id)
            .outerjoin(Lead, Lead.id == Conversation.lead_id)
            .outerjoin(Relation, Relation.id == Conversation.relation_id)
            .outerjoin(last, true())
            .where(Conversation.id.in_([c.id for c in items]))
        )
    ).all()
    due = {c.id: c.due_at for c in items}
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        extra: dict[str, Any] = {
            "customer_name": row.contact_name or row.lead_name or row.relation_name,
            "relation_name": row.relation_name,
            "sla": sla_state(due.get(row.id), now),
        }
        if row.direction is not None:
            extra["preview"] = Preview(
                direction=row.direction,
                kind=row.kind,
                text=" ".join(row.text.split()),
                sender_name=row.sender_name,
                status=row.status,
                sent_at=row.sent_at,
            )
            if row.direction == "inbound":
                extra["waiting_since"] = row.sent_at
                extra["customer_name"] = extra["customer_name"] or row.sender_name
        out[row.id] = extra
    return out
