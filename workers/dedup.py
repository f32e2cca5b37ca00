"""The periodic duplicate job: likely duplicate contacts and relations, stored as clusters.

Contact pairs are scored with the refit in the data folder (`switchboard duplicates train`; read
again when it changes) or else the shipped weights. One run at a time (arq's unique cron plus a
transaction-level advisory lock), idempotent: pairs already stored are updated, dismissed ones
stay dismissed.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import text

from crm.dedup import find_clusters, load_weights
from inbox.db import Sessions

log = structlog.get_logger(__name__)
LOCK = 0x5B_D0_0D  # pg_try_advisory_xact_lock key of this job


async def duplicate_clusters(ctx: dict[str, Any]) -> int:
    sessions: Sessions = ctx["sessions"]
    async with sessions() as session, session.begin():
        if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK}):
            return -1  # another worker is at it
        # A refit (`switchboard duplicates train`) in the data folder, else the shipped weights.
        stored = await find_clusters(session, load_weights(ctx.get("dedup_weights")))
    if stored:
        log.info("duplicate pairs stored", count=stored)
    return stored
