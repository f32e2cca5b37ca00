"""The ingest path when something dies: a worker killed mid-batch (a real process, SIGKILL)
loses and duplicates nothing; Redis stopped during deliveries costs no delivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, insert, select, text
from support import call_log

from channels import adapter_for
from channels.base import Delivery, phone_key
from crm.models import Activity, Lead
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.ingest.journal import delivery_meta, partition_of
from inbox.models import Channel, Conversation, Event, Message
from inbox.service.app import create_app
from inbox.service.engines import EngineUrls
from inbox.settings import Settings

Client = TestClient[Any, Any]
PARTITION_LOCKS = 7412100  # claim() takes pg_try_advisory_xact_lock(7412100, partition)


async def generic_pbx(sessions: Sessions) -> Channel:
    async with sessions() as session, session.begin():
        return await add_channel(session, "telephony", "PBX", {"dialect": "generic"})


async def journal_calls(sessions: Sessions, channel: Channel, bodies: list[bytes]) -> None:
    """Journal call logs as the webhook would (the adapter's journal key and sender key), in one
    statement: thousands of them take well under a second."""
    adapter = adapter_for("telephony")
    rows = []
    for body in bodies:
        delivery = Delivery(
            body=body, headers={"content-type": "application/json"}, query={}, url=""
        )
        accepted = adapter.accept(channel.config, delivery)
        rows.append(
            {
                "channel_id": channel.id,
                "external_id": accepted.external_id,
                "payload": body,
                "headers": delivery_meta(delivery),
                "status": "pending",
                "partition_key": partition_of(channel.id, accepted.sender_key),
            }
        )
    async with sessions() as session, session.begin():
        await session.execute(insert(Event).values(rows))


async def scalar(sessions: Sessions, sql: str) -> Any:
    async with sessions() as session:
        return await session.scalar(text(sql), {"ns": PARTITION_LOCKS})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait_s: float = 10) -> None:
    """Signal a process this test started (and its group), then reap it, killing if need be.

    The group is signalled even when its leader has exited: a child it left behind must not go
    on working in the test database while later tests run."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def worker_process(engine_urls: EngineUrls, data_dir: Path, log: Path) -> Iterator[Any]:
    """`switchboard worker` in its own process (and process group) on the test engines."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env = keep | {
        "DATABASE_URL": engine_urls.database_url,
        "REDIS_URL": engine_urls.redis_url,
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_INGEST_BATCH": "50",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",  # its log survives a SIGKILL
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inbox.service.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop(proc, signal.SIGKILL)


async def until(
    what: str, check: Callable[[], Any], seconds: float, procs: tuple[Any, ...], log: Path
) -> Any:
    """Poll `check` until it is truthy; fail after `seconds` or when a worker died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := await check():
            return result
        for proc in procs:
            assert proc.poll() is None, (
                f"worker exited {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds}s: {what}\n{log.read_text()[-3000:]}")


async def processed(sessions: Sessions) -> int:
    return int(await scalar(sessions, "SELECT count(*) FROM events WHERE status = 'processed'"))


async def drained(sessions: Sessions) -> bool:
    return not await scalar(sessions, "SELECT count(*) FROM events WHERE status <> 'processed'")


async def batch_open(sessions: Sessions) -> bool:
    """A drain transaction is open in this database right now: it holds partition locks."""
    return bool(
        await scalar(
            sessions,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :ns "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
    )


def calls(n: int, callers: int) -> list[bytes]:
    """n finished calls from `callers` numbers, one in four missed (a call-back task each)."""
    return [
        call_log(f"pbx-{k:05d}", f"06-12{k % callers:06d}", "answered" if k % 4 else "missed", k)
        for k in range(n)
    ]


# The subprocess tests' limits: a worker gets PHASE_S to reach each goal (starting one costs
# seconds of imports alone), a test TIMEOUT_S in all (pytest-timeout is not installed).
PHASE_S, TIMEOUT_S = 60.0, 150.0
CALLS, CALLERS = 3000, 150


async def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    sessions: Sessions, engine_urls: EngineUrls, tmp_path: Path
) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        channel = await generic_pbx(sessions)
        await journal_calls(sessions, channel, calls(CALLS, CALLERS))
        log = tmp_path / "workers.log"

        async def mid_batch() -> bool:
            return await processed(sessions) >= 200 and await batch_open(sessions)

        with worker_process(engine_urls, tmp_path, log) as first:
            await until("the first worker is mid-batch", mid_batch, PHASE_S, (first,), log)
            stop(first, signal.SIGKILL)
        assert first.returncode == -signal.SIGKILL
        assert 200 <= await processed(sessions) < CALLS, "killed too late to leave work behind"

        with worker_process(engine_urls, tmp_path, log) as second:
            done = await until(
                "a second worker drained the journal",
                lambda: drained(sessions),
                PHASE_S,
                (second,),
                log,
            )
        assert done

    async with sessions() as session:
        attempts = (
            await session.execute(select(Event.attempts, func.count()).group_by(Event.attempts))
        ).all()
        assert attempts == [(1, CALLS)]  # the killed batch's outcomes were never recorded
        messages = (
            await session.execute(
                select(
                    func.count(),
                    func.count(Message.event_id.distinct()),
                    func.count(Message.external_id.distinct()),
                )
            )
        ).one()
        assert tuple(messages) == (CALLS, CALLS, CALLS)
        assert await session.scalar(select(func.count()).select_from(Activity)) == CALLS
        assert await session.scalar(select(func.count()).select_from(Conversation)) == CALLERS
        assert await session.scalar(select(func.count()).select_from(Lead)) == CALLERS


STOP_S = 10.0  # a worker with nothing to do stops in about 1 s; a loaded CI machine gets ten


async def test_a_worker_stops_on_sigterm(
    sessions: Sessions, engine_urls: EngineUrls, tmp_path: Path
) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        channel = await generic_pbx(sessions)
        await journal_calls(sessions, channel, calls(5, 5))
        log = tmp_path / "worker.log"
        with worker_process(engine_urls, tmp_path, log) as worker:
            await until(
                "the worker drained the journal", lambda: drained(sessions), PHASE_S, (worker,), log
            )
            os.killpg(worker.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_S
            while worker.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert worker.poll() is not None, f"still running {STOP_S}s after SIGTERM"


@pytest.fixture
async def doomed_redis() -> AsyncIterator[tuple[str, Callable[[], None]]]:
    """A Redis server of this test's own (the URL, and how to stop it)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            await asyncio.sleep(0.05)

        def down() -> None:
            stop(proc)
            assert not listening(port)

        yield f"redis://127.0.0.1:{port}/0", down
    finally:
        stop(proc)


async def test_deliveries_are_accepted_and_journaled_while_redis_is_down(
    aiohttp_client: Callable[..., Any],
    sessions: Sessions,
    settings: Settings,
    engine_urls: EngineUrls,
    doomed_redis: tuple[str, Callable[[], None]],
    run_worker: Callable[[], Any],
) -> None:
    redis_url, stop_redis = doomed_redis
    client: Client = await aiohttp_client(create_app(settings, engine_urls.database_url, redis_url))
    channel = await generic_pbx(sessions)
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {channel.config['token']}",
    }
    numbers = [f"06-5550000{i}" for i in range(5)]

    async def post(n: int) -> Any:
        body = call_log(f"pbx-{n}", numbers[n % 5], "missed" if n % 2 else "answered", n)
        return await client.post(f"/webhooks/telephony/{channel.id}", data=body, headers=headers)

    assert (await post(0)).status == 202
    assert (await client.get("/healthz")).status == 200
    stop_redis()

    answers = [await post(n) for n in range(1, 31)]
    assert [a.status for a in answers] == [202] * 30
    assert {(await a.json())["duplicate"] for a in answers} == {False}
    again = await post(7)  # the journal tells a redelivery, not Redis
    assert again.status == 200 and (await again.json())["duplicate"] is True
    health = await client.get("/healthz")
    assert health.status == 503
    state = await health.json()
    assert state["database"] == "ok" and state["redis"].startswith("error")

    async with sessions() as session:
        journaled = (
            await session.execute(select(Event.external_id, Event.status, Event.partition_key))
        ).all()
    assert sorted(e.external_id for e in journaled) == sorted(f"pbx-{n}" for n in range(31))
    assert {e.status for e in journaled} == {"pending"}
    assert {e.partition_key for e in journaled} == {
        partition_of(channel.id, phone_key(n)) for n in numbers
    }

    await run_worker()  # a worker on a Redis that works
    async with sessions() as session:
        assert set((await session.scalars(select(Event.status))).all()) == {"processed"}
        assert await session.scalar(select(func.count()).select_from(Message)) == 31
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 5


async def test_a_form_post_is_accepted_and_journaled_while_redis_is_down(
    aiohttp_client: Callable[..., Any],
    sessions: Sessions,
    settings: Settings,
    engine_urls: EngineUrls,
    doomed_redis: tuple[str, Callable[[], None]],
) -> None:
    redis_url, stop_redis = doomed_redis
    client: Client = await aiohttp_client(create_app(settings, engine_urls.database_url, redis_url))
    async with sessions() as session, session.begin():
        form = await add_channel(session, "webform", "Contact", {})
    stop_redis()
    response = await client.post(
        f"/webhooks/webform/{form.id}",
        data=json.dumps({"name": "Eva", "email": "eva@example.nl", "message": "Bel me"}),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {form.config['token']}",
        },
    )
    assert response.status == 202, await response.text()
    async with sessions() as session:
        assert (await session.scalars(select(Event.status))).all() == ["pending"]
