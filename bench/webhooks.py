"""Outbound webhook benchmark: deliveries per second from the outbox to a local receiver that
verifies every signature (target >= 500/s), beside the raw ceiling of plain POSTs to the same
receiver, and what writing a batch's events costs the ingest transaction.

The receiver runs in a process of its own; the outbox lives in a database of its own (dropped
afterwards); the sender is the worker's job (`deliver_webhooks`), run in this process:

    uv run python bench/webhooks.py [--quick] [--deliveries 20000] [--conversations 500]
        [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, free_port, scratch_database
from inbox.bot.external import verify
from inbox.db import make_engine, make_sessions, upgrade_async
from inbox.outbox import delivery
from inbox.outbox.delivery import Rules
from workers.webhooks import deliver_webhooks

SECRET = "bench-secret-0123456789abcdef"
TARGET = 500.0
KEYS = {(f"channel{i % 3}", f"message-{i}") for i in range(100)}  # a batch's new messages


def serve_receiver(port: int) -> None:
    """The integrator: checks the signature, answers 204."""

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify(SECRET, request.headers, raw):
            return web.Response(status=401)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def wait_listening(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.post(url, data=b"{}") as r:
                    await r.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the receiver did not start")


async def ceiling(url: str, n: int, concurrency: int) -> float:
    """Plain signed-size POSTs, no database: what the receiver and loopback allow."""
    body = json.dumps({"id": "x" * 36, "type": "message.created", "data": {"t": "y" * 300}})
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one() -> None:
            async with gate, http.post(url, data=body) as r:
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - started)


SEED = """
INSERT INTO webhook_deliveries
    (event_id, subscription_id, event_type, conversation_id, payload, status, attempts)
SELECT gen_random_uuid(), :sub, 'message.created', 1 + g % :conversations,
       jsonb_build_object('id', gen_random_uuid(), 'type', 'message.created',
                          'created_at', now(), 'data', jsonb_build_object(
                              'message', jsonb_build_object('id', g, 'text', repeat('y', 300)))),
       'pending', 0
FROM generate_series(1, :n) AS g ORDER BY g
"""


async def run(deliveries: int, conversations: int, concurrency: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    proc = multiprocessing.get_context("spawn").Process(target=serve_receiver, args=(port,))
    proc.start()
    try:
        await wait_listening(url)
        raw = await ceiling(url, min(deliveries, 5000), concurrency)
        print(f"raw ceiling (plain POSTs, no database, {concurrency} in flight): {raw:,.0f}/s")
        async with scratch_database("bench_webhooks") as dsn:
            db_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
            await upgrade_async(db_url)
            engine = make_engine(db_url, pool_size=5)
            sessions = make_sessions(engine)
            rules = Rules(
                retry_window=timedelta(hours=24),
                backoff_s=10.0,
                timeout_s=10.0,
                concurrency=concurrency,
                allow_loopback=True,
            )
            http = delivery.client(rules)
            try:
                async with sessions() as session, session.begin():
                    sub = await session.scalar(
                        text(
                            "INSERT INTO webhook_subscriptions (url, secret, events, active) "
                            "VALUES (:url, :secret, ARRAY['message.created'], true) RETURNING id"
                        ),
                        {"url": url, "secret": SECRET},
                    )
                    await session.execute(
                        text(SEED), {"sub": sub, "n": deliveries, "conversations": conversations}
                    )
                ctx: dict[str, Any] = {
                    "sessions": sessions,
                    "webhook_rules": rules,
                    "webhook_http": http,
                }
                started = time.perf_counter()
                counts = await deliver_webhooks(ctx)
                elapsed = time.perf_counter() - started
                async with sessions() as session:
                    left = await session.scalar(
                        text("SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'")
                    )
                rate = counts["delivered"] / elapsed
                print(
                    f"outbox → receiver: {counts['delivered']:,} deliveries over {conversations} "
                    f"conversations in {elapsed:.2f} s = {rate:,.0f}/s  (target >= {TARGET:.0f}/s: "
                    f"{'met' if rate >= TARGET else 'NOT MET'}); failed {counts['failed']}, "
                    f"not delivered {left}"
                )
                costs = await emission_cost(sessions)
                RESULTS.mkdir(parents=True, exist_ok=True)
                (RESULTS / "webhooks.json").write_text(
                    json.dumps(
                        {
                            "deliveries": counts["delivered"],
                            "conversations": conversations,
                            "concurrency": concurrency,
                            "deliveries_per_s": round(rate, 1),
                            "raw_ceiling_per_s": round(raw, 1),
                            "target_per_s": TARGET,
                            "emission_ms": costs,
                        },
                        indent=2,
                    )
                )
            finally:
                await http.close()
                await engine.dispose()
    finally:
        proc.terminate()
        proc.join(10)


async def emission_cost(sessions: Any) -> dict[str, float]:
    """The outbox statement of a 100-event ingest batch, without and with a subscriber."""
    from inbox.outbox.events import emit_ingested

    costs: dict[str, float] = {}
    for label, active in (("no subscriber", False), ("one subscriber", True)):
        async with sessions() as session, session.begin():
            await session.execute(
                text("UPDATE webhook_subscriptions SET active = :a"), {"a": active}
            )
            await emit_ingested(session, KEYS)  # planned once
            started = time.perf_counter()
            for _ in range(20):
                await emit_ingested(session, KEYS)
            ms = (time.perf_counter() - started) / 20 * 1000
            await session.rollback()
        print(
            f"outbox statement per 100-event ingest batch ({label}, no rows to write): {ms:.2f} ms"
        )
        costs[label] = round(ms, 3)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 deliveries")
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    n = 2000 if args.quick else args.deliveries
    asyncio.run(run(n, args.conversations, args.concurrency))


if __name__ == "__main__":
    main()
