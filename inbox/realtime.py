"""Realtime events for the web inbox: published on Redis after commit, fanned out by /ws."""

from __future__ import annotations

import json
from collections.abc import Sequence

import structlog
from redis.asyncio import Redis

from inbox.models import Conversation

log = structlog.get_logger(__name__)

CHANNEL = "switchboard:events"


def channel_of(redis: Redis) -> str:
    """The pub/sub channel of this Redis database. Pub/sub ignores the database number, so
    two services sharing one Redis server on different databases (or two test runs) would
    hear each other's events on one fixed name."""
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"{CHANNEL}:{db}"


def conversation_event(kind: str, c: Conversation) -> dict[str, object]:
    """What a client needs to decide whether to show it and to refresh: no message content."""
    return {
        "type": kind,
        "conversation_id": c.id,
        "team_id": c.team_id,
        "assignee_id": c.assignee_id,
        "status": c.status,
        "confidential": c.confidential,
        "channel_id": c.channel_id,
    }


async def publish_many(redis: Redis, kind: str, conversations: Sequence[Conversation]) -> None:
    """`publish` for a batch: one round trip to Redis."""
    if not conversations:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for c in conversations:
                pipe.publish(channel_of(redis), json.dumps(conversation_event(kind, c)))
            await pipe.execute()
    except Exception as exc:
        log.warning("realtime publish failed", error=str(exc))


async def publish(redis: Redis, kind: str, conversation: Conversation) -> None:
    """Best effort: the inbox also refreshes on its own, so a lost event costs only latency."""
    try:
        await redis.publish(channel_of(redis), json.dumps(conversation_event(kind, conversation)))
    except Exception as exc:
        log.warning("realtime publish failed", error=str(exc))
