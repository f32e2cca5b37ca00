"""The event journal: every delivery stored raw before it is processed, exactly once."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog
from arq.connections import ArqRedis
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from channels.base import Delivery
from inbox.models import Event

log = structlog.get_logger(__name__)

# Workers LISTEN here; a web process NOTIFYs after it journaled new pending events.
WAKE_CHANNEL = "switchboard_events"

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


def partition_of(channel_id: str, sender_key: str | None) -> int:
    """The partition of a sender's events (of the channel's, when the sender is not known yet)."""
    return zlib.crc32((sender_key or f"channel:{channel_id}").encode()) & 0x7FFFFFFF


async def journal(
    session: AsyncSession | AsyncConnection,
    *,
    channel_id: str,
    external_id: str,
    delivery: Delivery,
    status: str = "pending",
    error: str | None = None,
    sender_key: str | None = None,
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
                partition_key=partition_of(channel_id, sender_key),
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


async def enqueue_drain(redis: ArqRedis, event_ids: list[int]) -> None:
    """Queue one drain of the journal for events just committed (a burst worker has no drain
    loops; a running worker's loops were already woken by `notify_workers`)."""
    if event_ids:
        newest = max(event_ids)
        await redis.enqueue_job("process_event", newest, _job_id=f"event:{newest}")


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
            "partition_key": partition_of(channel_id, None),
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


GROUP_SQL = """
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[],
                         $6::text[], $7::int[])
        AS t(channel_id, external_id, payload, headers, status, error, partition_key)
), ins AS (
    INSERT INTO events (channel_id, external_id, payload, headers, status, error, attempts,
                        partition_key)
    SELECT channel_id, external_id, payload, headers::jsonb, status, error, 0, partition_key
    FROM input
    ON CONFLICT (channel_id, external_id) DO NOTHING
    RETURNING id, channel_id, external_id
)
SELECT channel_id, external_id, id, true AS new FROM ins
UNION ALL
SELECT channel_id, external_id, id, false FROM events
WHERE external_id = ANY($2::text[]) AND channel_id = ANY($1::text[])
"""

Row = tuple[str, str, bytes, str, str, str | None, int]


async def keep_connection(conn: asyncpg.Connection) -> None:
    """The journal's statements leave no session state behind: no reset round trip per use."""


LOST_CONNECTION = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    ConnectionError,
)


class FastJournal:
    """The accept path's journal on a plain asyncpg pool (no ORM, no session), with group
    commit: the deliveries that arrive while a commit is under way are written together in one
    statement, and each is answered once the commit that holds it is done. A NOTIFY (at most
    one per 20 ms) wakes the workers."""

    def __init__(self, pool: asyncpg.Pool, max_inflight: int = 4) -> None:
        self.pool = pool
        self._dirty = False
        self._notified_at = 0.0
        self._waking: asyncio.Task[None] | None = None
        self._queue: list[tuple[Row, asyncio.Future[tuple[int, bool]]]] = []
        self._inflight = 0
        self._max_inflight = max_inflight
        self._tasks: set[asyncio.Task[None]] = set()

    async def add(
        self,
        *,
        channel_id: str,
        external_id: str,
        delivery: Delivery,
        status: str = "pending",
        error: str | None = None,
        sender_key: str | None = None,
    ) -> tuple[int, bool]:
        """Store a delivery durably; (event id, whether it is new)."""
        row: Row = (
            channel_id,
            external_id[:300],
            delivery.body,
            json.dumps(delivery_meta(delivery)),
            status,
            error,
            partition_of(channel_id, sender_key),
        )
        done: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()
        self._queue.append((row, done))
        self._start()
        event_id, new = await done
        if new and status == "pending":
            self.wake()
        return event_id, new

    def _start(self) -> None:
        while self._queue and self._inflight < self._max_inflight:
            group, self._queue = self._queue[:1000], self._queue[1000:]
            self._inflight += 1
            task = asyncio.create_task(self._write(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, group: list[tuple[Row, asyncio.Future[tuple[int, bool]]]]) -> None:
        try:
            first: dict[tuple[str, str], Row] = {}
            for row, _ in group:  # the same delivery twice in one group: stored once
                first.setdefault((row[0], row[1]), row)
            for attempt in (1, 2):
                try:
                    ids = await self._store(first)
                    break
                except LOST_CONNECTION:
                    # A backend terminated (restart, failover) under a pooled connection: the
                    # insert is idempotent, so once more on a fresh one rather than a 500.
                    if attempt == 2:
                        raise
            answered: set[tuple[str, str]] = set()
            for row, fut in group:
                key = (row[0], row[1])
                event_id, new = ids[key]
                if not fut.done():
                    fut.set_result((int(event_id), bool(new) and key not in answered))
                answered.add(key)
        except Exception as exc:  # every delivery of the group is answered with the error
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(exc)
        finally:
            for _, fut in group:  # cancelled (shutting down): nothing was answered 2xx
                fut.cancel()
            self._inflight -= 1
            self._start()

    async def _store(
        self, first: dict[tuple[str, str], Row]
    ) -> dict[tuple[str, str], tuple[int, bool]]:
        """Insert the group (idempotent: ON CONFLICT) and read back every key's event id."""
        rows = list(first.values())
        ids: dict[tuple[str, str], tuple[int, bool]]
        async with self.pool.acquire() as conn:
            found = await conn.fetch(GROUP_SQL, *(list(col) for col in zip(*rows, strict=True)))
            # Pre-existing rows come back for any channel × external id of the group (two
            # ANY lists the unique index answers); only the wanted pairs count.
            ids = {
                (r["channel_id"], r["external_id"]): (r["id"], r["new"])
                for r in found
                if (r["channel_id"], r["external_id"]) in first
            }
            missing = [key for key in first if key not in ids]
            if missing:  # a concurrent first delivery of the same key committed meanwhile
                for r in await conn.fetch(
                    "SELECT channel_id, external_id, id FROM events "
                    "WHERE (channel_id, external_id) IN "
                    "(SELECT * FROM unnest($1::text[], $2::text[]))",
                    [k[0] for k in missing],
                    [k[1] for k in missing],
                ):
                    ids[(r["channel_id"], r["external_id"])] = (r["id"], False)
        return ids

    def wake(self) -> None:
        self._dirty = True
        if self._waking is None or self._waking.done():
            self._waking = asyncio.create_task(self._notify())

    async def _notify(self) -> None:
        # At once when the workers were last woken a while ago; else the deliveries of the
        # next moments share one NOTIFY (at most one per 20 ms).
        loop = asyncio.get_running_loop()
        while self._dirty:
            wait = self._notified_at + 0.02 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty = False
            self._notified_at = loop.time()
            try:
                await self.pool.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
            except Exception as exc:  # workers also look every second
                log.warning("wake-up failed", error=str(exc))

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._waking is not None:
            await asyncio.gather(self._waking, return_exceptions=True)
        await self.pool.close()


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy URL as asyncpg's own DSN."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def notify_workers(session: AsyncSession | AsyncConnection) -> None:
    """Wake the workers when this transaction commits (NOTIFY is transactional)."""
    await session.execute(text("SELECT pg_notify(:c, '')"), {"c": WAKE_CHANNEL})
