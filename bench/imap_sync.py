"""IMAP sync benchmark against a local Dovecot: raw imap-tools fetch rate vs. Switchboard's sync
(journaled messages/s), end to end with one worker (and its peak RSS), and new-mail latency
with IDLE. Loopback only; the database and Dovecot are made for the run and removed after.

    uv run python bench/imap_sync.py [--quick] [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from mail_peers import start_dovecot  # noqa: E402

from channels.mail import imap  # noqa: E402
from inbox.db import make_engine, make_sessions, upgrade  # noqa: E402
from inbox.ingest.channels import add_channel  # noqa: E402
from workers.mailbox import sync_mailbox  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/14"
USER, PASSWORD = "bench@switchboard.test", "bench-secret"


def message(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Klant {i} <klant{i}@bouw{i % 300}.nl>"
    msg["To"] = "info@switchboard.test"
    msg["Subject"] = f"Offerte aanvraag {i}"
    msg["Date"] = "Sun, 22 Nov 2026 09:30:00 +0100"
    msg["Message-ID"] = f"<bench-{i}@bouw{i % 300}.nl>"
    body = (
        "Goedemorgen,\n\nGraag ontvang ik een offerte voor kozijnen.\n"
        + "Met vriendelijke groet.\n" * (i % 40 + 40)
    )
    msg.set_content(body)
    if i % 10 == 0:
        msg.add_attachment(
            b"%PDF-1.4 bench " * 600, maintype="application", subtype="pdf", filename="tekening.pdf"
        )
    return msg.as_bytes()


def fill_maildir(root: Path, n: int) -> None:
    """Write the messages straight into the user's maildir: Dovecot indexes them on first access."""
    box = root / "mail" / USER
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for i in range(n):
        (box / "new" / f"{stamp}.M{i}P1.bench").write_bytes(message(i))
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "nobody:nogroup", str(root / "mail")], check=True)


def raw_fetch_rate(config: dict[str, Any], n: int) -> float:
    box = imap.connect(config)
    try:
        start, last, fetched = time.perf_counter(), 0, 0
        while fetched < n:
            batch = imap.fetch_new(box, "INBOX", last, 200)
            if not batch:
                break
            fetched += len(batch)
            last = batch[-1][0]
        return fetched / (time.perf_counter() - start)
    finally:
        box.logout()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--messages", type=int, default=None)
    args = parser.parse_args()
    n = args.messages or (1_000 if args.quick else 10_000)

    dovecot = start_dovecot()
    dovecot.add_user(USER, PASSWORD)
    name = f"switchboard_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+asyncpg://postgres@127.0.0.1/{name}"
    results: dict[str, Any] = {"messages": n}
    engine = None
    try:
        t = time.perf_counter()
        fill_maildir(dovecot.root, n)
        config = dovecot.imap_config(USER)
        box = imap.connect(config)
        state = imap.folder_state(box, "INBOX")
        box.logout()
        assert state.messages == n, f"Dovecot sees {state.messages} of {n}"
        results["seed_s"] = time.perf_counter() - t

        results["raw_fetch_per_s"] = await asyncio.to_thread(raw_fetch_rate, config, n)

        await asyncio.to_thread(upgrade, url)
        engine = make_engine(url, pool_size=4)
        sessions = make_sessions(engine)
        async with sessions() as session, session.begin():
            channel = await add_channel(session, "email", "Bench", {"imap": config})
        ctx = {"engine": engine, "sessions": sessions, "mailbox_session_s": 0}
        t = time.perf_counter()
        imported = await sync_mailbox(ctx, channel.id)
        results["sync_per_s"] = imported / (time.perf_counter() - t)
        results["ratio"] = results["sync_per_s"] / results["raw_fetch_per_s"]

        env = os.environ | {
            "DATABASE_URL": url.replace("+asyncpg", ""),
            "REDIS_URL": REDIS,
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
        }
        import redis.asyncio as aioredis

        r = aioredis.from_url(REDIS)
        await r.flushdb()
        await r.aclose()
        worker = subprocess.Popen(
            [sys.executable, "-m", "inbox.service.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        conn = await asyncpg.connect(f"{PG}/{name}")
        try:
            t, left, rss = time.perf_counter(), n, 0.0
            deadline = t + (120 if args.quick else 600)
            while left and time.perf_counter() < deadline:
                await asyncio.sleep(0.5)
                left = int(
                    await conn.fetchval("SELECT count(*) FROM events WHERE status = 'pending'")
                )
                rss = max(rss, peak_rss_mb(worker.pid))
            results["end_to_end_per_s"] = (n - left) / (time.perf_counter() - t)
            results["end_to_end_done"] = n - left
            results["worker_peak_rss_mb"] = rss
        finally:
            worker.terminate()  # its own mailbox sync may sit in IDLE for a while: do not wait
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=30)

        # New mail while the sync waits in IDLE: APPEND-to-journaled latency.
        latencies = []
        waiting = asyncio.create_task(sync_mailbox(ctx | {"mailbox_session_s": 25}, channel.id))
        await asyncio.sleep(1.5)
        appender = imap.connect(config)
        try:
            for i in range(10):
                before = int(await conn.fetchval("SELECT count(*) FROM events"))
                t = time.perf_counter()
                await asyncio.to_thread(
                    appender.append, message(n + i), "INBOX", dt=None, flag_set=[]
                )
                while (
                    int(await conn.fetchval("SELECT count(*) FROM events")) == before
                    and time.perf_counter() - t < 10
                ):
                    await asyncio.sleep(0.02)
                latencies.append(time.perf_counter() - t)
                await asyncio.sleep(0.3)
        finally:
            appender.logout()
        await waiting
        await conn.close()
        latencies.sort()
        results["idle_latency_p50_s"] = latencies[len(latencies) // 2]
        results["idle_latency_max_s"] = latencies[-1]
    finally:
        if engine is not None:
            await engine.dispose()
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
        dovecot.stop()

    print(f"messages: {n} in one Dovecot mailbox (seeded in {results['seed_s']:.1f} s)")
    print(f"  raw imap-tools fetch:   {results['raw_fetch_per_s']:7.0f} messages/s")
    print(
        f"  Switchboard sync:       {results['sync_per_s']:7.0f} messages/s journaled   (target ≥ 300/s)"
    )
    print(f"  sync / raw fetch:       {results['ratio']:7.2f}   (target ≥ 0.6)")
    print(
        f"  end to end, one worker: {results['end_to_end_per_s']:7.0f} messages/s ({results['end_to_end_done']} processed), worker peak RSS {results['worker_peak_rss_mb']:.0f} MB"
    )
    print(
        f"  new mail with IDLE:     p50 {results['idle_latency_p50_s']:.2f} s, max {results['idle_latency_max_s']:.2f} s   (target ≤ 2 s)"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "imap_sync.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
