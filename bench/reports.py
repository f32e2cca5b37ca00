"""Reports and relation dashboard benchmark: each report's latency over 100,000 conversations /
1,000,000 messages (target 200 ms) and the relation dashboard's p95 over about a million CRM
records (target 50 ms), through the real application on loopback.

Seeds a throw-away database on the machine's PostgreSQL with set-based INSERT … SELECT over
generate_series (triggers off while seeding; the search index is not what is measured), with a
default business calendar so response times take the business-hours path. Beside the targets it
prints the floor (the same HTTP stack answering a route that reads nothing), the raw ceiling
(PostgreSQL only counting the rows a year's heaviest reports read) and the load average.

    uv run python bench/reports.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from string import Template
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, latency_ms, scratch_database  # noqa: E402
from inbox.db import upgrade  # noqa: E402
from inbox.service.app import create_app  # noqa: E402
from inbox.settings import Settings  # noqa: E402
from inbox.users import hash_password  # noqa: E402

REDIS = "redis://127.0.0.1:6379/6"
REPORT_TARGET_MS = 200.0
DASHBOARD_TARGET_MS = 50.0
PASSWORD = "bench password"
REPORTS = (
    "conversations",
    "response-times",
    "sla-breaches",
    "lead-sources",
    "pipeline",
    "workload",
)

SEED = """
SET session_replication_role = replica;
INSERT INTO teams (name, working_hours) SELECT 'Team ' || g, '{}' FROM generate_series(1, 4) g;
INSERT INTO users (email, name, role, password_hash, working_hours, away, is_active, capacity,
    language)
  SELECT 'user' || g || '@bench.test', 'User ' || g,
    CASE WHEN g = 1 THEN 'admin' WHEN g <= 4 THEN 'manager' ELSE 'agent' END, '', '{}'::jsonb,
    false, true, 20, 'nl'
  FROM generate_series(1, 20) g;
INSERT INTO team_members (team_id, user_id) SELECT 1 + g % 4, g FROM generate_series(2, 20) g;
INSERT INTO channels (id, kind, name, config, is_active) VALUES
  ('bench-mail', 'email', 'Mail', '{}', true), ('bench-form', 'webform', 'Website', '{}', true),
  ('bench-phone', 'telephony', 'Centrale', '{}', true);
INSERT INTO business_calendars (name, timezone, hours, is_default) VALUES ('Kantoor',
  'Europe/Amsterdam', '{"mon": [["08:30", "17:00"]], "tue": [["08:30", "17:00"]],
  "wed": [["08:30", "17:00"]], "thu": [["08:30", "17:00"]], "fri": [["08:30", "17:00"]]}', true);
INSERT INTO relations (name, normalized_name, status, abc_class, account_manager_id, addresses,
    custom_fields)
  SELECT 'Relatie ' || g, 'relatie ' || g, 'customer', substr('ABC', 1 + g % 3, 1), 2 + g % 19,
    '[]', '{}' FROM generate_series(1, ${relations}) g;
INSERT INTO relation_links (from_relation_id, to_relation_id, kind)
  SELECT g, 1 + (g * 7) % ${relations}, 'dealer' FROM generate_series(1, ${relations}, 5) g
  WHERE 1 + (g * 7) % ${relations} <> g;
INSERT INTO contacts (relation_id, first_name, last_name, full_name, custom_fields)
  SELECT 1 + g % ${relations}, 'Jan', 'Visser ' || g, 'Jan Visser ' || g, '{}'
  FROM generate_series(1, ${contacts}) g;
INSERT INTO identities (kind, value, key, contact_id)
  SELECT 'email', 'jan' || g || '@bench.test', 'jan' || g || '@bench.test', g
  FROM generate_series(1, ${contacts}) g;
INSERT INTO conversations (channel_id, subject, status, contact_id, relation_id, team_id,
    assignee_id, created_at, last_message_at, first_response_at, resolved_at, labels,
    reply_token, bot_state, handled_by, priority, confidential)
  SELECT (ARRAY['bench-mail', 'bench-form', 'bench-phone'])[1 + g % 3], 'Vraag ' || g,
    CASE WHEN g % 10 < 7 THEN 'resolved' ELSE 'open' END, 1 + g % ${contacts}, 1 + g % ${relations},
    1 + g % 4, 5 + g % 16, at, at, at + (g % 600) * interval '1 minute',
    CASE WHEN g % 10 < 7 THEN at + (g % 3000) * interval '1 minute' END,
    CASE WHEN g % 23 = 0 THEN ARRAY['klacht'] ELSE ARRAY[]::varchar[] END,
    'bench' || g, '{}', 'human', 'normal', false
  FROM (SELECT g, now() - (g % 365) * interval '1 day' - (g % 86400) * interval '1 second' AS at
        FROM generate_series(1, ${conversations}) g) s;
INSERT INTO conversation_slas (conversation_id, priority, started_at, first_response_due_at,
    resolution_due_at)
  SELECT id, 'normal', created_at, created_at + interval '2 hours', created_at + interval '2 days'
  FROM conversations;
INSERT INTO messages (conversation_id, channel_id, external_id, direction, kind, text, meta,
    sent_at, status, author_id, in_reply_to, attempts)
  SELECT 1 + g % ${conversations}, 'bench-mail', 'm' || g,
    CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END, 'message', 'Tekst ' || g, '{}',
    now() - (g % 365) * interval '1 day', CASE WHEN g % 2 = 0 THEN 'received' ELSE 'sent' END,
    CASE WHEN g % 2 = 1 THEN 5 + g % 16 END, ARRAY[]::varchar[], 0
  FROM generate_series(1, ${messages}) g;
INSERT INTO activities (kind, direction, subject, occurred_at, relation_id, contact_id,
    conversation_id)
  SELECT (ARRAY['call', 'email', 'message', 'note'])[1 + g % 4], 'inbound', 'Activiteit ' || g,
    now() - (g % 365) * interval '1 day', 1 + g % ${relations}, 1 + g % ${contacts},
    CASE WHEN g % 2 = 0 THEN 1 + g % ${conversations} END
  FROM generate_series(1, ${activities}) g;
INSERT INTO tasks (kind, title, assignee_id, team_id, due_at, priority, status, relation_id,
    conversation_id)
  SELECT 'follow_up', 'Taak ' || g, 5 + g % 16, 1 + g % 4, now() + (g % 20 - 10) * interval '1 day',
    'normal', CASE WHEN g % 3 = 0 THEN 'open' ELSE 'done' END, 1 + g % ${relations}, 1 + g % ${conversations}
  FROM generate_series(1, ${conversations}) g;
INSERT INTO leads (name, source_channel_id, status, fields, created_at)
  SELECT 'Lead ' || g, (ARRAY['bench-mail', 'bench-form', 'bench-phone', NULL])[1 + g % 4],
    CASE WHEN g % 4 = 0 THEN 'converted' ELSE 'new' END, '{}', now() - (g % 365) * interval '1 day'
  FROM generate_series(1, ${relations}) g;
INSERT INTO pipelines (name, is_default, position) VALUES ('Verkoop', true, 0);
INSERT INTO pipeline_stages (pipeline_id, code, name, position, probability, outcome) VALUES
  (1, 'nieuw', 'Nieuw', 0, 10, 'open'), (1, 'offerte', 'Offerte', 1, 40, 'open'),
  (1, 'onderhandeling', 'Onderhandeling', 2, 70, 'open'), (1, 'gewonnen', 'Gewonnen', 3, 100, 'won'),
  (1, 'verloren', 'Verloren', 4, 0, 'lost');
INSERT INTO opportunities (name, pipeline_id, stage_id, status, amount, currency, probability,
    owner_id, team_id, relation_id, lead_id, source_channel_id, closed_at, created_at, updated_at,
    custom_fields)
  SELECT 'Kans ' || g, 1, 1 + g % 5, (ARRAY['open', 'open', 'open', 'won', 'lost'])[1 + g % 5],
    100 * (g % 500), 'EUR', (ARRAY[10, 40, 70, 100, 0])[1 + g % 5], 5 + g % 16, 1 + g % 4,
    1 + g % ${relations}, CASE WHEN g % 2 = 0 THEN g END,
    (ARRAY['bench-mail', 'bench-form', 'bench-phone'])[1 + g % 3],
    CASE WHEN g % 5 >= 3 THEN now() - (g % 365) * interval '1 day' END,
    now() - (g % 365) * interval '1 day', now(), '{}'
  FROM generate_series(1, ${relations}) g;
SET session_replication_role = origin;
"""


async def seed(dsn: str, conversations: int) -> dict[str, int]:
    sizes = {
        "relations": conversations // 2,
        "contacts": conversations * 2,
        "conversations": conversations,
        "messages": conversations * 10,
        "activities": conversations * 5,
    }
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(Template(SEED).safe_substitute(sizes))
        await conn.execute("UPDATE users SET password_hash = $1", hash_password(PASSWORD))
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
        sizes["records"] = int(
            await conn.fetchval(
                """SELECT (SELECT count(*) FROM relations) + (SELECT count(*) FROM contacts)
                + (SELECT count(*) FROM identities) + (SELECT count(*) FROM conversations)
                + (SELECT count(*) FROM activities) + (SELECT count(*) FROM tasks)
                + (SELECT count(*) FROM leads) + (SELECT count(*) FROM relation_links)
                + (SELECT count(*) FROM opportunities)"""
            )
        )
    finally:
        await conn.close()
    return sizes


# The machine's raw ceiling for a year's reports: PostgreSQL only reading what the heaviest
# reports must read (every conversation of the year; every reply of the year), nothing computed.
CEILING = {
    "a year's conversations": """SELECT count(first_response_at) FROM conversations
        WHERE created_at >= now() - interval '365 days'""",
    "a year's replies": """SELECT count(*) FROM messages WHERE direction = 'outbound'
        AND author_id IS NOT NULL AND sent_at >= now() - interval '365 days'""",
}


async def ceiling(dsn: str, requests: int) -> dict[str, dict[str, float]]:
    conn = await asyncpg.connect(dsn)
    try:
        found = {}
        for label, sql in CEILING.items():
            await conn.fetchval(sql)
            samples = []
            for _ in range(requests):
                t = time.perf_counter()
                await conn.fetchval(sql)
                samples.append(time.perf_counter() - t)
            found[label] = latency_ms(samples)
        return found
    finally:
        await conn.close()


async def timed(http: aiohttp.ClientSession, url: str) -> float:
    t = time.perf_counter()
    async with http.get(url) as r:
        await r.read()
        assert r.status == 200, (url, r.status, await r.text())
    return time.perf_counter() - t


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10,000 / 100,000, fewer requests")
    parser.add_argument("--requests", type=int, default=None)
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    requests = args.requests or (10 if args.quick else 40)
    results: dict[str, Any] = {"requests": requests}
    async with scratch_database("switchboard_bench_reports") as dsn:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://")
        await asyncio.to_thread(upgrade, url)
        t = time.perf_counter()
        results["sizes"] = await seed(dsn, n)
        results["seed_s"] = round(time.perf_counter() - t, 1)
        results["ceiling"] = await ceiling(dsn, requests)
        app = create_app(
            Settings(database_url=url, redis_url=REDIS, log_level="WARNING"), url, REDIS
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(
                    f"{base}/api/auth/login",
                    json={"email": "user1@bench.test", "password": PASSWORD},
                ) as r:
                    assert r.status == 200, await r.text()
                for _ in range(5):
                    await timed(http, f"{base}/api/reports")
                floor = [await timed(http, f"{base}/api/reports") for _ in range(requests * 2)]
                results["floor"] = latency_ms(floor)
                ranges = {
                    "30 days": "",
                    "a year": "&from="
                    + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 364 * 86400))
                    + "&interval=week",
                }
                for label, extra in ranges.items():
                    for name in REPORTS:
                        path = f"{base}/api/reports/{name}?x=1{extra}"
                        await timed(http, path)
                        samples = [await timed(http, path) for _ in range(requests)]
                        results[f"{name} ({label})"] = latency_ms(samples)
                rng = random.Random(7)
                relations = results["sizes"]["relations"]
                for _ in range(5):
                    await timed(http, f"{base}/api/relations/1/dashboard")
                board = [
                    await timed(
                        http, f"{base}/api/relations/{rng.randrange(1, relations + 1)}/dashboard"
                    )
                    for _ in range(requests * 5)
                ]
                results["relation dashboard"] = latency_ms(board)
        finally:
            await runner.cleanup()
    sizes = results["sizes"]
    print(
        f"{sizes['conversations']:,} conversations, {sizes['messages']:,} messages,"
        f" {sizes['records']:,} CRM records (relations, contacts, identities, conversations,"
        f" activities, tasks, leads, links, opportunities); seeded in {results['seed_s']} s; one web process,"
        f" sequential requests, as admin (every team)"
    )
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(f"  load average (1, 5, 15 min) at the end: {results['load_average']}")
    f = results["floor"]
    print(
        f"  floor (GET /api/reports, reads nothing): p50 {f['p50_ms']:.1f} ms  p95 {f['p95_ms']:.1f} ms"
    )
    for label, c in results["ceiling"].items():
        print(
            f"  ceiling (PostgreSQL counting {label}, no HTTP): p50 {c['p50_ms']:.1f} ms"
            f"  p95 {c['p95_ms']:.1f} ms"
        )
    for key, value in results.items():
        if not isinstance(value, dict) or "p95_ms" not in value or key == "floor":
            continue
        target = DASHBOARD_TARGET_MS if key == "relation dashboard" else REPORT_TARGET_MS
        flag = "" if value["p95_ms"] <= target else "   <- over target"
        print(
            f"  {key:32} p50 {value['p50_ms']:7.1f} ms  p95 {value['p95_ms']:7.1f} ms"
            f"  (target {target:.0f} ms){flag}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "reports.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
