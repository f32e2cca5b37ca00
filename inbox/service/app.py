"""The aiohttp application: webhooks, health, metrics (the API and inbox mount here too)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aiohttp import web
from arq.connections import ArqRedis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

import inbox.api.availability  # (registers people's availability and team routing)
import inbox.api.bot  # (registers the bot's routes)
import inbox.api.canned  # (registers the canned replies' routes)
import inbox.api.channels  # (registers the channel admin routes)
import inbox.api.conversations  # (registers conversations and messages)
import inbox.api.crm  # (registers contacts, relations, merges, duplicates)
import inbox.api.leads  # (registers listing, qualifying and converting leads)
import inbox.api.lists  # (registers the configurable lists and custom fields)
import inbox.api.match  # (registers the matcher's routes)
import inbox.api.notifications  # (registers a person's notifications)
import inbox.api.opportunities  # (registers pipelines and opportunities)
import inbox.api.originals  # (registers a message's original and attachment downloads)
import inbox.api.page  # (registers the inbox page's start-up data and list)
import inbox.api.panel  # (registers the customer panel and record cards)
import inbox.api.projects  # (registers projects, their timeline and linking)
import inbox.api.relation_dashboard  # (registers the relation dashboard)
import inbox.api.reports  # (registers the reports)
import inbox.api.routing  # (registers the routing rules)
import inbox.api.search  # (registers search)
import inbox.api.sla  # (registers SLA policies, business hours, a conversation's SLA)
import inbox.api.subscriptions  # (registers outbound webhook subscriptions)
import inbox.api.tasks  # noqa: F401  (registers tasks)
from channels import egress
from inbox import web as web_pages
from inbox.api import session as api_session
from inbox.api import webchat as webchat_routes
from inbox.api import ws
from inbox.db import make_engine, make_sessions
from inbox.ingest import webhooks
from inbox.ingest.journal import FastJournal, asyncpg_dsn, keep_connection
from inbox.ingest.webhooks import JOURNAL
from inbox.metrics import REGISTRY
from inbox.settings import Settings
from inbox.state import ARQ, CHANNELS, ENGINE, SESSIONS, SETTINGS, ChannelCache

log = structlog.get_logger(__name__)


async def healthz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        async with request.app[SESSIONS]() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), 2)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await asyncio.wait_for(request.app[ARQ].ping(), 2)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


async def metrics_view(request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def create_app(settings: Settings, database_url: str, redis_url: str) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    egress.configure(settings.allow_private_urls)  # Telegram's setWebhook when a channel is added
    app[CHANNELS] = ChannelCache()

    async def engines(app: web.Application) -> AsyncIterator[None]:
        engine = make_engine(database_url, pool_size=settings.db_pool_size)
        app[ENGINE] = engine
        app[SESSIONS] = make_sessions(engine)
        # A few connections carry the accept path: each insert holds one for about a millisecond.
        app[JOURNAL] = FastJournal(
            await asyncpg.create_pool(
                asyncpg_dsn(database_url),
                min_size=1,
                max_size=min(8, settings.db_pool_size),
                reset=keep_connection,
            )
        )
        # Connected on first use, not now: a web process started while Redis is away still
        # journals deliveries (and /healthz names Redis).
        app[ARQ] = ArqRedis.from_url(redis_url)
        yield
        await app[ARQ].aclose()
        await app[JOURNAL].close()
        await engine.dispose()

    app.cleanup_ctx.append(engines)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    webhooks.add_routes(app)
    api_session.add_routes(app)
    ws.add_routes(app)
    web_pages.add_routes(app)
    webchat_routes.add_routes(app)
    return app


def with_worker(app: web.Application, start_worker: object) -> None:
    """Run an arq worker inside the web process (the `serve` command)."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        worker = start_worker()  # type: ignore[operator]
        task = asyncio.create_task(worker.main())
        yield
        # Stop polling before the pool closes, or a poll in flight dies on a closed connection;
        # close() still waits for the jobs already running.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        from workers.worker import close_worker

        await close_worker(worker)

    app.cleanup_ctx.append(run)
