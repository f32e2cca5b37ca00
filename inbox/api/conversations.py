"""REST routes of conversations and their messages: list, read, reply, add a note, assign,
set status, priority and labels, the history, and the people to assign work to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, tuple_, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm.models import Task, TeamMember, User
from inbox import realtime
from inbox.access import visible_conversations
from inbox.api.router import API, ApiError, ApiRequest, decode_cursor, encode_cursor, not_found
from inbox.history import record
from inbox.ingest.journal import enqueue_send
from inbox.models import (
    CONVERSATION_STATUSES,
    Attachment,
    Channel,
    Conversation,
    HistoryEntry,
    Message,
)
from inbox.outbound import CannotSend, add_note, queue_reply, template_of
from inbox.outbox import events as outbox_events
from inbox.schemas import (
    AssignIn,
    AttachmentOut,
    ConversationOut,
    ConversationPage,
    ConversationQuery,
    HistoryOut,
    LabelsIn,
    MessageOut,
    MessagePage,
    NoteIn,
    PriorityIn,
    ReplyIn,
    StatusIn,
)
from inbox.state import ARQ


def now() -> datetime:
    return datetime.now(UTC)


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
                template=template_of(body.template) if body.template else None,
            )
        except CannotSend as exc:
            raise ApiError(409, "cannot_send", str(exc)) from None
        await outbox_events.emit_messages(session, [message.id])
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
        await outbox_events.emit_conversations(
            session, "conversation.assigned", [conversation.id], req.principal.user_id
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
        if body.status == "resolved" and before != "resolved":
            await outbox_events.emit_conversations(
                session, "conversation.resolved", [conversation.id], req.principal.user_id
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
