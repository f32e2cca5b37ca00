"""Ingest benchmark: how many webhook deliveries one web process accepts (journal + commit +
enqueue + 202), their latency at a fixed offered rate, how fast one worker process turns them
into conversations, leads, activities and tasks, and, in the same run, the machine's ceiling for
a one-row INSERT + COMMIT at the same concurrency, to put the accept rate beside.

    uv run python bench/ingest.py [--quick] [--requests N] [--concurrency C] [--profile]

What it does (all on loopback, every wait bounded, everything it starts is stopped):
  * a fresh database `switchboard_bench_<random>` on the machine's PostgreSQL (127.0.0.1:5432,
    user postgres), dropped at the end; Redis db 13 on 127.0.0.1:6379, flushed first;
  * `switchboard channels add webform|telephony --json` for the channels (Twilio dialect);
  * `switchboard web --port <free>` and `switchboard worker` as real subprocesses (the project's
    console scripts in this virtualenv, which is what `uv run switchboard …` runs);
  * the load generator runs here: aiohttp with a connector limited to the concurrency, bodies
    and signatures built before the clock starts, every body unique (submission id, CallSid).

Phases: insert+commit ceiling (asyncpg, before the server starts, and again after it stops);
web form and Twilio closed loop, N requests each at concurrency C; web form and Twilio open loop
at a fixed 1,000 deliveries/s, latency counted from the scheduled send time (no coordinated
omission); one worker draining the backlog of everything journaled so far (bounded in time);
then one worker while deliveries keep flowing at concurrency C.

--profile also records the web server (closed-loop phases) and the worker (backlog phase) with
py-spy, when it is installed (`uv tool install py-spy`), and prints the top frames; the figures of
a profiled run are a little lower than those of a plain one.

Results are printed and written to bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS,
    ROOT,
    CpuMeter,
    Profiler,
    Service,
    console_script,
    cpu_text,
    free_port,
    latency_ms,
    pg_facts,
    run_json,
    scratch_database,
    top_frames,
    wait_http_ok,
)
from channels.telephony import twilio_signature

REDIS_DB = 13  # bench/inbox.py uses 14; two benchmarks at once must not flush each other
REDIS = f"redis://127.0.0.1:6379/{REDIS_DB}"
TWILIO_TOKEN = "bench-" + uuid.uuid4().hex
ACCOUNT_SID = "AC" + uuid.uuid4().hex
OUR_NUMBER = "+31201234567"
TARGETS = {
    "accept_per_s": 2000,
    "p99_ms_at_1000": 25,
    "accept_over_ceiling": 0.5,
    "e2e_per_s": 1000,
}

Request = tuple[str, bytes, dict[str, str]]


# ---------------------------------------------------------------------------------------------
# Realistic, unique deliveries

VOORNAMEN = (
    "Jan Pieter Kees Henk Sanne Anouk Fleur Daan Bram Lotte Eva Thijs Ruben Femke Joost Marieke "
    "Wouter Inge Bas Lieke Sem Noor Maarten Ilse Gert-Jan Annemiek Rik Mirjam Hans Ellen"
).split()
ACHTERNAMEN = (
    "de Vries|Jansen|van den Berg|Bakker|Visser|Smit|Meijer|de Boer|Mulder|de Groot|Bos|Vos|"
    "Peters|Hendriks|van Leeuwen|Dekker|Brouwer|de Wit|Dijkstra|Smits|de Graaf|van der Meer|"
    "van der Linden|Kok|Jacobs|de Haan|Vermeulen|van den Heuvel|van der Veen|van Dijk"
).split("|")
BEDRIJVEN = (
    "Hamerslag B.V.|Bouwbedrijf Hendriks|Installatietechniek Noord B.V.|Kozijnfabriek Twente|"
    "Dakdekkersbedrijf De Wit V.O.F.|Transport Van Dijk B.V.|Groothandel Brouwer|"
    "Schildersbedrijf Kok|Tuinarchitectuur Bos|Administratiekantoor Meijer|Stichting De Linde|"
    "Garage Smits|Bakkerij Mulder|Zorggroep Vermeulen|Elektro Dekker B.V.||"
).split("|")
PLAATSEN = (
    "Amsterdam Rotterdam Utrecht Eindhoven Groningen Tilburg Almere Breda Nijmegen Apeldoorn "
    "Haarlem Arnhem Enschede Amersfoort Zwolle Leiden Maastricht Dordrecht Zoetermeer Deventer"
).split()
BERICHTEN = (
    "Graag ontvang ik een offerte voor {n} nieuwe kozijnen, inclusief montage.",
    "Wij willen graag een afspraak maken voor een adviesgesprek over zonnepanelen.",
    "Mijn bestelling {n} is nog niet geleverd. Kunt u mij laten weten wanneer deze komt?",
    "Kunt u mij terugbellen over de aanvraag voor onderhoud van de cv-ketel?",
    "Wat zijn de openingstijden van de showroom in {plaats}?",
    "Ik heb een klacht over de factuur van vorige maand: het bedrag klopt niet.",
    "Wij zoeken een leverancier voor {n} werkplekken op ons kantoor in {plaats}.",
    "Is het mogelijk om de levering te verplaatsen naar volgende week dinsdag?",
)
PHONE_FORMATS = (
    lambda d: f"06-{d}",
    lambda d: f"+31 6 {d[:4]} {d[4:]}",
    lambda d: f"0031 6{d}",
    lambda d: f"06 {d[:2]} {d[2:4]} {d[4:6]} {d[6:]}",
)
CALL_STATUSES = ("no-answer", "completed", "completed", "busy", "no-answer", "completed")


@dataclass(frozen=True)
class Person:
    naam: str
    bedrijf: str
    email: str
    mobiel: str  # 8 digits after 06
    plaats: str


def person(rng: random.Random, i: int, run: str) -> Person:
    """Mostly new senders (a lead each); one in five is one of 500 returning customers."""
    key = rng.randrange(500) if rng.random() < 0.2 else 10_000 + i
    r = random.Random(f"{run}:{key}")
    voornaam, achternaam = r.choice(VOORNAMEN), r.choice(ACHTERNAMEN)
    bedrijf = r.choice(BEDRIJVEN)
    domain = (
        bedrijf.split()[0].lower().replace(".", "") + f"{key % 97}.nl" if bedrijf else "gmail.com"
    )
    local = f"{voornaam}.{achternaam.replace(' ', '')}".lower().replace("-", "") + str(key)
    return Person(
        naam=f"{voornaam} {achternaam}",
        bedrijf=bedrijf,
        email=f"{local}@{domain}",
        mobiel=f"{(key * 7919) % 100_000_000:08d}",
        plaats=r.choice(PLAATSEN),
    )


class Deliveries:
    """Builds signed requests; every call returns a new delivery (new id), never a redelivery."""

    def __init__(self, base: str, form: dict[str, Any], phone: dict[str, Any], seed: int) -> None:
        self.form_url = base + form["webhook_path"]
        self.form_token = form["secrets"]["token"]
        self.phone_url = base + phone["webhook_path"]
        self.rng = random.Random(seed)
        self.run = uuid.uuid4().hex[:8]
        self.n = 0
        self.t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def _next(self) -> int:
        self.n += 1
        return self.n

    def webform(self) -> Request:
        i = self._next()
        p = person(self.rng, i, self.run)
        fields = {
            "naam": p.naam,
            "bedrijf": p.bedrijf,
            "e-mail": p.email,
            "telefoon": self.rng.choice(PHONE_FORMATS)(p.mobiel),
            "plaats": p.plaats,
            "onderwerp": "Contactformulier website",
            "bericht": self.rng.choice(BERICHTEN).format(
                n=self.rng.randint(2, 40), plaats=p.plaats
            ),
            "akkoord_privacy": "ja",
        }
        headers = {"Authorization": f"Bearer {self.form_token}", "Accept": "application/json"}
        if i % 4 == 0:  # a plain HTML form post (WordPress, Webflow) posted by script
            fields = {"submission_id": f"wp-{self.run}-{i}", "website": ""} | fields
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self.form_url, urlencode(fields).encode(), headers
        body = {
            "submission_id": f"{self.run}-{i}",
            "form_id": "contact-nl",
            "submitted_at": (self.t0 + timedelta(seconds=i)).isoformat(),
        } | fields
        headers["Content-Type"] = "application/json"
        return self.form_url, json.dumps(body).encode(), headers

    def twilio(self) -> Request:
        i = self._next()
        p = person(self.rng, i, self.run)
        status = CALL_STATUSES[i % len(CALL_STATUSES)]
        answered = status == "completed"
        caller = f"+316{p.mobiel}"
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": "CA" + uuid.UUID(int=self.rng.getrandbits(128)).hex,
            "Called": OUR_NUMBER,
            "CalledCity": "",
            "CalledCountry": "NL",
            "Caller": caller,
            "CallerCity": "",
            "CallerCountry": "NL",
            "Direction": "inbound",
            "From": caller,
            "FromCity": "",
            "FromCountry": "NL",
            "To": OUR_NUMBER,
            "ToCity": "",
            "ToCountry": "NL",
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Timestamp": format_datetime(self.t0 + timedelta(seconds=i), usegmt=True),
            "SequenceNumber": "3" if answered else "2",
            "CallDuration": str(self.rng.randint(20, 900)) if answered else "0",
            "Duration": "3" if answered else "0",
            "SipResponseCode": "200" if answered else "487",
        }
        if answered and i % 2:
            params["CallerName"] = p.naam.upper()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(self.phone_url, params, TWILIO_TOKEN),
            "I-Twilio-Idempotency-Token": str(uuid.UUID(int=self.rng.getrandbits(128))),
        }
        return self.phone_url, urlencode(params).encode(), headers

    def mixed(self) -> Request:
        return self.webform() if self.n % 2 else self.twilio()


# ---------------------------------------------------------------------------------------------
# Load


def client(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=60),
        skip_auto_headers=("User-Agent",),
    )


async def post(http: aiohttp.ClientSession, req: Request, statuses: Counter[str]) -> bool:
    url, body, headers = req
    try:
        async with http.post(url, data=body, headers=headers) as r:
            await r.read()
            statuses[str(r.status)] += 1
            return 200 <= r.status < 300
    except (aiohttp.ClientError, TimeoutError) as exc:
        statuses[type(exc).__name__] += 1
        return False


async def closed_loop(
    requests: Iterator[Request], concurrency: int, *, until: float | None = None
) -> dict[str, Any]:
    """`concurrency` requests in flight until the requests (or the time) run out."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    accepted = 0
    async with client(concurrency) as http:

        async def one_connection() -> None:
            nonlocal accepted
            for req in requests:
                t = time.perf_counter()
                ok = await post(http, req, statuses)
                latencies.append(time.perf_counter() - t)
                accepted += ok
                if until is not None and time.perf_counter() >= until:
                    return

        start = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "accepted": accepted,
        "seconds": round(elapsed, 2),
        "per_s": accepted / elapsed,
        **latency_ms(latencies),
        "statuses": dict(statuses),
    }


async def open_loop(
    requests: list[Request], rate: float, max_connections: int, drain_s: float
) -> dict[str, Any]:
    """Send at a fixed rate whatever the answers; latency from each request's scheduled time."""
    latencies: list[float] = []
    send_lag: list[float] = []
    statuses: Counter[str] = Counter()
    async with client(max_connections) as http:

        async def one(scheduled: float, req: Request) -> None:
            send_lag.append(time.perf_counter() - scheduled)
            if await post(http, req, statuses):
                latencies.append(time.perf_counter() - scheduled)

        start = time.perf_counter() + 0.05
        tasks: list[asyncio.Task[None]] = []
        for n, req in enumerate(requests):
            scheduled = start + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled, req)))
        offered_s = time.perf_counter() - start
        _done, pending = await asyncio.wait(tasks, timeout=drain_s)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - start
    lag = sorted(send_lag)
    return {
        "offered_per_s": rate,
        "requests": len(requests),
        "offered_over_s": round(offered_s, 2),
        "accepted": len(latencies),
        "achieved_per_s": len(latencies) / elapsed,
        "unfinished": len(pending),
        "send_lag_p99_ms": lag[int(len(lag) * 0.99) - 1] * 1000 if lag else None,
        **latency_ms(latencies),
        "statuses": dict(statuses),
    }


# ---------------------------------------------------------------------------------------------
# The INSERT + COMMIT ceiling

CEILING_TABLE = """
CREATE TABLE IF NOT EXISTS bench_journal (
    id bigserial PRIMARY KEY,
    channel_id varchar(36) NOT NULL,
    external_id varchar(300) NOT NULL,
    payload bytea NOT NULL,
    headers jsonb NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'pending',
    error text,
    attempts integer NOT NULL DEFAULT 0,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    UNIQUE (channel_id, external_id)
);
CREATE INDEX IF NOT EXISTS bench_journal_unfinished ON bench_journal (status, id)
    WHERE status IN ('pending', 'failed');
"""


async def insert_ceiling(dsn: str, rows: list[Request], concurrency: int) -> dict[str, Any]:
    """One-row INSERT … ON CONFLICT DO NOTHING RETURNING id, each its own transaction (so one
    COMMIT per row), on `concurrency` connections, into a table shaped like the journal (same
    columns, unique key and partial index) with the same bodies the webhooks get."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        await pool.execute(CEILING_TABLE)
        await pool.execute("TRUNCATE bench_journal")
        metas = [json.dumps({"headers": h, "query": {}, "url": u}) for u, _, h in rows]
        it = iter(enumerate(rows))
        latencies: list[float] = []

        async def one_connection() -> None:
            async with pool.acquire() as conn:
                insert = await conn.prepare(
                    "INSERT INTO bench_journal (channel_id, external_id, payload, headers) "
                    "VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING RETURNING id"
                )
                for i, (_, body, _) in it:
                    t = time.perf_counter()
                    await insert.fetchval("bench-channel", f"ext-{i}", body, metas[i])
                    latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        await pool.execute("DROP TABLE bench_journal")
    finally:
        await pool.close()
    return {"rows": len(rows), "per_s": len(rows) / elapsed, **latency_ms(latencies)}


# ---------------------------------------------------------------------------------------------
# The journal as the worker leaves it


async def event_counts(conn: asyncpg.Connection, above_id: int = 0) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM events WHERE id > $1 GROUP BY status", above_id
    )
    return {r["status"]: int(r["n"]) for r in rows}


async def max_event_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM events"))


async def outcome_counts(conn: asyncpg.Connection) -> dict[str, int]:
    out = {}
    for table in ("conversations", "messages", "leads", "activities", "tasks"):
        out[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    return out


async def drain(
    conn: asyncpg.Connection, above_id: int, total: int, started: float, limit_s: float
) -> dict[str, Any]:
    """Poll until no event above `above_id` is pending, or the time is up."""
    first_done_at: float | None = None
    done = 0
    trace: list[tuple[float, int]] = []
    while True:
        counts = await event_counts(conn, above_id)
        now = time.perf_counter()
        done = sum(v for k, v in counts.items() if k != "pending")
        trace.append((round(now - started, 2), done))
        if done and first_done_at is None:
            first_done_at = now
        if counts.get("pending", 0) == 0 or now - started >= limit_s:
            break
        await asyncio.sleep(0.25)
    elapsed = now - started
    steady = None
    if first_done_at is not None and now > first_done_at + 0.5:
        steady = done / (now - first_done_at)
    return {
        "events": total,
        "done": done,
        "left": total - done,
        "statuses": counts,
        "seconds_from_worker_start": round(elapsed, 2),
        "seconds_to_first_done": round(first_done_at - started, 2) if first_done_at else None,
        "per_s": done / elapsed if elapsed else 0.0,
        "per_s_after_first": steady,
        "finished": total == done,
        "trace": trace[:: max(1, len(trace) // 40)],
    }


# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    requests: int
    concurrency: int
    rate: int
    rate_seconds: float
    backlog_limit_s: float
    flow_seconds: float
    flow_drain_s: float
    profile: bool


def header(facts: dict[str, Any], plan: Plan) -> str:
    pg = facts["postgres"]
    return (
        f"Switchboard ingest bench — {platform.node()} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}), PostgreSQL {pg['version']} "
        f"(synchronous_commit={pg['synchronous_commit']}, fsync={pg['fsync']}, "
        f"wal_sync_method={pg['wal_sync_method']}), Redis db {REDIS_DB}\n"
        f"one web process (`switchboard web`), one worker (`switchboard worker`), load generator "
        f"in this process; {plan.requests:,} requests per endpoint at concurrency {plan.concurrency}"
    )


def ok(flag: bool) -> str:
    return "MET" if flag else "NOT MET"


async def run(plan: Plan) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "plan": plan.__dict__,
        "targets": TARGETS,
    }
    logs = RESULTS / "ingest-logs"
    switchboard = console_script("switchboard")
    r = aioredis.from_url(REDIS)
    await r.flushdb()
    c = plan.concurrency
    async with scratch_database("switchboard_bench") as dsn:
        results["facts"] = {"postgres": await pg_facts(dsn), "cpus": os.cpu_count()}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = os.environ | {
            "DATABASE_URL": dsn,
            "REDIS_URL": REDIS,
            "SWITCHBOARD_PUBLIC_URL": base,
            "SWITCHBOARD_RATE_LIMIT_PER_MINUTE": "10000000",
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            "SWITCHBOARD_DATA_DIR": str(logs / "data"),
        }
        print(header(results["facts"], plan), flush=True)
        form = run_json(
            [
                switchboard,
                "channels",
                "add",
                "webform",
                "--name",
                "Contactformulier website",
                "--json",
                "--config",
                json.dumps({"rate_limit_per_minute": 10000000}),
            ],
            env,
        )
        phone = run_json(
            [
                switchboard,
                "channels",
                "add",
                "telephony",
                "--name",
                "Twilio hoofdnummer",
                "--json",
                "--config",
                json.dumps({"dialect": "twilio", "twilio_auth_token": TWILIO_TOKEN}),
            ],
            env,
        )
        make = Deliveries(base, form, phone, seed=42)

        # 1. The machine's ceiling, before anything else holds connections.
        ceiling_rows = [make.webform() for _ in range(plan.requests)]
        meter = CpuMeter({"bench": os.getpid()})
        meter.start()
        pre = await insert_ceiling(dsn, ceiling_rows, c)
        pre["cpu"] = meter.stop()
        print(
            f"\n[1] INSERT+COMMIT ceiling (asyncpg, {c} connections, journal-shaped table): "
            f"{pre['per_s']:,.0f} rows/s, p50 {pre['p50_ms']:.1f} ms, p99 {pre['p99_ms']:.1f} ms"
            f"\n    {cpu_text(pre['cpu'])}",
            flush=True,
        )

        server = Service(
            "web", [switchboard, "web", "--port", str(port)], env, logs / "web.log"
        ).start()
        worker: Service | None = None
        profiles: dict[str, Path] = {}
        try:
            await wait_http_ok(base + "/healthz", 60, server)
            # Warm up the pools and caches of both endpoints; not counted.
            await closed_loop(iter([make.mixed() for _ in range(1000)]), c)

            def meter_for(*extra: tuple[str, int]) -> CpuMeter:
                m = CpuMeter({"bench": os.getpid(), "server": server.pid, **dict(extra)})
                m.start()
                return m

            # 2. Accept rate, closed loop.
            print(f"\n[2] accepted deliveries, closed loop, {c} in flight", flush=True)
            for name, build in (("webform", make.webform), ("twilio", make.twilio)):
                reqs = [build() for _ in range(plan.requests)]
                prof = (
                    Profiler(server.pid, logs / f"web-{name}.pyspy.txt") if plan.profile else None
                )
                m = meter_for()
                x = await closed_loop(iter(reqs), c)
                x["cpu"] = m.stop()
                if prof is not None and (p := prof.stop()) is not None:
                    profiles[f"web-{name}"] = p
                results[name] = x
                print(
                    f"    {name:8} {x['per_s']:7,.0f}/s accepted   p50 {x['p50_ms']:6.1f} ms  "
                    f"p99 {x['p99_ms']:6.1f} ms  max {x['max_ms']:6.0f} ms  {x['statuses']}   "
                    f"target ≥ {TARGETS['accept_per_s']:,}/s: {ok(x['per_s'] >= TARGETS['accept_per_s'])}"
                    f"\n             {cpu_text(x['cpu'])}",
                    flush=True,
                )

            # 3. Latency at a fixed offered rate, open loop.
            print(
                f"\n[3] latency at {plan.rate:,} deliveries/s offered for {plan.rate_seconds:.0f} s "
                "(open loop; latency from the scheduled send time)",
                flush=True,
            )
            for name, build in (("webform", make.webform), ("twilio", make.twilio)):
                reqs = [build() for _ in range(int(plan.rate * plan.rate_seconds))]
                m = meter_for()
                x = await open_loop(reqs, plan.rate, 512, drain_s=plan.rate_seconds * 4 + 10)
                x["cpu"] = m.stop()
                results[f"{name}_at_rate"] = x
                print(
                    f"    {name:8} achieved {x['achieved_per_s']:6,.0f}/s  p50 {x['p50_ms']:7.1f} ms"
                    f"  p90 {x['p90_ms']:7.1f} ms  p99 {x['p99_ms']:7.1f} ms  {x['statuses']}"
                    f"{'  unfinished ' + str(x['unfinished']) if x['unfinished'] else ''}   "
                    f"target p99 ≤ {TARGETS['p99_ms_at_1000']} ms: "
                    f"{ok(x['p99_ms'] <= TARGETS['p99_ms_at_1000'])}"
                    f"\n             send lag p99 {x['send_lag_p99_ms']:.1f} ms; {cpu_text(x['cpu'])}",
                    flush=True,
                )

            # 4. End to end: one worker drains everything journaled so far.
            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                backlog = (await event_counts(conn)).get("pending", 0)
                print(
                    f"\n[4] end to end, one worker process, backlog of {backlog:,} journaled "
                    f"deliveries (limit {plan.backlog_limit_s:.0f} s)",
                    flush=True,
                )
                worker = Service("worker", [switchboard, "worker"], env, logs / "worker.log")
                worker.start()
                prof = (
                    Profiler(worker.pid, logs / "worker-backlog.pyspy.txt")
                    if plan.profile
                    else None
                )
                m = meter_for(("worker", worker.pid))
                e2e = await drain(conn, 0, backlog, worker.started_at, plan.backlog_limit_s)
                e2e["cpu"] = m.stop()
                if prof is not None and (p := prof.stop()) is not None:
                    profiles["worker-backlog"] = p
                e2e["outcomes"] = await outcome_counts(conn)
                results["e2e_backlog"] = e2e
                steady = e2e["per_s_after_first"] or 0.0
                print(
                    f"    {e2e['done']:,} of {backlog:,} done in {e2e['seconds_from_worker_start']:.1f} s"
                    f" from worker start = {e2e['per_s']:,.0f} messages/s "
                    f"({steady:,.0f}/s after the first, which took "
                    f"{e2e['seconds_to_first_done']} s){'' if e2e['finished'] else '  [time limit]'}"
                    f"   target ≥ {TARGETS['e2e_per_s']:,}/s: {ok(e2e['per_s'] >= TARGETS['e2e_per_s'])}"
                    f"\n             events {e2e['statuses']}; created {e2e['outcomes']}"
                    f"\n             {cpu_text(e2e['cpu'])}",
                    flush=True,
                )
                worker.stop()

                # 5. End to end while deliveries flow: a fresh worker, a fresh queue.
                await conn.execute("UPDATE events SET status = 'ignored' WHERE status = 'pending'")
                await r.flushdb()
                worker = Service("worker", [switchboard, "worker"], env, logs / "worker2.log")
                worker.start()
                probe_from = await max_event_id(conn)
                await closed_loop(iter([make.webform()]), 1)
                await drain(conn, probe_from, 1, worker.started_at, 60)
                marker = await max_event_id(conn)
                print(
                    f"\n[5] end to end while deliveries flow: web form and Twilio alternately, "
                    f"{c} in flight for {plan.flow_seconds:.0f} s, the same worker running",
                    flush=True,
                )
                m = meter_for(("worker", worker.pid))
                t0 = time.perf_counter()
                flow_iter = (make.mixed() for _ in range(10_000_000))
                x = await closed_loop(flow_iter, c, until=t0 + plan.flow_seconds)
                window = time.perf_counter() - t0
                counts = await event_counts(conn, marker)
                x["cpu"] = m.stop()
                done_in_window = sum(v for k, v in counts.items() if k != "pending")
                after = await drain(
                    conn, marker, x["accepted"], time.perf_counter(), plan.flow_drain_s
                )
                flow = {
                    "accept": x,
                    "window_s": round(window, 2),
                    "processed_in_window": done_in_window,
                    "processed_per_s": done_in_window / window,
                    "backlog_at_end": counts.get("pending", 0),
                    "drain_after": {
                        k: after[k]
                        for k in ("done", "left", "seconds_from_worker_start", "finished")
                    },
                    "statuses": after["statuses"],
                }
                results["e2e_flowing"] = flow
                print(
                    f"    accepted {x['per_s']:,.0f}/s (p99 {x['p99_ms']:.0f} ms), processed "
                    f"{flow['processed_per_s']:,.0f} messages/s in the same {window:.0f} s; "
                    f"{flow['backlog_at_end']:,} pending at the end, "
                    f"{after['left']:,} still pending {after['seconds_from_worker_start']:.0f} s later"
                    f"   target ≥ {TARGETS['e2e_per_s']:,}/s: "
                    f"{ok(flow['processed_per_s'] >= TARGETS['e2e_per_s'])}"
                    f"\n             {cpu_text(x['cpu'])}",
                    flush=True,
                )
                journaled = await event_counts(conn)
                results["journal_total"] = journaled
            finally:
                await conn.close()
        finally:
            if worker is not None:
                worker.stop()
            code = server.stop()
            results["web_exit_code"] = code

        # 6. The ceiling again, now that the server is gone: the machine may have drifted.
        post = await insert_ceiling(dsn, ceiling_rows, c)
        print(
            f"\n[6] INSERT+COMMIT ceiling again after the run: {post['per_s']:,.0f} rows/s "
            f"(p99 {post['p99_ms']:.1f} ms)",
            flush=True,
        )
        results["ceiling_before"], results["ceiling_after"] = pre, post
    await r.flushdb()
    await r.aclose()

    ceiling = (pre["per_s"] + post["per_s"]) / 2
    results["ceiling_per_s"] = ceiling
    print("\nSummary (targets from issue 2)")
    rows: list[tuple[str, str, str, bool]] = []
    for name in ("webform", "twilio"):
        v = results[name]["per_s"]
        rows.append(
            (
                f"{name} deliveries accepted/s",
                f"{v:,.0f}",
                f"≥ {TARGETS['accept_per_s']:,}",
                v >= 2000,
            )
        )
    for name in ("webform", "twilio"):
        v = results[f"{name}_at_rate"]["p99_ms"]
        rows.append((f"{name} p99 at {plan.rate:,}/s offered", f"{v:,.1f} ms", "≤ 25 ms", v <= 25))
    for name in ("webform", "twilio"):
        v = results[name]["per_s"] / ceiling
        results[f"{name}_over_ceiling"] = v
        rows.append(
            (
                f"{name} accepted / INSERT+COMMIT ceiling ({ceiling:,.0f}/s)",
                f"{v:.2f}",
                "≥ 0.50",
                v >= 0.5,
            )
        )
    v = results["e2e_backlog"]["per_s"]
    rows.append(("end to end, one worker, backlog (messages/s)", f"{v:,.0f}", "≥ 1,000", v >= 1000))
    v = results["e2e_flowing"]["processed_per_s"]
    rows.append(("end to end, one worker, while flowing", f"{v:,.0f}", "≥ 1,000", v >= 1000))
    width = max(len(r[0]) for r in rows)
    for label, value, target, met in rows:
        print(f"  {label:<{width}}  {value:>10}   target {target:<8}  {ok(met)}")

    if profiles:
        results["profiles"] = {}
        for name, path in profiles.items():
            top = top_frames(path, n=15)
            results["profiles"][name] = top | {"file": str(path.relative_to(ROOT))}
            print(f"\npy-spy {name}: {top['samples']} samples; top self time (% of samples)")
            for frame, share in top["self"]:
                print(f"  {share:5.1f}  {frame}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 requests, short phases")
    parser.add_argument("--requests", type=int, help="requests per endpoint (20,000; quick 2,000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=int, default=1000, help="offered deliveries/s (1,000)")
    parser.add_argument("--profile", action="store_true", help="py-spy the server and the worker")
    args = parser.parse_args()
    q = args.quick
    plan = Plan(
        requests=args.requests or (2_000 if q else 20_000),
        concurrency=args.concurrency,
        rate=args.rate,
        rate_seconds=3 if q else 10,
        backlog_limit_s=15 if q else 60,
        flow_seconds=6 if q else 20,
        flow_drain_s=5 if q else 15,
        profile=args.profile,
    )
    started = time.perf_counter()
    results = asyncio.run(asyncio.wait_for(run(plan), timeout=900))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwall time {results['wall_s']:.0f} s; results in bench/results/ingest.json")


if __name__ == "__main__":
    main()
