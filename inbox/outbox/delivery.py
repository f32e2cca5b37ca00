"""Send the outbox: claim due deliveries in order per conversation, POST them signed like the
bot API, record each attempt, back off exponentially, give up after the retry window and
disable a subscription that failed for all of it (its owner is notified)."""

from __future__ import annotations

import asyncio
import errno
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import and_, exists, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from channels.egress import Egress, NonPublicAddress, for_webhooks
from inbox.bot.external import signed_headers
from inbox.outbox.models import WebhookDelivery, WebhookSubscription
from inbox.routing.notifications import notify
from inbox.settings import Settings

CLAIM_LOCK = 0x5B0B_0013  # claims take turns, so no two workers split a conversation's order
MAX_BACKOFF_S = 3600.0
LEASE_MARGIN_S = 30.0


@dataclass(frozen=True)
class Rules:
    retry_window: timedelta
    backoff_s: float
    timeout_s: float
    concurrency: int
    allow_loopback: bool

    @property
    def egress(self) -> Egress:
        return for_webhooks(self.allow_loopback)

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            retry_window=timedelta(seconds=settings.webhook_retry_window_s),
            backoff_s=settings.webhook_backoff_s,
            timeout_s=settings.webhook_timeout_s,
            concurrency=settings.webhook_concurrency,
            allow_loopback=settings.webhook_allow_loopback,
        )


def client(rules: Rules) -> aiohttp.ClientSession:
    """The HTTP client of deliveries: behind the egress guard, no cookies, one pool."""
    connector = rules.egress.connector(limit=rules.concurrency, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


# --- claim, send, record -------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    delivery_id: uuid.UUID
    subscription_id: int
    conversation_id: int | None
    event_type: str
    payload: dict[str, Any]
    url: str
    secret: str


@dataclass(frozen=True)
class Attempt:
    id: int
    subscription_id: int
    tried: bool
    ok: bool = False
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None


async def claim(
    session: AsyncSession, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    """Due deliveries of active subscriptions whose conversation has no earlier one waiting."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
    d, e, s = WebhookDelivery, aliased(WebhookDelivery), WebhookSubscription
    blocked = exists().where(
        e.status == "pending",
        e.subscription_id == d.subscription_id,
        e.conversation_id == d.conversation_id,
        e.id < d.id,
        or_(e.next_attempt_at > now, e.leased_until > now),
    )
    rows = (
        await session.execute(
            select(
                d.id,
                d.delivery_id,
                d.subscription_id,
                d.conversation_id,
                d.event_type,
                d.payload,
                s.url,
                s.secret,
            )
            .join(s, and_(s.id == d.subscription_id, s.active))
            .where(
                d.status == "pending",
                d.next_attempt_at <= now,
                or_(d.leased_until.is_(None), d.leased_until <= now),
                ~blocked,
            )
            .order_by(d.id)
            .limit(limit)
            .with_for_update(of=d, skip_locked=True)
        )
    ).all()
    if rows:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([r.id for r in rows]))
            .values(leased_until=now + lease)
        )
    return [Claimed(*r) for r in rows]


async def post(http: aiohttp.ClientSession, item: Claimed, rules: Rules) -> Attempt:
    """One signed POST; a 2xx answer is a delivery, anything else a failed attempt."""
    raw = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = signed_headers(
        item.secret, raw, str(item.delivery_id), item.event_type, "Switchboard-Webhook/1"
    )
    started = time.perf_counter()
    try:
        try:  # this delivery's rules for a literal address; names are checked when connecting
            reason = rules.egress.refused(urlsplit(item.url).hostname or "")
        except ValueError:
            reason = None
        if reason:
            raise NonPublicAddress(errno.EACCES, f"refused destination: {reason}")
        async with http.post(
            item.url,
            data=raw,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=rules.timeout_s),
            allow_redirects=False,
        ) as response:
            code = response.status
    except TimeoutError:
        return failed_attempt(item, started, f"no answer within {rules.timeout_s:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return failed_attempt(item, started, f"{type(exc).__name__}: {exc}")
    latency = round((time.perf_counter() - started) * 1000, 2)
    ok = 200 <= code < 300
    error = None if ok else f"the receiver answered HTTP {code}"
    return Attempt(item.id, item.subscription_id, True, ok, code, latency, error)


def failed_attempt(item: Claimed, started: float, error: str) -> Attempt:
    latency = round((time.perf_counter() - started) * 1000, 2)
    return Attempt(item.id, item.subscription_id, True, False, None, latency, error[:500])


async def send_all(
    http: aiohttp.ClientSession, items: Sequence[Claimed], rules: Rules
) -> list[Attempt]:
    """Conversations in parallel, each one's deliveries in order; after a failure the rest of
    that conversation waits for the retry (not tried now)."""
    streams: dict[tuple[int, int], list[Claimed]] = {}
    for item in items:
        key = (item.subscription_id, item.conversation_id or -item.id)
        streams.setdefault(key, []).append(item)
    gate = asyncio.Semaphore(rules.concurrency)

    async def run(stream: list[Claimed]) -> list[Attempt]:
        out: list[Attempt] = []
        for n, item in enumerate(stream):
            async with gate:
                attempt = await post(http, item, rules)
            out.append(attempt)
            if not attempt.ok:
                out.extend(Attempt(i.id, i.subscription_id, False) for i in stream[n + 1 :])
                break
        return out

    results = await asyncio.gather(*(run(s) for s in streams.values()))
    return [a for stream in results for a in stream]


RECORD = """
UPDATE webhook_deliveries AS d SET
    attempts = d.attempts + CASE WHEN v.tried THEN 1 ELSE 0 END,
    status = CASE WHEN v.ok THEN 'delivered'
                  WHEN v.tried AND d.created_at <= CAST(:give_up AS timestamptz) THEN 'failed'
                  ELSE 'pending' END,
    delivered_at = CASE WHEN v.ok THEN CAST(:now AS timestamptz) ELSE d.delivered_at END,
    last_attempt_at = CASE WHEN v.tried THEN CAST(:now AS timestamptz) ELSE d.last_attempt_at END,
    status_code = CASE WHEN v.tried THEN v.code ELSE d.status_code END,
    latency_ms = CASE WHEN v.tried THEN v.latency ELSE d.latency_ms END,
    error = CASE WHEN v.tried THEN v.error ELSE d.error END,
    next_attempt_at = CASE WHEN v.tried AND NOT v.ok
        THEN CAST(:now AS timestamptz)
             + make_interval(secs => least(:cap, :base * power(2, d.attempts)))
        ELSE d.next_attempt_at END,
    leased_until = NULL
FROM unnest(CAST(:ids AS bigint[]), CAST(:tried AS boolean[]), CAST(:ok AS boolean[]),
            CAST(:codes AS bigint[]), CAST(:latencies AS float8[]), CAST(:errors AS text[]))
     AS v(id, tried, ok, code, latency, error)
WHERE d.id = v.id
"""


@dataclass(frozen=True)
class Disabled:
    subscription_id: int
    owner_id: int | None
    url: str


async def record(
    session: AsyncSession, attempts: Sequence[Attempt], now: datetime, rules: Rules
) -> list[Disabled]:
    """Every attempt in one statement; then which subscriptions failed for the whole window
    (disabled now, their owners notified)."""
    if not attempts:
        return []
    await session.execute(
        text(RECORD),
        {
            "ids": [a.id for a in attempts],
            "tried": [a.tried for a in attempts],
            "ok": [a.ok for a in attempts],
            "codes": [a.status_code for a in attempts],
            "latencies": [a.latency_ms for a in attempts],
            "errors": [a.error for a in attempts],
            "now": now,
            "give_up": now - rules.retry_window,
            "base": rules.backoff_s,
            "cap": MAX_BACKOFF_S,
        },
    )
    good = {a.subscription_id for a in attempts if a.ok}
    bad = {a.subscription_id for a in attempts if a.tried and not a.ok} - good
    s = WebhookSubscription
    if good:
        await session.execute(update(s).where(s.id.in_(good)).values(failing_since=None))
    if not bad:
        return []
    await session.execute(
        update(s).where(s.id.in_(bad), s.failing_since.is_(None)).values(failing_since=now)
    )
    reason = f"every delivery failed for {rules.retry_window}"
    rows = (
        await session.execute(
            update(s)
            .where(s.id.in_(bad), s.active, s.failing_since <= now - rules.retry_window)
            .values(active=False, disabled_at=now, disabled_reason=reason)
            .returning(s.id, s.owner_id, s.url)
        )
    ).all()
    disabled = [Disabled(*r) for r in rows]
    for d in disabled:
        if d.owner_id is not None:
            notify(
                session,
                d.owner_id,
                "webhook_disabled",
                now,
                subscription_id=d.subscription_id,
                title=f"Webhook to {d.url[:200]} disabled: {reason}",
            )
    return disabled


def lease_for(rules: Rules, batch: int) -> timedelta:
    """Long enough for the batch to be sent, should streams queue behind the concurrency gate."""
    rounds = max(1, batch // max(1, rules.concurrency))
    return timedelta(seconds=rules.timeout_s * rounds + LEASE_MARGIN_S)
