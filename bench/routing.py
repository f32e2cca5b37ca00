"""Routing and SLA benchmark: routing decisions per second with 50 rules and 100 people, and one
SLA sweep over 100,000 open tasks. Runs in a database of its own, dropped afterwards.

    uv run python bench/routing.py [--url postgresql+asyncpg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from channels.base import InboundMessage, Sender
from crm.models import Team, TeamMember, User
from inbox.db import Sessions, make_engine, make_sessions, upgrade_async
from inbox.ingest.pipeline import Policy, store
from inbox.models import Channel
from inbox.routing.models import RoutingRule, SlaPolicy, TeamRouting
from inbox.routing.rules import Facts, Rule, decide
from inbox.routing.sla import sweep

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TEAMS, PEOPLE, RULES = 5, 100, 50
KEYWORDS = [f"product{i}" for i in range(RULES)]


async def run_sql(url: str, sql: str) -> None:
    engine = make_engine(url, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


async def seed_people_and_rules(sessions: Sessions) -> tuple[list[int], Channel]:
    async with sessions() as session, session.begin():
        teams = [Team(name=f"Team {i}") for i in range(TEAMS)]
        session.add_all(teams)
        users = [
            User(email=f"agent{i}@bench.test", name=f"Agent {i}", capacity=10_000, language="nl")
            for i in range(PEOPLE)
        ]
        session.add_all(users)
        await session.flush()
        for i, u in enumerate(users):
            session.add(TeamMember(team_id=teams[i % TEAMS].id, user_id=u.id))
        for i, t in enumerate(teams):
            session.add(
                TeamRouting(team_id=t.id, strategy="least_loaded" if i % 2 else "round_robin")
            )
        for i, keyword in enumerate(KEYWORDS):
            session.add(
                RoutingRule(
                    name=f"rule {i}",
                    position=i,
                    events=["conversation.created", "message.inbound"],
                    conditions=[
                        {"field": "text", "op": "contains_any", "value": [keyword, f"x{keyword}"]},
                        {"field": "channel_kind", "op": "in", "value": ["email", "webform"]},
                    ],
                    actions=[
                        {"type": "set_team", "team_id": teams[i % TEAMS].id},
                        {"type": "add_labels", "labels": [keyword]},
                    ],
                )
            )
        channel = Channel(kind="webform", name="bench", default_team_id=teams[0].id)
        session.add(channel)
        session.add(
            SlaPolicy(
                name="bench",
                business_hours=False,
                targets={"normal": {"first_response": 240, "resolution": 2880}},
                is_default=True,
            )
        )
        await session.flush()
        return [t.id for t in teams], channel


def bench_decide(n: int) -> float:
    """Pure rule evaluation: decisions per second."""
    rules = [
        Rule(
            i,
            f"rule {i}",
            "all",
            (
                {"field": "text", "op": "contains_any", "value": [k, f"x{k}"]},
                {"field": "channel_kind", "op": "in", "value": ["email", "webform"]},
            ),
            ({"type": "set_team", "team_id": i % TEAMS}, {"type": "add_labels", "labels": [k]}),
        )
        for i, k in enumerate(KEYWORDS)
    ]
    facts = [
        Facts(
            event="conversation.created",
            channel_kind="webform",
            channel_id="c",
            subject=f"Vraag over {KEYWORDS[i % RULES]}",
            body="Graag een offerte voor twaalf kozijnen, levering in Almere. " * 5,
        )
        for i in range(100)
    ]
    started = time.perf_counter()
    for i in range(n):
        decide(rules, facts[i % 100])
    return n / (time.perf_counter() - started)


async def bench_route(sessions: Sessions, channel: Channel, n: int, batch: int) -> float:
    """The whole pipeline step for new conversations (store, rules, assignment, SLA, task)."""
    started = time.perf_counter()
    for b in range(n // batch):
        async with sessions() as session, session.begin():
            merged = await session.merge(channel, load=False)
            for i in range(batch):
                k = b * batch + i
                msg = InboundMessage(
                    kind="form",
                    external_id=f"bench-{k}",
                    occurred_at=NOW,
                    sender=Sender(name=f"Klant {k}", emails=(f"klant{k}@bench.test",)),
                    subject=f"Vraag over {KEYWORDS[k % RULES]}",
                    text="Graag een offerte.",
                )
                await store(session, merged, None, msg, Policy(), NOW)
    return n / (time.perf_counter() - started)


async def seed_tasks(sessions: Sessions, channel_id: str, n: int, due_share: float) -> None:
    """n open tasks with SLA clocks; `due_share` of them past reminder or due time at NOW."""
    due = int(n * due_share)
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO conversations (channel_id, subject, status, priority, labels,"
                " reply_token, handled_by, bot_state, confidential, assignee_id, team_id)"
                " SELECT :channel, 'bench ' || g, 'open', 'normal', '{}', md5(random()::text),"
                " 'human', '{}', false, (SELECT min(id) FROM users) + g % 100,"
                " (SELECT min(id) FROM teams) + g % 5"
                " FROM generate_series(1, :n) g"
            ),
            {"channel": channel_id, "n": n},
        )
        await session.execute(
            text(
                "INSERT INTO tasks (kind, title, assignee_id, team_id, due_at, priority, status,"
                " conversation_id)"
                " SELECT 'reply', c.subject, c.assignee_id, c.team_id,"
                " CASE WHEN row_number() OVER (ORDER BY c.id) <= :half THEN CAST(:now AS timestamptz) + interval '10 min'"
                "      WHEN row_number() OVER (ORDER BY c.id) <= :due THEN CAST(:now AS timestamptz) - interval '1 min'"
                "      ELSE CAST(:now AS timestamptz) + interval '1 day' + (c.id % 1000) * interval '1 min' END,"
                " 'normal', 'open', c.id FROM conversations c WHERE c.subject LIKE 'bench %'"
            ),
            {"now": NOW, "half": due // 2, "due": due},
        )
        await session.execute(
            text(
                "INSERT INTO task_slas (task_id, started_at, remind_at, next_check_at)"
                " SELECT id, :now, due_at - interval '30 min', due_at - interval '30 min'"
                " FROM tasks WHERE kind = 'reply' AND title LIKE 'bench %'"
            ),
            {"now": NOW},
        )
    async with sessions() as session:
        await session.execute(text("ANALYZE conversations, tasks, task_slas"))


async def bench_sweep(sessions: Sessions) -> tuple[float, Any]:
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        result = await sweep(session, NOW)
    return time.perf_counter() - started, result


async def main(admin_url: str, decisions: int, routed: int, tasks: int) -> None:
    name = f"switchboard_bench_{uuid.uuid4().hex[:8]}"
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    await run_sql(admin_url, f"CREATE DATABASE {name}")
    engine = make_engine(url, pool_size=4)
    try:
        await upgrade_async(url)
        sessions = make_sessions(engine)
        _, channel = await seed_people_and_rules(sessions)

        rates = [bench_decide(decisions) for _ in range(3)]
        print(f"rule evaluation: {statistics.median(rates):,.0f} decisions/s ({RULES} rules, pure)")
        rate = await bench_route(sessions, channel, routed, batch=50)
        print(
            f"routing in the pipeline: {rate:,.0f} conversations/s ({routed} new conversations,"
            f" {RULES} rules, {PEOPLE} people in {TEAMS} teams, store + rules + assignment"
            " + SLA + task, batches of 50)"
        )

        await seed_tasks(sessions, channel.id, tasks, due_share=0.02)
        async with sessions() as session:
            open_tasks = await session.scalar(
                text("SELECT count(*) FROM tasks WHERE status = 'open'")
            )
        seconds, result = await bench_sweep(sessions)
        print(
            f"SLA sweep over {open_tasks:,} open tasks: {seconds * 1000:,.0f} ms"
            f" ({len(result.reminded)} reminders, {len(result.escalated)} escalations)"
        )
        seconds, result = await bench_sweep(sessions)
        print(f"SLA sweep again, nothing due: {seconds * 1000:,.1f} ms")
        async with sessions() as session, session.begin():
            await session.execute(
                text("UPDATE task_slas SET next_check_at = :t WHERE task_id % 10 = 0"),
                {"t": NOW - timedelta(minutes=1)},
            )
            await session.execute(
                text(
                    "UPDATE tasks SET due_at = :t WHERE id % 10 = 0"
                    " AND id IN (SELECT task_id FROM task_slas WHERE escalated_at IS NULL)"
                ),
                {"t": NOW - timedelta(minutes=1)},
            )
        seconds, result = await bench_sweep(sessions)
        print(
            f"SLA sweep with 10% breaching at once: {seconds * 1000:,.0f} ms"
            f" ({len(result.escalated):,} escalations, {len(result.notifications):,} notifications)"
        )
    finally:
        await engine.dispose()
        await run_sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1/postgres")
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--routed", type=int, default=2_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.decisions, args.routed, args.tasks))
