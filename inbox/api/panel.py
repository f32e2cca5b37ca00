"""API routes the web inbox needs beyond the plain REST resources: the enriched conversation list,
the customer panel, record cards for search results, the full original of a message, linking a
conversation to a suggested contact, and the page's start-up data."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, false, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from channels import ADAPTERS
from crm.models import (
    Activity,
    Category,
    Contact,
    Identity,
    Lead,
    Project,
    Relation,
    RelationStatus,
    Task,
    Team,
    TeamMember,
    User,
    relation_categories,
)
from crm.search import BadQuery, search
from inbox import realtime
from inbox.access import (
    CONVERSATIONS_SQL,
    PROJECTS_SQL,
    Principal,
    visible_conversations,
    visible_projects,
)
from inbox.api.conversations import list_conversations, load_conversation
from inbox.api.router import API, ApiError, ApiRequest, not_found
from inbox.attachments import FileStore
from inbox.ingest.journal import delivery_from
from inbox.linking import link_conversation
from inbox.models import Attachment, Channel, Conversation, Event, Message
from inbox.schemas import ConversationOut, ConversationQuery
from inbox.state import ARQ, SETTINGS

COMPLAINT_LABELS = ["klacht", "complaint"]
OPEN_LEADS = ("new", "contacted", "qualified")
DUE_SOON = timedelta(hours=1)
RAW_LIMIT = 2_000_000  # characters of a raw original shown in the browser
PREVIEW = 160
KINDS_TTL_S = 10.0


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- wire types (kept here: they describe what the page needs, not the CRM's resources) --------


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


class ContactCard(BaseModel):
    id: int
    full_name: str
    first_name: str | None = None  # for the composer's {{contact.first_name}}
    last_name: str | None = None
    language: str | None = None
    job_title: str | None
    city: str | None
    emails: list[str]
    phones: list[str]


class RelationCard(BaseModel):
    id: int
    name: str
    status: str
    status_label: str
    abc_class: str | None
    account_manager: str | None
    account_manager_id: int | None
    city: str | None
    website: str | None
    kvk_number: str | None
    categories: list[str]
    phones: list[str]


class LeadCard(BaseModel):
    id: int
    name: str | None
    company: str | None
    status: str
    emails: list[str]
    phones: list[str]
    fields: dict[str, Any]
    created_at: datetime


class ActivityBrief(BaseModel):
    id: int
    kind: str
    direction: str
    subject: str | None
    summary: str | None
    occurred_at: datetime
    channel_kind: str | None
    conversation_id: int | None
    duration_s: int | None
    outcome: str | None


class TaskBrief(BaseModel):
    id: int
    kind: str
    title: str
    due_at: datetime | None
    priority: str
    assignee: NamedRef | None
    conversation_id: int | None
    sla: Literal["breached", "due_soon", "on_track"] | None


class ConversationBrief(BaseModel):
    id: int
    subject: str | None
    status: str
    channel_kind: str | None
    labels: list[str]
    last_message_at: datetime | None


class ProjectBrief(BaseModel):
    id: int
    name: str
    city: str | None
    status: str


class Suggestion(BaseModel):
    contact_id: int | None
    relation_id: int | None
    contact_name: str | None
    relation_name: str | None
    score: float | None
    reasons: dict[str, Any] | list[Any] | str | None
    decision: str | None


class Dashboard(BaseModel):
    contact: ContactCard | None
    relation: RelationCard | None
    lead: LeadCard | None
    leads: list[LeadCard]
    projects: list[ProjectBrief]
    activities: list[ActivityBrief]
    tasks: list[TaskBrief]
    complaints: list[ConversationBrief]
    conversations: list[ConversationBrief]


class Panel(Dashboard):
    conversation_id: int
    suggestions: list[Suggestion]
    needs_review: str | None


class RecordCard(Dashboard):
    kind: str
    id: int
    title: str
    project: ProjectBrief | None = None


class Original(BaseModel):
    message_id: int
    text: str
    full_text: str | None
    html: str | None
    raw: str | None
    raw_truncated: bool


class LanguageIn(BaseModel):
    language: Literal["nl", "en"]


class LinkIn(BaseModel):
    contact_id: int


# --- helpers ---------------------------------------------------------------------------------


def sla_state(
    due_at: datetime | None, now: datetime
) -> Literal["breached", "due_soon", "on_track"] | None:
    if due_at is None:
        return None
    if due_at <= now:
        return "breached"
    return "due_soon" if due_at - now <= DUE_SOON else "on_track"


async def user_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {row.id: row.name for row in rows}


_KINDS: tuple[float, dict[str, str]] = (0.0, {})


async def channel_kinds(session: AsyncSession) -> dict[str, str]:
    """Channel id → kind, kept for a few seconds: the panel asks on every conversation."""
    global _KINDS
    if _KINDS[0] < time.monotonic():
        rows = (await session.execute(select(Channel.id, Channel.kind))).all()
        _KINDS = (time.monotonic() + KINDS_TTL_S, {row.id: row.kind for row in rows})
    return _KINDS[1]


def bot_refused(p: Principal) -> None:
    if p.scope == "bot":
        raise ApiError(403, "forbidden", "a bot token cannot do this")


def search_available(req: ApiRequest) -> bool:
    return any(
        getattr(r.resource, "canonical", None) == "/api/search"
        for r in req.request.app.router.routes()
    )


# --- start-up data ---------------------------------------------------------------------------


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


# --- the conversation list, enriched -----------------------------------------------------------


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


async def names(
    session: AsyncSession, model: Any, column: Any, ids: set[int | None]
) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(model.id, column).where(model.id.in_(wanted)))
    return {int(row[0]): str(row[1]) for row in rows if row[1]}


# --- the customer panel ------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/conversations/{conversation_id}/panel",
    summary="Who the customer is: contact, relation, leads, activities, tasks, complaints",
    tag="inbox",
    response=Panel,
)
async def panel(req: ApiRequest) -> Panel:
    async with req.sessions() as session:
        conversation = await load_conversation(session, req)
        board = await dashboard(
            session,
            req.principal,
            contact_id=conversation.contact_id,
            relation_id=conversation.relation_id,
            lead_id=conversation.lead_id,
            current=conversation.id,
        )
        # Suggestions are for a sender not yet linked; once someone is confirmed they are noise.
        suggestions = (
            await match_suggestions(session, conversation)
            if conversation.contact_id is None
            else []
        )
    return Panel(
        **board.model_dump(),
        conversation_id=conversation.id,
        suggestions=suggestions,
        needs_review=conversation.needs_review,
    )


@API.route(
    "GET",
    "/api/records/{kind}/{record_id}",
    summary="A card for a relation, contact, lead or project: what the panel shows, by record",
    tag="inbox",
    response=RecordCard,
)
async def record_card(req: ApiRequest) -> RecordCard:
    kind = req.request.match_info["kind"]
    record_id = req.path_int("record_id")
    project: ProjectBrief | None = None
    async with req.sessions() as session:
        contact_id = relation_id = lead_id = None
        if kind == "contact":
            contact = await session.get(Contact, record_id)
            if contact is None:
                raise not_found("contact")
            contact_id, title = contact.id, contact.full_name
        elif kind == "relation":
            relation = await session.get(Relation, record_id)
            if relation is None:
                raise not_found("relation")
            relation_id, title = relation.id, relation.name
        elif kind == "lead":
            lead = await session.get(Lead, record_id)
            if lead is None:
                raise not_found("lead")
            lead_id, title = lead.id, lead.name or lead.company or f"#{lead.id}"
        elif kind == "project":
            row = (
                await session.scalars(
                    select(Project).where(Project.id == record_id, visible_projects(req.principal))
                )
            ).first()
            if row is None:
                raise not_found("project")
            relation_id, title = row.relation_id, row.name
            project = ProjectBrief(id=row.id, name=row.name, city=row.city, status=row.status)
        elif kind == "conversation":
            found = (
                await session.scalars(
                    select(Conversation).where(
                        Conversation.id == record_id, visible_conversations(req.principal)
                    )
                )
            ).first()
            if found is None:
                raise not_found("conversation")
            contact_id, relation_id, lead_id = found.contact_id, found.relation_id, found.lead_id
            title = found.subject or f"#{found.id}"
        else:
            raise not_found("kind of record")
        board = await dashboard(
            session, req.principal, contact_id=contact_id, relation_id=relation_id, lead_id=lead_id
        )
    return RecordCard(**board.model_dump(), kind=kind, id=record_id, title=title, project=project)


async def dashboard(
    session: AsyncSession,
    p: Principal,
    *,
    contact_id: int | None,
    relation_id: int | None,
    lead_id: int | None,
    current: int | None = None,
) -> Dashboard:
    """The relation dashboard of whoever this is, scoped to what the principal may see."""
    contact = await session.get(Contact, contact_id) if contact_id else None
    if contact is not None and relation_id is None:
        relation_id = contact.relation_id
    relation = await session.get(Relation, relation_id) if relation_id else None
    lead = await session.get(Lead, lead_id) if lead_id else None

    owners: list[ColumnElement[bool]] = []
    if contact is not None:
        owners.append(Identity.contact_id == contact.id)
    if relation is not None:
        owners.append(Identity.relation_id == relation.id)
    if lead is not None:
        owners.append(Identity.lead_id == lead.id)
    identities = (
        (await session.scalars(select(Identity).where(or_(*owners)).order_by(Identity.id))).all()
        if owners
        else []
    )

    def values(kind: str, **owner: int) -> list[str]:
        (column, wanted), *_ = owner.items()
        return [
            i.raw or i.value for i in identities if i.kind == kind and getattr(i, column) == wanted
        ]

    contact_card = (
        ContactCard(
            id=contact.id,
            full_name=contact.full_name,
            first_name=contact.first_name,
            last_name=contact.last_name,
            language=contact.language,
            job_title=contact.job_title,
            city=contact.city,
            emails=values("email", contact_id=contact.id),
            phones=values("phone", contact_id=contact.id),
        )
        if contact
        else None
    )
    relation_card = await relation_view(session, relation, values) if relation else None
    lead_card = (
        LeadCard(
            id=lead.id,
            name=lead.name,
            company=lead.company,
            status=lead.status,
            emails=values("email", lead_id=lead.id),
            phones=values("phone", lead_id=lead.id),
            fields=lead.fields,
            created_at=lead.created_at,
        )
        if lead
        else None
    )

    def concerning(model: Any) -> ColumnElement[bool]:
        who: list[ColumnElement[bool]] = []
        if contact is not None:
            who.append(model.contact_id == contact.id)
        if relation is not None:
            who.append(model.relation_id == relation.id)
        if lead is not None:
            who.append(model.lead_id == lead.id)
        return or_(*who) if who else false()

    seen = visible_conversations(p)
    sort_at = func.coalesce(Conversation.last_message_at, Conversation.created_at)
    kinds = await channel_kinds(session)

    def brief(c: Conversation) -> ConversationBrief:
        return ConversationBrief(
            id=c.id,
            subject=c.subject,
            status=c.status,
            channel_kind=kinds.get(c.channel_id),
            labels=c.labels,
            last_message_at=c.last_message_at or c.created_at,
        )

    conversations = (
        await session.scalars(
            select(Conversation)
            .where(concerning(Conversation), seen)
            .order_by(sort_at.desc(), Conversation.id.desc())
            .limit(10)
        )
    ).all()
    complaints = (
        await session.scalars(
            select(Conversation)
            .where(
                concerning(Conversation),
                seen,
                Conversation.labels.overlap(COMPLAINT_LABELS),
            )
            .order_by(sort_at.desc(), Conversation.id.desc())
            .limit(10)
        )
    ).all()

    def through_visible(query: Select[Any], model: Any) -> Select[Any]:
        """Rows tied to a conversation show only when that conversation is visible."""
        return query.outerjoin(Conversation, Conversation.id == model.conversation_id).where(
            or_(model.conversation_id.is_(None), seen)
        )

    activities = (
        await session.scalars(
            through_visible(select(Activity).where(concerning(Activity)), Activity)
            .order_by(Activity.occurred_at.desc(), Activity.id.desc())
            .limit(12)
        )
    ).all()
    task_who = concerning(Task)
    if current is not None:
        task_who = or_(task_who, Task.conversation_id == current)
    tasks = (
        await session.scalars(
            through_visible(select(Task).where(task_who, Task.status == "open"), Task)
            .order_by(Task.due_at.asc().nulls_last(), Task.id)
            .limit(10)
        )
    ).all()
    assignees = await user_names(session, {t.assignee_id for t in tasks if t.assignee_id})
    now = utcnow()

    open_lead: list[ColumnElement[bool]] = []
    if lead is not None:
        open_lead.append(Lead.id == lead.id)
    if contact is not None or relation is not None:
        open_lead.append(
            Lead.id.in_(
                select(Conversation.lead_id).where(
                    concerning(Conversation), seen, Conversation.lead_id.is_not(None)
                )
            )
        )
    leads = (
        (
            await session.scalars(
                select(Lead)
                .where(or_(*open_lead), Lead.status.in_(OPEN_LEADS))
                .order_by(Lead.id.desc())
                .limit(10)
            )
        ).all()
        if open_lead
        else []
    )
    projects = (
        (
            await session.scalars(
                select(Project)
                .where(
                    Project.relation_id == relation.id,
                    visible_projects(p),
                )
                .order_by(Project.id.desc())
                .limit(10)
            )
        ).all()
        if relation is not None
        else []
    )
    return Dashboard(
        contact=contact_card,
        relation=relation_card,
        lead=lead_card,
        leads=[
            LeadCard(
                id=x.id,
                name=x.name,
                company=x.company,
                status=x.status,
                emails=[],
                phones=[],
                fields=x.fields,
                created_at=x.created_at,
            )
            for x in leads
        ],
        projects=[
            ProjectBrief(id=x.id, name=x.name, city=x.city, status=x.status) for x in projects
        ],
        activities=[
            ActivityBrief(
                id=a.id,
                kind=a.kind,
                direction=a.direction,
                subject=a.subject,
                summary=" ".join((a.body or "").split())[:PREVIEW] or None,
                occurred_at=a.occurred_at,
                channel_kind=kinds.get(a.channel_id) if a.channel_id else None,
                conversation_id=a.conversation_id,
                duration_s=a.duration_s,
                outcome=a.outcome,
            )
            for a in activities
        ],
        tasks=[
            TaskBrief(
                id=t.id,
                kind=t.kind,
                title=t.title,
                due_at=t.due_at,
                priority=t.priority,
                assignee=NamedRef(id=t.assignee_id, name=assignees.get(t.assignee_id, "?"))
                if t.assignee_id
                else None,
                conversation_id=t.conversation_id,
                sla=sla_state(t.due_at, now),
            )
            for t in tasks
        ],
        complaints=[brief(c) for c in complaints],
        conversations=[brief(c) for c in conversations if c.id != current],
    )


async def relation_view(session: AsyncSession, relation: Relation, values: Any) -> RelationCard:
    categories = (
        select(func.array_agg(aggregate_order_by(Category.name, Category.name)))
        .join(relation_categories, relation_categories.c.category_id == Category.id)
        .where(relation_categories.c.relation_id == relation.id)
        .scalar_subquery()
    )
    row = (
        await session.execute(
            select(
                select(RelationStatus.label)
                .where(RelationStatus.code == relation.status)
                .scalar_subquery()
                .label("label"),
                select(User.name)
                .where(User.id == relation.account_manager_id)
                .scalar_subquery()
                .label("manager"),
                categories.label("categories"),
            )
        )
    ).one()
    city = next(
        (str(a.get("city")) for a in relation.addresses if isinstance(a, dict) and a.get("city")),
        None,
    )
    return RelationCard(
        id=relation.id,
        name=relation.name,
        status=relation.status,
        status_label=row.label or relation.status,
        abc_class=relation.abc_class,
        account_manager=row.manager,
        account_manager_id=relation.account_manager_id if row.manager else None,
        city=city,
        website=relation.website,
        kvk_number=relation.kvk_number,
        categories=list(row.categories or []),
        phones=values("phone", relation_id=relation.id),
    )


async def match_suggestions(session: AsyncSession, conversation: Conversation) -> list[Suggestion]:
    """The matcher's candidates stored on the conversation's inbound messages (meta["match"])."""
    metas = (
        await session.scalars(
            select(Message.meta["match"])
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == "inbound",
                Message.meta.has_key("match"),
            )
            .order_by(Message.id.desc())
            .limit(5)
        )
    ).all()
    found: dict[tuple[int | None, int | None], Suggestion] = {}
    for match in metas:
        decision = match.get("decision") if isinstance(match, dict) else None
        candidates: list[Any] = []
        if isinstance(match, dict):
            candidates = list(match.get("candidates") or [])
            if not candidates and (match.get("contact_id") or match.get("relation_id")):
                candidates = [match]
        elif isinstance(match, list):
            candidates = match
        for c in candidates:
            if not isinstance(c, dict):
                continue
            contact_id, relation_id = as_int(c.get("contact_id")), as_int(c.get("relation_id"))
            if contact_id is None and relation_id is None:
                continue
            if contact_id is not None and contact_id == conversation.contact_id:
                continue  # already linked to this one
            key = (contact_id, relation_id)
            if key in found:
                continue
            score = c.get("score")
            found[key] = Suggestion(
                contact_id=contact_id,
                relation_id=relation_id,
                contact_name=None,
                relation_name=None,
                score=float(score) if isinstance(score, int | float) else None,
                reasons=c.get("reasons"),
                decision=str(decision) if decision else None,
            )
    suggestions = list(found.values())[:5]
    contacts = await names(session, Contact, Contact.full_name, {s.contact_id for s in suggestions})
    contact_relations = {
        row.id: row.relation_id
        for row in (
            await session.execute(
                select(Contact.id, Contact.relation_id).where(
                    Contact.id.in_([s.contact_id for s in suggestions if s.contact_id])
                )
            )
        ).all()
    }
    for s in suggestions:
        if s.relation_id is None and s.contact_id is not None:
            s.relation_id = contact_relations.get(s.contact_id)
    relations = await names(session, Relation, Relation.name, {s.relation_id for s in suggestions})
    for s in suggestions:
        s.contact_name = contacts.get(s.contact_id) if s.contact_id else None
        s.relation_name = relations.get(s.relation_id) if s.relation_id else None
    return [s for s in suggestions if s.contact_name or s.relation_name]


def as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/link",
    summary="Confirm who the sender is: link the conversation (and its lead) to a contact",
    tag="inbox",
    body=LinkIn,
    response=ConversationOut,
)
async def link_contact(req: ApiRequest) -> ConversationOut:
    body: LinkIn = req.body
    bot_refused(req.principal)
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        contact = await session.get(Contact, body.contact_id)
        if contact is None:
            raise ApiError(422, "invalid", "no such contact")
        await link_conversation(session, conversation, contact, req.principal.user_id)
        kinds = await channel_kinds(session)
    await realtime.publish(req.request.app[ARQ], "conversation.linked", conversation)
    out = ConversationOut.model_validate(conversation)
    out.channel_kind = kinds.get(conversation.channel_id)
    return out


# --- the full original of a message ------------------------------------------------------------


@API.route(
    "GET",
    "/api/messages/{message_id}/original",
    summary="A message's full original: the unstripped text, its HTML and the raw delivery",
    tag="messages",
    response=Original,
)
async def original(req: ApiRequest) -> Original:
    bot_refused(req.principal)
    async with req.sessions() as session:
        message = (
            await session.scalars(
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Message.id == req.path_int("message_id"), visible_conversations(req.principal)
                )
            )
        ).first()
        if message is None:
            raise not_found("message")
        event = await session.get(Event, message.event_id) if message.event_id else None
        channel = await session.get(Channel, event.channel_id) if event else None
    channel_meta = message.meta.get("channel")
    full_text = message.meta.get("full_text") or (
        channel_meta.get("full_text") if isinstance(channel_meta, dict) else None
    )
    html = message.html
    raw: str | None = None
    if event is not None and channel is not None:
        adapter = ADAPTERS.get(channel.kind)
        if full_text is None and adapter is not None:
            try:
                parsed = await asyncio.to_thread(
                    adapter.normalize, dict(channel.config), delivery_from(event)
                )
            except Exception:
                parsed = None  # an unparseable original still has its raw bytes below
            if parsed is not None:
                full_text, html = parsed.full_text, html or parsed.html
        raw = event.payload.decode("utf-8", errors="replace")
    truncated = raw is not None and len(raw) > RAW_LIMIT
    return Original(
        message_id=message.id,
        text=message.text,
        full_text=str(full_text) if full_text else None,
        html=html,
        raw=raw[:RAW_LIMIT] if raw is not None else None,
        raw_truncated=truncated,
    )


# --- attachments ------------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/attachments/{attachment_id}",
    summary="An attachment's bytes, always as a download (never rendered by the browser)",
    tag="messages",
)
async def attachment(req: ApiRequest) -> web.StreamResponse:
    bot_refused(req.principal)
    async with req.sessions() as session:
        row = (
            await session.scalars(
                select(Attachment)
                .join(Message, Message.id == Attachment.message_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Attachment.id == req.path_int("attachment_id"),
                    visible_conversations(req.principal),
                )
            )
        ).first()
    if row is None:
        raise not_found("attachment")
    if row.sha256 is None:
        raise ApiError(410, "gone", row.refused or "the file was not kept")
    store = FileStore(req.request.app[SETTINGS].data_dir.expanduser().resolve() / "files")
    try:
        data = await store.get(row.sha256)
    except FileNotFoundError:
        raise ApiError(410, "gone", "the file is no longer in the store") from None
    response = web.Response(body=data, content_type="application/octet-stream")
    # A customer's HTML or SVG must not run on our origin: a download with its name, never inline.
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(row.filename)}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- search ----------------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/search",
    summary="Search-as-you-type over relations, contacts, projects, leads and conversations",
    tag="search",
)
async def search_route(req: ApiRequest) -> dict[str, Any]:
    query = req.request.query.get("q", "")
    try:
        limit = min(max(int(req.request.query.get("limit", "10")), 1), 50)
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be a number") from None
    p = req.principal
    visible, params = "true", {}
    if not p.is_admin:
        visible = CONVERSATIONS_SQL
        params = {"me": p.user_id, "teams": list(p.team_ids)}
    try:
        async with req.sessions() as session:
            groups = await search(
                session,
                query,
                limit=limit,
                visible_conversations=visible,
                params=params,
                confidential=p.is_admin,
                granted_projects=None if p.is_admin else PROJECTS_SQL,
            )
    except BadQuery as exc:
        raise ApiError(400, "bad_query", str(exc)) from None
    return {kind: [asdict(h) for h in hits] for kind, hits in groups.items()}
