"""Batches of journaled events: claim them partition by partition, parse them, store them (the
set-based way where it can, `pipeline.store` where it must) and record every outcome at once."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import literal_column, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from channels import adapter_for
from channels.base import AdapterError, InboundMessage, messages_of
from inbox.ingest import bulk, pipeline
from inbox.ingest.journal import delivery_from
from inbox.ingest.pipeline import Outcome, Policy, ProcessingError, retryable
from inbox.ingest.receipts import apply_receipts
from inbox.models import Channel, Event, Message
from inbox.outbox import events as outbox_events
from inbox.routing import sla

log = structlog.get_logger(__name__)

# Namespace of the per-partition advisory locks (the other key is the partition).
PARTITION_LOCKS = 7412100


async def claim(session: AsyncSession, batch: int) -> list[Event]:
    """Lock up to `batch` of the oldest pending events, partition by partition: a partition
    (one sender, see `partition_of`) another worker holds is left alone until it commits, so
    a sender's events are processed in order, by one worker at a time, and no two workers ever
    wait on each other's rows. The caller's transaction owns them until it commits."""
    window = (
        await session.execute(
            select(Event.id, Event.partition_key)
            # A literal, not a parameter: a prepared statement's generic plan could not use the
            # partial index of unfinished events and would walk every processed event by id.
            .where(Event.status == literal_column("'pending'"))
            .order_by(Event.id)
            .limit(batch * 4)
        )
    ).all()
    if not window:
        return []
    # Oldest first: lock the partitions of the next events the batch still needs, one statement
    # per round; a partition someone holds is passed over, and the next worker finds the rest of
    # the window free.
    mine: set[int] = set()
    theirs: set[int] = set()
    ids: list[int] = []
    seen = 0
    while len(ids) < batch and seen < len(window):
        chunk = window[seen : seen + batch - len(ids)]
        seen += len(chunk)
        ask = list(dict.fromkeys(r.partition_key for r in chunk if r.partition_key not in mine))
        ask = [part for part in ask if part not in theirs]
        if ask:
            got = set(
                (
                    await session.scalars(
                        text(
                            "SELECT p FROM unnest(CAST(:parts AS int[])) AS p "
                            "WHERE pg_try_advisory_xact_lock(:ns, p)"
                        ),
                        {"parts": ask, "ns": PARTITION_LOCKS},
                    )
                ).all()
            )
            mine |= got
            theirs |= set(ask) - got
        ids.extend(r.id for r in chunk if r.partition_key in mine)
    ids = sorted(ids)[:batch]
    if not ids:
        return []
    return list(
        (
            await session.scalars(
                select(Event)
                .where(Event.id.in_(ids), Event.status == "pending")
                .order_by(Event.id)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def claim_ids(session: AsyncSession, event_ids: list[int]) -> list[Event]:
    """Lock these pending events (a replay), waiting for their partitions' current owners."""
    events = list(
        (
            await session.scalars(
                select(Event)
                .where(Event.id.in_(event_ids), Event.status == "pending")
                .order_by(Event.id)
                .with_for_update()
            )
        ).all()
    )
    if events:  # in one order, so two replays never wait on each other crosswise
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, p) FROM unnest(CAST(:parts AS int[])) AS p"),
            {"ns": PARTITION_LOCKS, "parts": sorted({e.partition_key for e in events})},
        )
    return events


async def process_events(
    session: AsyncSession, events: list[Event], policy: Policy, now: datetime
) -> list[Outcome]:
    """Process claimed events: parse each (a bad one fails alone, before any SQL), store the
    batch under one savepoint, and record every event's outcome in one statement. Should the
    batch fail, it is stored again one savepoint per event, so only the bad event fails."""
    channel_ids = {e.channel_id for e in events}
    channels = {
        c.id: c
        for c in (await session.scalars(select(Channel).where(Channel.id.in_(channel_ids)))).all()
    }
    outcomes: dict[int, Outcome] = {}
    work: list[tuple[Event, Channel, InboundMessage]] = []
    receipts: list[tuple[str, InboundMessage]] = []
    for event in events:
        channel = channels.get(event.channel_id)
        try:
            if channel is None:
                raise ProcessingError("the channel no longer exists")
            found = messages_of(adapter_for(channel.kind), channel.config, delivery_from(event))
        except Exception as exc:  # one bad event must not stall the others
            outcomes[event.id] = failed(event, exc)
            continue
        # A call still ringing, a ping: nothing to store. A provider's batch: every message.
        found = [m for m in found if m.call is None or m.call.status is not None]
        outcomes[event.id] = Outcome(event.id, "processed" if found else "ignored")
        for msg in found:
            if msg.kind == "receipt":  # a status of our own message: no conversation of its own
                receipts.append((channel.id, msg))
            else:
                work.append((event, channel, msg))
    await apply_receipts(session, receipts)
    known = await stored_messages(session, [(c.id, m.external_id) for _, c, m in work])
    existing = frozenset(known)  # before this batch: an update of these is no new message
    try:
        async with session.begin_nested():
            # New messages go together, set-based; the rest one by one. A sender's message that
            # must go one by one waits until that sender's earlier new messages are stored, so
            # each sender's events still take effect in the order they came.
            fresh: list[tuple[int, Channel, InboundMessage]] = []
            fresh_partitions: set[int] = set()

            async def store_fresh() -> None:
                if not fresh:
                    return
                conversations = await bulk.store_many(session, fresh, policy, now)
                for event_id, conversation_id in conversations.items():
                    outcomes[event_id] = Outcome(event_id, "processed", None, conversation_id)
                fresh.clear()
                fresh_partitions.clear()

            for event, channel, msg in work:
                key = (channel.id, msg.external_id)
                if key not in known and bulk.set_based(channel, msg):
                    fresh.append((event.id, channel, msg))
                    fresh_partitions.add(event.partition_key)
                    known.add(key)
                    continue
                known.add(key)
                if event.partition_key in fresh_partitions:
                    await store_fresh()
                message = await pipeline.store(session, channel, event.id, msg, policy, now)
                outcomes[event.id] = Outcome(event.id, "processed", None, message.conversation_id)
            await store_fresh()
    except Exception as exc:
        log.info("batch stored one event at a time", events=len(work), error=str(exc)[:200])
        sla.forget(session)
        waiting: set[int] = set()  # partitions with an event left for later: the rest waits too
        for event, channel, msg in work:
            if event.partition_key in waiting:
                if outcomes[event.id].status != "processed":
                    continue
                outcomes[event.id] = Outcome(
                    event.id, "retry", "an earlier event of its sender waits"
                )
                continue
            outcome = await store_alone(session, event, channel, msg, policy, now)
            if outcome.status == "retry":
                waiting.add(event.partition_key)
            if outcomes[event.id].status == "processed":  # a batch's first failure stands
                outcomes[event.id] = outcome
    await record_outcomes(session, list(outcomes.values()), now)
    # Outbound webhook events of the whole batch, in its transaction: one statement. Of the
    # messages it created: a provider's batch whose one message failed stored the others.
    new = {(c.id, m.external_id) for e, c, m in work} - existing
    if any(outcomes[e.id].status != "processed" for e, _, _ in work):
        new = await stored_messages(session, sorted(new))
    await outbox_events.emit_ingested(session, new)
    return [outcomes[e.id] for e in events]


async def store_alone(
    session: AsyncSession,
    event: Event,
    channel: Channel,
    msg: InboundMessage,
    policy: Policy,
    now: datetime,
) -> Outcome:
    try:
        async with session.begin_nested():
            message = await pipeline.store(session, channel, event.id, msg, policy, now)
    except DBAPIError as exc:
        sla.forget(session)  # what the transaction remembered may have been rolled back
        if retryable(exc):
            # Another transaction held what this event needed (a deadlock or a serialization
            # failure): the event stays pending and a drainer takes it again.
            log.info("event retried later", event_id=event.id, error=str(exc.orig)[:200])
            return Outcome(event.id, "retry", str(exc.orig)[:200])
        return failed(event, exc)
    except Exception as exc:
        sla.forget(session)
        return failed(event, exc)
    return Outcome(event.id, "processed", None, message.conversation_id)


def failed(event: Event, exc: Exception) -> Outcome:
    reason = (
        exc.reason
        if isinstance(exc, AdapterError)
        else str(exc)
        if isinstance(exc, ProcessingError)
        else f"{type(exc).__name__}: {exc}"
    )
    log.warning("event failed", event_id=event.id, channel_id=event.channel_id, error=reason)
    return Outcome(event.id, "failed", reason)


async def record_outcomes(session: AsyncSession, outcomes: list[Outcome], now: datetime) -> None:
    """Every event's status, error and attempt count in one statement (a retry stays pending)."""
    if not outcomes:
        return
    await session.execute(
        text(
            "UPDATE events AS e SET status = v.status, error = v.error, "
            "attempts = e.attempts + 1, "
            "processed_at = CASE WHEN v.status = 'pending' THEN NULL ELSE CAST(:now AS timestamptz) END "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), "
            "CAST(:errors AS text[])) AS v(id, status, error) WHERE e.id = v.id"
        ),
        {
            "ids": [o.event_id for o in outcomes],
            "statuses": ["pending" if o.status == "retry" else o.status for o in outcomes],
            "errors": [None if o.status == "processed" else o.error for o in outcomes],
            "now": now,
        },
    )


async def stored_messages(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (channel, external id) already have a message: one query per batch."""
    if not keys:
        return set()
    # Two ANY lists the unique index answers (a list of pairs may be planned as a scan).
    rows = await session.execute(
        select(Message.channel_id, Message.external_id).where(
            Message.external_id.in_({k[1] for k in keys}),
            Message.channel_id.in_({k[0] for k in keys}),
        )
    )
    wanted = set(keys)
    return {(r.channel_id, r.external_id) for r in rows} & wanted
