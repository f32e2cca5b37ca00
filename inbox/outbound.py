"""Replies: queue an outbound message on the conversation's channel, then send it in a job."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels import SENDERS
from channels.base import JsonObject, OutboundMessage, SendResult
from channels.whatsapp.config import SERVICE_WINDOW, WINDOW_ERROR
from crm.models import Identity
from inbox.history import record
from inbox.models import Channel, Conversation, Message
from inbox.schemas import TemplateIn

Sender = Callable[[JsonObject, OutboundMessage], Awaitable[SendResult]]


class CannotSend(Exception):
    """The conversation's channel has no way to answer this customer."""


def sender_for(kind: str) -> Sender | None:
    target = SENDERS.get(kind)
    if target is None:
        return None
    module, _, name = target.partition(":")
    fn: Sender = getattr(importlib.import_module(module), name)
    return fn


async def reply_route(session: AsyncSession, conversation: Conversation) -> tuple[Channel, str]:
    """The channel a reply goes out on and the customer's address there."""
    channel = await session.get(Channel, conversation.channel_id)
    if channel is None:
        raise CannotSend("the conversation's channel no longer exists")
    last_inbound = (
        await session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
            .order_by(Message.sent_at.desc(), Message.id.desc())
            .limit(1)
        )
    ).first()
    meta: dict[str, Any] = last_inbound.meta if last_inbound else {}
    # A message left outside a chat's business hours asks for the answer by e-mail.
    by_email = meta.get("channel", {}).get("reply_by") == "email"
    if channel.kind in SENDERS and not by_email and (address := meta.get("reply_address")):
        return channel, str(address)
    # Forms and call logs have no way back of their own: answer by e-mail when we can.
    email = await customer_email(session, conversation)
    mail_channel = (
        await session.scalars(
            select(Channel)
            .where(Channel.kind == "email", Channel.is_active)
            .order_by(Channel.created_at)
        )
    ).first()
    if email and mail_channel is not None:
        return mail_channel, email
    raise CannotSend(f"a {channel.kind} conversation cannot be answered here; no e-mail route")


async def window_open(
    session: AsyncSession, conversation: Conversation, channel: Channel, now: datetime
) -> bool:
    """Whether the customer wrote on this channel within the service window (WhatsApp)."""
    last = await session.scalar(
        select(func.max(Message.sent_at)).where(
            Message.conversation_id == conversation.id,
            Message.channel_id == channel.id,
            Message.direction == "inbound",
        )
    )
    return last is not None and now - last < SERVICE_WINDOW


def template_of(template: TemplateIn) -> dict[str, Any]:
    """A TemplateIn as the Cloud API's template object."""
    out: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.components:
        out["components"] = template.components
    return out


async def customer_email(session: AsyncSession, conversation: Conversation) -> str | None:
    owner = (
        Identity.contact_id == conversation.contact_id
        if conversation.contact_id
        else Identity.lead_id == conversation.lead_id
        if conversation.lead_id
        else None
    )
    if owner is None:
        return None
    return (
        await session.scalars(
            select(Identity.value)
            .where(owner, Identity.kind == "email")
            .order_by(Identity.id)
            .limit(1)
        )
    ).first()


async def queue_reply(
    session: AsyncSession,
    conversation: Conversation,
    *,
    text: str,
    html: str | None,
    subject: str | None,
    author_id: int | None,
    now: datetime,
    template: dict[str, Any] | None = None,
) -> Message:
    """Store the reply as queued; the caller enqueues `send_message` after committing."""
    channel, address = await reply_route(session, conversation)
    meta: dict[str, Any] = {"to": address, "via_channel_kind": channel.kind}
    if template is not None:
        if channel.kind != "whatsapp":
            raise CannotSend(f"templates are for WhatsApp; this reply goes out by {channel.kind}")
        meta["template"] = template
    elif channel.kind == "whatsapp" and not await window_open(session, conversation, channel, now):
        raise CannotSend(WINDOW_ERROR)
    message = Message(
        conversation_id=conversation.id,
        channel_id=channel.id,
        external_id=f"out:{uuid.uuid4().hex}",
        direction="outbound",
        kind="message",
        subject=subject or conversation.subject,
        text=text,
        html=html,
        author_id=author_id,
        meta=meta,
        sent_at=now,
        status="queued",
    )
    session.add(message)
    if author_id is not None and conversation.first_response_at is None:
        conversation.first_response_at = now
    conversation.last_message_at = now
    await session.flush()
    record(session, conversation.id, "reply", author_id, message_id=message.id)
    return message


async def add_note(
    session: AsyncSession, conversation: Conversation, text: str, author_id: int, now: datetime
) -> Message:
    note = Message(
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        external_id=f"note:{uuid.uuid4().hex}",
        direction="internal",
        kind="note",
        text=text,
        author_id=author_id,
        sent_at=now,
        status="note",
    )
    session.add(note)
    await session.flush()
    return note
