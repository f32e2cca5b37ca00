"""REST routes of the inbox: conversations, messages, tasks, leads, channels, tokens, log-in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import func, or_, select, tuple_, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels import ADAPTERS
from crm import normalizers
from crm.models import Activity, Contact, Identity, Lead, Relation, Task, TeamMember, User
from inbox import realtime
from inbox.access import visible_conversations
from inbox.api.auth import (
    check_login,
    create_api_token,
    create_session,
    end_session,
    set_session_cookie,
)
from inbox.api.router import API, ApiError, ApiRequest, decode_cursor, encode_cursor, not_found
from inbox.history import record
from inbox.ingest.channels import add_channel, describe
from inbox.ingest.journal import enqueue_send
from inbox.models import (
    CONVERSATION_STATUSES,
    Attachment,
    Channel,
    Conversation,
    HistoryEntry,
    Message,
)
from inbox.outbound import CannotSend, add_note, queue_reply
from inbox.schemas import (
    AssignIn,
    AttachmentOut,
    ChannelIn,
    ConversationOut,
    ConversationPage,
    ConversationQuery,
    ConvertIn,
    ConvertOut,
    HistoryOut,
    LabelsIn,
    LeadOut,
    LeadPage,
    LeadQuery,
    LoginIn,
    Me,
    MessageOut,
    MessagePage,
    NoteIn,
    PriorityIn,
    QualifyIn,
    ReplyIn,
    StatusIn,
    TaskOut,
    TaskPage,
    TaskQuery,
    TokenIn,
    TokenOut,
)
from inbox.state import ARQ, SESSIONS

ADMIN = ("admin",)
STAFF = ("admin", "manager")


def now() -> datetime:
    return datetime.now(UTC)


# --- log-in ---------------------------------------------------------------------------------


async def login(request: web.Request) -> web.Response:
    """POST /api/auth/login {email, password}: sets the session cookie, returns the CSRF token."""
    try:
        data = LoginIn.model_validate(await request.json())
    except Exception:
        raise web.HTTPBadRequest(
            text='{"error": {"status": 400, "code": "bad_request", "message": "email and password required"}}',
            content_type="application/json",
        ) from None
    user, wait = await check_login(request, data.email, data.password)
    if wait is not None:
        return web.json_response(
            {"error": {"status": 429, "code": "rate_limited", "message": "too many attempts"}},
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if user is None:
        return web.json_response(
            {
                "error": {
                    "status": 401,
                    "code": "bad_credentials",
                    "message": "wrong e-mail or password",
                }
            },
            status=401,
        )
    async with request.app[SESSIONS]() as session, session.begin():
        token, csrf = await create_session(session, user.id)
    response = web.json_response(
        {"id": user.id, "name": user.name, "role": user.role, "csrf_token": csrf}
    )
    set_session_cookie(request, response, token)
    return response


async def logout(request: web.Request) -> web.Response:
    await end_session(request)
    response = web.json_response({"status": "logged out"})
    response.del_cookie("sb_session", path="/")
    return response


@API.route("GET", "/api/me", summary="Who am I", tag="auth", response=Me, scopes=("api", "bot"))
async def me(req: ApiRequest) -> Me:
    p = req.principal
    return Me(
        id=p.user_id, name=p.name, role=p.role, team_ids=list(p.team_ids), csrf_token=p.csrf_token
    )


@API.route(
    "POST",
    "/api/tokens",
    summary="Create an API or bot token (shown once)",
    tag="auth",
    body=TokenIn,
    response=TokenOut,
    status=201,
)
async def create_token(req: ApiRequest) -> TokenOut:
    body: TokenIn = req.body
    user_id = body.user_id or req.principal.user_id
    if (body.scope == "bot" or user_id != req.principal.user_id) and not req.principal.is_admin:
        raise ApiError(403, "forbidden", "only an admin creates bot tokens or tokens for others")
    if body.scope == "bot" and not body.channel_id:
        raise ApiError(422, "invalid", "a bot token needs a channel_id")
    async with req.sessions() as session, session.begin():
        token = await create_api_token(session, user_id, body.name, body.scope, body.channel_id)
    return TokenOut(token=token, scope=body.scope, user_id=user_id)


# --- conversations --------------------------------------------------------------------------


async def load_conversation(
    session: AsyncSession, req: ApiRequest, lock: bool = False
) -> Conversation:
    query = select(Conversation).where(
        Conversation.id == req.path_int("conversation_id"), visible_conversations(req.principal)
    )
    conversation = (await session.scalars(query.with_for_update() if lock else query)).first()
    if conversation is None:
        raise not_found("conversation")
    return conversation


def conversation_out(c: Conversation, kinds: dict[str, str]) -> ConversationOut:
    out = ConversationOut.model_validate(c)
    out.channel_kind = kinds.get(c.channel_id)
    return out


async def channel_kinds(session: AsyncSession) -> dict[str, str]:
    return {
        row.id: row.kind for row in (await session.execute(select(Channel.id, Channel.kind))).all()
    }


@API.route(
    "GET",
    "/api/conversations",
    summary="List conversations",
    tag="conversations",
    query=ConversationQuery,
    response=ConversationPage,
    scopes=("api", "bot"),
)
async def list_conversations(req: ApiRequest) -> ConversationPage:
    q: ConversationQuery = req.query
    p = req.principal
    query = select(Conversation).where(visible_conversations(p))
    if q.status != "all":
        query = query.where(Conversation.status == q.status)
    if q.mine:
        query = query.where(Conversation.assignee_id == p.user_id)
    if q.unassigned:
        query = query.where(Conversation.assignee_id.is_(None))
    if q.team is not None:
        query = query.where(Conversation.team_id == q.team)
    if q.channel:
        query = query.where(Conversation.channel_id == q.channel)
    if q.label:
        query = query.where(Conversation.labels.contains([q.label]))
    if q.q:
        pattern = "%" + q.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Conversation.subject.ilike(pattern))
    sort_at = Conversation.last_message_at
    if (cursor := decode_cursor(q.cursor)) is not None:
        try:
            at, last_id = datetime.fromisoformat(str(cursor[0])), int(cursor[1])
        except (ValueError, IndexError):
            raise ApiError(400, "bad_cursor", "the cursor is not one we gave out") from None
        query = query.where(tuple_(sort_at, Conversation.id) < tuple_(at, last_id))
    # Matches a backward scan of ix_conversations_list (status, last_message_at, id).
    newest = (sort_at.desc(), Conversation.id.desc())
    if q.status == "all":
        # Without a status to lead that index PostgreSQL sorts every visible row; the newest page
        # of each status is one short index scan, and the page is the newest of those.
        per_status = union_all(
            *(
                query.where(Conversation.status == status).order_by(*newest).limit(q.limit + 1)
                for status in CONVERSATION_STATUSES
            )
        ).subquery()
        merged = aliased(Conversation, per_status)
        query = select(merged).order_by(merged.last_message_at.desc(), merged.id.desc())
    else:
        query = query.order_by(*newest)
    query = query.limit(q.limit + 1)
    async with req.sessions() as session:
        rows = list((await session.scalars(query)).all())
        kinds = await channel_kinds(session)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    async with req.sessions() as session:
        due = await due_times(session, [c.id for c in rows])
    last = rows[-1] if rows else None
    next_cursor = (
        encode_cursor((last.last_message_at or last.created_at).isoformat(), last.id)
        if more and last
        else None
    )
    items = [conversation_out(c, kinds).model_copy(update={"due_at": due.get(c.id)}) for c in rows]
    return ConversationPage(items=items, next_cursor=next_cursor)


async def due_times(session: AsyncSession, ids: list[int]) -> dict[int, datetime]:
    """The earliest open-task due time per conversation, in one query."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Task.conversation_id, func.min(Task.due_at))
        .where(Task.conversation_id.in_(ids), Task.status == "open")
        .group_by(Task.conversation_id)
    )
    return {cid: at for cid, at in rows.all() if cid is not None and at is not None}


@API.route(
    "GET",
    "/api/users",
    summary="People to assign work to (active users with their teams)",
    tag="auth",
)
async def list_users(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        users = (
            await session.scalars(select(User).where(User.is_active).order_by(User.name))
        ).all()
        memberships = (await session.execute(select(TeamMember.user_id, TeamMember.team_id))).all()
    teams: dict[int, list[int]] = {}
    for user_id, team_id in memberships:
        teams.setdefault(user_id, []).append(team_id)
    return [
        {
            "id": u.id,
            "name": u.name,
            "role": u.role,
            "away": u.away,
            "team_ids": teams.get(u.id, []),
        }
        for u in users
    ]


@API.route(
    "GET",
    "/api/conversations/{conversation_id}",
    summary="One conversation",
    tag="conversations",
    response=ConversationOut,
    scopes=("api", "bot"),
)
async def get_conversation(req: ApiRequest) -> ConversationOut:
    async with req.sessions() as session:
        conversation = await load_conversation(session, req)
        return conversation_out(conversation, await channel_kinds(session))


@API.route(
    "GET",
    "/api/conversations/{conversation_id}/messages",
    summary="Messages of a conversation",
    tag="messages",
    response=MessagePage,
    scopes=("api", "bot"),
)
async def list_messages(req: ApiRequest) -> MessagePage:
    try:
        limit = min(max(int(req.request.query.get("limit", "100")), 1), 500)
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be a number") from None
    cursor = decode_cursor(req.request.query.get("cursor"))
    async with req.sessions() as session:
        conversation = await load_conversation(session, req)
        query = select(Message).where(Message.conversation_id == conversation.id)
        if cursor is not None:
            query = query.where(Message.id > int(cursor[0]))
        rows = list((await session.scalars(query.order_by(Message.id).limit(limit + 1))).all())
        more = len(rows) > limit
        rows = rows[:limit]
        files = (
            await session.scalars(
                select(Attachment).where(Attachment.message_id.in_([m.id for m in rows]))
            )
        ).all()
    by_message: dict[int, list[AttachmentOut]] = {}
    for f in files:
        by_message.setdefault(f.message_id, []).append(AttachmentOut.model_validate(f))
    items = []
    for m in rows:
        out = MessageOut.model_validate(m)
        out.attachments = by_message.get(m.id, [])
        items.append(out)
    return MessagePage(items=items, next_cursor=encode_cursor(rows[-1].id) if more else None)


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/messages",
    summary="Reply on the conversation's channel",
    tag="messages",
    body=ReplyIn,
    response=MessageOut,
    status=201,
    scopes=("api", "bot"),
)
async def reply(req: ApiRequest) -> MessageOut:
    body: ReplyIn = req.body
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        if req.principal.scope == "bot" and conversation.handled_by != "bot":
            raise ApiError(409, "taken", "a person has taken this conversation")
        try:
            message = await queue_reply(
                session,
                conversation,
                text=body.text,
                html=body.html,
                subject=body.subject,
                author_id=None if req.principal.scope == "bot" else req.principal.user_id,
                now=now(),
            )
        except CannotSend as exc:
            raise ApiError(409, "cannot_send", str(exc)) from None
        if req.principal.scope != "bot":
            await session.execute(
                update(Task)
                .where(
                    Task.conversation_id == conversation.id,
                    Task.status == "open",
                    Task.kind.in_(("reply", "follow_up_lead")),
                )
                .values(status="done", completed_at=now())
            )
    await enqueue_send(req.request.app[ARQ], message.id)
    await realtime.publish(req.request.app[ARQ], "message.created", conversation)
    return MessageOut.model_validate(message)


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/notes",
    summary="Add an internal note",
    tag="messages",
    body=NoteIn,
    response=MessageOut,
    status=201,
)
async def note(req: ApiRequest) -> MessageOut:
    body: NoteIn = req.body
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req)
        message = await add_note(session, conversation, body.text, req.principal.user_id, now())
    await realtime.publish(req.request.app[ARQ], "message.created", conversation)
    return MessageOut.model_validate(message)


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/assign",
    summary="Assign, reassign or unassign",
    tag="conversations",
    body=AssignIn,
    response=ConversationOut,
)
async def assign(req: ApiRequest) -> ConversationOut:
    body: AssignIn = req.body
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        if body.assignee_id is not None and await session.get(User, body.assignee_id) is None:
            raise ApiError(422, "invalid", "no such user")
        before = (conversation.assignee_id, conversation.team_id)
        conversation.assignee_id = body.assignee_id
        if "team_id" in body.model_fields_set:
            conversation.team_id = body.team_id
        await session.execute(
            update(Task)
            .where(Task.conversation_id == conversation.id, Task.status == "open")
            .values(assignee_id=conversation.assignee_id, team_id=conversation.team_id)
        )
        record(
            session,
            conversation.id,
            "assign",
            req.principal.user_id,
            before={"assignee_id": before[0], "team_id": before[1]},
            after={"assignee_id": conversation.assignee_id, "team_id": conversation.team_id},
        )
        kinds = await channel_kinds(session)
    await realtime.publish(req.request.app[ARQ], "conversation.assigned", conversation)
    return conversation_out(conversation, kinds)


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/status",
    summary="Open, pend, snooze or resolve",
    tag="conversations",
    body=StatusIn,
    response=ConversationOut,
)
async def set_status(req: ApiRequest) -> ConversationOut:
    body: StatusIn = req.body
    if body.status == "snoozed" and (
        body.snoozed_until is None or body.snoozed_until.tzinfo is None
    ):
        raise ApiError(422, "invalid", "snoozing needs snoozed_until with a time zone")
    at = now()
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        before = conversation.status
        conversation.status = body.status
        conversation.snoozed_until = body.snoozed_until if body.status == "snoozed" else None
        if body.status == "resolved":
            conversation.resolved_at = at
            await session.execute(
                update(Task)
                .where(Task.conversation_id == conversation.id, Task.status == "open")
                .values(status="done", completed_at=at)
            )
        elif before == "resolved":
            conversation.resolved_at = None
        record(
            session,
            conversation.id,
            "status",
            req.principal.user_id,
            before=before,
            after=body.status,
            snoozed_until=body.snoozed_until.isoformat() if body.snoozed_until else None,
        )
        kinds = await channel_kinds(session)
    await realtime.publish(req.request.app[ARQ], "conversation.status", conversation)
    return conversation_out(conversation, kinds)


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/priority",
    summary="Change priority",
    tag="conversations",
    body=PriorityIn,
    response=ConversationOut,
)
async def set_priority(req: ApiRequest) -> ConversationOut:
    body: PriorityIn = req.body
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        record(
            session,
            conversation.id,
            "priority",
            req.principal.user_id,
            before=conversation.priority,
            after=body.priority,
        )
        conversation.priority = body.priority
        await session.execute(
            update(Task)
            .where(Task.conversation_id == conversation.id, Task.status == "open")
            .values(priority=body.priority)
        )
        kinds = await channel_kinds(session)
    return conversation_out(conversation, kinds)


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/labels",
    summary="Add or remove labels",
    tag="conversations",
    body=LabelsIn,
    response=ConversationOut,
)
async def set_labels(req: ApiRequest) -> ConversationOut:
    body: LabelsIn = req.body
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        labels = [x for x in conversation.labels if x not in body.remove]
        labels += [x.strip()[:60] for x in body.add if x.strip() and x.strip() not in labels]
        conversation.labels = labels
        record(
            session,
            conversation.id,
            "labels",
            req.principal.user_id,
            add=body.add,
            remove=body.remove,
        )
        kinds = await channel_kinds(session)
    return conversation_out(conversation, kinds)


@API.route(
    "GET",
    "/api/conversations/{conversation_id}/history",
    summary="What happened, by whom",
    tag="conversations",
    response=None,
)
async def history(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        conversation = await load_conversation(session, req)
        rows = (
            await session.scalars(
                select(HistoryEntry)
                .where(HistoryEntry.conversation_id == conversation.id)
                .order_by(HistoryEntry.id)
            )
        ).all()
    return [HistoryOut.model_validate(r).model_dump(mode="json") for r in rows]


# --- tasks ----------------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/tasks",
    summary="My or my teams' tasks",
    tag="tasks",
    query=TaskQuery,
    response=TaskPage,
)
async def list_tasks(req: ApiRequest) -> TaskPage:
    q: TaskQuery = req.query
    p = req.principal
    query = select(Task).where(Task.status == q.status)
    if q.scope == "mine":
        query = query.where(Task.assignee_id == p.user_id)
    elif q.scope == "team" or not p.is_admin:
        query = query.where(or_(Task.team_id.in_(p.team_ids or [0]), Task.assignee_id == p.user_id))
    if (cursor := decode_cursor(q.cursor)) is not None:
        query = query.where(Task.id > int(cursor[0]))
    query = query.order_by(Task.id).limit(q.limit + 1)
    async with req.sessions() as session:
        rows = list((await session.scalars(query)).all())
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return TaskPage(
        items=[TaskOut.model_validate(t) for t in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@API.route(
    "POST",
    "/api/tasks/{task_id}/complete",
    summary="Complete a task",
    tag="tasks",
    response=TaskOut,
)
async def complete_task(req: ApiRequest) -> TaskOut:
    p = req.principal
    async with req.sessions() as session, session.begin():
        task = await session.get(Task, req.path_int("task_id"), with_for_update=True)
        allowed = task is not None and (
            p.is_admin
            or task.assignee_id == p.user_id
            or (task.team_id in p.team_ids and p.role == "manager")
        )
        if task is None or not allowed:
            raise not_found("task")
        task.status, task.completed_at = "done", now()
    return TaskOut.model_validate(task)


# --- leads ----------------------------------------------------------------------------------


@API.route(
    "GET", "/api/leads", summary="List leads", tag="leads", query=LeadQuery, response=LeadPage
)
async def list_leads(req: ApiRequest) -> LeadPage:
    q: LeadQuery = req.query
    query = select(Lead)
    if q.status:
        query = query.where(Lead.status == q.status)
    if (cursor := decode_cursor(q.cursor)) is not None:
        query = query.where(Lead.id < int(cursor[0]))
    async with req.sessions() as session:
        rows = list(
            (await session.scalars(query.order_by(Lead.id.desc()).limit(q.limit + 1))).all()
        )
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return LeadPage(
        items=[LeadOut.model_validate(x) for x in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@API.route(
    "POST",
    "/api/leads/{lead_id}/qualify",
    summary="Set a lead's status",
    tag="leads",
    body=QualifyIn,
    response=LeadOut,
)
async def qualify_lead(req: ApiRequest) -> LeadOut:
    body: QualifyIn = req.body
    async with req.sessions() as session, session.begin():
        lead = await session.get(Lead, req.path_int("lead_id"), with_for_update=True)
        if lead is None:
            raise not_found("lead")
        if lead.status == "converted":
            raise ApiError(409, "converted", "this lead is already converted")
        lead.status = body.status
    return LeadOut.model_validate(lead)


@API.route(
    "POST",
    "/api/leads/{lead_id}/convert",
    summary="Convert a lead into relation + contact",
    tag="leads",
    body=ConvertIn,
    response=ConvertOut,
    status=201,
)
async def convert_lead(req: ApiRequest) -> ConvertOut:
    body: ConvertIn = req.body
    async with req.sessions() as session, session.begin():
        lead = await session.get(Lead, req.path_int("lead_id"), with_for_update=True)
        if lead is None:
            raise not_found("lead")
        if lead.status == "converted":
            raise ApiError(409, "converted", "this lead is already converted")
        contact_id, relation_id = await convert(session, lead, body, req.principal.user_id)
    return ConvertOut(lead_id=lead.id, contact_id=contact_id, relation_id=relation_id)


async def convert(
    session: AsyncSession, lead: Lead, body: ConvertIn, user_id: int
) -> tuple[int, int | None]:
    """Make the lead a contact (at a new or existing relation) and move its history over."""
    relation_id = body.relation_id
    if relation_id is not None and await session.get(Relation, relation_id) is None:
        raise ApiError(422, "invalid", "no such relation")
    name = body.relation_name or lead.company
    if relation_id is None and name:
        relation = Relation(
            name=name,
            normalized_name=normalizers.company(name),
            status="prospect",
            account_manager_id=lead.owner_id or user_id,
        )
        session.add(relation)
        await session.flush()
        relation_id = relation.id
    parts = (lead.name or "").split(" ", 1)
    first = body.first_name or (parts[0] if parts[0] else None)
    last = body.last_name or (parts[1] if len(parts) > 1 else None)
    contact = Contact(
        relation_id=relation_id,
        first_name=first,
        last_name=last,
        full_name=" ".join(x for x in (first, last) if x) or lead.name or "?",
    )
    session.add(contact)
    await session.flush()
    moved = {"contact_id": contact.id, "relation_id": relation_id}
    await session.execute(
        update(Identity)
        .where(Identity.lead_id == lead.id)
        .values(lead_id=None, contact_id=contact.id)
    )
    for model in (Conversation, Activity, Task):
        await session.execute(update(model).where(model.lead_id == lead.id).values(**moved))
    lead.status, lead.converted_contact_id = "converted", contact.id
    return contact.id, relation_id


# --- channels (admin) -----------------------------------------------------------------------


@API.route(
    "GET",
    "/api/channels",
    summary="Channels with webhook paths and secrets",
    tag="channels",
    roles=ADMIN,
)
async def list_channels(req: ApiRequest) -> list[dict[str, Any]]:
    base = str(req.request.url.origin())
    async with req.sessions() as session:
        rows = (await session.scalars(select(Channel).order_by(Channel.created_at))).all()
        return [describe(c, base) for c in rows]


@API.route(
    "POST",
    "/api/channels",
    summary="Add a channel",
    tag="channels",
    roles=ADMIN,
    body=ChannelIn,
    status=201,
)
async def create_channel(req: ApiRequest) -> dict[str, Any]:
    body: ChannelIn = req.body
    if body.kind not in ADAPTERS:
        raise ApiError(422, "invalid", f"unknown channel kind {body.kind!r}")
    try:
        async with req.sessions() as session, session.begin():
            channel = await add_channel(session, body.kind, body.name, body.config, body.team)
    except (ValueError, LookupError) as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return describe(channel, str(req.request.url.origin()))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/auth/logout", logout)
    API.add_routes(app)
