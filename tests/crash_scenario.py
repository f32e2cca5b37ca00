"""The crash-and-restart scenario of the fault suite (tests/faults/test_crash.py runs it small,
bench/faults.py runs it full): `switchboard web` and `switchboard worker` as real processes on a
throw-away database and a Redis server of its own, a mix of deliveries sent by a sender that
retries until it gets a 2xx (as the providers do), and faults injected while they flow.

Faults: the worker SIGKILLed three times (and restarted), Redis stopped and started again, every
backend of the service terminated in PostgreSQL (pg_terminate_backend), the web process SIGKILLed
while requests are in flight (and restarted). Then the journal and the CRM are counted by SQL.
"""

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
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import asyncpg
from fault_peers import DIALECTS, Dialect
from support import call_log, fixture_bytes

from inbox.db import make_engine, make_sessions, upgrade
from inbox.ingest.channels import add_channel

PG = os.environ.get("SWITCHBOARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
KINDS = {d.name: d for d in DIALECTS}
MIX = ("webform-json", "twilio", "generic", "telegram")
FINAL = ("processed", "failed", "ignored")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@dataclass
class Proc:
    """A process this scenario starts, in its own process group, its output in a log."""

    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def signal(self, sig: int, wait_s: float = 10) -> None:
        """Signal the process's group (even when the leader is gone: no orphan lives on)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@dataclass
class Delivery:
    dialect: str
    external_id: str
    body: bytes
    answers: list[int] = field(default_factory=list)  # HTTP statuses; 0 = no answer

    @property
    def accepted(self) -> bool:
        return any(200 <= s < 300 for s in self.answers)


def deliveries(n: int, run: str) -> list[Delivery]:
    """n deliveries of the mix, each with its own provider id; one sender in three repeats."""
    out = []
    form = json.loads(fixture_bytes("webform", "json__contact.json"))
    update = json.loads(fixture_bytes("telegram", "text__private.json"))
    twilio = parse_qsl(fixture_bytes("telephony", "twilio__completed.txt").decode().strip())
    for i in range(n):
        kind = MIX[i % len(MIX)]
        who = i // 3
        if kind == "webform-json":
            ext = f"{run}-form-{i}"
            body = json.dumps(form | {"submission_id": ext, "email": f"k{who}@faults.test"})
        elif kind == "twilio":
            sid, phone = f"CA{run}{i:08d}", f"+3161{who:07d}"
            ext = (
                f"{sid}:{dict(twilio)['SequenceNumber']}"  # Twilio's journal key: one per callback
            )
            body = urlencode(
                [(k, sid if k == "CallSid" else phone if k in ("From", "Caller") else v)
                 for k, v in twilio]
            )  # fmt: skip
        elif kind == "generic":
            ext = f"{run}-call-{i}"
            body = call_log(ext, f"06-13{who:06d}", "missed" if i % 4 == 0 else "answered", i)
            body = body.decode()
        else:
            ext = str(10_000_000 + i)
            message = update["message"] | {
                "message_id": i,
                "from": update["message"]["from"] | {"id": 7_000_000 + who},
                "chat": update["message"]["chat"] | {"id": 7_000_000 + who},
            }
            body = json.dumps(update | {"update_id": int(ext), "message": message})
        out.append(Delivery(kind, ext, body if isinstance(body, bytes) else body.encode()))
    return out


@dataclass
class Figures:
    faults: list[str] = field(default_factory=list)
    sent: int = 0
    accepted: int = 0
    processed: int = 0
    lost: int = 0
    duplicated: int = 0
    server_errors: int = 0
    unauthorized_2xx: int = 0
    health_while_redis_down: str = ""
    lost_by: Counter[str] = field(default_factory=Counter)  # dialect: what became of them
    seconds: float = 0.0
    unanswered: int = 0  # requests a fault left without an answer (the sender sent them again)

    def row(self) -> dict[str, Any]:
        return {
            "faults injected": len(self.faults),
            "deliveries sent": self.sent,
            "accepted": self.accepted,
            "processed": self.processed,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "5xx": self.server_errors,
            "unauthorized 2xx": self.unauthorized_2xx,
        }


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    name = f"switchboard_faults_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres", timeout=10)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{PG}/{name}"
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


class Scenario:
    def __init__(self, n: int, workdir: Path, dsn: str) -> None:
        self.n, self.workdir, self.dsn = n, workdir, dsn
        self.url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        self.redis_port, self.web_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        keep = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        self.env = keep | {
            "DATABASE_URL": self.url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "SWITCHBOARD_DATA_DIR": str(workdir),
            "SWITCHBOARD_PUBLIC_URL": self.base,
            "SWITCHBOARD_RATE_LIMIT_PER_MINUTE": "0",
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            "SWITCHBOARD_DB_POOL_SIZE": "5",
            "PYTHONUNBUFFERED": "1",
        }
        cli = [sys.executable, "-m", "inbox.service.cli"]
        self.redis = Proc(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "no"],
            self.env, workdir / "redis.log",
        )  # fmt: skip
        self.web = Proc(
            [*cli, "web", "--port", str(self.web_port), "--processes", "1"],
            self.env,
            workdir / "web.log",
        )
        self.worker = Proc([*cli, "worker"], self.env, workdir / "worker.log")
        self.figures = Figures()
        self.channels: dict[str, tuple[str, dict[str, Any]]] = {}

    async def until(self, what: str, check: Callable[[], Awaitable[bool]], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if await check():
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"not within {seconds}s: {what}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.log.name}\n" + p.log.read_text(errors="replace")[-2000:]
            for p in (self.web, self.worker)
            if p.log.exists()
        )

    async def healthy(self) -> bool:
        async with aiohttp.ClientSession() as http, http.get(f"{self.base}/healthz") as r:
            return r.status == 200

    async def start_redis(self) -> None:
        self.redis.start()
        await self.until("redis listens", lambda: asyncio.sleep(0, listening(self.redis_port)), 10)

    async def start_web(self) -> None:
        self.web.start()
        await self.until("the web process is healthy", self.healthy, 60)

    async def set_up(self) -> None:
        await asyncio.to_thread(upgrade, self.url)
        engine = make_engine(self.url, pool_size=1)
        async with make_sessions(engine)() as session, session.begin():
            for name in MIX:
                d = KINDS[name]
                channel = await add_channel(session, d.kind, name, dict(d.config))
                self.channels[name] = (channel.id, channel.config)
        await engine.dispose()
        await self.start_redis()
        await self.start_web()
        self.worker.start()

    async def post(self, http: aiohttp.ClientSession, d: Delivery, forged: bool = False) -> int:
        dialect: Dialect = KINDS[d.dialect]
        channel_id, config = self.channels[d.dialect]
        path = f"/webhooks/{dialect.kind}/{channel_id}"
        headers = dialect.headers(config, self.base + path, d.body)
        if forged:
            headers = {k: v + "x" if k != "Content-Type" else v for k, v in headers.items()}
        try:
            async with http.post(self.base + path, data=d.body, headers=headers) as r:
                await r.read()
                return r.status
        except (TimeoutError, aiohttp.ClientError):
            return 0

    async def send(self, d: Delivery, http: aiohttp.ClientSession) -> None:
        """Send until a 2xx, backing off like a provider (bounded)."""
        for attempt in range(60):
            status = await self.post(http, d)
            d.answers.append(status)
            if 200 <= status < 300 or 400 <= status < 500:
                return
            await asyncio.sleep(min(0.1 * 2**attempt, 1.0))

    async def inject(self, progress: Callable[[], float]) -> None:
        """The faults, each at its share of the deliveries sent."""

        async def at(share: float) -> None:
            while progress() < share:
                await asyncio.sleep(0.02)

        async def kill_worker(label: str) -> None:
            self.worker.signal(signal.SIGKILL)
            self.figures.faults.append(label)
            await asyncio.sleep(0.3)
            self.worker.start()

        await at(0.10)
        await kill_worker("worker SIGKILL 1")
        await at(0.25)
        self.redis.signal(signal.SIGTERM)
        self.figures.faults.append("redis stopped")
        await asyncio.sleep(0.5)
        async with aiohttp.ClientSession() as http, http.get(f"{self.base}/healthz") as r:
            self.figures.health_while_redis_down = f"{r.status} {await r.text()}"
        await at(0.40)
        await self.start_redis()
        self.figures.faults.append("redis restarted")
        await at(0.50)
        await kill_worker("worker SIGKILL 2")
        await at(0.60)
        conn = await asyncpg.connect(self.dsn)
        try:
            ended = await conn.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()) t"
            )
        finally:
            await conn.close()
        self.figures.faults.append(f"pg_terminate_backend x{ended}")
        await at(0.75)
        self.web.signal(signal.SIGKILL)
        self.figures.faults.append("web SIGKILL mid-request")
        await self.start_web()
        await at(0.85)
        await kill_worker("worker SIGKILL 3")

    async def run(self, concurrency: int = 8) -> Figures:
        started = time.monotonic()
        await self.set_up()
        batch = deliveries(self.n, uuid.uuid4().hex[:6])
        done = 0
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        for d in batch:
            queue.put_nowait(d)
        timeout = aiohttp.ClientTimeout(total=10)

        async def sender() -> None:
            nonlocal done
            async with aiohttp.ClientSession(timeout=timeout) as http:
                while not queue.empty():
                    d = queue.get_nowait()
                    await self.send(d, http)
                    done += 1
                    if done % 50 == 0:  # an impostor now and then: forged secret or signature
                        forged = Delivery(d.dialect, d.external_id + "-forged", d.body + b" ")
                        status = await self.post(http, forged, forged=True)
                        self.figures.unauthorized_2xx += 200 <= status < 300

        faults = asyncio.create_task(self.inject(lambda: done / len(batch)))
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        await faults
        await self.settle(batch)
        self.figures.seconds = round(time.monotonic() - started, 1)
        return self.figures

    async def settle(self, batch: list[Delivery]) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:

            async def drained() -> bool:
                left = await conn.fetchval(
                    "SELECT count(*) FROM events WHERE status NOT IN ('processed', 'failed', 'ignored')"
                )
                return int(left) == 0

            await self.until("the workers drained the journal", drained, 120)
            f = self.figures
            f.sent = len(batch)
            f.accepted = sum(d.accepted for d in batch)
            f.server_errors = sum(s >= 500 for d in batch for s in d.answers)
            f.unanswered = sum(s == 0 for d in batch for s in d.answers)
            rows = await conn.fetch(
                "SELECT e.external_id, e.status, count(m.id) AS messages FROM events e "
                "LEFT JOIN messages m ON m.event_id = e.id GROUP BY e.id"
            )
            journal = {r["external_id"]: r for r in rows}
            f.processed = sum(
                1
                for d in batch
                if d.external_id in journal and journal[d.external_id]["status"] == "processed"
            )
            for d in batch:
                row = journal.get(d.external_id)
                state = "absent" if row is None else f"{row['status']}/{row['messages']} messages"
                if d.accepted and state != "processed/1 messages":
                    f.lost_by[f"{d.dialect}: {state}"] += 1
            f.lost = sum(f.lost_by.values())
            f.duplicated = sum(max(0, r["messages"] - 1) for r in rows)
            f.duplicated += int(
                await conn.fetchval(
                    "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM activities "
                    "GROUP BY channel_id, external_id) a WHERE n > 1"
                )
            )
        finally:
            await conn.close()

    def stop(self) -> None:
        for p in (self.worker, self.web, self.redis):
            p.signal(signal.SIGKILL if p is not self.redis else signal.SIGTERM)


async def run_scenario(n: int, workdir: Path) -> Figures:
    async with scratch_database() as dsn:
        scenario = Scenario(n, workdir, dsn)
        try:
            return await scenario.run()
        finally:
            scenario.stop()
