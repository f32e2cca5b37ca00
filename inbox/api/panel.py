"""The customer panel beside a conversation and the same dashboard as a card for any record,
the matcher's suggestions of who the sender is, and linking the conversation to the contact
confirmed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Contact, Lead, Project, Relation
from inbox import realtime
from inbox.access import visible_conversations, visible_projects
from inbox.api.conversations import load_conversation
from inbox.api.dashboard import Dashboard, ProjectBrief, channel_kinds, dashboard
from inbox.api.router import API, ApiError, ApiRequest, bot_refused, not_found
from inbox.linking import link_conversation
from inbox.models import Conversation, Message
from inbox.schemas import ConversationOut
from inbox.state import ARQ

# --- wire types -----------------------------------------------------------------------------------


class Suggestion(BaseModel):
    contact_id: int | None
    relation_id: int | None
    contact_name: str | None
    relation_name: str | None
    score: float | None
    reasons: dict[str, Any] | list[Any] | str | None
    decision: str | None


class Panel(Dashboard):
    conversation_id: int
    suggestions: list[Suggestion]
    needs_review: str | None


class RecordCard(Dashboard):
    kind: str
    id: int
    title: str
    project: ProjectBrief | None = None


class LinkIn(BaseModel):
    contact_id: int


# --- the customer panel ---------------------------------------------------------------------------


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


# --- who the sender may be ------------------------------------------------------------------------


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


async def names(
    session: AsyncSession, model: Any, column: Any, ids: set[int | None]
) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(model.id, column).where(model.id.in_(wanted)))
    return {int(row[0]): str(row[1]) for row in rows if row[1]}


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
