"""The external bot API: conversation and message events POSTed to a channel's `bot_url`, signed
with its `bot_secret`. The bot answers through the REST API with a bot token.

Signature: hex HMAC-SHA256 with the secret over `<timestamp>.<raw body>`, sent as
`X-Switchboard-Signature: sha256=<hex>` with `X-Switchboard-Timestamp` (Unix seconds) and a
unique `X-Switchboard-Delivery`; receivers should refuse timestamps more than 5 minutes off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.bot.dialog import ExternalBot
from inbox.bot.models import ChatJob
from inbox.models import Attachment, Channel, Conversation, Message

TIMESTAMP = "X-Switchboard-Timestamp"
SIGNATURE = "X-Switchboard-Signature"
DELIVERY = "X-Switchboard-Delivery"
EVENT = "X-Switchboard-Event"
TOLERANCE_S = 300


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(
    secret: str, body: bytes, delivery_id: str, event: str, agent: str
) -> dict[str, str]:
    """The headers of one signed POST: JSON, fresh timestamp, signature, ids."""
    stamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": agent,
        TIMESTAMP: stamp,
        SIGNATURE: signature(secret, stamp, body),
        DELIVERY: delivery_id,
        EVENT: event,
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> bool:
    """What a receiving bot checks: a fresh timestamp and a matching signature."""
    stamp = headers.get(TIMESTAMP, "")
    if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > TOLERANCE_S:
        return False
    return hmac.compare_digest(headers.get(SIGNATURE, ""), signature(secret, stamp, body))


def conversation_data(c: Conversation) -> dict[str, Any]:
    state = c.bot_state or {}
    return {
        "id": c.id,
        "status": c.status,
        "handled_by": c.handled_by,
        "subject": c.subject,
        "contact_id": c.contact_id,
        "relation_id": c.relation_id,
        "lead_id": c.lead_id,
        "language": state.get("language"),
        "attributes": state.get("attributes", {}),
        "messages_url": f"/api/conversations/{c.id}/messages",
        "handover_url": f"/api/conversations/{c.id}/handover",
        "attributes_url": f"/api/conversations/{c.id}/attributes",
    }


async def message_data(session: AsyncSession, m: Message) -> dict[str, Any]:
    channel_meta: dict[str, Any] = m.meta.get("channel", {})
    files = (await session.scalars(select(Attachment).where(Attachment.message_id == m.id))).all()
    data: dict[str, Any] = {
        "id": m.id,
        "kind": m.kind,
        "text": m.text,
        "sender_name": m.sender_name,
        "sent_at": m.sent_at.isoformat(),
        "chat_type": channel_meta.get("chat_type"),
        "command": channel_meta.get("command"),
        "attachments": [
            {"id": f.id, "filename": f.filename, "content_type": f.content_type, "size": f.size}
            for f in files
        ],
    }
    if channel_meta.get("callback_query_id"):
        data["button"] = {"data": m.text, "label": channel_meta.get("button_text")}
    if "contact" in channel_meta:
        data["contact"] = channel_meta["contact"]
    if "location" in channel_meta:
        data["location"] = channel_meta["location"]
    return data


async def payload(
    session: AsyncSession,
    job: ChatJob,
    conversation: Conversation,
    channel: Channel,
    now: datetime,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.delivery_id,
        "type": job.event,
        "created_at": now.isoformat(),
        "channel": {"id": channel.id, "kind": channel.kind, "name": channel.name},
        "conversation": conversation_data(conversation),
    }
    if job.message_id is not None:
        message = await session.get(Message, job.message_id)
        if message is not None:
            body["message"] = await message_data(session, message)
    return body


async def post(
    http: aiohttp.ClientSession,
    bot: ExternalBot,
    delivery_id: str,
    event: str,
    body: Mapping[str, Any],
    timeout_s: float,
) -> str | None:
    """Deliver one event; None when the bot took it (2xx), else why not."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    headers = signed_headers(bot.secret, raw, delivery_id, event, "Switchboard-Bot-Webhook/1")
    try:
        async with http.post(
            bot.url,
            data=raw,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            if 200 <= response.status < 300:
                return None
            return f"the bot answered HTTP {response.status}"
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except aiohttp.ClientError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
