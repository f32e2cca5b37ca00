"""Web chat visitors in this process: their history from the database, and the sockets and long
polls waiting for more, woken by the realtime events the inbox already publishes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import Conversation, Message
from inbox.realtime import channel_of
from inbox.state import ARQ, SESSIONS

log = structlog.get_logger(__name__)

HISTORY_LIMIT = 200  # messages one answer carries; the widget asks again from the last one
KNOWN_CONVERSATIONS = 10_000  # conversation → visitor lookups remembered per process


def thread_of(visitor_id: str) -> str:
    return f"webchat:{visitor_id}"


# What a visitor's history needs of a message: plain columns, no ORM objects to build (the push
# after every message of every visitor runs this).
SHOWN_COLUMNS = (
    Message.id,
    Message.external_id,
    Message.direction,
    Message.author_id,
    Message.text,
    Message.sent_at,
    Message.meta,
    Message.conversation_id,
)
ShownRow = Row[int, str, str, int | None, str, datetime, dict[str, Any], int]


def shown(m: ShownRow) -> dict[str, Any]:
    """A message as the visitor sees it: text only (the widget escapes it), never notes."""
    meta = m.meta or {}
    channel_meta = meta.get("channel") or {}
    visitor_id = str(channel_meta.get("visitor_id") or "")
    client_id = m.external_id.removeprefix(f"{visitor_id}:") if m.direction == "inbound" else None
    return {
        "id": m.id,
        "client_id": client_id,
        "conversation_id": m.conversation_id,
        "direction": m.direction,
        "from": "visitor" if m.direction == "inbound" else "agent" if m.author_id else "bot",
        "text": m.text,
        "sent_at": m.sent_at.isoformat(),
        "buttons": [b for b in meta.get("buttons") or [] if isinstance(b, list) and len(b) == 2],
        "files": [
            {"filename": a.get("filename"), "size": a.get("size")}
            for a in meta.get("attachments") or []
            if isinstance(a, dict)
        ],
        "by_email": channel_meta.get("reply_by") == "email",
    }


async def history(
    session: AsyncSession, channel_id: str, visitor_id: str, since: int
) -> list[dict[str, Any]]:
    """The visitor's messages after `since` (a message id), oldest first: one query."""
    rows = (
        await session.execute(
            select(*SHOWN_COLUMNS)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.channel_id == channel_id,
                Conversation.thread_key == thread_of(visitor_id),
                Message.id > since,
                Message.direction.in_(("inbound", "outbound")),
                Message.status != "failed",
            )
            .order_by(Message.id)
            .limit(HISTORY_LIMIT)
        )
    ).all()
    return [shown(m) for m in rows]


class Waiter:
    """A socket or long poll of one visitor: set when something new may be there."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self.typing = asyncio.Event()  # an agent is typing


class VisitorHub:
    def __init__(self) -> None:
        self.waiters: dict[tuple[str, str], set[Waiter]] = {}
        self.by_channel: dict[str, int] = {}  # open waiters per channel: events of others skipped
        self.visitor_of: OrderedDict[int, tuple[str, str] | None] = OrderedDict()
        self.tasks: set[asyncio.Task[None]] = set()

    def join(self, channel_id: str, visitor_id: str) -> Waiter:
        waiter = Waiter()
        self.waiters.setdefault((channel_id, visitor_id), set()).add(waiter)
        self.by_channel[channel_id] = self.by_channel.get(channel_id, 0) + 1
        return waiter

    def leave(self, channel_id: str, visitor_id: str, waiter: Waiter) -> None:
        group = self.waiters.get((channel_id, visitor_id))
        if group is not None and waiter in group:
            group.discard(waiter)
            if not group:
                del self.waiters[(channel_id, visitor_id)]
            self.by_channel[channel_id] -= 1

    def remember(self, conversation_id: int, key: tuple[str, str] | None) -> None:
        self.visitor_of[conversation_id] = key
        self.visitor_of.move_to_end(conversation_id)
        while len(self.visitor_of) > KNOWN_CONVERSATIONS:
            self.visitor_of.popitem(last=False)

    def wake(self, key: tuple[str, str] | None, typing: bool = False) -> None:
        for waiter in self.waiters.get(key, ()) if key else ():
            (waiter.typing if typing else waiter.changed).set()


HUB = web.AppKey("webchat_hub", VisitorHub)


async def visitor_for(app: web.Application, conversation_id: int) -> tuple[str, str] | None:
    hub = app[HUB]
    if conversation_id in hub.visitor_of:
        return hub.visitor_of[conversation_id]
    async with app[SESSIONS]() as session:
        row = (
            await session.execute(
                select(Conversation.channel_id, Conversation.thread_key).where(
                    Conversation.id == conversation_id
                )
            )
        ).first()
    key = None
    if row is not None and row.thread_key and row.thread_key.startswith("webchat:"):
        key = (row.channel_id, row.thread_key.removeprefix("webchat:"))
    hub.remember(conversation_id, key)
    return key


async def on_event(app: web.Application, event: dict[str, Any]) -> None:
    conversation_id = event.get("conversation_id")
    if not isinstance(conversation_id, int):
        return
    try:
        key = await visitor_for(app, conversation_id)
    except Exception as exc:  # the visitor's next poll or reconnect catches up
        log.warning("webchat wake-up failed", error=str(exc))
        return
    app[HUB].wake(key, typing=event.get("type") == "agent.typing")


async def listen(app: web.Application) -> None:
    """Wake the visitors whose conversation an event names; resubscribe after a lost link."""
    hub = app[HUB]
    while True:
        pubsub = app[ARQ].pubsub()
        try:
            await pubsub.subscribe(channel_of(app[ARQ]))
            for group in list(hub.waiters.values()):  # events may have been missed meanwhile
                for waiter in group:
                    waiter.changed.set()
            async for message in pubsub.listen():
                if message.get("type") != "message" or not hub.waiters:
                    continue
                try:
                    event = json.loads(message["data"])
                except (ValueError, TypeError):
                    continue
                if isinstance(event, dict) and hub.by_channel.get(str(event.get("channel_id"))):
                    task = asyncio.create_task(on_event(app, event))
                    hub.tasks.add(task)
                    task.add_done_callback(hub.tasks.discard)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("webchat listener restarts", error=str(exc))
            await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


async def visitors_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HUB] = VisitorHub()
    task = asyncio.create_task(listen(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
