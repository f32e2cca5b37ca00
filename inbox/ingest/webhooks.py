"""Inbound webhooks: authenticate, bound, journal, commit, enqueue, answer. Nothing else."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from sqlalchemy import select

from channels import ADAPTERS
from channels.base import (
    Accepted,
    Adapter,
    AdapterError,
    Delivery,
    Forbidden,
    Handshake,
    JsonObject,
    ParseError,
    Unauthorized,
)
from inbox import metrics, ratelimit
from inbox.ingest.journal import FastJournal
from inbox.models import Channel
from inbox.state import ARQ, CHANNELS, SESSIONS, SETTINGS, ChannelCache, ChannelInfo

log = structlog.get_logger(__name__)

# The accept path journals through its own asyncpg pool (see FastJournal).
JOURNAL = web.AppKey("journal", FastJournal)


async def fetch_channel(app: web.Application, channel_id: str) -> ChannelInfo | None:
    async with app[SESSIONS]() as session:
        row = (
            await session.execute(
                select(Channel.kind, Channel.config).where(
                    Channel.id == channel_id, Channel.is_active
                )
            )
        ).first()
    info = ChannelInfo(channel_id, row.kind, row.config) if row else None
    app[CHANNELS].put(channel_id, info)
    return info


async def load_channel(request: web.Request, kind: str, channel_id: str) -> ChannelInfo:
    cache: ChannelCache = request.app[CHANNELS]
    cached = cache.get(channel_id)
    if cached is None:
        # One lookup per channel however many deliveries miss the cache at once (when it
        # expires under load, each would otherwise open a connection of its own).
        loading = cache.loading.get(channel_id)
        if loading is None:
            loading = cache.loading[channel_id] = asyncio.ensure_future(
                fetch_channel(request.app, channel_id)
            )
        try:
            cached = await asyncio.shield(loading)
        finally:
            if loading.done() and cache.loading.get(channel_id) is loading:
                del cache.loading[channel_id]
    if cached is None or cached.kind != kind:
        raise web.HTTPNotFound(text="no such channel")
    return cached


def public_url(request: web.Request) -> str:
    """The URL the sender used (and signed), as seen from outside any reverse proxy."""
    settings = request.app[SETTINGS]
    if settings.public_url:
        return settings.public_url.rstrip("/") + request.path_qs
    if settings.trust_forwarded:
        proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        return f"{proto}://{host}{request.path_qs}"
    return str(request.url)


def client_address(request: web.Request) -> str | None:
    if request.app[SETTINGS].trust_forwarded and "X-Forwarded-For" in request.headers:
        return request.headers["X-Forwarded-For"].split(",")[0].strip()
    return request.remote


def cors_headers(request: web.Request, config: JsonObject) -> dict[str, str]:
    origin = request.headers.get("Origin")
    allowed = config.get("cors_origins") or []
    if not origin or not isinstance(allowed, list) or not (origin in allowed or "*" in allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Switchboard-Signature",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


async def preflight(request: web.Request) -> web.Response:
    kind, channel_id = request.match_info["kind"], request.match_info["channel_id"]
    if kind not in ADAPTERS:
        raise web.HTTPNotFound(text="no such channel kind")
    channel = await load_channel(request, kind, channel_id)
    headers = cors_headers(request, channel.config)
    return web.Response(status=204 if headers else 403, headers=headers)


async def rate_limited(request: web.Request, channel: ChannelInfo) -> int | None:
    """Seconds to wait when this client has posted too often to this channel, else None."""
    limit = channel.config.get("rate_limit_per_minute", request.app[SETTINGS].rate_limit_per_minute)
    if not isinstance(limit, int) or limit <= 0:
        return None
    key = f"switchboard:rl:{channel.id}:{client_address(request)}"
    try:
        return await ratelimit.hit(request.app[ARQ], key, limit)
    except Exception as exc:  # Redis away: accepting (and journaling) beats losing the post
        log.warning("rate limit unavailable", channel_id=channel.id, error=type(exc).__name__)
        return None


def storable(text: str) -> bool:
    """PostgreSQL text takes neither NUL nor the lone surrogates JSON escapes can smuggle in."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def answer(status: int, body: dict[str, object], headers: dict[str, str]) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


async def receive(request: web.Request) -> web.StreamResponse:
    kind, channel_id = request.match_info["kind"], request.match_info["channel_id"]
    adapter: Adapter | None = ADAPTERS.get(kind)
    if adapter is None:
        raise web.HTTPNotFound(text="no such channel kind")
    channel = await load_channel(request, kind, channel_id)
    cors = cors_headers(request, channel.config)
    settings = request.app[SETTINGS]
    if (request.content_length or 0) > settings.max_body_bytes:
        metrics.DELIVERIES.labels(kind, "413").inc()
        return answer(413, {"error": f"body over {settings.max_body_bytes} bytes"}, cors)
    if (
        adapter.limited_per_address(request.headers, request.query)
        and (wait := await rate_limited(request, channel)) is not None
    ):
        metrics.DELIVERIES.labels(kind, "429").inc()
        headers = cors | {"Retry-After": str(wait)}
        return answer(429, {"error": "too many submissions; try again later"}, headers)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.DELIVERIES.labels(kind, "413").inc()
        return answer(413, {"error": f"body over {settings.max_body_bytes} bytes"}, cors)
    delivery = Delivery(
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query),
        url=public_url(request),
        method=request.method,
        remote=client_address(request),
    )
    try:
        adapter.authenticate(channel.config, delivery)
    except Unauthorized as exc:
        metrics.DELIVERIES.labels(kind, "401").inc()
        log.info("delivery refused", kind=kind, channel_id=channel_id, reason=exc.reason)
        return answer(401, {"error": exc.reason}, cors)
    except ValueError as exc:  # the channel's settings are broken, not the delivery
        metrics.DELIVERIES.labels(kind, "503").inc()
        log.error("channel misconfigured", kind=kind, channel_id=channel_id, error=str(exc))
        return answer(503, {"error": "this channel is misconfigured"}, cors)

    status, reply, accepted = await accept_delivery(request.app, kind, adapter, channel, delivery)
    if accepted is not None and accepted.redirect_to:
        raise web.HTTPSeeOther(accepted.redirect_to, headers=cors)
    return answer(status, reply, cors)


async def accept_delivery(
    app: web.Application, kind: str, adapter: Adapter, channel: ChannelInfo, delivery: Delivery
) -> tuple[int, dict[str, object], Accepted | None]:
    """Journal an authenticated delivery (as failed when it does not parse): the answer's
    status and body, and what the adapter made of it."""
    channel_id = channel.id
    try:
        accepted = adapter.accept(channel.config, delivery)
        if not storable(accepted.external_id) or not storable(accepted.sender_key or ""):
            raise ParseError("the delivery's id holds a NUL or a lone surrogate: not text")
    except AdapterError as exc:
        status = exc.status if isinstance(exc, ParseError) else 400
        event_id, _ = await app[JOURNAL].add(
            channel_id=channel_id,
            external_id=f"invalid:{delivery.body_hash()}",
            delivery=delivery,
            status="failed",
            error=exc.reason,
        )
        metrics.DELIVERIES.labels(kind, str(status)).inc()
        log.info("delivery kept as failed", kind=kind, event_id=event_id, reason=exc.reason)
        return status, {"error": exc.reason, "event_id": event_id}, None

    # Committed before the answer; the workers are woken by a NOTIFY, no job per delivery.
    event_id, new = await app[JOURNAL].add(
        channel_id=channel_id,
        external_id=accepted.external_id,
        delivery=delivery,
        status="ignored" if accepted.drop else "pending",
        error="dropped: honeypot field filled" if accepted.drop else None,
        sender_key=accepted.sender_key,
    )
    metrics.DELIVERIES.labels(kind, "202" if new else "200").inc()
    body: dict[str, object] = {"status": "accepted", "event_id": event_id, "duplicate": not new}
    return 202 if new else 200, body, accepted


async def handshake(request: web.Request) -> web.StreamResponse:
    """A provider's GET to verify the webhook URL (Meta's hub.challenge): echo or 403."""
    kind, channel_id = request.match_info["kind"], request.match_info["channel_id"]
    adapter = ADAPTERS.get(kind)
    if not isinstance(adapter, Handshake):
        raise web.HTTPMethodNotAllowed("GET", ["POST"])
    channel = await load_channel(request, kind, channel_id)
    try:
        challenge = adapter.verify(channel.config, request.query)
    except Forbidden as exc:
        log.info("webhook handshake refused", kind=kind, channel_id=channel_id, reason=exc.reason)
        return web.json_response({"error": exc.reason}, status=403)
    except ValueError as exc:
        log.error("channel misconfigured", kind=kind, channel_id=channel_id, error=str(exc))
        return web.json_response({"error": "this channel is misconfigured"}, status=503)
    return web.Response(text=challenge, content_type="text/plain")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/{kind}/{channel_id}", receive)
    app.router.add_get("/webhooks/{kind}/{channel_id}", handshake)
    app.router.add_route("OPTIONS", "/webhooks/{kind}/{channel_id}", preflight)
