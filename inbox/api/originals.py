"""A message's full original (the unstripped text, its HTML and the raw delivery) and an
attachment's bytes, always as a download."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import select

from channels import ADAPTERS
from channels.base import messages_of
from inbox.access import visible_conversations
from inbox.api.router import API, ApiError, ApiRequest, bot_refused, not_found
from inbox.attachments import FileStore
from inbox.ingest.journal import delivery_from
from inbox.models import Attachment, Channel, Conversation, Event, Message
from inbox.state import SETTINGS

RAW_LIMIT = 2_000_000  # characters of a raw original shown in the browser


class Original(BaseModel):
    message_id: int
    text: str
    full_text: str | None
    html: str | None
    raw: str | None
    raw_truncated: bool


# --- the full original of a message ---------------------------------------------------------------


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
                carried = await asyncio.to_thread(
                    messages_of, adapter, dict(channel.config), delivery_from(event)
                )
            except Exception:
                carried = []  # an unparseable original still has its raw bytes below
            # A provider's batch carries several messages: this one is the one with its id.
            parsed = (
                carried[0]
                if len(carried) == 1
                else next((m for m in carried if m.external_id == message.external_id), None)
            )
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


# --- attachments ----------------------------------------------------------------------------------


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
