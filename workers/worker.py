"""The arq worker: its functions, cron jobs and the clients its jobs share."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Worker

from channels import egress
from inbox.attachments import FileStore
from inbox.db import make_engine, make_sessions
from inbox.ingest.journal import asyncpg_dsn
from inbox.ingest.pipeline import Policy
from inbox.settings import Settings
from workers import bot as chat
from workers import webhooks
from workers.dedup import duplicate_clusters
from workers.jobs import (
    Ctx,
    Drainer,
    process_event,
    recover_pending,
    replay_events,
    send_message,
)
from workers.mailbox import SESSION_S, schedule_mailboxes, sync_mailbox
from workers.sla import (
    deliver_notifications,
    drain_queues,
    send_acknowledgements,
    sweep_sla,
    wake_snoozed,
)


def policy_from(settings: Settings) -> Policy:
    return Policy(
        files=FileStore(settings.data_dir.expanduser().resolve() / "files"),
        region=settings.default_region,
        task_due=timedelta(hours=settings.task_due_hours),
        callback_due=timedelta(hours=settings.callback_due_hours),
        match=settings.match_config(),
    )


CRON_JOBS = [
    cron(schedule_mailboxes, second={5, 35}, unique=True, run_at_startup=True),
    cron(sweep_sla, second={0, 30}, unique=True, run_at_startup=False),
    cron(wake_snoozed, second={15, 45}, unique=True, run_at_startup=False),
    cron(drain_queues, second=set(range(0, 60, 10)), unique=True, run_at_startup=False),
    cron(deliver_notifications, second=set(range(2, 60, 5)), unique=True, run_at_startup=False),
    cron(send_acknowledgements, second=set(range(1, 60, 5)), unique=True, run_at_startup=False),
    cron(duplicate_clusters, minute={17}, second={0}, unique=True, run_at_startup=False),
    *chat.CRON_JOBS,
    cron(webhooks.deliver_webhooks, second=set(range(60)), unique=True, run_at_startup=True),
]


def make_worker(
    settings: Settings,
    database_url: str,
    redis_url: str,
    *,
    handle_signals: bool = True,
    burst: bool = False,
    extra_ctx: dict[str, Any] | None = None,
) -> Worker:
    """A worker bound to these engines; it opens its database pool on startup."""

    async def startup(ctx: Ctx) -> None:
        engine = make_engine(database_url, pool_size=min(settings.worker_max_jobs, 20))
        ctx["engine"] = engine
        ctx["sessions"] = make_sessions(engine)
        ctx["policy"] = policy_from(settings)
        ctx["batch"] = settings.ingest_batch
        ctx["dedup_weights"] = settings.dedup_weights_file()
        egress.configure(settings.allow_private_urls)  # the SSRF guard of channel calls
        ctx["egress"] = egress.for_channels(settings.allow_private_urls)
        ctx.update(extra_ctx or {})
        await chat.startup(ctx)
        webhooks.startup(ctx, settings)
        if burst:
            # Drain what is journaled now; the jobs queued meanwhile drain what comes later.
            await recover_pending(ctx)
        else:
            # The journal is the queue: drainers claim pending events (left by a crash too).
            ctx["drainer"] = Drainer(ctx, asyncpg_dsn(database_url), loops=settings.worker_drainers)
            await ctx["drainer"].start()

    async def shutdown(ctx: Ctx) -> None:
        if "drainer" in ctx:
            await ctx["drainer"].stop()
        await chat.shutdown(ctx)
        await webhooks.shutdown(ctx)
        engine = ctx.get("engine")
        if engine is not None:
            await engine.dispose()

    return Worker(
        functions=[
            process_event,
            replay_events,
            send_message,
            func(sync_mailbox, timeout=SESSION_S + 120),
            deliver_notifications,
            *chat.FUNCTIONS,
            webhooks.deliver_webhooks,
        ],
        # A burst worker (tests, `worker --burst`) drains the queue and stops: no cron jobs.
        cron_jobs=[] if burst else CRON_JOBS,
        redis_settings=RedisSettings.from_dsn(redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=settings.worker_max_jobs,
        keep_result=0,
        handle_signals=handle_signals,
        burst=burst,
        poll_delay=0.05,
    )


async def close_worker(worker: Worker) -> None:
    """Close an arq worker so that its shutdown always runs.

    arq's close() waits for the jobs still running and only then runs on_shutdown, which stops
    the drainers and disposes of the engine. A job that ended cancelled (a cron job caught by a
    stop, say) makes that wait raise instead, and the shutdown never runs: the drainers would
    go on claiming events. So the jobs are awaited here first, however they end."""
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    worker.tasks.clear()
    await worker.close()
