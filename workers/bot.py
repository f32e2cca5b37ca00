"""arq jobs of the chat channels and the first-line bot: the bot's turns, deliveries to an
external bot, attachment downloads, the bot's own sends (with buttons) and Telegram long polling.

Chat jobs are rows (`ChatJob`) written by the pipeline; the worker is woken when that
transaction commits and `resume_chat_jobs` re-queues any whose wake-up got lost. Each job locks
what it works on, so any number of workers run them once and in order per conversation.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import structlog
from arq import cron, func
from arq.connections import ArqRedis
from arq.worker import Retry
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from channels import adapter_for
from channels.base import AdapterError, JsonObject, SendResult
from channels.egress import Egress, channels_policy
from channels.telegram import BotConfig, polled_delivery
from channels.telegram import pool as telegram_pool
from channels.telegram.errors import BotAPIError
from channels.whatsapp.sender import GraphError
from channels.whatsapp.sender import download as whatsapp_download
from inbox import realtime
from inbox.bot import dialog as bot
from inbox.bot import external as bot_external
from inbox.bot.models import ChatJob
from inbox.db import Sessions
from inbox.ingest.journal import enqueue_drain, journal, notify_workers
from inbox.models import Attachment, Channel, Conversation, Message
from inbox.outbound import sender_for
from workers.jobs import MAX_SEND_ATTEMPTS, build_outbound

log = structlog.get_logger(__name__)

Ctx = dict[str, Any]
MAX_ATTEMPTS = 3
STALE_S = 10.0  # a pending chat job this old lost its wake-up (or its worker)
POLL_SESSION_S = 240.0  # a poller holds the bot this long, then the cron starts the next one
POLL_WAIT_S = 25  # Telegram holds a getUpdates this long when nothing comes


def clock_of(ctx: Ctx) -> datetime:
    clock: Callable[[], datetime] = ctx.get("clock") or (lambda: datetime.now(UTC))
    return clock()


async def conversation_of(session: AsyncSession, job_id: int) -> Conversation | None:
    conversation_id = await session.scalar(
        select(ChatJob.conversation_id).where(ChatJob.id == job_id)
    )
    if conversation_id is None:
        return None
    return await session.get(
        Conversation,
        conversation_id,
        with_for_update=True,
        populate_existing=True,
    )


async def pending_jobs(session: AsyncSession, conversation_id: int, kind: str) -> list[ChatJob]:
    return list(
        (
            await session.scalars(
                select(ChatJob)
                .where(
                    ChatJob.conversation_id == conversation_id,
                    ChatJob.kind == kind,
                    ChatJob.status == "pending",
                )
                .order_by(ChatJob.id)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def run_bot(ctx: Ctx, job_id: int) -> str:
    """The built-in bot's turn on every pending message of the job's conversation."""
    sessions: Sessions = ctx["sessions"]
    now = clock_of(ctx)
    try:
        async with sessions() as session, session.begin():
            conversation = await conversation_of(session, job_id)
            if conversation is None:
                return "gone"
            jobs = await pending_jobs(session, conversation.id, "bot")
            if not jobs:
                return "skipped"
            channel = await session.get(Channel, conversation.channel_id)
            assert channel is not None  # the conversation cascades with its channel
            turns = await bot.run_turns(
                session, conversation, channel, jobs, now, task_due=ctx["policy"].task_due
            )
            config = dict(channel.config)
    except Exception as exc:
        await give_up_or_retry(ctx, job_id, f"{type(exc).__name__}: {exc}")
        raise
    for callback_id in turns.callbacks:
        try:
            from channels.telegram.sender import answer_callback  # aiogram: Telegram only

            await answer_callback(config, callback_id)
        except (BotAPIError, ValueError) as exc:
            log.info("callback not answered", error=str(exc))
    await send_all(ctx, turns.messages)
    if "redis" in ctx and (turns.messages or turns.handed_over):
        await realtime.publish(
            ctx["redis"],
            "conversation.handover" if turns.handed_over else "message.created",
            conversation,
        )
    return f"answered {len(turns.messages)}"


async def give_up_or_retry(ctx: Ctx, job_id: int, error: str) -> None:
    """Count a crashed attempt; after the last one a person takes over (nobody left waiting)."""
    sessions: Sessions = ctx["sessions"]
    now = clock_of(ctx)
    queued: list[int] = []
    async with sessions() as session, session.begin():
        job = await session.get(ChatJob, job_id, with_for_update=True)
        if job is None or job.status != "pending":
            return
        job.attempts += 1
        job.error = error[:2000]
        if job.attempts < MAX_ATTEMPTS:
            return
        job.status, job.done_at = "failed", now
        conversation = await session.get(Conversation, job.conversation_id, with_for_update=True)
        channel = await session.get(Channel, conversation.channel_id) if conversation else None
        if conversation is not None and channel is not None and conversation.handled_by == "bot":
            queued = await bot.hand_over(
                session,
                channel,
                conversation,
                reason=f"the bot failed: {error}"[:200],
                now=now,
                task_due=ctx["policy"].task_due,
            )
    await send_all(ctx, queued)


async def deliver_to_bot(ctx: Ctx, job_id: int) -> str:
    """POST the conversation's pending events to its external bot, in order; a bot that fails
    or does not answer in time hands the conversation to a person."""
    sessions: Sessions = ctx["sessions"]
    http: aiohttp.ClientSession = ctx["http"]
    now = clock_of(ctx)
    queued: list[int] = []
    async with sessions() as session, session.begin():
        conversation_id = await session.scalar(
            select(ChatJob.conversation_id).where(ChatJob.id == job_id)
        )
        if conversation_id is None:
            return "gone"
        jobs = await pending_jobs(session, conversation_id, "external")
        if not jobs:
            return "skipped"
        conversation = await session.get(Conversation, conversation_id)
        channel = await session.get(Channel, conversation.channel_id) if conversation else None
        if conversation is None or channel is None:
            return "gone"
        external = bot.external_of(channel.config)
        timeout_s = bot.settings_of(channel.config).timeout_s
        failed: str | None = None
        for job in jobs:
            job.attempts += 1
            job.done_at = now
            if failed is not None or external is None:
                job.status = "failed"
                job.error = "skipped: " + (failed or "the channel has no bot_url any more")
                continue
            body = await bot_external.payload(session, job, conversation, channel, now)
            error = await bot_external.post(
                http, external, job.delivery_id, job.event, body, timeout_s
            )
            job.status, job.error = ("done", None) if error is None else ("failed", error)
            if error is not None and job.event in ("message.created", "conversation.created"):
                failed = error
        if failed is not None:
            log.warning("external bot failed", conversation_id=conversation_id, error=failed)
            await session.refresh(conversation, with_for_update=True)
            if conversation.handled_by == "bot":
                queued = await bot.hand_over(
                    session,
                    channel,
                    conversation,
                    reason=f"external bot failed: {failed}"[:200],
                    now=now,
                    task_due=ctx["policy"].task_due,
                    from_external=True,
                )
    await send_all(ctx, queued)
    return "failed" if failed else "delivered"


# Kinds whose attachments arrive as a provider's reference: how to fetch the bytes.
async def telegram_download(config: JsonObject, ref: str) -> tuple[bytes, str | None]:
    from channels.telegram.sender import download  # aiogram is imported for Telegram only

    return await download(config, ref)


DOWNLOADERS: dict[str, Callable[[JsonObject, str], Awaitable[tuple[bytes, str | None]]]] = {
    "telegram": telegram_download,
    "whatsapp": whatsapp_download,
}


async def download_files(ctx: Ctx, job_id: int) -> str:
    """Fetch the bytes of attachments that came as a provider reference into the file store."""
    sessions: Sessions = ctx["sessions"]
    files = ctx["policy"].files
    async with sessions() as session:
        job = await session.get(ChatJob, job_id)
        if job is None or job.status != "pending" or job.message_id is None:
            return "skipped"
        message = await session.get(Message, job.message_id)
        channel = await session.get(Channel, message.channel_id) if message else None
        rows = (
            await session.scalars(
                select(Attachment).where(
                    Attachment.message_id == job.message_id,
                    Attachment.sha256.is_(None),
                    Attachment.refused.is_(None),
                    Attachment.ref.is_not(None),
                )
            )
        ).all()
        attempts = job.attempts
    results: dict[int, tuple[str | None, int | None, str | None]] = {}
    retry: str | None = None
    fetch = DOWNLOADERS.get(channel.kind) if channel is not None else None
    if channel is not None and fetch is not None and files is not None:
        for row in rows:
            try:
                content, _ = await fetch(channel.config, str(row.ref))
            except (BotAPIError, GraphError) as exc:
                if exc.temporary and attempts + 1 < MAX_ATTEMPTS:
                    retry = exc.reason
                    break
                results[row.id] = (None, None, exc.reason[:300])
                continue
            results[row.id] = (await files.put(content), len(content), None)
    async with sessions() as session, session.begin():
        job = await session.get(ChatJob, job_id, with_for_update=True)
        if job is None:
            return "gone"
        for attachment_id, (sha256, size, refused) in results.items():
            stored = await session.get(Attachment, attachment_id)
            if stored is not None:
                stored.sha256, stored.refused = sha256, refused
                stored.size = size if size is not None else stored.size
        job.attempts += 1
        if retry is None:
            job.status, job.done_at = "done", clock_of(ctx)
        else:
            job.error = retry
    if retry is not None:
        raise Retry(defer=5 * (attempts + 1))
    return f"downloaded {sum(1 for r in results.values() if r[0])}"


def buttons_of(message: Message) -> tuple[tuple[str, str], ...]:
    raw = message.meta.get("buttons") or []
    return tuple((str(b[0]), str(b[1])) for b in raw if isinstance(b, list) and len(b) == 2)


async def send_bot_message(ctx: Ctx, message_id: int) -> str:
    """Send a queued message of the bot, buttons included (else like `send_message`)."""
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
        group = str(message.meta.get("to", "")).startswith("-")
        outbound = replace(
            outbound,
            buttons=buttons_of(message),
            # In a group the answer quotes the question; in a private chat that is noise.
            reply_to_external_id=outbound.reply_to_external_id if group else None,
        )
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
            if result.error and "blocked" in result.error:
                conv = await session.get(Conversation, message.conversation_id)
                if conv is not None:
                    conv.needs_review = f"delivery failed: {result.error}"[:200]
    if result.status == "retry" and message.status == "queued":
        delay = result.retry_after_s if result.retry_after_s is not None else 2.0**message.attempts
        raise Retry(defer=delay)
    return message.status


async def send_all(ctx: Ctx, message_ids: Sequence[int]) -> None:
    """Send now, in order; what must wait is handed to the send job."""
    for message_id in message_ids:
        try:
            await send_bot_message(ctx, message_id)
        except Retry as retry:
            if "redis" in ctx:
                await ctx["redis"].enqueue_job(
                    "send_bot_message",
                    message_id,
                    _job_id=f"botsend:{message_id}",
                    _defer_by=timedelta(milliseconds=retry.defer_score or 0),
                )


async def resume_chat_jobs(ctx: Ctx) -> int:
    """Cron: queue pending chat jobs whose wake-up got lost (a crash, a web process)."""
    sessions: Sessions = ctx["sessions"]
    cutoff = clock_of(ctx) - timedelta(seconds=STALE_S)
    async with sessions() as session:
        rows = (
            await session.execute(
                select(ChatJob.id, ChatJob.kind)
                .where(ChatJob.status == "pending", ChatJob.created_at < cutoff)
                .order_by(ChatJob.id)
                .limit(1000)
            )
        ).all()
    await bot.wake(ctx["redis"], [(r.id, r.kind) for r in rows])
    return len(rows)


# --- Telegram long polling ------------------------------------------------------------------


def poll_lock_key(channel_id: str) -> int:
    return zlib.crc32(f"telegram-poll:{channel_id}".encode())


async def poll_telegram(ctx: Ctx, channel_id: str) -> int:
    """Long-poll a bot in polling mode and journal each Update as a webhook would; one poller
    per bot (an advisory lock). Returns the Updates journaled, or -1 when another worker polls."""
    engine: AsyncEngine = ctx["engine"]
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session:
        channel = await session.get(Channel, channel_id)
    if channel is None or channel.kind != "telegram" or not channel.is_active:
        return 0
    config = dict(channel.config)
    if BotConfig.from_json(config).mode != "polling":
        return 0
    key = poll_lock_key(channel_id)
    async with engine.connect() as lock_conn:
        if not await lock_conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}):
            return -1
        try:
            return await _poll(ctx, channel_id, config)
        finally:
            await lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


async def _poll(ctx: Ctx, channel_id: str, config: dict[str, Any]) -> int:
    sessions: Sessions = ctx["sessions"]
    redis: ArqRedis | None = ctx.get("redis")
    adapter = adapter_for("telegram")
    deadline = time.monotonic() + float(ctx.get("telegram_poll_s", POLL_SESSION_S))
    wait_s = int(ctx.get("telegram_poll_wait_s", POLL_WAIT_S))
    offset: int | None = None
    total = 0
    from channels.telegram.sender import delete_webhook, get_updates  # aiogram: Telegram only

    await delete_webhook(config)  # getUpdates answers 409 while a webhook is set
    while (left := deadline - time.monotonic()) > 0:
        try:
            updates = await get_updates(config, offset, min(wait_s, int(left)))
        except BotAPIError as exc:
            if not exc.temporary:
                raise
            log.info("getUpdates failed; trying again", channel_id=channel_id, error=exc.reason)
            await asyncio.sleep(min(exc.retry_after_s or 2.0, max(left, 0)))
            continue
        if not updates:
            continue
        new_ids: list[int] = []
        async with sessions() as session, session.begin():
            for update in updates:
                delivery = polled_delivery(update)
                sender_key = None
                try:
                    accepted = adapter.accept(config, delivery)
                    external_id, status, error = accepted.external_id, "pending", None
                    sender_key = accepted.sender_key
                except AdapterError as exc:
                    external_id = f"invalid:{delivery.body_hash()}"
                    status, error = "failed", exc.reason
                event_id, new = await journal(
                    session,
                    channel_id=channel_id,
                    external_id=external_id,
                    delivery=delivery,
                    status=status,
                    error=error,
                    sender_key=sender_key,
                )
                if new and status == "pending":
                    new_ids.append(event_id)
            if new_ids:
                await notify_workers(session)
        # Only after the commit: the next getUpdates confirms these to Telegram.
        offset = max(int(str(u.get("update_id", 0))) for u in updates) + 1
        total += len(updates)
        if redis is not None:
            await enqueue_drain(redis, new_ids)
    return total


async def schedule_telegram_pollers(ctx: Ctx) -> int:
    """Cron: make sure every bot in polling mode has a poller (the job id keeps it to one)."""
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Channel.id, Channel.config).where(
                    Channel.kind == "telegram", Channel.is_active
                )
            )
        ).all()
    ids = [r.id for r in rows if (r.config or {}).get("mode") == "polling"]
    for channel_id in ids:
        await ctx["redis"].enqueue_job(
            "poll_telegram", channel_id, _job_id=f"telegram-poll:{channel_id}"
        )
    return len(ids)


# --- the worker's share ---------------------------------------------------------------------


async def startup(ctx: Ctx) -> None:
    """The Telegram Bots pool, an HTTP session for external bots, and the chat-job waker."""
    egress: Egress = ctx.get("egress") or channels_policy()
    telegram_pool.enable(egress)  # the Bots pool is made when a Telegram channel first calls
    ctx["http"] = egress.session()
    if "redis" in ctx:
        redis: ArqRedis = ctx["redis"]

        async def waker(jobs: Sequence[tuple[int, str]]) -> None:
            try:
                await bot.wake(redis, jobs)
            except Exception as exc:  # the sweep queues them a little later
                log.warning("chat jobs not queued", error=str(exc))

        ctx["chat_waker"] = waker
        bot.set_waker(waker)


async def shutdown(ctx: Ctx) -> None:
    if ctx.get("chat_waker") is not None and bot.current_waker() is ctx["chat_waker"]:
        bot.set_waker(None)
    await bot.settle()
    if (http := ctx.get("http")) is not None:
        await http.close()
    await telegram_pool.close()


FUNCTIONS: list[Any] = [
    run_bot,
    deliver_to_bot,
    download_files,
    send_bot_message,
    func(poll_telegram, timeout=POLL_SESSION_S + 120),
]
CRON_JOBS: list[Any] = [
    cron(resume_chat_jobs, second=set(range(3, 60, 10)), unique=True, run_at_startup=False),
    cron(schedule_telegram_pollers, second={8, 38}, unique=True, run_at_startup=True),
]
