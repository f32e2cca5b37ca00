"""Mailbox sync: import new mail over IMAP into the journal, one worker per mailbox at a time.

imap-tools is blocking, so every IMAP call runs in a thread. Per folder a checkpoint keeps
(UIDVALIDITY, last UID); the checkpoint moves in the same transaction that journals the mail,
so a crash re-imports at most what was not committed, and the journal's unique key makes that a
no-op. A UIDVALIDITY change re-reads the folder, deduplicated by Message-ID.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from typing import Any

import structlog
from arq.connections import ArqRedis
from imap_tools import BaseMailBox
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from channels.base import Delivery
from channels.mail import imap
from channels.mail.adapter import journal_key
from inbox.db import Sessions
from inbox.ingest.journal import enqueue_drain, journal_many, notify_workers
from inbox.models import Channel, MailboxCheckpoint

log = structlog.get_logger(__name__)

BATCH = 200
IDLE_SLICE_S = 20.0  # how long one IDLE wait lasts before we look at the clock again
SESSION_S = 240.0  # a sync job holds the mailbox this long, then the cron starts the next one
POLL_S = 30.0  # without IDLE


@dataclass(frozen=True)
class Imported:
    folder: str
    fetched: int
    new_events: list[int]


def lock_key(channel_id: str) -> int:
    return zlib.crc32(f"mailbox:{channel_id}".encode())


async def import_folder(
    box: BaseMailBox,
    sessions: Sessions,
    redis: ArqRedis | None,
    channel_id: str,
    folder: str,
    after: str,
) -> Imported:
    """Journal every message above the checkpoint, in batches, then apply after_import."""
    state = await asyncio.to_thread(imap.folder_state, box, folder)
    async with sessions() as session:
        checkpoint = await session.get(MailboxCheckpoint, (channel_id, folder))
    last_uid = 0
    if checkpoint is not None and checkpoint.uidvalidity == state.uidvalidity:
        last_uid = checkpoint.last_uid
    elif checkpoint is not None:
        log.warning(
            "UIDVALIDITY changed: re-reading the folder", channel_id=channel_id, folder=folder
        )
    fetched, new_events = 0, []
    while True:
        batch = await asyncio.to_thread(imap.fetch_new, box, folder, last_uid, BATCH)
        if not batch:
            break
        async with sessions() as session, session.begin():
            ids = await journal_batch(session, channel_id, batch)
            last_uid = max(uid for uid, _ in batch)
            await save_checkpoint(session, channel_id, folder, state.uidvalidity, last_uid)
            if ids:
                await notify_workers(session)
        fetched += len(batch)
        new_events += ids
        if redis is not None:
            await enqueue_drain(redis, ids)
        await asyncio.to_thread(imap.after_import, box, folder, [uid for uid, _ in batch], after)
    if checkpoint is None and fetched == 0:
        async with sessions() as session, session.begin():
            await save_checkpoint(session, channel_id, folder, state.uidvalidity, 0)
    return Imported(folder, fetched, new_events)


async def journal_batch(
    session: AsyncSession, channel_id: str, batch: list[tuple[int, bytes]]
) -> list[int]:
    """Journal a batch in one statement; the same Message-ID twice in a batch is kept once."""
    unique: dict[str, Delivery] = {}
    for uid, raw in batch:
        key = journal_key(raw) if raw.strip() else f"empty:{uid}"
        unique.setdefault(
            key, Delivery(body=raw, headers={"x-imap-uid": str(uid)}, query={}, url="imap:")
        )
    return await journal_many(session, channel_id, list(unique.items()))


async def save_checkpoint(
    session: AsyncSession, channel_id: str, folder: str, uidvalidity: int, last_uid: int
) -> None:
    await session.execute(
        insert(MailboxCheckpoint)
        .values(channel_id=channel_id, folder=folder, uidvalidity=uidvalidity, last_uid=last_uid)
        .on_conflict_do_update(
            index_elements=["channel_id", "folder"],
            set_={"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": func.now()},
        )
    )


async def sync_mailbox(ctx: dict[str, Any], channel_id: str) -> int:
    """Import new mail, then wait for more with IDLE (or poll) until the session ends.

    Returns how many messages were fetched, or -1 when another worker holds this mailbox.
    """
    engine: AsyncEngine = ctx["engine"]
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session:
        channel = await session.get(Channel, channel_id)
    if channel is None or channel.kind != "email" or not channel.is_active:
        return 0
    config = dict(channel.config["imap"])
    folders = [str(f) for f in config.get("folders", ["INBOX"])]
    after = str(config.get("after_import", "leave"))
    session_s = float(ctx.get("mailbox_session_s", SESSION_S))
    async with engine.connect() as lock_conn:
        got = await lock_conn.scalar(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(channel_id)}
        )
        if not got:
            return -1
        try:
            return await _sync(ctx, sessions, channel_id, config, folders, after, session_s)
        finally:
            await lock_conn.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(channel_id)}
            )


async def _sync(
    ctx: dict[str, Any],
    sessions: Sessions,
    channel_id: str,
    config: dict[str, Any],
    folders: list[str],
    after: str,
    session_s: float,
) -> int:
    redis: ArqRedis | None = ctx.get("redis")
    box = await asyncio.to_thread(imap.connect, config)
    total = 0
    try:
        deadline = time.monotonic() + session_s
        idle = await asyncio.to_thread(imap.has_idle, box) and len(folders) == 1
        while True:
            for folder in folders:
                total += (
                    await import_folder(box, sessions, redis, channel_id, folder, after)
                ).fetched
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if idle:
                await asyncio.to_thread(
                    imap.wait_for_mail, box, folders[0], min(IDLE_SLICE_S, left)
                )
            else:
                await asyncio.sleep(min(POLL_S, left))
    finally:
        await asyncio.to_thread(box.logout)
    return total


async def schedule_mailboxes(ctx: dict[str, Any]) -> int:
    """Cron: make sure every active mailbox has a sync job (the job id keeps it to one)."""
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session:
        ids = (
            await session.scalars(
                select(Channel.id).where(Channel.kind == "email", Channel.is_active)
            )
        ).all()
    redis: ArqRedis = ctx["redis"]
    for channel_id in ids:
        await redis.enqueue_job("sync_mailbox", channel_id, _job_id=f"mailbox:{channel_id}")
    return len(ids)
