"""Web chat benchmark: the time from a visitor's widget message to the event on an agent's
inbox websocket, p50/p95 with 200 visitors chatting at once, each writing every few seconds
(target p95 <= 100 ms), beside the machine's raw ceiling (a Redis publish reaching a subscriber,
with the same fan-in), and the worst case of all 200 sending in the same instant.

Runs the real web app and an arq worker in this process against a database of its own (dropped
afterwards) and a Redis database. Each visitor holds the widget's own socket open and sends over
it, as the widget does; the agent listens on /ws like the web inbox.

    uv run python bench/webchat.py [--quick] [--visitors 200] [--seconds 60] [--pace 4] [--rounds 3]
        [--url postgresql+asyncpg://postgres@127.0.0.1/postgres] [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import select, text

# The repository before bench/ (whose inbox.py would shadow the package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm.models import User
from inbox.api.auth import create_api_token
from inbox.db import make_engine, make_sessions, upgrade_async
from inbox.ingest.channels import add_channel
from inbox.models import Conversation
from inbox.service.app import create_app
from inbox.settings import Settings
from workers.worker import make_worker

TARGET_MS = 100.0
SITE = "https://www.bench.example"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


async def run_sql(url: str, sql: str) -> None:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(sql))
    await engine.dispose()


class Agent:
    """The agent's inbox socket: when the event of each conversation arrived."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: dict[int, float] = {}
        self.waiting: dict[int, asyncio.Future[float]] = {}

    async def listen(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT or frame.data == "pong":
                continue
            event = json.loads(frame.data)
            conversation_id = event.get("conversation_id")
            if event.get("type") == "message.created" and conversation_id in self.waiting:
                future = self.waiting.pop(conversation_id)
                if not future.done():
                    future.set_result(time.perf_counter())

    def expect(self, conversation_id: int) -> asyncio.Future[float]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[conversation_id] = future
        return future


class Visitor:
    def __init__(self, token: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.token = token
        self.ws = ws
        self.conversation_id = 0
        self.sent = 0

    async def say(self, text_: str) -> float:
        self.sent += 1
        message = {"id": f"m{self.sent}", "text": text_, "name": "Bench Visitor"}
        started = time.perf_counter()
        await self.ws.send_json({"type": "message", "id": f"m{self.sent}", "message": message})
        return started

    async def drain(self) -> None:
        async for _ in self.ws:  # acks and pushed history: read, not measured
            pass


async def ceiling(redis_url: str, n: int) -> list[float]:
    """The same fan-in on bare Redis: n publishes at once, each timed to its subscriber."""
    pub, sub = Redis.from_url(redis_url), Redis.from_url(redis_url)
    pubsub = sub.pubsub()
    await pubsub.subscribe("bench:ceiling")
    await pubsub.get_message(timeout=1)
    sent: dict[str, float] = {}
    ms: list[float] = []

    async def publish(i: int) -> None:
        sent[str(i)] = time.perf_counter()
        await pub.publish("bench:ceiling", str(i))

    await asyncio.gather(*(publish(i) for i in range(n)))
    while len(ms) < n:
        message = await pubsub.get_message(timeout=5)
        if message and message["type"] == "message":
            ms.append((time.perf_counter() - sent[message["data"].decode()]) * 1000)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await pub.aclose()
    await sub.aclose()
    return ms


async def bench(
    url: str, redis_url: str, n: int, rounds: int, batch: int | None, duration: float, pace: float
) -> None:
    name = f"switchboard_bench_webchat_{uuid.uuid4().hex[:8]}"
    await run_sql(url, f"CREATE DATABASE {name}")
    db_url = url.rsplit("/", 1)[0] + f"/{name}"
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    runner: web.AppRunner | None = None
    worker: Any = None
    task: asyncio.Task[Any] | None = None
    try:
        await upgrade_async(db_url)
        settings = Settings(
            database_url=db_url,
            redis_url=redis_url,
            data_dir=Path(tempfile.mkdtemp(prefix="sbbench-")),
        )
        engine = make_engine(db_url, pool_size=2)
        sessions = make_sessions(engine)
        async with sessions() as session, session.begin():
            channel = await add_channel(
                session,
                "webchat",
                "bench",
                {"allowed_origins": [SITE], "rate_limit_per_minute": 0, "visitors_per_minute": 0},
            )
            admin = User(email="bench@bench.example", name="Bench", role="admin")
            session.add(admin)
            await session.flush()
            token = await create_api_token(session, admin.id, "bench", "api", None)
        runner = web.AppRunner(create_app(settings, db_url, redis_url), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        extra = {"batch": batch} if batch else None
        worker = make_worker(settings, db_url, redis_url, handle_signals=False, extra_ctx=extra)
        task = asyncio.create_task(worker.main())
        await asyncio.sleep(1.0)  # the worker is up, its start-up jobs done

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            agent = Agent(await http.ws_connect(f"{base}/ws?token={token}"))
            listening = asyncio.create_task(agent.listen())
            origin = {"Origin": SITE}

            async def visitor() -> Visitor:
                async with http.post(f"{base}/webchat/{channel.id}/visitors", headers=origin) as r:
                    issued = await r.json()
                ws = await http.ws_connect(
                    f"{base}/webchat/{channel.id}/ws?token={issued['token']}", headers=origin
                )
                return Visitor(issued["visitor_id"], ws)

            visitors = list(await asyncio.gather(*(visitor() for _ in range(n))))
            drains = [asyncio.create_task(v.drain()) for v in visitors]
            # First messages open the conversations (not measured: creating them is routing).
            await asyncio.gather(*(v.say("Hallo, een eerste vraag") for v in visitors))
            by_thread: dict[str, int] = {}
            for _ in range(600):
                async with sessions() as session:
                    rows = (
                        await session.execute(select(Conversation.thread_key, Conversation.id))
                    ).all()
                by_thread = {str(k): i for k, i in rows}
                if len(by_thread) >= n:
                    break
                await asyncio.sleep(0.1)
            for v in visitors:
                v.conversation_id = by_thread[f"webchat:{v.token}"]

            alone: list[float] = []
            for v in visitors[:20]:
                arrived = agent.expect(v.conversation_id)
                started = await v.say("Nog een vraag")
                alone.append((await asyncio.wait_for(arrived, 30) - started) * 1000)
            print(
                f"one visitor at a time (20), widget message → agent's /ws: "
                f"p50 {statistics.median(alone):.0f} ms, p95 {percentile(alone, 95):.0f} ms"
            )
            raw = await ceiling(redis_url, n)
            print(
                f"raw ceiling: {n} Redis publishes at once → subscriber: "
                f"p50 {statistics.median(raw):.1f} ms, p95 {percentile(raw, 95):.1f} ms"
            )
            # 200 visitors chatting at once, each writing every few seconds (a human pace).
            paced: list[float] = []
            stop = time.perf_counter() + duration

            async def chat(v: Visitor, rng: random.Random) -> None:
                while True:
                    await asyncio.sleep(rng.uniform(0, 2 * pace))
                    if time.perf_counter() > stop:
                        return
                    arrived = agent.expect(v.conversation_id)
                    started = await v.say("En nog iets")
                    paced.append((await asyncio.wait_for(arrived, 60) - started) * 1000)

            await asyncio.gather(*(chat(v, random.Random(i)) for i, v in enumerate(visitors)))
            p95 = percentile(paced, 95)
            print(
                f"{n} visitors chatting (one message each every ~{pace:.0f} s, "
                f"{len(paced)} messages in {duration:.0f} s), widget message → agent's /ws: "
                f"p50 {statistics.median(paced):.0f} ms, p95 {p95:.0f} ms, max {max(paced):.0f} ms"
                f"  (target p95 <= {TARGET_MS:.0f} ms: {'met' if p95 <= TARGET_MS else 'NOT MET'})"
            )
            for r in range(rounds):  # the worst case: every visitor sends in the same instant
                futures = [agent.expect(v.conversation_id) for v in visitors]
                starts = await asyncio.gather(*(v.say(f"Vraag {r}") for v in visitors))
                ends = await asyncio.wait_for(asyncio.gather(*futures), 60)
                ms = [(end - start) * 1000 for start, end in zip(starts, ends, strict=True)]
                print(
                    f"burst {r + 1}: {n} messages in the same instant: p50 "
                    f"{statistics.median(ms):.0f} ms, p95 {percentile(ms, 95):.0f} ms, "
                    f"max {max(ms):.0f} ms (the pipeline's throughput, not a target)"
                )
            for v in visitors:
                await v.ws.close()
            await agent.ws.close()
            listening.cancel()
            for d in drains:
                d.cancel()
        await engine.dispose()
    finally:
        if worker is not None:
            await worker.close()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await redis.flushdb()
        await redis.aclose()
        await run_sql(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long visitors chat")
    parser.add_argument("--pace", type=float, default=4.0, help="mean seconds between messages")
    parser.add_argument("--quick", action="store_true", help="15 s of chat, 1 burst")
    parser.add_argument("--batch", type=int, default=None, help="events per pipeline job")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; web app and one worker in this process")
    seconds = 15.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    asyncio.run(bench(args.url, args.redis, args.visitors, rounds, args.batch, seconds, args.pace))


if __name__ == "__main__":
    main()
