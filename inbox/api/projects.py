"""Projects over the API: list, create and update them, link conversations and activities to
one, and its timeline (activities, messages, call logs, tasks and the documents that came with
the messages), scoped like the conversations they came from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.lists import check_changes, check_record_fields
from crm.models import PROJECT_STATUSES, AccessGrant, Activity, Project, Relation, Task, Team, User
from inbox import realtime
from inbox.access import Principal, visible_conversations, visible_projects
from inbox.api.conversations import channel_kinds, load_conversation
from inbox.api.crm import STAFF, escape_like, load_project, page_query
from inbox.api.page import PREVIEW
from inbox.api.router import API, ApiError, ApiRequest, bot_refused, encode_cursor, not_found
from inbox.history import record
from inbox.models import Attachment, Conversation, Message
from inbox.state import ARQ

ProjectStatus = Literal["open", "on_hold", "closed"]
assert set(PROJECT_STATUSES) == set(ProjectStatus.__args__)  # type: ignore[attr-defined]
TIMELINE_KINDS = ("activity", "message", "call", "task", "document")

# --- wire types -----------------------------------------------------------------------------------


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=300)
    relation_id: int | None = None
    city: str | None = Field(default=None, max_length=100)
    status: ProjectStatus = "open"
    description: str | None = Field(default=None, max_length=20_000)
    owner_id: int | None = None
    team_id: int | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    confidential: bool = False  # managers and admins; the creator is linked to it
    custom_fields: dict[str, Any] | None = None  # checked against the project's custom fields


class ProjectPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    relation_id: int | None = None
    city: str | None = Field(default=None, max_length=100)
    status: ProjectStatus | None = None
    description: str | None = Field(default=None, max_length=20_000)
    owner_id: int | None = None
    team_id: int | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    custom_fields: dict[str, Any] | None = None  # merged into the stored ones; null or "" clears


class ProjectOut(BaseModel):
    id: int
    name: str
    relation_id: int | None
    city: str | None
    status: str
    confidential: bool
    description: str | None
    owner_id: int | None
    team_id: int | None
    starts_on: date | None
    ends_on: date | None
    custom_fields: dict[str, Any]
    created_at: datetime

    model_config = {"from_attributes": True}


class ProjectPage(BaseModel):
    items: list[ProjectOut]
    next_cursor: str | None


class ProjectLinkIn(BaseModel):
    project_id: int | None  # None unlinks


class TimelineItem(BaseModel):
    kind: Literal["activity", "message", "call", "task", "document"]
    id: int
    at: datetime
    title: str | None
    summary: str | None
    direction: str | None = None
    status: str | None = None
    channel_kind: str | None = None
    conversation_id: int | None = None
    message_id: int | None = None
    due_at: datetime | None = None
    duration_s: int | None = None
    content_type: str | None = None
    size: int | None = None


class Timeline(BaseModel):
    project: ProjectOut
    items: list[TimelineItem]
    next_cursor: str | None


class TimelineQuery(BaseModel):
    before: datetime | None = None
    limit: int = Field(default=50, ge=1, le=200)


# --- validation -----------------------------------------------------------------------------------


def invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "invalid",
        message,
        [{"loc": ["body", field], "msg": message, "type": "value_error"}],
    )


async def check_references(session: AsyncSession, values: dict[str, Any]) -> None:
    """The relation, owner and team named exist (422 naming the field otherwise)."""
    for field, model in (("relation_id", Relation), ("owner_id", User), ("team_id", Team)):
        wanted = values.get(field)
        if wanted is not None and await session.get(model, wanted) is None:
            raise invalid(field, f"no such {field.removesuffix('_id').replace('owner', 'user')}")
    starts, ends = values.get("starts_on"), values.get("ends_on")
    if starts and ends and ends < starts:
        raise invalid("ends_on", "a project cannot end before it starts")


# --- projects -------------------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/projects",
    summary="Projects (relation_id, status, q by name), confidential ones only where linked",
    tag="projects",
    response=ProjectPage,
)
async def list_projects(req: ApiRequest) -> ProjectPage:
    query = select(Project).where(visible_projects(req.principal))
    params = req.request.query
    if relation := params.get("relation_id"):
        if not relation.isdigit():
            raise ApiError(400, "bad_request", "relation_id is a number")
        query = query.where(Project.relation_id == int(relation))
    if status := params.get("status"):
        if status not in PROJECT_STATUSES:
            raise ApiError(400, "bad_request", f"status is one of {', '.join(PROJECT_STATUSES)}")
        query = query.where(Project.status == status)
    if q := params.get("q", "").strip()[:100]:
        query = query.where(Project.name.ilike(f"%{escape_like(q)}%", escape="\\"))
    async with req.sessions() as session:
        rows = (await session.scalars(page_query(req, query, Project))).all()
    items = [ProjectOut.model_validate(p) for p in rows[:50]]
    return ProjectPage(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > 50 else None
    )


@API.route(
    "GET", "/api/projects/{project_id}", summary="A project", tag="projects", response=ProjectOut
)
async def get_project(req: ApiRequest) -> ProjectOut:
    async with req.sessions() as session:
        return ProjectOut.model_validate(await load_project(req, session))


@API.route(
    "POST",
    "/api/projects",
    summary="Create a project (confidential: managers and admins; the creator is linked)",
    tag="projects",
    body=ProjectIn,
    response=ProjectOut,
    status=201,
)
async def create_project(req: ApiRequest) -> ProjectOut:
    body: ProjectIn = req.body
    bot_refused(req.principal)
    if body.confidential and req.principal.role not in STAFF:
        raise ApiError(403, "forbidden", "only managers and admins make a project confidential")
    values = body.model_dump()
    async with req.sessions() as session, session.begin():
        await check_references(session, values)
        values["custom_fields"] = await check_record_fields(
            session, "project", values["custom_fields"] or {}
        )
        project = Project(**values)
        session.add(project)
        await session.flush()
        if project.confidential:
            session.add(AccessGrant(project_id=project.id, user_id=req.principal.user_id))
    return ProjectOut.model_validate(project)


@API.route(
    "PATCH",
    "/api/projects/{project_id}",
    summary="Update a project (access is changed with PUT …/access)",
    tag="projects",
    body=ProjectPatch,
    response=ProjectOut,
)
async def update_project(req: ApiRequest) -> ProjectOut:
    body: ProjectPatch = req.body
    bot_refused(req.principal)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None or changes.get("status", "") is None:
        raise invalid("name" if "name" in changes else "status", "cannot be empty")
    async with req.sessions() as session, session.begin():
        project = await load_project(req, session, True)
        merged = {
            "starts_on": project.starts_on,
            "ends_on": project.ends_on,
        } | changes
        await check_references(session, merged)
        changes = await check_changes(session, "project", changes, project.custom_fields)
        for name, value in changes.items():
            setattr(project, name, value)
    return ProjectOut.model_validate(project)


# --- linking --------------------------------------------------------------------------------------


async def linkable_project(session: AsyncSession, p: Principal, project_id: int | None) -> None:
    if project_id is None:
        return
    found = await session.scalar(
        select(Project.id).where(Project.id == project_id, visible_projects(p))
    )
    if found is None:
        raise invalid("project_id", "no such project")


@API.route(
    "PUT",
    "/api/conversations/{conversation_id}/project",
    summary="Link a conversation to a project (null unlinks); its messages join the timeline",
    tag="projects",
    body=ProjectLinkIn,
)
async def link_conversation_project(req: ApiRequest) -> dict[str, Any]:
    body: ProjectLinkIn = req.body
    bot_refused(req.principal)
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        await linkable_project(session, req.principal, body.project_id)
        if conversation.project_id != body.project_id:
            record(
                session,
                conversation.id,
                "project",
                req.principal.user_id,
                project_id=body.project_id,
                previous=conversation.project_id,
            )
            conversation.project_id = body.project_id
    await realtime.publish(req.request.app[ARQ], "conversation.updated", conversation)
    return {"conversation_id": conversation.id, "project_id": conversation.project_id}


@API.route(
    "PUT",
    "/api/activities/{activity_id}/project",
    summary="Link an activity to a project (null unlinks)",
    tag="projects",
    body=ProjectLinkIn,
)
async def link_activity_project(req: ApiRequest) -> dict[str, Any]:
    body: ProjectLinkIn = req.body
    bot_refused(req.principal)
    async with req.sessions() as session, session.begin():
        query = (
            select(Activity)
            .outerjoin(Conversation, Conversation.id == Activity.conversation_id)
            .where(
                Activity.id == req.path_int("activity_id"),
                or_(Activity.conversation_id.is_(None), visible_conversations(req.principal)),
            )
            .with_for_update(of=Activity)
        )
        activity = (await session.scalars(query)).first()
        if activity is None:
            raise not_found("activity")
        await linkable_project(session, req.principal, body.project_id)
        activity.project_id = body.project_id
    return {"activity_id": activity.id, "project_id": activity.project_id}


# --- the timeline ---------------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/projects/{project_id}/timeline",
    summary="A project's activities, messages, call logs, tasks and documents, newest first",
    tag="projects",
    query=TimelineQuery,
    response=Timeline,
)
async def project_timeline(req: ApiRequest) -> Timeline:
    q: TimelineQuery = req.query
    async with req.sessions() as session:
        project = await load_project(req, session)
        items = await timeline(session, req.principal, project.id, q.before, q.limit + 1)
    more = len(items) > q.limit
    items = items[: q.limit]
    return Timeline(
        project=ProjectOut.model_validate(project),
        items=items,
        next_cursor=items[-1].at.isoformat() if more and items else None,
    )


async def timeline(
    session: AsyncSession, p: Principal, project_id: int, before: datetime | None, limit: int
) -> list[TimelineItem]:
    """Newest first: four indexed queries (each at most `limit` rows), merged."""
    seen = visible_conversations(p)
    linked = select(Conversation.id).where(Conversation.project_id == project_id, seen)
    kinds = await channel_kinds(session)

    def upto(query: Any, at: Any) -> Any:
        return (query.where(at < before) if before else query).order_by(at.desc()).limit(limit)

    def through_visible(model: Any) -> ColumnElement[bool]:
        return or_(
            model.conversation_id.is_(None),
            model.conversation_id.in_(select(Conversation.id).where(seen)),
        )

    items: list[TimelineItem] = []
    messages = await session.execute(
        upto(
            select(Message, Conversation.subject).join(
                Conversation, Conversation.id == Message.conversation_id
            ),
            Message.sent_at,
        ).where(Message.conversation_id.in_(linked))
    )
    for m, subject in messages:
        call = m.meta.get("call") if m.kind == "call" and isinstance(m.meta, dict) else None
        call = call if isinstance(call, dict) else None
        items.append(
            TimelineItem(
                kind="call" if m.kind == "call" else "message",
                id=m.id,
                at=m.sent_at,
                title=m.subject or subject,
                summary=" ".join(m.text.split())[:PREVIEW] or None,
                direction=m.direction,
                status=call.get("status") if call else m.status,
                channel_kind=kinds.get(m.channel_id),
                conversation_id=m.conversation_id,
                message_id=m.id,
                duration_s=call.get("duration_s") if call else None,
            )
        )
    # Activities of a linked conversation are its messages, already listed.
    activities = await session.scalars(
        upto(select(Activity), Activity.occurred_at).where(
            Activity.project_id == project_id,
            through_visible(Activity),
            or_(Activity.conversation_id.is_(None), Activity.conversation_id.not_in(linked)),
        )
    )
    for a in activities:
        items.append(
            TimelineItem(
                kind="activity",
                id=a.id,
                at=a.occurred_at,
                title=a.subject or a.kind,
                summary=" ".join((a.body or "").split())[:PREVIEW] or None,
                direction=a.direction,
                status=a.outcome,
                channel_kind=kinds.get(a.channel_id) if a.channel_id else a.kind,
                conversation_id=a.conversation_id,
                duration_s=a.duration_s,
            )
        )
    tasks = await session.scalars(
        upto(select(Task), Task.created_at).where(
            or_(Task.project_id == project_id, Task.conversation_id.in_(linked)),
            through_visible(Task),
        )
    )
    for t in tasks:
        items.append(
            TimelineItem(
                kind="task",
                id=t.id,
                at=t.created_at,
                title=t.title,
                summary=None,
                status=t.status,
                conversation_id=t.conversation_id,
                due_at=t.due_at,
            )
        )
    documents = await session.execute(
        upto(
            select(Attachment, Message.sent_at, Message.conversation_id).join(
                Message, Message.id == Attachment.message_id
            ),
            Message.sent_at,
        ).where(Message.conversation_id.in_(linked), ~Attachment.inline)
    )
    for d, sent_at, conversation_id in documents:
        items.append(
            TimelineItem(
                kind="document",
                id=d.id,
                at=sent_at,
                title=d.filename,
                summary=d.refused,
                conversation_id=conversation_id,
                message_id=d.message_id,
                content_type=d.content_type,
                size=d.size,
            )
        )
    items.sort(key=lambda i: (i.at, -TIMELINE_KINDS.index(i.kind), i.id), reverse=True)
    return items[:limit]
