"""Pipeline benchmark: p50/p95 of the board, the weighted value per stage and owner, the
opportunity list and a stage move, with 200,000 opportunities (20,000 with --quick; a tenth of
them open, the rest won or lost over 300 days) over 50,000 relations, for an admin (sees all)
and an agent (own and team's), beside the HTTP floor
(GET /healthz) and a bare PostgreSQL round trip on the same machine.

Seeds a throw-away database on the machine's PostgreSQL with set-based SQL (dropped afterwards),
serves the real application on loopback and times sequential requests; bounded loops only.

    uv run python bench/pipeline.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    RESULTS,
    latency_ms,
    scratch_database,
    served_app,
    session_headers,
)
from inbox.db import upgrade  # noqa: E402
from inbox.users import hash_password  # noqa: E402

REDIS = "redis://127.0.0.1:6379/5"
TARGET_MS = 50.0
PASSWORD = "bench password"
USERS, TEAMS = 40, 4


async def seed(conn: asyncpg.Connection, n_opps: int) -> int:
    """Users in teams, relations with a contact each, the default pipeline, opportunities spread
    over its stages with a creation entry in their history; returns the pipeline id."""
    n_rel = max(1000, n_opps // 4)
    await conn.execute(
        "INSERT INTO teams (id, name, working_hours) SELECT g, 'Team ' || g, '{}' FROM generate_series(1, $1) g",
        TEAMS,
    )
    await conn.execute(
        """INSERT INTO users (id, email, name, role, password_hash, working_hours, capacity,
             is_active, away, language)
           SELECT g, 'user' || g || '@bench.test', 'User ' || g,
             CASE WHEN g = 1 THEN 'admin' WHEN g <= 4 THEN 'manager' ELSE 'agent' END,
             $2, '{}', 20, true, false, 'nl' FROM generate_series(1, $1) g""",
        USERS,
        hash_password(PASSWORD),
    )
    await conn.execute(
        "INSERT INTO team_members (team_id, user_id) SELECT 1 + g % $2, g FROM generate_series(2, $1) g",
        USERS,
        TEAMS,
    )
    await conn.execute(
        """INSERT INTO relations (id, name, normalized_name, status, team_id, addresses, custom_fields)
           SELECT g, 'Relatie ' || g, 'relatie ' || g, 'customer', 1 + g % $2, '[]', '{}'
           FROM generate_series(1, $1) g""",
        n_rel,
        TEAMS,
    )
    await conn.execute(
        """INSERT INTO contacts (id, relation_id, full_name, custom_fields)
           SELECT g, g, 'Contact ' || g, '{}' FROM generate_series(1, $1) g""",
        n_rel,
    )
    pipeline = await conn.fetchval(
        "INSERT INTO pipelines (name, is_default, position) VALUES ('Verkoop', true, 0) RETURNING id"
    )
    await conn.execute(
        """INSERT INTO pipeline_stages (pipeline_id, code, name, position, probability, outcome)
           VALUES ($1, 'nieuw', 'Nieuw', 0, 10, 'open'), ($1, 'offerte', 'Offerte', 1, 40, 'open'),
                  ($1, 'onderhandeling', 'Onderhandeling', 2, 70, 'open'),
                  ($1, 'gewonnen', 'Gewonnen', 3, 100, 'won'), ($1, 'verloren', 'Verloren', 4, 0, 'lost')""",
        pipeline,
    )
    stages = [
        tuple(r)
        for r in await conn.fetch(
            "SELECT id, probability, outcome FROM pipeline_stages ORDER BY position"
        )
    ]
    await conn.execute(
        """INSERT INTO opportunities (name, pipeline_id, stage_id, status, amount, currency,
             probability, owner_id, team_id, relation_id, contact_id, custom_fields, created_at,
             updated_at, closed_at)
           SELECT 'Kans ' || g, $2, s.id, s.outcome, (g * 7919) % 100000, 'EUR', s.probability,
             5 + g % ($3 - 4), 1 + (g % $4), 1 + g % $5, 1 + g % $5, '{}',
             now() - make_interval(days => g % 400), now() - make_interval(days => g % 300),
             CASE WHEN s.outcome = 'open' THEN NULL ELSE now() - make_interval(days => g % 300) END
           FROM generate_series(1, $1) g
           JOIN (SELECT * FROM unnest($6::bigint[], $7::bigint[], $8::text[])
                 WITH ORDINALITY AS x(id, probability, outcome, n)) s
             ON s.n = 1 + (CASE WHEN g % 10 = 0 THEN g % 3 ELSE 3 + g % 2 END)""",
        n_opps,
        pipeline,
        USERS,
        TEAMS,
        n_rel,
        [s[0] for s in stages],
        [s[1] for s in stages],
        [s[2] for s in stages],
    )
    await conn.execute(
        """INSERT INTO opportunity_stage_changes (opportunity_id, to_stage_id, to_stage, probability)
           SELECT o.id, o.stage_id, 'Nieuw', o.probability FROM opportunities o"""
    )
    for table in ("teams", "users", "relations", "contacts"):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    await conn.execute(
        "VACUUM ANALYZE"
    )  # as autovacuum would have: index-only reads can skip the heap
    return int(pipeline)


async def timed(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], body: Any = None
) -> float:
    t = time.perf_counter()
    async with http.request(method, url, headers=headers, json=body) as r:
        await r.read()
        assert r.status == 200, (url, r.status, await r.text())
    return time.perf_counter() - t


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20,000 opportunities, fewer requests")
    parser.add_argument("--requests", type=int, default=None)
    args = parser.parse_args()
    n_opps = 20_000 if args.quick else 200_000
    requests = args.requests or (30 if args.quick else 100)
    results: dict[str, Any] = {"opportunities": n_opps, "requests": requests}
    async with scratch_database("switchboard_bench_pipeline") as dsn:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://")
        await asyncio.to_thread(upgrade, url)
        conn = await asyncpg.connect(dsn)
        t = time.perf_counter()
        pipeline = await seed(conn, n_opps)
        results["seed_s"] = round(time.perf_counter() - t, 1)
        round_trips = []
        for _ in range(requests):
            t = time.perf_counter()
            await conn.fetchval("SELECT 1")
            round_trips.append(time.perf_counter() - t)
        results["postgres SELECT 1"] = latency_ms(round_trips)
        opp_ids = [r[0] for r in await conn.fetch(
            "SELECT id FROM opportunities WHERE status = 'open' ORDER BY id LIMIT $1", requests
        )]  # fmt: skip
        stages = [
            r[0] for r in await conn.fetch("SELECT id FROM pipeline_stages ORDER BY position")
        ]
        await conn.close()

        async with served_app(url, REDIS) as base:
            async with aiohttp.ClientSession() as http:
                auth = {
                    label: await session_headers(http, base, f"user{user_id}@bench.test", PASSWORD)
                    for user_id, label in ((1, "admin"), (5, "agent"))
                }
                http.cookie_jar.clear()
                for _ in range(10):  # warm up pools and caches
                    await timed(http, "GET", f"{base}/healthz", {})
                    await timed(
                        http, "GET", f"{base}/api/pipelines/{pipeline}/value", auth["agent"]
                    )
                results["HTTP floor GET /healthz"] = latency_ms(
                    [await timed(http, "GET", f"{base}/healthz", {}) for _ in range(requests)]
                )
                reads = {
                    "board": f"/api/pipelines/{pipeline}/board",
                    "value per stage and owner": f"/api/pipelines/{pipeline}/value",
                    "list, 100 newest": "/api/opportunities?limit=100",
                    "list, one stage": f"/api/opportunities?limit=100&stage_id={stages[1]}",
                    "pipelines": "/api/pipelines",
                }
                for who, headers in auth.items():
                    for what, path in reads.items():
                        values = [
                            await timed(http, "GET", base + path, headers) for _ in range(requests)
                        ]
                        results[f"{who}: {what}"] = latency_ms(values)
                moves = [
                    await timed(
                        http,
                        "PATCH",
                        f"{base}/api/opportunities/{opp}",
                        auth["admin"],
                        {"stage_id": stages[1 + i % 2]},
                    )
                    for i, opp in enumerate(opp_ids)
                ]
                results["admin: stage move (PATCH)"] = latency_ms(moves)

    print(f"pipeline benchmark: {n_opps:,} opportunities, {requests} sequential requests each")
    print(f"{'':44} {'p50 ms':>8} {'p95 ms':>8}   target p95 {TARGET_MS:.0f} ms")
    for name, value in results.items():
        if isinstance(value, dict):
            verdict = "" if name.startswith(("HTTP", "postgres")) else (
                "ok" if value["p95_ms"] <= TARGET_MS else "OVER"
            )  # fmt: skip
            print(f"{name:44} {value['p50_ms']:8.2f} {value['p95_ms']:8.2f}   {verdict}")
    print(f"seeded in {results['seed_s']} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
