"""Cron jobs of routing and SLAs: the sweep (reminders, escalations), snoozed conversations
waking up, team queues draining, notifications and acknowledgements going out.

Each is safe with any number of workers: the rows they act on are claimed with an atomic
UPDATE … RETURNING or SELECT … FOR UPDATE SKIP LOCKED, so every effect happens once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update

from inbox import realtime
from inbox.db import Sessions
from inbox.history import record
from inbox.ingest.journal import enqueue_send
from inbox.models import Conversation
from inbox.outbox import events as outbox_events
from inbox.routing import notifications
from inbox.routing.assignment import drain_all
from inbox.routing.models import Acknowledgement
from inbox.routing.sla import sweep

log = structlog.get_logger(__name__)

Ctx = dict[str, Any]


def clock_of(ctx: Ctx) -> datetime:
    clock: Callable[[], datetime] = ctx.get("clock") or (lambda: datetime.now(UTC))
    return clock()


async def sweep_sla(ctx: Ctx) -> dict[str, int]:
    """Reminders before due times, escalations after them, resolution breaches."""
    sessions: Sessions = ctx["sessions"]
    now = clock_of(ctx)
    async with sessions() as session, session.begin():
        result = await sweep(session, now)
        await outbox_events.emit_tasks(session, "task.overdue", result.escalated)
    if result.reminded or result.escalated or result.resolution_breached:
        log.info(
            "sla sweep",
            reminded=len(result.reminded),
            escalated=len(result.escalated),
            resolution_breached=len(result.resolution_breached),
        )
    await announce(ctx, result.conversations, "conversation.escalated")
    await deliver_notifications(ctx)
    return {
        "reminded": len(result.reminded),
        "escalated": len(result.escalated),
        "resolution_breached": len(result.resolution_breached),
    }


async def wake_snoozed(ctx: Ctx) -> int:
    """Snoozed conversations whose time has come are open again (each woken once)."""
    sessions: Sessions = ctx["sessions"]
    now = clock_of(ctx)
    async with sessions() as session, session.begin():
        woken = (
            await session.execute(
                update(Conversation)
                .where(Conversation.status == "snoozed", Conversation.snoozed_until <= now)
                .values(status="open", snoozed_until=None)
                .returning(Conversation.id, Conversation.assignee_id)
            )
        ).all()
        for row in woken:
            record(session, row.id, "status", None, before="snoozed", after="open", reason="wake")
            if row.assignee_id is not None:
                notifications.notify(session, row.assignee_id, "woken", now, conversation_id=row.id)
    await announce(ctx, {r.id for r in woken}, "conversation.status")
    if woken:
        await deliver_notifications(ctx)
    return len(woken)


async def drain_queues(ctx: Ctx) -> int:
    """Give queued conversations to whoever has room now, in arrival order per team."""
    sessions: Sessions = ctx["sessions"]
    now = clock_of(ctx)
    async with sessions() as session, session.begin():
        done = await drain_all(session, now)
    await announce(ctx, {c for c, _ in done}, "conversation.assigned")
    if done:
        await deliver_notifications(ctx)
    return len(done)


async def deliver_notifications(ctx: Ctx) -> int:
    """Publish undelivered notifications to the web inbox and send the e-mail/Telegram ones."""
    sessions: Sessions = ctx["sessions"]
    now = clock_of(ctx)
    total = 0
    for _ in range(20):  # bounded: the rest goes out on the next run
        async with sessions() as session, session.begin():
            rows, outgoing = await notifications.claim_undelivered(session, now)
        if not rows:
            break
        total += len(rows)
        if "redis" in ctx:
            await notifications.publish(ctx["redis"], rows)
        await notifications.send(outgoing, ctx.get("notification_senders"))
    return total


async def send_acknowledgements(ctx: Ctx) -> int:
    """Queue the send job of each new automatic acknowledgement, once."""
    sessions: Sessions = ctx["sessions"]
    now = clock_of(ctx)
    async with sessions() as session, session.begin():
        ids = (
            await session.scalars(
                update(Acknowledgement)
                .where(Acknowledgement.enqueued_at.is_(None))
                .values(enqueued_at=now)
                .returning(Acknowledgement.message_id)
            )
        ).all()
    if "redis" in ctx:
        for message_id in ids:
            await enqueue_send(ctx["redis"], message_id)
    return len(ids)


async def announce(ctx: Ctx, conversation_ids: set[int], kind: str) -> None:
    if not conversation_ids or "redis" not in ctx:
        return
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session:
        rows = (
            await session.scalars(select(Conversation).where(Conversation.id.in_(conversation_ids)))
        ).all()
    for conversation in rows:
        await realtime.publish(ctx["redis"], kind, conversation)
