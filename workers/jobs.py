"""arq jobs: process journaled events, replay failed ones, recover what a crash left pending."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from arq.worker import Retry
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Attachment as ChannelAttachment
from channels.base import OutboundMessage, SendResult
from inbox import metrics, realtime
from inbox.attachments import FileStore
from inbox.db import Sessions
from inbox.ingest.batches import claim, claim_ids, process_events
from inbox.ingest.journal import WAKE_CHANNEL
from inbox.ingest.pipeline import Outcome, Policy
from inbox.models import Attachment, Channel, Conversation, Event, Message
from inbox.outbound import sender_for

log = structlog.get_logger(__name__)

Ctx = dict[str, Any]
BATCH = 100  # events per transaction (settings: ingest_batch)
MAX_SEND_ATTEMPTS = 6


def utcnow() -> datetime:
    return datetime.now(UTC)


async def process_event(ctx: Ctx, event_id: int | None = None) -> list[dict[str, Any]]:
    """Drain the journal: batch after batch of pending events until none is left to claim.

    Kept under its old name and signature: a job queued for one event processes it together
    with everything else pending."""
    outcomes: list[Outcome] = []
    while True:
        done = await process_batch(ctx)
        outcomes.extend(done)
        if not done:
            return [o.as_dict() for o in outcomes]


async def process_batch(ctx: Ctx) -> list[Outcome]:
    """Claim one batch of pending events, process it in one transaction, announce it."""
    sessions: Sessions = ctx["sessions"]
    policy: Policy = ctx["policy"]
    clock: Callable[[], datetime] = ctx.get("clock", utcnow)
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        events = await claim(session, ctx.get("batch", BATCH))
        if not events:
            return []
        outcomes = await process_events(session, events, policy, clock())
    metrics.observe_job("process_event", time.perf_counter() - started, outcomes)
    await announce(ctx, outcomes)
    return outcomes


async def announce(ctx: Ctx, outcomes: list[Outcome]) -> None:
    """Tell the web inbox which conversations got new messages (after the commit)."""
    ids = {o.conversation_id for o in outcomes if o.conversation_id is not None}
    if not ids or "redis" not in ctx:
        return
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session:
        rows = (await session.scalars(select(Conversation).where(Conversation.id.in_(ids)))).all()
    await realtime.publish_many(ctx["redis"], "message.created", rows)


async def replay_events(ctx: Ctx, event_ids: list[int]) -> list[dict[str, Any]]:
    """Put failed (or ignored) events back to pending and process them now."""
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session, session.begin():
        await session.execute(
            update(Event)
            .where(Event.id.in_(event_ids), Event.status.in_(("failed", "ignored")))
            .values(status="pending", error=None)
        )
    outcomes: list[Outcome] = []
    async with sessions() as session, session.begin():
        events = await claim_ids(session, event_ids)
        outcomes = await process_events(session, events, ctx["policy"], ctx.get("clock", utcnow)())
    await announce(ctx, outcomes)
    return [o.as_dict() for o in outcomes]


async def recover_pending(ctx: Ctx) -> int:
    """Process events left pending (a crash, a missed wake-up): the journal is the queue."""
    return len(await process_event(ctx))


class Drainer:
    """A worker's loop over the journal: wakes on NOTIFY (or every second), drains, sleeps.

    Several per process overlap one batch's database waits with another's Python work; the
    partition locks keep them (and other processes') batches apart. The LISTEN connection is
    opened again when it drops (a PostgreSQL restart, a terminated backend); meanwhile the
    drainers poll."""

    def __init__(self, ctx: Ctx, dsn: str, loops: int = 2, idle_s: float = 1.0) -> None:
        self.ctx, self.dsn, self.loops, self.idle_s = ctx, dsn, loops, idle_s
        self.woken = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.listener: asyncpg.Connection | None = None
        self.listening = asyncio.Event()  # set while a LISTEN connection is up

    async def start(self) -> None:
        await self._listen()
        self.tasks = [asyncio.create_task(self._loop()) for _ in range(self.loops)]
        self.tasks.append(asyncio.create_task(self._keep_listening()))

    async def _listen(self) -> bool:
        try:
            listener = await asyncpg.connect(self.dsn, timeout=5)
            await listener.add_listener(WAKE_CHANNEL, self._on_notify)
        except Exception as exc:  # polling still works without it
            log.warning("LISTEN failed; polling the journal", error=str(exc)[:200])
            return False
        listener.add_termination_listener(self._on_lost)
        self.listener = listener
        self.listening.set()
        self.woken.set()  # what arrived while nobody listened: look now
        return True

    def _on_lost(self, *_: object) -> None:
        self.listening.clear()

    async def _keep_listening(self) -> None:
        delay = self.idle_s
        while True:
            if (
                self.listening.is_set()
                and self.listener is not None
                and not self.listener.is_closed()
            ):
                delay = self.idle_s
                await asyncio.sleep(self.idle_s)
                continue
            self.listening.clear()
            if self.listener is not None:
                with contextlib.suppress(Exception):
                    self.listener.terminate()
                self.listener = None
            if not await self._listen():
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _on_notify(self, *_: object) -> None:
        self.woken.set()

    async def _loop(self) -> None:
        while True:
            self.woken.clear()  # a NOTIFY from now on means: look again
            try:
                done = await process_batch(self.ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: try again shortly
                log.warning("drain failed", error=f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(self.idle_s)
                continue
            if done:
                self.woken.set()  # more may be waiting: the other loops go too
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), self.idle_s)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.listener is not None:
            with contextlib.suppress(Exception):
                await self.listener.close()


async def send_message(ctx: Ctx, message_id: int) -> str:
    """Send a queued outbound message on its channel and record what the channel said."""
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session, session.begin():
        message = await session.get(Message, message_id, with_for_update=True)
        if message is None or message.status != "queued":
            return "skipped"
        channel = await session.get(Channel, message.channel_id)
        conversation = await session.get(Conversation, message.conversation_id)
        sender = sender_for(channel.kind) if channel else None
        if channel is None or conversation is None or sender is None:
            message.status, message.error = "failed", "the channel cannot send messages"
            return "failed"
        outbound = await build_outbound(session, message, conversation, ctx["policy"].files)
        message.status, message.attempts = "sending", message.attempts + 1
        config = dict(channel.config)
    try:
        result = await sender(config, outbound)
    except Exception as exc:  # a sender bug must not leave the message in limbo
        result = SendResult("failed", error=f"{type(exc).__name__}: {exc}")
    async with sessions() as session, session.begin():
        message = await session.get(Message, message_id, with_for_update=True)
        if message is None:
            return "gone"
        if result.status == "sent":
            message.status, message.error = "sent", None
            if result.external_id:
                message.meta = message.meta | {"provider_id": result.external_id}
        elif result.status == "retry" and message.attempts < MAX_SEND_ATTEMPTS:
            message.status, message.error = "queued", result.error
        else:
            message.status, message.error = "failed", result.error or "the channel refused it"
            if result.error and "blocked" in result.error and conversation is not None:
                conv = await session.get(Conversation, conversation.id)
                if conv is not None:
                    conv.needs_review = f"delivery failed: {result.error}"[:200]
    if result.status == "retry" and message.status == "queued":
        delay = (
            result.retry_after_s if result.retry_after_s is not None else 5.0 * 2**message.attempts
        )
        raise Retry(defer=delay)
    log.info(
        "message sent" if result.status == "sent" else "message not sent",
        message_id=message_id,
        status=message.status,
        error=message.error,
    )
    return message.status


async def build_outbound(
    session: AsyncSession, message: Message, conversation: Conversation, files: FileStore | None
) -> OutboundMessage:
    earlier = (
        await session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.id != message.id,
                Message.direction.in_(("inbound", "outbound")),
            )
            .order_by(Message.sent_at, Message.id)
        )
    ).all()
    inbound = [m for m in earlier if m.direction == "inbound"]
    last_inbound = inbound[-1] if inbound else None
    references = tuple(
        str(m.meta.get("channel", {}).get("message_id") or m.external_id)
        for m in earlier
        if m.channel_id == message.channel_id and not m.external_id.startswith(("out:", "note:"))
    )
    stored = (
        await session.scalars(select(Attachment).where(Attachment.message_id == message.id))
    ).all()
    return OutboundMessage(
        to=str(message.meta.get("to", "")),
        text=message.text,
        subject=message.subject,
        html=message.html,
        message_id=f"sb.{conversation.reply_token}.{message.id}",
        in_reply_to=references[-1] if references else None,
        references=references,
        attachments=tuple([await stored_attachment(f, files) for f in stored]),
        reply_to_external_id=last_inbound.external_id
        if last_inbound and last_inbound.channel_id == message.channel_id
        else None,
        quote=last_inbound.text if last_inbound else None,
        template=message.meta.get("template"),
        quote_attribution=f"{last_inbound.sender_name or 'You'} wrote on {last_inbound.sent_at:%Y-%m-%d %H:%M}:"
        if last_inbound
        else None,
    )


async def stored_attachment(f: Attachment, files: FileStore | None) -> ChannelAttachment:
    return ChannelAttachment(
        filename=f.filename,
        content_type=f.content_type,
        size=f.size,
        ref=f.ref,
        content=await files.get(f.sha256) if files and f.sha256 else None,
    )
