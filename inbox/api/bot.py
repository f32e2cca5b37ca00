"""REST routes of the first-line bot: the knowledge base and bot settings (admin), hand-over and
hand-back, and what an external bot may do with its bot token (hand over, set attributes; it
replies through POST /api/conversations/{id}/messages)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import realtime
from inbox.api.conversations import channel_kinds, conversation_out, load_conversation
from inbox.api.router import API, ApiError, ApiRequest, not_found
from inbox.bot import dialog as bot
from inbox.bot import external as bot_external
from inbox.bot import faq as bot_faq
from inbox.bot.leads import Details, apply_details, find_email, find_phone, valid_name
from inbox.bot.models import BotFaq
from inbox.bot.schemas import (
    AttributesIn,
    AttributesOut,
    BotConfigIn,
    BotConfigOut,
    FaqIn,
    FaqOut,
    FaqQuery,
    HandoverIn,
    MatchIn,
    MatchOut,
)
from inbox.models import Channel, Conversation
from inbox.schemas import ConversationOut
from inbox.state import ARQ, SETTINGS

ADMIN = ("admin",)
STAFF = ("admin", "manager")


def now() -> datetime:
    return datetime.now(UTC)


# --- knowledge base -------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/bot/faqs",
    summary="The bot's knowledge base",
    tag="bot",
    roles=STAFF,
    query=FaqQuery,
)
async def list_faqs(req: ApiRequest) -> list[dict[str, Any]]:
    q: FaqQuery = req.query
    query = select(BotFaq).order_by(BotFaq.position, BotFaq.id)
    if q.channel_id:
        query = query.where(BotFaq.channel_id == q.channel_id)
    if q.language:
        query = query.where(BotFaq.language == q.language)
    async with req.sessions() as session:
        rows = (await session.scalars(query)).all()
    return [FaqOut.model_validate(r).model_dump() for r in rows]


async def check_channel(session: AsyncSession, channel_id: str | None) -> None:
    if channel_id is not None and await session.get(Channel, channel_id) is None:
        raise ApiError(422, "invalid", f"no channel {channel_id!r}")


def apply_faq(row: BotFaq, body: FaqIn) -> None:
    row.key, row.language, row.question = body.key, body.language, body.question
    row.paraphrases = [p.strip() for p in body.paraphrases if p.strip()]
    row.keywords = [k.strip()[:100] for k in body.keywords if k.strip()]
    row.answer = body.answer
    row.buttons = [b.model_dump() for b in body.buttons]
    row.channel_id, row.in_menu, row.is_active = body.channel_id, body.in_menu, body.is_active
    row.position = body.position


async def key_taken(session: AsyncSession, body: FaqIn, faq_id: int | None) -> bool:
    found = await session.scalar(
        select(BotFaq.id).where(BotFaq.key == body.key, BotFaq.language == body.language)
    )
    return found is not None and found != faq_id


@API.route(
    "POST",
    "/api/bot/faqs",
    summary="Add a question to the knowledge base",
    tag="bot",
    roles=ADMIN,
    body=FaqIn,
    response=FaqOut,
    status=201,
)
async def create_faq(req: ApiRequest) -> FaqOut:
    body: FaqIn = req.body
    async with req.sessions() as session, session.begin():
        await check_channel(session, body.channel_id)
        if await key_taken(session, body, None):
            raise ApiError(409, "exists", f"{body.key!r} in {body.language} exists already")
        row = BotFaq()
        apply_faq(row, body)
        session.add(row)
        await session.flush()
        out = FaqOut.model_validate(row)
    bot_faq.forget()
    return out


@API.route(
    "PUT",
    "/api/bot/faqs/{faq_id}",
    summary="Change a question of the knowledge base",
    tag="bot",
    roles=ADMIN,
    body=FaqIn,
    response=FaqOut,
)
async def update_faq(req: ApiRequest) -> FaqOut:
    body: FaqIn = req.body
    faq_id = req.path_int("faq_id")
    async with req.sessions() as session, session.begin():
        row = await session.get(BotFaq, faq_id, with_for_update=True)
        if row is None:
            raise not_found("question")
        await check_channel(session, body.channel_id)
        if await key_taken(session, body, faq_id):
            raise ApiError(409, "exists", f"{body.key!r} in {body.language} exists already")
        apply_faq(row, body)
        await session.flush()
        out = FaqOut.model_validate(row)
    bot_faq.forget()
    return out


@API.route(
    "DELETE",
    "/api/bot/faqs/{faq_id}",
    summary="Remove a question from the knowledge base",
    tag="bot",
    roles=ADMIN,
)
async def delete_faq(req: ApiRequest) -> dict[str, int]:
    faq_id = req.path_int("faq_id")
    async with req.sessions() as session, session.begin():
        row = await session.get(BotFaq, faq_id)
        if row is None:
            raise not_found("question")
        await session.delete(row)
    bot_faq.forget()
    return {"deleted": faq_id}


@API.route(
    "POST",
    "/api/bot/match",
    summary="Try the FAQ matcher: what would the bot answer?",
    tag="bot",
    roles=STAFF,
    body=MatchIn,
    response=MatchOut,
)
async def try_match(req: ApiRequest) -> MatchOut:
    body: MatchIn = req.body
    async with req.sessions() as session:
        matcher = await bot_faq.load(session, body.channel_id, cached=False)
        channel = await session.get(Channel, body.channel_id) if body.channel_id else None
    settings = bot.settings_of(channel.config) if channel else bot.BotSettings()
    hit = matcher.best(body.text, body.language)
    if hit is None:
        return MatchOut(answers=False, threshold=settings.threshold)
    e = hit.entry
    return MatchOut(
        answers=hit.score >= settings.threshold,
        threshold=settings.threshold,
        score=round(hit.score, 1),
        via=hit.via,
        key=e.key,
        language=e.language,
        question=e.question,
        answer=e.answer,
    )


# --- a channel's bot settings ----------------------------------------------------------------


def bot_config_out(channel: Channel) -> BotConfigOut:
    return BotConfigOut(
        channel_id=channel.id,
        settings=bot.settings_of(channel.config),
        bot_url=channel.config.get("bot_url"),
        bot_secret=channel.config.get("bot_secret"),
    )


async def admin_channel(session: AsyncSession, req: ApiRequest, lock: bool = False) -> Channel:
    channel = await session.get(Channel, req.request.match_info["channel_id"], with_for_update=lock)
    if channel is None:
        raise not_found("channel")
    return channel


@API.route(
    "GET",
    "/api/channels/{channel_id}/bot",
    summary="A channel's bot settings and external bot",
    tag="bot",
    roles=ADMIN,
    response=BotConfigOut,
)
async def get_bot_config(req: ApiRequest) -> BotConfigOut:
    async with req.sessions() as session:
        return bot_config_out(await admin_channel(session, req))


@API.route(
    "PUT",
    "/api/channels/{channel_id}/bot",
    summary="Set a channel's bot settings and external bot (its secret is generated)",
    tag="bot",
    roles=ADMIN,
    body=BotConfigIn,
    response=BotConfigOut,
)
async def set_bot_config(req: ApiRequest) -> BotConfigOut:
    body: BotConfigIn = req.body
    async with req.sessions() as session, session.begin():
        channel = await admin_channel(session, req, lock=True)
        config = dict(channel.config)
        config["bot"] = body.settings.model_dump(mode="json")
        if body.bot_url:
            config["bot_url"] = body.bot_url
            if body.rotate_secret or not config.get("bot_secret"):
                config["bot_secret"] = bot_external.new_secret()
        else:
            config.pop("bot_url", None)
            config.pop("bot_secret", None)
        channel.config = config
        return bot_config_out(channel)


# --- hand-over, hand-back, attributes ---------------------------------------------------------


async def channel_of(session: AsyncSession, conversation: Conversation) -> Channel:
    channel = await session.get(Channel, conversation.channel_id)
    if channel is None:
        raise not_found("channel")
    return channel


async def after_commit(req: ApiRequest, messages: list[int], jobs: list[tuple[int, str]]) -> None:
    redis = req.request.app[ARQ]
    for message_id in messages:
        await redis.enqueue_job("send_bot_message", message_id, _job_id=f"botsend:{message_id}")
    await bot.wake(redis, jobs)


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/handover",
    summary="Hand the conversation from the bot to a person (routed, with a task)",
    tag="bot",
    body=HandoverIn,
    response=ConversationOut,
    scopes=("api", "bot"),
)
async def handover(req: ApiRequest) -> ConversationOut:
    body: HandoverIn = req.body
    is_bot = req.principal.scope == "bot"
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        if conversation.handled_by != "bot":
            raise ApiError(409, "taken", "a person has this conversation already")
        channel = await channel_of(session, conversation)
        queued = await bot.hand_over(
            session,
            channel,
            conversation,
            reason=body.reason,
            now=now(),
            actor_id=None if is_bot else req.principal.user_id,
            tell=None if body.text == "" else (body.text or ""),
            from_external=is_bot,
        )
        jobs = bot.woken_on_commit(session)
        out = conversation_out(conversation, await channel_kinds(session))
    await after_commit(req, queued, jobs)
    await realtime.publish(req.request.app[ARQ], "conversation.handover", conversation)
    return out


@API.route(
    "POST",
    "/api/conversations/{conversation_id}/handback",
    summary="Give the conversation back to the bot",
    tag="bot",
    response=ConversationOut,
)
async def handback(req: ApiRequest) -> ConversationOut:
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        if conversation.handled_by == "bot":
            raise ApiError(409, "with_bot", "the bot has this conversation already")
        channel = await channel_of(session, conversation)
        if not bot.bot_enabled(channel):
            raise ApiError(409, "no_bot", "this conversation's channel has no bot")
        await bot.hand_back(session, channel, conversation, req.principal.user_id)
        jobs = bot.woken_on_commit(session)
        out = conversation_out(conversation, await channel_kinds(session))
    await after_commit(req, [], jobs)
    await realtime.publish(req.request.app[ARQ], "conversation.handback", conversation)
    return out


@API.route(
    "PUT",
    "/api/conversations/{conversation_id}/attributes",
    summary="Set attributes on the conversation; name, company, e-mail and phone feed the lead",
    tag="bot",
    body=AttributesIn,
    response=AttributesOut,
    scopes=("api", "bot"),
)
async def set_attributes(req: ApiRequest) -> AttributesOut:
    body: AttributesIn = req.body
    region = req.request.app[SETTINGS].default_region
    email = find_email(body.email) if body.email else None
    phone = find_phone(body.phone, region) if body.phone else None
    name = valid_name(body.name) if body.name else None
    problems = [
        {"loc": ["body", field], "msg": f"not a valid {what}", "type": "value_error"}
        for field, given, parsed, what in (
            ("email", body.email, email, "e-mail address"),
            ("phone", body.phone, phone, "phone number"),
            ("name", body.name, name, "name"),
        )
        if given and parsed is None
    ]
    if problems:
        raise ApiError(422, "invalid", "the request does not validate", problems)
    async with req.sessions() as session, session.begin():
        conversation = await load_conversation(session, req, lock=True)
        state = dict(conversation.bot_state or {})
        state["attributes"] = dict(state.get("attributes", {})) | body.attributes
        if body.language:
            state["language"] = body.language
        conversation.bot_state = state
        linked = None
        if name or body.company or email or phone:
            details = Details(name=name, company=body.company, email=email, phone=phone)
            actor = None if req.principal.scope == "bot" else req.principal.user_id
            linked = await apply_details(
                session, conversation, details, region=region, actor_id=actor
            )
        return AttributesOut(
            conversation_id=conversation.id,
            attributes=state["attributes"],
            linked_to=linked,
            contact_id=conversation.contact_id,
            lead_id=conversation.lead_id,
        )
