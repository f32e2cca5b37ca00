"""Inbox API and realtime benchmark: p95 of the conversation list and the conversation view with
100,000 conversations and 1,000,000 messages, and the websocket fan-out delay to 200 clients.

Seeds a dedicated database on the machine's PostgreSQL with COPY (dropped afterwards), serves
the real application on loopback and times sequential requests; bounded loops only.

    uv run python bench/inbox.py [--quick] [--requests N] [--clients N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inbox.db import upgrade  # noqa: E402
from inbox.realtime import channel_of  # noqa: E402
from inbox.service.app import create_app  # noqa: E402
from inbox.settings import Settings  # noqa: E402
from inbox.state import ARQ  # noqa: E402
from inbox.users import hash_password  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/14"
TEAMS = ("Verkoop", "Service", "Klachten", "Projecten")
USERS = 20
CHANNELS = (("bench-mail", "email"), ("bench-form", "webform"), ("bench-phone", "telephony"))
TARGET_MS = 50.0
# What the list and view would want at this size (--indexes tries them; migrations are not ours).
SUGGESTED_INDEXES = (
    "CREATE INDEX ix_conversations_status_sort ON conversations"
    " (status, (coalesce(last_message_at, created_at)) DESC, id DESC)",
    "CREATE INDEX ix_conversations_sort ON conversations"
    " ((coalesce(last_message_at, created_at)) DESC, id DESC)",
    "CREATE INDEX ix_conversations_labels ON conversations USING gin (labels)",
    "CREATE INDEX ix_messages_conversation_sent ON messages (conversation_id, sent_at DESC, id DESC)",
    # The panel's open tasks of a contact: without it a scan of the open tasks (about 6 ms here).
    "CREATE INDEX ix_tasks_contact_id ON tasks (contact_id)",
)
PASSWORD = "bench password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def chunks(rows: Iterator[tuple[Any, ...]], size: int = 100_000) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def copy(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> None:
    for batch in chunks(rows):
        await conn.copy_records_to_table(table, records=batch, columns=columns)


async def seed(conn: asyncpg.Connection, n_conv: int, n_msg: int) -> None:
    """Teams, users, channels, contacts, conversations, messages and open tasks, by COPY."""
    rng = random.Random(2026)
    now = datetime.now(UTC)
    password = hash_password(PASSWORD)
    await copy(
        conn,
        "teams",
        ["id", "name", "working_hours"],
        ((i + 1, n, "{}") for i, n in enumerate(TEAMS)),
    )
    await copy(
        conn,
        "users",
        [
            "id",
            "email",
            "name",
            "role",
            "working_hours",
            "capacity",
            "is_active",
            "away",
            "language",
            "password_hash",
        ],
        (
            (
                u,
                f"user{u}@bench.test",
                f"User {u}",
                "admin" if u == 1 else "manager" if u <= 4 else "agent",
                "{}",
                25,
                True,
                False,
                "nl",
                password,
            )
            for u in range(1, USERS + 1)
        ),
    )
    await copy(
        conn,
        "team_members",
        ["team_id", "user_id"],
        ((1 + (u % len(TEAMS)), u) for u in range(2, USERS + 1)),
    )
    await copy(
        conn,
        "channels",
        ["id", "kind", "name", "config", "is_active"],
        ((cid, kind, cid, "{}", True) for cid, kind in CHANNELS),
    )
    n_rel, n_contacts = n_conv // 10, n_conv // 3
    await copy(
        conn,
        "relations",
        [
            "id",
            "name",
            "normalized_name",
            "status",
            "abc_class",
            "account_manager_id",
            "addresses",
            "custom_fields",
        ],
        (
            (
                r,
                f"Bouwbedrijf {r} B.V.",
                f"bouwbedrijf {r}",
                "customer",
                "ABC"[r % 3],
                2 + r % (USERS - 1),
                "[]",
                "{}",
            )
            for r in range(1, n_rel + 1)
        ),
    )
    await copy(
        conn,
        "contacts",
        ["id", "relation_id", "full_name", "custom_fields"],
        ((c, 1 + c % n_rel, f"Contact {c}", "{}") for c in range(1, n_contacts + 1)),
    )
    statuses = ["open"] * 5 + ["pending", "snoozed"] + ["resolved"] * 3
    conv_rows = []
    for i in range(1, n_conv + 1):
        at = now - timedelta(seconds=i * 30)
        status = rng.choice(statuses)
        team = 1 + rng.randrange(len(TEAMS))
        contact = 1 + rng.randrange(n_contacts)
        conv_rows.append(
            (
                i,
                CHANNELS[i % len(CHANNELS)][0],
                f"Vraag over offerte {i}",
                status,
                team,
                rng.choice([None, *range(2, USERS + 1)]),
                "normal",
                at,
                at,
                now - timedelta(days=30),
                contact,
                1 + contact % n_rel,
                ["klacht"] if i % 50 == 0 else [],
                f"tok{i}",
                "human",
                "{}",
                i % 200 == 0,
            )
        )
    await copy(
        conn,
        "conversations",
        [
            "id",
            "channel_id",
            "subject",
            "status",
            "team_id",
            "assignee_id",
            "priority",
            "last_message_at",
            "last_inbound_at",
            "created_at",
            "contact_id",
            "relation_id",
            "labels",
            "reply_token",
            "handled_by",
            "bot_state",
            "confidential",
        ],
        iter(conv_rows),
    )
    channel_of = {row[0]: row[1] for row in conv_rows}

    def messages() -> Iterator[tuple[Any, ...]]:
        for m in range(1, n_msg + 1):
            conversation = 1 + (m % n_conv)
            inbound = m % 3 != 0
            yield (
                m,
                conversation,
                channel_of[conversation],
                f"m{m}",
                "inbound" if inbound else "outbound",
                "message",
                "Goedemiddag, graag een offerte voor kozijnen en deuren, bericht " + str(m),
                "{}",
                now - timedelta(seconds=m * 3),
                "received" if inbound else "sent",
                [],
            )

    await copy(
        conn,
        "messages",
        [
            "id",
            "conversation_id",
            "channel_id",
            "external_id",
            "direction",
            "kind",
            "text",
            "meta",
            "sent_at",
            "status",
            "in_reply_to",
        ],
        messages(),
    )
    await copy(
        conn,
        "tasks",
        [
            "id",
            "kind",
            "title",
            "assignee_id",
            "team_id",
            "due_at",
            "priority",
            "status",
            "conversation_id",
        ],
        (
            (
                row[0],
                "reply",
                f"Answer {row[0]}",
                row[5],
                row[4],
                now + timedelta(minutes=rng.randrange(-600, 600)),
                "normal",
                "open",
                row[0],
            )
            for row in conv_rows
            if row[3] == "open"
        ),
    )
    for table in ("teams", "users", "relations", "contacts", "conversations", "messages", "tasks"):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    await conn.execute("ANALYZE")


async def timed(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    t = time.perf_counter()
    async with http.get(url, headers=headers) as r:
        await r.read()
        assert r.status == 200, (url, r.status)
    return (time.perf_counter() - t) * 1000


async def series(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], n: int
) -> list[float]:
    return [await timed(http, url, auth) for _ in range(n)]


async def view(
    http: aiohttp.ClientSession, base: str, cid: int, auth: dict[str, str], panel: bool
) -> float:
    """What the page does when a conversation opens: detail and messages (and the panel) at once."""
    t = time.perf_counter()
    calls = [
        timed(http, f"{base}/api/conversations/{cid}", auth),
        timed(http, f"{base}/api/conversations/{cid}/messages?limit=500", auth),
    ]
    if panel:
        calls.append(timed(http, f"{base}/api/conversations/{cid}/panel", auth))
    await asyncio.gather(*calls)
    return (time.perf_counter() - t) * 1000


async def fan_out(
    http: aiohttp.ClientSession,
    base: str,
    app: web.Application,
    auth: dict[str, str],
    clients: int,
    rounds: int,
) -> list[float]:
    sockets = [await http.ws_connect(f"{base}/ws", headers=auth) for _ in range(clients)]
    for ws in sockets:
        await ws.receive_json()
    redis = app[ARQ]
    delays = []

    async def arrival(ws: aiohttp.ClientWebSocketResponse, marker: int) -> None:
        while (await ws.receive_json(timeout=10)).get("conversation_id") != marker:
            pass  # another run's event on the same Redis: pub/sub ignores database numbers

    for i in range(rounds):
        marker = -1_000_000 - i
        event = {
            "type": "message.created",
            "conversation_id": marker,
            "team_id": 1,
            "assignee_id": None,
            "status": "open",
            "confidential": False,
            "channel_id": "bench-form",
        }
        t0 = time.perf_counter()
        await redis.publish(channel_of(redis), json.dumps(event))
        await asyncio.gather(*(arrival(ws, marker) for ws in sockets))
        delays.append((time.perf_counter() - t0) * 1000)
    for ws in sockets:
        await ws.close()
    return delays


async def explain(conn: asyncpg.Connection) -> str:
    """The plan of the list query for an agent (two teams), to name a missing index if any."""
    rows = await conn.fetch(
        """EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF, SUMMARY ON)
           SELECT id FROM conversations
           WHERE (assignee_id = 5 OR (team_id IN (1, 2) AND NOT confidential)) AND status = 'open'
           ORDER BY last_message_at DESC, id DESC LIMIT 51"""
    )
    return "\n".join("    " + r[0] for r in rows)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10,000 / 100,000 and fewer requests")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument(
        "--indexes", action="store_true", help="create SUGGESTED_INDEXES before measuring"
    )
    args = parser.parse_args()
    n_conv, n_msg = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    requests = args.requests or (50 if args.quick else 200)
    rounds = 20 if args.quick else 50

    name = f"switchboard_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+asyncpg://postgres@127.0.0.1/{name}"
    results: dict[str, Any] = {"conversations": n_conv, "messages": n_msg, "requests": requests}
    runner = None
    try:
        await asyncio.to_thread(upgrade, url)
        conn = await asyncpg.connect(f"{PG}/{name}")
        t = time.perf_counter()
        await seed(conn, n_conv, n_msg)
        results["seed_s"] = time.perf_counter() - t
        if args.indexes:
            for statement in SUGGESTED_INDEXES:
                await conn.execute(statement)
            await conn.execute("ANALYZE conversations, messages")
        results["suggested_indexes"] = args.indexes
        agent_teams = [
            r[0] for r in await conn.fetch("SELECT team_id FROM team_members WHERE user_id = 5")
        ]
        visible_to_agent = [
            r[0]
            for r in await conn.fetch(
                "SELECT id FROM conversations WHERE team_id = ANY($1) AND NOT confidential ORDER BY random() LIMIT $2",
                agent_teams,
                requests,
            )
        ]
        plan = await explain(conn)
        await conn.close()

        port = free_port()
        settings = Settings(database_url=url, redis_url=REDIS, log_level="WARNING")
        app = create_app(settings, url, REDIS)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        rng = random.Random(7)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            tokens = {}  # the page's own way in: a session cookie (GETs need no CSRF token)
            for user_id, label in ((1, "admin"), (5, "agent")):
                async with http.post(
                    f"{base}/api/auth/login",
                    json={"email": f"user{user_id}@bench.test", "password": PASSWORD},
                ) as r:
                    assert r.status == 200, await r.text()
                    tokens[label] = {"Cookie": f"sb_session={r.cookies['sb_session'].value}"}
            http.cookie_jar.clear()
            for _ in range(30):  # warm up pools and caches
                await timed(http, f"{base}/api/inbox/conversations?limit=50", tokens["agent"])
            lists = {
                "plain list": "/api/conversations?limit=50",
                "inbox list": "/api/inbox/conversations?limit=50",
                "mine": "/api/inbox/conversations?limit=50&mine=true",
                "unassigned": "/api/inbox/conversations?limit=50&unassigned=true",
                "team": f"/api/inbox/conversations?limit=50&team={agent_teams[0] if agent_teams else 1}",
                "label klacht": "/api/inbox/conversations?limit=50&label=klacht",
                "all statuses": "/api/inbox/conversations?limit=50&status=all",
            }
            for label, auth in tokens.items():
                r: dict[str, Any] = {}
                for what, path in lists.items():
                    values = await series(http, base + path, auth, requests)
                    r[what] = (pct(values, 50), pct(values, 95))
                ids = (
                    [rng.randrange(1, n_conv + 1) for _ in range(requests)]
                    if label == "admin"
                    else visible_to_agent
                )
                for what, panel in (("view", False), ("view + panel", True)):
                    values = [await view(http, base, cid, auth, panel) for cid in ids]
                    r[what] = (pct(values, 50), pct(values, 95))
                results[label] = r
            delays = await fan_out(http, base, app, tokens["admin"], args.clients, rounds)
            results["fanout"] = {
                "clients": args.clients,
                "p50_ms": pct(delays, 50),
                "p95_ms": pct(delays, 95),
                "max_ms": max(delays),
            }
    finally:
        if runner is not None:
            await runner.cleanup()
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()

    print(
        f"{n_conv:,} conversations, {n_msg:,} messages, seeded by COPY in {results['seed_s']:.0f} s;"
        f" one web process; {requests} sequential requests per figure; target ≤ {TARGET_MS:.0f} ms p95"
        + ("; with SUGGESTED_INDEXES" if args.indexes else "")
    )
    for label in ("admin", "agent"):
        print(f"  as {label}:")
        for what, (p50, p95) in results[label].items():
            flag = "" if p95 <= TARGET_MS else "   ← over target"
            print(f"    {what:14} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms{flag}")
    f = results["fanout"]
    print(
        f"  websocket fan-out to {f['clients']} clients (publish → last client has it):"
        f" p50 {f['p50_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms, max {f['max_ms']:.1f} ms"
    )
    print("  list query plan (agent, open):")
    print(plan)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "inbox.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
