"""The relation dashboard of whoever a conversation or record concerns: contact, relation and
lead cards, open leads, projects, activities, open tasks, complaints and recent conversations,
scoped to what the principal may see."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

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
    User,
    relation_categories,
)
from inbox.access import Principal, visible_conversations, visible_projects
from inbox.api.page import PREVIEW, NamedRef, sla_state, utcnow
from inbox.models import Channel, Conversation

COMPLAINT_LABELS = ["klacht", "complaint"]
OPEN_LEADS = ("new", "contacted", "qualified")
KINDS_TTL_S = 10.0


# --- wire types (the cards the panel shows) -------------------------------------------------------


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


# --- helpers --------------------------------------------------------------------------------------


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


# --- the dashboard --------------------------------------------------------------------------------


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
