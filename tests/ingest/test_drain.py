"""Draining the journal: each sender's events in order, by one worker at a time, each event
exactly once; a poisoned event fails alone while the rest of its batch is processed."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from support import call_log, fixture_bytes

import inbox.ingest.pipeline
from channels import adapter_for
from channels.base import Delivery, phone_key
from crm.models import Activity, Lead, Task
from inbox.db import Sessions, make_engine, make_sessions
from inbox.ingest.channels import add_channel
from inbox.ingest.journal import asyncpg_dsn, journal, partition_of
from inbox.models import Channel, Conversation, Event, Message
from inbox.service.engines import EngineUrls
from inbox.settings import Settings
from workers.jobs import Drainer, claim, process_batch, process_event
from workers.worker import policy_from

Client = TestClient[Any, Any]
PARTITION_LOCKS = 7412100  # claim() takes pg_try_advisory_xact_lock(7412100, partition)


async def generic_pbx(sessions: Sessions) -> Channel:
    async with sessions() as session, session.begin():
        return await add_channel(session, "telephony", "PBX", {"dialect": "generic"})


def spellings(i: int) -> Iterator[str]:
    """One caller's number as PBXs write it: every spelling is the same line."""
    while True:
        yield f"06-123456{i:02d}"
        yield f"+31 6 123456{i:02d}"
        yield f"00316123456{i:02d}"


def e164(i: int) -> str:
    return f"phone:+316123456{i:02d}"


async def journal_call(session: AsyncSession, channel: Channel, body: bytes) -> int:
    """Journal a call log as the webhook does (the adapter's journal key and sender key)."""
    delivery = Delivery(body=body, headers={"content-type": "application/json"}, query={}, url="")
    accepted = adapter_for("telephony").accept(channel.config, delivery)
    event_id, new = await journal(
        session,
        channel_id=channel.id,
        external_id=accepted.external_id,
        delivery=delivery,
        sender_key=accepted.sender_key,
    )
    assert new
    return event_id


async def pending(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Event).where(Event.status == "pending")
            )
            or 0
        )


async def open_batches(sessions: Sessions) -> int:
    """How many drain transactions hold partition locks in this database right now."""
    async with sessions() as session:
        return int(
            await session.scalar(
                text(
                    "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND classid = :ns AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"ns": PARTITION_LOCKS},
            )
            or 0
        )


async def until_drained(sessions: Sessions, seconds: float) -> int:
    """Wait until nothing is pending; the most batches seen open at once meanwhile."""
    deadline, most = time.monotonic() + seconds, 0
    while (left := await pending(sessions)) and time.monotonic() < deadline:
        most = max(most, await open_batches(sessions))
        await asyncio.sleep(0.01)
    assert left == 0, f"{left} events still pending after {seconds}s"
    return most


async def test_two_workers_process_each_event_once_and_each_callers_calls_in_order(
    client: Client, sessions: Sessions, settings: Settings, engine_urls: EngineUrls
) -> None:
    channel = await generic_pbx(sessions)
    token = channel.config["token"]
    rng = random.Random(7412100)
    numbers = {i: spellings(i) for i in range(10)}
    calls = []
    for n in range(200):
        caller = rng.randrange(10)
        status = rng.choice(["answered", "answered", "missed"])
        calls.append(call_log(f"pbx-{n:04d}", next(numbers[caller]), status, minute=n))
    for n, body in enumerate(calls):
        response = await client.post(
            f"/webhooks/telephony/{channel.id}",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        assert response.status == 202, (n, await response.text())

    # Two worker processes' worth of drainers: their own engines, two loops each.
    policy = policy_from(settings)
    engines = [make_engine(engine_urls.database_url, pool_size=3) for _ in range(2)]
    drainers = [
        Drainer(
            {"sessions": make_sessions(engine), "policy": policy, "batch": 8},
            asyncpg_dsn(engine_urls.database_url),
            loops=2,
            idle_s=0.02,
        )
        for engine in engines
    ]
    try:
        await asyncio.gather(*(d.start() for d in drainers))
        overlapping = await until_drained(sessions, 30)
    finally:
        await asyncio.gather(*(d.stop() for d in drainers))
        await asyncio.gather(*(e.dispose() for e in engines))

    async with sessions() as session:
        events = (await session.execute(select(Event.id, Event.status, Event.attempts))).all()
        assert len(events) == 200
        # Processed once: a second processing would have counted a second attempt.
        assert {(e.status, e.attempts) for e in events} == {("processed", 1)}
        messages = (
            await session.execute(
                select(Message.id, Message.event_id, Message.conversation_id).order_by(Message.id)
            )
        ).all()
        assert sorted(m.event_id for m in messages) == sorted(e.id for e in events)
        threads = dict(
            (await session.execute(select(Conversation.id, Conversation.thread_key))).all()
        )
        assert sorted(threads.values()) == [e164(i) for i in range(10)]
        assert await session.scalar(select(func.count()).select_from(Lead)) == 10
    in_thread: dict[int, list[int]] = defaultdict(list)
    for m in messages:
        in_thread[m.conversation_id].append(m.event_id)
    for conversation_id, event_ids in in_thread.items():
        assert event_ids == sorted(event_ids), threads[conversation_id]
    assert overlapping >= 2  # the batches did run side by side


async def held_partitions(session: AsyncSession) -> set[int]:
    """The partition locks this session's transaction holds."""
    rows = await session.scalars(
        text(
            "SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = :ns AND objsubid = 2 AND pid = pg_backend_pid()"
        ),
        {"ns": PARTITION_LOCKS},
    )
    return set(rows.all())


async def journal_senders(sessions: Sessions, order: list[int]) -> dict[int, list[int]]:
    """One call per entry of `order` from caller `order[k]`; the event ids per caller."""
    channel = await generic_pbx(sessions)
    ids: dict[int, list[int]] = defaultdict(list)
    async with sessions() as session, session.begin():
        for n, caller in enumerate(order):
            body = call_log(f"c{n}", f"06-123456{caller:02d}", minute=n)
            ids[caller].append(await journal_call(session, channel, body))
    return ids


async def test_a_claim_takes_no_partition_another_open_claim_holds(sessions: Sessions) -> None:
    # Ten callers, two calls at a time each, then all of them again: later calls of the first
    # worker's callers sit right beside calls of callers nobody holds.
    ids = await journal_senders(sessions, [c for _ in range(3) for c in range(10) for _ in (0, 1)])
    partition = {
        event_id: partition_of("", phone_key(f"06-123456{caller:02d}"))
        for caller, events in ids.items()
        for event_id in events
    }
    async with sessions() as first, first.begin():
        mine = await claim(first, 2)
        assert [e.id for e in mine] == ids[0][:2]  # the oldest calls, in order
        held = await held_partitions(first)
        assert {e.partition_key for e in mine} <= held
        async with sessions() as second, second.begin():
            theirs = await claim(second, 100)
            assert {e.partition_key for e in theirs}.isdisjoint(held)
            assert not await held_partitions(second) & held
            # Everything of the callers the first worker does not hold, oldest first.
            assert [e.id for e in theirs] == sorted(
                i for i, p in partition.items() if p not in held
            )
            assert theirs


async def test_a_second_worker_claims_other_callers_while_the_first_holds_a_batch(
    sessions: Sessions,
) -> None:
    # Twenty callers, five calls each, round robin: plenty of work beyond the first batch.
    ids = await journal_senders(sessions, [c for _ in range(5) for c in range(20)])
    async with sessions() as first, first.begin():
        mine = await claim(first, 10)
        assert len(mine) == 10
        async with sessions() as second, second.begin():
            theirs = await claim(second, 10)
            assert {e.partition_key for e in theirs}.isdisjoint(e.partition_key for e in mine)
            assert [e.id for e in theirs] == sorted(ids[c][0] for c in range(10, 20))


def drain_ctx(sessions: Sessions, settings: Settings) -> dict[str, Any]:
    return {"sessions": sessions, "policy": policy_from(settings), "batch": 100}


async def statuses(sessions: Sessions) -> dict[int, tuple[str, str | None, int]]:
    async with sessions() as session:
        rows = (
            await session.execute(select(Event.id, Event.status, Event.error, Event.attempts))
        ).all()
    return {r.id: (r.status, r.error, r.attempts) for r in rows}


async def test_an_event_that_cannot_be_read_fails_alone_and_the_rest_of_its_batch_is_processed(
    sessions: Sessions, settings: Settings
) -> None:
    channel = await generic_pbx(sessions)
    broken = fixture_bytes("telephony", "generic__broken.json")
    good: list[int] = []
    async with sessions() as session, session.begin():
        for n in range(12):
            good.append(
                await journal_call(
                    session, channel, call_log(f"g{n}", f"06-1234560{n % 3}", minute=n)
                )
            )
            if n == 4:
                # Journaled as pending (say, before the parser got stricter), from caller 1.
                delivery = Delivery(body=broken, headers={}, query={}, url="")
                poisoned, _ = await journal(
                    session,
                    channel_id=channel.id,
                    external_id="pbx-20240513-0044",
                    delivery=delivery,
                    sender_key=phone_key("06-12345601"),
                )

    outcomes = await process_batch(drain_ctx(sessions, settings))

    assert sorted(o.event_id for o in outcomes) == sorted([*good, poisoned])  # one batch
    after = await statuses(sessions)
    status, error, attempts = after.pop(poisoned)
    assert (status, attempts) == ("failed", 1)
    assert error is not None and error.startswith(
        "generic: body is not valid JSON (Unterminated string"
    )
    assert set(after.values()) == {("processed", None, 1)}
    async with sessions() as session:
        stored = (await session.scalars(select(Message.event_id))).all()
    assert sorted(stored) == sorted(good)


async def test_an_event_the_database_refuses_fails_alone_and_the_rest_of_its_batch_is_stored(
    sessions: Sessions, settings: Settings
) -> None:
    channel = await generic_pbx(sessions)
    ids = []
    async with sessions() as session, session.begin():
        for n in range(12):
            # Readable, but text with a NUL byte, which PostgreSQL cannot store.
            agent = "2\x0001" if n == 5 else "201"
            body = call_log(f"g{n}", f"06-1234560{n % 3}", minute=n, agent=agent)
            ids.append(await journal_call(session, channel, body))
    assert b"\\u0000" in call_log("x", "06-12345600", agent="2\x0001")
    poisoned = ids[5]

    outcomes = await process_batch(drain_ctx(sessions, settings))

    assert [o.event_id for o in outcomes] == ids
    after = await statuses(sessions)
    status, error, attempts = after.pop(poisoned)
    assert (status, attempts) == ("failed", 1)
    assert error is not None and "0x00" in error
    assert set(after.values()) == {("processed", None, 1)}
    async with sessions() as session:
        stored = (
            await session.execute(
                select(Message.event_id, Conversation.thread_key)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .order_by(Message.id)
            )
        ).all()
    assert [s.event_id for s in stored] == [i for i in ids if i != poisoned]
    assert {s.thread_key for s in stored} == {e164(0), e164(1), e164(2)}


class Deadlock(Exception):
    sqlstate = "40P01"


async def test_a_callers_calls_stay_in_order_when_one_of_them_loses_a_deadlock(
    sessions: Sessions, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = await generic_pbx(sessions)
    async with sessions() as session, session.begin():
        first = await journal_call(session, channel, call_log("a1", "06-12345600", minute=1))
        later = await journal_call(session, channel, call_log("a2", "06-12345600", minute=2))
        # A NUL byte PostgreSQL refuses: the batch is stored again one event at a time.
        await journal_call(session, channel, call_log("b1", "06-12345601", agent="2\x001"))
    store = inbox.ingest.pipeline.store
    lost: list[int] = []

    async def deadlock_once(session: Any, channel: Any, event_id: int, *args: Any) -> Any:
        if event_id == first and not lost:
            lost.append(event_id)  # another worker's transaction won the deadlock
            raise DBAPIError("INSERT …", {}, Deadlock("deadlock detected"))
        return await store(session, channel, event_id, *args)

    monkeypatch.setattr(inbox.ingest.pipeline, "store", deadlock_once)
    ctx = drain_ctx(sessions, settings)
    outcomes = {o.event_id: o.status for o in await process_batch(ctx)}
    assert lost == [first] and outcomes[first] == "retry"
    await process_event(ctx)  # the retry, and whatever was held back with it

    async with sessions() as session:
        thread = (
            await session.scalars(
                select(Message.event_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.thread_key == e164(0))
                .order_by(Message.id)
            )
        ).all()
    assert thread == [first, later]


async def test_a_drainer_listens_again_after_its_connection_is_terminated(
    engine_urls: EngineUrls,
) -> None:
    """A PostgreSQL restart or a terminated backend must not leave the workers polling."""
    dsn = asyncpg_dsn(engine_urls.database_url)
    drainer = Drainer({}, dsn, loops=0, idle_s=0.05)
    await drainer.start()
    admin = await asyncpg.connect(dsn)
    try:
        assert drainer.listener is not None
        first = drainer.listener.get_server_pid()
        await admin.execute("SELECT pg_terminate_backend($1)", first)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listener = drainer.listener
            if listener is not None and drainer.listening.is_set():
                if listener.get_server_pid() != first:
                    break
            await asyncio.sleep(0.05)
        assert drainer.listener is not None and drainer.listener.get_server_pid() != first
        drainer.woken.clear()
        await admin.execute("SELECT pg_notify('switchboard_events', '')")
        await asyncio.wait_for(drainer.woken.wait(), 5)
    finally:
        await admin.close()
        await drainer.stop()


async def test_a_callers_update_and_new_call_in_one_batch_take_effect_in_the_order_they_came(
    sessions: Sessions, settings: Settings
) -> None:
    """A call's later status (stored one by one) arrives before the same caller's next call
    (stored set-based): the call-back task belongs to the first missed call, as one by one."""
    channel = await generic_pbx(sessions)
    async with sessions() as session, session.begin():
        await journal_call(session, channel, call_log("a", "06-12345678", "answered"))
    await process_batch(drain_ctx(sessions, settings))
    async with sessions() as session, session.begin():
        for external_id, body in (
            ("a:2", call_log("a", "06-12345678", "missed")),  # call a's status, corrected
            ("b", call_log("b", "06-12345678", "missed", minute=5)),
        ):
            await journal(
                session,
                channel_id=channel.id,
                external_id=external_id,
                delivery=Delivery(body=body, headers={}, query={}, url=""),
                sender_key=phone_key("06-12345678"),
            )

    outcomes = await process_batch(drain_ctx(sessions, settings))

    assert [o.status for o in outcomes] == ["processed", "processed"]  # one batch
    async with sessions() as session:
        tasks = (await session.scalars(select(Task))).all()
        first = await session.scalar(select(Activity.id).where(Activity.external_id == "a"))
    assert [(t.kind, t.activity_id) for t in tasks] == [("call_back", first)]


async def test_a_worker_whose_job_ended_cancelled_still_stops_its_drainers(
    settings: Settings, engine_urls: EngineUrls, sessions: Sessions
) -> None:
    """arq's close() waits for the running jobs first; a job that ended cancelled made that wait
    raise and the shutdown never ran, leaving the drainers claiming events (in a test run: the
    events of every later test). close_worker runs the shutdown however the jobs ended."""
    from workers.worker import close_worker, make_worker

    worker = make_worker(
        settings, engine_urls.database_url, engine_urls.redis_url, handle_signals=False
    )
    main = asyncio.create_task(worker.main())
    deadline = time.monotonic() + 30
    while "drainer" not in worker.ctx:
        assert time.monotonic() < deadline and not main.done(), "the worker did not start"
        await asyncio.sleep(0.05)
    drainer = worker.ctx["drainer"]
    job = asyncio.create_task(asyncio.sleep(60))  # a cron job, caught by the stop
    job.cancel()
    worker.tasks["cron:deliver_webhooks:1"] = job
    main.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main
    await close_worker(worker)
    assert all(task.done() for task in drainer.tasks)
