"""The matcher over the API: match a sender, and the review queue of senders it was unsure of."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from crm.matcher import Sender, match_sender
from crm.models import Contact, MatchReview
from inbox import realtime
from inbox.access import visible_conversations
from inbox.api.router import API, ApiError, ApiRequest, decode_cursor, encode_cursor, not_found
from inbox.linking import link_conversation
from inbox.models import Conversation
from inbox.state import ARQ, SETTINGS

TEXT = Field(default=None, max_length=500)


class SenderIn(BaseModel):
    email: str | None = TEXT
    phone: str | None = TEXT
    telegram_id: str | None = TEXT
    name: str | None = TEXT
    company: str | None = TEXT
    city: str | None = TEXT


class CandidateOut(BaseModel):
    contact_id: int | None
    relation_id: int | None
    score: float
    reasons: dict[str, str]
    external_id: str | None = None
    name: str | None = None
    relation: str | None = None


class DecisionOut(BaseModel):
    decision: str
    score: float
    contact_id: int | None
    relation_id: int | None
    lead_id: int | None
    external_id: str | None
    reasons: dict[str, str]
    candidates: list[CandidateOut]


class ReviewOut(BaseModel):
    id: int
    status: str
    message_id: int | None
    conversation_id: int | None
    subject: str | None = None
    sender: dict[str, Any]
    candidates: list[dict[str, Any]]
    contact_id: int | None
    decided_by: int | None
    decided_at: datetime | None
    created_at: datetime


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None


class ConfirmIn(BaseModel):
    contact_id: int | None = None  # default: the best candidate


@API.route(
    "POST",
    "/api/match",
    summary="Match a sender: linked, review or unknown, with the contact, score and reasons",
    tag="matching",
    body=SenderIn,
    response=DecisionOut,
)
async def match_route(req: ApiRequest) -> DecisionOut:
    body: SenderIn = req.body
    sender = Sender(**body.model_dump())
    async with req.sessions() as session:
        decision = await match_sender(
            session, sender, config=req.request.app[SETTINGS].match_config()
        )
    return DecisionOut.model_validate(decision.as_meta())


@API.route(
    "GET",
    "/api/match/reviews",
    summary="The review queue: senders the matcher was unsure of, with their candidates",
    tag="matching",
    response=ReviewPage,
)
async def list_reviews(req: ApiRequest) -> ReviewPage:
    status = req.request.query.get("status", "open")
    if status not in ("open", "confirmed", "rejected", "all"):
        raise ApiError(400, "bad_request", "status is open, confirmed, rejected or all")
    query = (
        select(MatchReview, Conversation.subject)
        .join(Conversation, Conversation.id == MatchReview.conversation_id)
        .where(visible_conversations(req.principal))
        .order_by(MatchReview.id.desc())
        .limit(51)
    )
    if status != "all":
        query = query.where(MatchReview.status == status)
    if (cursor := decode_cursor(req.request.query.get("cursor"))) is not None:
        try:
            query = query.where(MatchReview.id < int(cursor[0]))
        except (TypeError, ValueError, IndexError):
            raise ApiError(400, "bad_cursor", "the cursor is not one we gave out") from None
    async with req.sessions() as session:
        rows = (await session.execute(query)).all()
    items = [review_out(r.MatchReview, r.subject) for r in rows[:50]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > 50 else None
    return ReviewPage(items=items, next_cursor=next_cursor)


def review_out(review: MatchReview, subject: str | None) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        status=review.status,
        message_id=review.message_id,
        conversation_id=review.conversation_id,
        subject=subject,
        sender=review.sender,
        candidates=review.candidates,
        contact_id=review.contact_id,
        decided_by=review.decided_by,
        decided_at=review.decided_at,
        created_at=review.created_at,
    )


async def load_review(req: ApiRequest, session: Any) -> tuple[MatchReview, Conversation]:
    row = (
        await session.execute(
            select(MatchReview, Conversation)
            .join(Conversation, Conversation.id == MatchReview.conversation_id)
            .where(
                MatchReview.id == req.path_int("review_id"),
                visible_conversations(req.principal),
            )
            .with_for_update(of=MatchReview)
        )
    ).first()
    if row is None:
        raise not_found("review")
    review, conversation = row
    if review.status != "open":
        raise ApiError(409, "conflict", f"the review is already {review.status}")
    return review, conversation


@API.route(
    "POST",
    "/api/match/reviews/{review_id}/confirm",
    summary="Confirm who the sender is: the conversation links, the sender's addresses are added",
    tag="matching",
    body=ConfirmIn,
    response=ReviewOut,
)
async def confirm_review(req: ApiRequest) -> ReviewOut:
    body: ConfirmIn = req.body
    if req.principal.scope == "bot":
        raise ApiError(403, "forbidden", "a bot token cannot do this")
    async with req.sessions() as session, session.begin():
        review, conversation = await load_review(req, session)
        contact_id = body.contact_id
        if contact_id is None:
            best = next((c for c in review.candidates if c.get("contact_id")), None)
            if best is None:
                raise ApiError(422, "invalid", "no candidate to confirm: give contact_id")
            contact_id = int(best["contact_id"])
        contact = await session.get(Contact, contact_id)
        if contact is None:
            raise ApiError(422, "invalid", "no such contact")
        await session.refresh(conversation, with_for_update=True)
        await link_conversation(session, conversation, contact, req.principal.user_id)
        await session.flush()
        await session.refresh(review)
        out = review_out(review, conversation.subject)
    await realtime.publish(req.request.app[ARQ], "conversation.linked", conversation)
    return out


@API.route(
    "POST",
    "/api/match/reviews/{review_id}/reject",
    summary="None of the candidates is the sender: the conversation stays with its lead",
    tag="matching",
    response=ReviewOut,
)
async def reject_review(req: ApiRequest) -> ReviewOut:
    if req.principal.scope == "bot":
        raise ApiError(403, "forbidden", "a bot token cannot do this")
    async with req.sessions() as session, session.begin():
        review, conversation = await load_review(req, session)
        review.status = "rejected"
        review.decided_by, review.decided_at = req.principal.user_id, datetime.now(UTC)
        out = review_out(review, conversation.subject)
    return out
