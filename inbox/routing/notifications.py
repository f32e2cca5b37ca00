"""Notifications: a person's new assignments, reminders and breaches, shown in the web inbox
(realtime) and, when the person asks for it, sent by e-mail or Telegram."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import OutboundMessage
from inbox.models import Channel
from inbox.outbound import Sender, sender_for
from inbox.realtime import channel_of
from inbox.routing.models import AgentProfile, Notification

log = structlog.get_logger(__name__)

SUBJECTS = {
    "assigned": "New conversation for you",
    "reminder": "Due soon",
    "breach": "Overdue",
    "resolution_breach": "Resolution overdue",
}


def notify(
    session: AsyncSession,
    user_id: int,
    kind: str,
    now: datetime,
    *,
    conversation_id: int | None = None,
    task_id: int | None = None,
    **data: Any,
) -> None:
    session.add(
        Notification(
            user_id=user_id,
            kind=kind,
            conversation_id=conversation_id,
            task_id=task_id,
            data=data,
            created_at=now,
        )
    )


def event(n: Notification) -> dict[str, Any]:
    return {
        "type": "notification",
        "notification_id": n.id,
        "user_id": n.user_id,
        "kind": n.kind,
        "conversation_id": n.conversation_id,
        "task_id": n.task_id,
    }


@dataclass(frozen=True)
class Outgoing:
    """A notification to send outside the inbox, on an e-mail or Telegram channel."""

    notification_id: int
    channel_kind: str
    channel_config: dict[str, Any]
    message: OutboundMessage


def text_of(n: Notification) -> str:
    what = SUBJECTS.get(n.kind, n.kind)
    title = n.data.get("title") or n.data.get("subject") or ""
    due = n.data.get("due_at")
    parts = [f"{what}: {title}".rstrip(": ")]
    if n.conversation_id is not None:
        parts.append(f"Conversation #{n.conversation_id}")
    if due:
        parts.append(f"Due {due}")
    return "\n".join(parts)


async def claim_undelivered(
    session: AsyncSession, now: datetime, limit: int = 500
) -> tuple[list[Notification], list[Outgoing]]:
    """Take undelivered notifications (SKIP LOCKED, so each goes out once) and mark them
    delivered; returns them for the realtime events plus what to send by e-mail or Telegram."""
    rows = list(
        (
            await session.scalars(
                select(Notification)
                .where(Notification.delivered_at.is_(None))
                .order_by(Notification.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    if not rows:
        return [], []
    await session.execute(
        update(Notification)
        .where(Notification.id.in_([n.id for n in rows]))
        .values(delivered_at=now)
    )
    profiles = {
        p.user_id: p
        for p in (
            await session.scalars(
                select(AgentProfile).where(AgentProfile.user_id.in_({n.user_id for n in rows}))
            )
        ).all()
    }
    channels: dict[str, Channel | None] = {}
    outgoing: list[Outgoing] = []
    for n in rows:
        prefs = profiles[n.user_id].notify if n.user_id in profiles else {}
        kinds = prefs.get("kinds")
        if not prefs or (kinds is not None and n.kind not in kinds):
            continue
        for kind, address in (
            ("email", prefs.get("email")),
            ("telegram", prefs.get("telegram_chat_id")),
        ):
            if not address:
                continue
            if kind not in channels:
                channels[kind] = (
                    await session.scalars(
                        select(Channel)
                        .where(Channel.kind == kind, Channel.is_active)
                        .order_by(Channel.created_at)
                        .limit(1)
                    )
                ).first()
            channel = channels[kind]
            if channel is None:
                continue
            outgoing.append(
                Outgoing(
                    n.id,
                    kind,
                    dict(channel.config),
                    OutboundMessage(
                        to=str(address),
                        text=text_of(n),
                        subject=f"[Switchboard] {SUBJECTS.get(n.kind, n.kind)}",
                    ),
                )
            )
    return rows, outgoing


async def publish(redis: Redis, rows: list[Notification]) -> None:
    """Best effort, like every realtime event: the inbox also lists notifications itself."""
    for n in rows:
        try:
            await redis.publish(channel_of(redis), json.dumps(event(n)))
        except Exception as exc:
            log.warning("notification publish failed", error=str(exc))
            return


async def send(outgoing: list[Outgoing], senders: dict[str, Sender] | None = None) -> int:
    """Send by e-mail or Telegram; a failure is logged, never retried (the inbox shows it)."""
    sent = 0
    for o in outgoing:
        sender = (senders or {}).get(o.channel_kind) or sender_for(o.channel_kind)
        if sender is None:
            continue
        try:
            result = await sender(o.channel_config, o.message)
        except Exception as exc:
            log.warning("notification not sent", id=o.notification_id, error=str(exc))
            continue
        if result.status == "sent":
            sent += 1
        else:
            log.warning("notification not sent", id=o.notification_id, error=result.error)
    return sent
