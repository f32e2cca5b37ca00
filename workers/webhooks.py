"""arq job: send the outbound webhook outbox until nothing is due."""

from __future__ import annotations

import aiohttp
import structlog

from inbox.db import Sessions
from inbox.outbox import delivery
from inbox.outbox.delivery import Rules
from inbox.settings import Settings
from workers.jobs import Ctx
from workers.sla import clock_of, deliver_notifications

log = structlog.get_logger(__name__)

BATCH = 500  # deliveries per claim
ROUNDS = 200  # claims per job; the cron job comes back for the rest


def startup(ctx: Ctx, settings: Settings) -> None:
    rules = Rules.of(settings)
    ctx["webhook_rules"] = rules
    ctx["webhook_http"] = delivery.client(rules)


async def shutdown(ctx: Ctx) -> None:
    http = ctx.get("webhook_http")
    if isinstance(http, aiohttp.ClientSession):
        await http.close()


async def deliver_webhooks(ctx: Ctx) -> dict[str, int]:
    """Claim due deliveries, send them, record the attempts; again until none is due."""
    sessions: Sessions = ctx["sessions"]
    rules: Rules = ctx["webhook_rules"]
    http: aiohttp.ClientSession = ctx["webhook_http"]
    counts = {"delivered": 0, "failed": 0, "disabled": 0}
    for _ in range(ROUNDS):
        async with sessions() as session, session.begin():
            items = await delivery.claim(
                session, clock_of(ctx), BATCH, delivery.lease_for(rules, BATCH)
            )
        if not items:
            break
        attempts = await delivery.send_all(http, items, rules)
        async with sessions() as session, session.begin():
            disabled = await delivery.record(session, attempts, clock_of(ctx), rules)
        counts["delivered"] += sum(a.ok for a in attempts)
        counts["failed"] += sum(a.tried and not a.ok for a in attempts)
        counts["disabled"] += len(disabled)
        for d in disabled:
            log.warning("webhook subscription disabled", subscription_id=d.subscription_id)
    if counts["disabled"]:
        await deliver_notifications(ctx)
    return counts
