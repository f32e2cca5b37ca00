"""The event journal: every delivery stored raw before it is processed, exactly once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from channels.base import Delivery
from inbox.models import Event

# Never journal what authenticates a delivery: the worker does not authenticate again.
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
SECRET_QUERY = frozenset({"token", "key", "secret", "api_key"})


def delivery_meta(delivery: Delivery) -> dict[str, Any]:
    return {
        "headers": {k: v for k, v in delivery.headers.items() if k not in SECRET_HEADERS},
        "query": {k: v for k, v in delivery.query.items() if k not in SECRET_QUERY},
        "url": delivery.url,
        "method": delivery.method,
        "remote": delivery.remote,
    }


def delivery_from(event: Event) -> Delivery:
    meta: Mapping[str, Any] = event.headers or {}
    return Delivery(
        body=event.payload,
        headers=meta.get("headers", {}),
        query=meta.get("query", {}),
        url=meta.get("url", ""),
        method=meta.get("method", "POST"),
        remote=meta.get("remote"),
        received_at=event.received_at,
    )


async def journal(
    session: AsyncSession | AsyncConnection,
    *,
    channel_id: str,
    external_id: str,
    delivery: Delivery,
    status: str = "pending",
    error: str | None = None,
) -> tuple[int, bool]:
    """Store a delivery; returns (event id, whether it is new). A redelivery changes nothing."""
    inserted = (
        await session.execute(
            insert(Event)
            .values(
                channel_id=channel_id,
                external_id=external_id[:300],
                payload=delivery.body,
                headers=delivery_meta(delivery),
                status=status,
                error=error,
            )
            .on_conflict_do_nothing(index_elements=["channel_id", "external_id"])
            .returning(Event.id)
        )
    ).scalar()
    if inserted is not None:
        return inserted, True
    existing = (
        await session.execute(
            select(Event.id).where(
                Event.channel_id == channel_id, Event.external_id == external_id[:300]
            )
        )
    ).scalar_one()
    return existing, False


def event_job_id(event_id: int) -> str:
    return f"event:{event_id}"


async def enqueue_event(redis: ArqRedis, event_id: int) -> None:
    """Queue processing of one journaled event; the job id makes a second enqueue a no-op."""
    await redis.enqueue_job("process_event", event_id, _job_id=event_job_id(event_id))


async def enqueue_send(redis: ArqRedis, message_id: int, defer_s: float | None = None) -> None:
    """Queue sending an outbound message; one job per message however often it is asked."""
    await redis.enqueue_job(
        "send_message", message_id, _job_id=f"send:{message_id}", _defer_by=defer_s
    )


async def journal_many(
    session: AsyncSession, channel_id: str, deliveries: list[tuple[str, Delivery]]
) -> list[int]:
    """Store many deliveries in one statement; returns the ids of the new ones, in order."""
    if not deliveries:
        return []
    rows = [
        {
            "channel_id": channel_id,
            "external_id": external_id[:300],
            "payload": delivery.body,
            "headers": delivery_meta(delivery),
            "status": "pending",
        }
        for external_id, delivery in deliveries
    ]
    inserted = await session.execute(
        insert(Event)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["channel_id", "external_id"])
        .returning(Event.id)
    )
    return sorted(inserted.scalars().all())
