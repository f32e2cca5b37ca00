"""First-line bot benchmark: the time from webhook receipt to the bot's sendMessage reaching a
local Bot API endpoint, p50/p95 with 100 conversations in parallel (target p95 <= 300 ms), and
the FAQ matcher's accuracy on held-out paraphrases of the demo knowledge base.

Runs the real web app and arq worker(s) against a database of its own (dropped afterwards) and a
Redis database, with aiogram talking to the fake Bot API of the tests:

    uv run python bench/bot.py [--url postgresql+asyncpg://postgres@127.0.0.1/postgres]
        [--redis redis://127.0.0.1:6379/14] [--conversations 100] [--rounds 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from sqlalchemy import text

# The repository before bench/ (whose inbox.py would shadow the package), and the tests' fakes.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram_api import BOT_USERNAME, TOKEN, FakeBotAPI

from inbox.bot import faq as bot_faq
from inbox.bot.demo import seed_knowledge_base
from inbox.db import make_engine, make_sessions, upgrade_async
from inbox.ingest.channels import add_channel
from inbox.service.app import create_app
from inbox.settings import Settings
from workers.worker import make_worker

THRESHOLD = 70.0
EXTRA: dict[str, Any] = {}
QUESTIONS = [
    "Wat zijn jullie openingstijden?",
    "Hoe kan ik betalen?",
    "Wat is de levertijd?",
    "Where is my order?",
    "Kan ik een offerte aanvragen?",
]

# Written apart from the knowledge base (none of these is one of its questions or paraphrases):
# (text, the topic it is about or None when the bot should not answer, conversation language).
HELD_OUT: list[tuple[str, str | None, str]] = [
    ("hoe laat gaan jullie morgen open", "opening_hours", "nl"),
    ("zijn jullie zondag open?", "opening_hours", "nl"),
    ("wanneer kan ik bij de winkel terecht", "opening_hours", "nl"),
    ("Tot wanneer zijn jullie vandaag bereikbaar?", "opening_hours", "nl"),
    ("what time do you open tomorrow", "opening_hours", "en"),
    ("are you open on sundays", "opening_hours", "en"),
    ("when does the showroom close?", "opening_hours", "en"),
    ("wat kosten jullie dakpannen", "prices", "nl"),
    ("hoeveel moet ik betalen voor een pallet stenen", "prices", "nl"),
    ("waar staat de prijslijst", "prices", "nl"),
    ("how much is a pallet of bricks", "prices", "en"),
    ("where is your pricing", "prices", "en"),
    ("what do your roof tiles cost?", "prices", "en"),
    ("mijn order is nog steeds niet geleverd", "order_status", "nl"),
    ("wanneer komt mijn pakketje", "order_status", "nl"),
    ("is mijn bestelling onderweg?", "order_status", "nl"),
    ("waar blijft mijn bestelling", "order_status", "nl"),
    ("where is my parcel", "order_status", "en"),
    ("my order still hasn't arrived", "order_status", "en"),
    ("can you check the status of order 12345", "order_status", "en"),
    ("hoe lang duurt het voordat het geleverd wordt", "delivery", "nl"),
    ("bezorgen jullie in Utrecht?", "delivery", "nl"),
    ("zijn er bezorgkosten", "delivery", "nl"),
    ("how long does delivery take", "delivery", "en"),
    ("do you ship to Belgium?", "delivery", "en"),
    ("is delivery free", "delivery", "en"),
    ("ik wil iets terugbrengen", "returns", "nl"),
    ("hoe stuur ik een artikel retour", "returns", "nl"),
    ("kan ik mijn aankoop omruilen", "returns", "nl"),
    ("how do I send something back", "returns", "en"),
    ("can I get my money back", "returns", "en"),
    ("I want to return my purchase", "returns", "en"),
    ("graag een offerte voor 20 m2 tegels", "quote", "nl"),
    ("kunnen jullie een prijsopgave sturen", "quote", "nl"),
    ("I need a quote for 40 windows", "quote", "en"),
    ("could you send me an estimate", "quote", "en"),
    ("wat is het adres van de showroom", "address", "nl"),
    ("waar kan ik parkeren", "address", "nl"),
    ("waar is jullie vestiging", "address", "nl"),
    ("where can I find you", "address", "en"),
    ("what's the address of your shop", "address", "en"),
    ("where can I park", "address", "en"),
    ("kan ik met creditcard betalen", "payment", "nl"),
    ("kan ik pinnen in de winkel", "payment", "nl"),
    ("is betalen op factuur mogelijk", "payment", "nl"),
    ("do you take visa", "payment", "en"),
    ("can I pay with iDEAL", "payment", "en"),
    ("can I buy on account", "payment", "en"),
    ("mijn kraan is na een maand al kapot", "warranty", "nl"),
    ("hoeveel jaar garantie zit erop", "warranty", "nl"),
    ("het product werkt niet meer", "warranty", "nl"),
    ("my tap broke after a month", "warranty", "en"),
    ("how many years of warranty do I get", "warranty", "en"),
    ("ik kan niet inloggen", "account", "nl"),
    ("hoe registreer ik mijn bedrijf", "account", "nl"),
    ("wachtwoord resetten", "account", "nl"),
    ("how do I reset my password", "account", "en"),
    ("how can I register my company", "account", "en"),
    ("op welk nummer kan ik jullie bereiken", "contact", "nl"),
    ("mag ik jullie mailadres", "contact", "nl"),
    ("what number can I reach you on", "contact", "en"),
    ("can I email you", "contact", "en"),
    ("kan ik een kleurstaal krijgen", "samples", "nl"),
    ("sturen jullie monsters op?", "samples", "nl"),
    ("can you send me a sample", "samples", "en"),
    ("wie heeft gisteren de wedstrijd gewonnen", None, "nl"),
    ("wat voor weer wordt het morgen", None, "nl"),
    ("ik zoek een leuke vakantiebestemming", None, "nl"),
    ("mijn kat is ziek", None, "nl"),
    ("tell me a joke", None, "en"),
    ("who is the president of France", None, "en"),
    ("what's the weather like today", None, "en"),
    ("I like turtles", None, "en"),
]


class TimedBotAPI(FakeBotAPI):
    """The fake Bot API, noting when each chat's first sendMessage arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}
        self.all_in = asyncio.Event()
        self.expected = 0

    async def _sendmessage(self, params: dict[str, str]) -> dict[str, Any]:
        self.arrived.setdefault(params["chat_id"], time.perf_counter())
        if len(self.arrived) >= self.expected:
            self.all_in.set()
        return await super()._sendmessage(params)


def update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Klant", "language_code": "nl"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "from": user,
            "chat": {"id": chat_id, "first_name": "Klant", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }


async def run_sql(url: str, sql: str) -> None:
    engine = make_engine(url, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def one_round(
    http: aiohttp.ClientSession,
    base: str,
    channel: Any,
    api: TimedBotAPI,
    first_chat: int,
    n: int,
) -> list[float]:
    api.arrived.clear()
    api.all_in.clear()
    api.expected = n
    secret = channel.config["webhook_secret"]
    sent: dict[str, float] = {}

    async def post(i: int) -> None:
        chat_id = first_chat + i
        body = json.dumps(update(chat_id, chat_id, QUESTIONS[i % len(QUESTIONS)]))
        sent[str(chat_id)] = time.perf_counter()
        async with http.post(
            f"{base}/webhooks/telegram/{channel.id}",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": secret,
            },
        ) as response:
            assert response.status == 202, await response.text()

    await asyncio.gather(*(post(i) for i in range(n)))
    await asyncio.wait_for(api.all_in.wait(), 60)
    return [(api.arrived[c] - t) * 1000 for c, t in sent.items()]


async def latency(admin_url: str, redis_url: str, n: int, rounds: int, workers: int) -> None:
    name = f"switchboard_bench_bot_{uuid.uuid4().hex[:8]}"
    await run_sql(admin_url, f"CREATE DATABASE {name}")
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    runners: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await upgrade_async(url)
        settings = Settings(
            database_url=url,
            redis_url=redis_url,
            data_dir=Path(tempfile.mkdtemp(prefix="sbbench-")),
            allow_private_urls=True,  # the fake Bot API listens on loopback
        )
        async with TimedBotAPI() as api:
            engine = make_engine(url, pool_size=2)
            sessions = make_sessions(engine)
            async with sessions() as session, session.begin():
                await seed_knowledge_base(session)
                channel = await add_channel(
                    session,
                    "telegram",
                    "bench",
                    {
                        "token": TOKEN,
                        "api_base": api.base_url,
                        "bot_username": BOT_USERNAME,
                        "bot": {"enabled": True},
                    },
                )
            await engine.dispose()
            runner = web.AppRunner(create_app(settings, url, redis_url), access_log=None)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            base = f"http://{host}:{port}"
            started = [
                make_worker(settings, url, redis_url, handle_signals=False, extra_ctx=EXTRA)
                for _ in range(workers)
            ]
            tasks = [asyncio.create_task(w.main()) for w in started]
            await asyncio.sleep(1.0)  # workers up, cron start-up jobs done
            async with aiohttp.ClientSession() as http:
                await one_round(http, base, channel, api, 10_000_000, 10)  # warm-up
                alone: list[float] = []
                for i in range(20):
                    alone += await one_round(http, base, channel, api, 11_000_000 + i, 1)
                print(
                    f"one conversation at a time (20), webhook → sendMessage: "
                    f"p50 {statistics.median(alone):.0f} ms, p95 {percentile(alone, 95):.0f} ms"
                )
                for r in range(rounds):
                    ms = await one_round(http, base, channel, api, 20_000_000 + r * 1000, n)
                    print(
                        f"round {r + 1}: {n} conversations in parallel, webhook → sendMessage: "
                        f"p50 {statistics.median(ms):.0f} ms, p95 {percentile(ms, 95):.0f} ms, "
                        f"max {max(ms):.0f} ms  (target p95 <= 300 ms: "
                        f"{'met' if percentile(ms, 95) <= 300 else 'NOT MET'})"
                    )
            for w in started:
                await w.close()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for runner in runners:
            await runner.cleanup()
        await redis.flushdb()
        await redis.aclose()
        await run_sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def accuracy() -> None:
    from inbox.bot.demo import DEMO_FAQS
    from inbox.bot.models import BotFaq

    rows = [
        BotFaq(id=i, **item | {"buttons": item.get("buttons", [])})
        for i, item in enumerate(DEMO_FAQS)
    ]
    matcher = bot_faq.matcher_of(rows)
    started = time.perf_counter()
    share, misses = bot_faq.accuracy(matcher, HELD_OUT, THRESHOLD)
    per_match = (time.perf_counter() - started) / len(HELD_OUT) * 1000
    topics = sum(1 for _, key, _ in HELD_OUT if key)
    print(
        f"FAQ matcher: {share:.1%} right on {len(HELD_OUT)} held-out questions "
        f"({topics} on {len({k for _, k, _ in HELD_OUT if k})} topics, "
        f"{len(HELD_OUT) - topics} out of scope) at threshold {THRESHOLD:g}; "
        f"{per_match:.2f} ms per match"
    )
    for text_, expected, got, score in misses:
        print(f"  miss: {text_!r}: expected {expected}, got {got} ({score:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="events per pipeline job")
    args = parser.parse_args()
    if args.batch:
        EXTRA["batch"] = args.batch
    accuracy()
    asyncio.run(latency(args.url, args.redis, args.conversations, args.rounds, args.workers))


if __name__ == "__main__":
    main()
