"""The website chat's HTTP side: the widget script, a visitor's token, messages in (journaled
like every delivery), history out over a websocket or a long poll. Every route but the script
checks the page's origin against the channel's allowed_origins."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import WSMsgType, web
from sqlalchemy import select

import channels.webchat
from channels import adapter_for
from channels.base import Delivery
from channels.webchat import ChatConfig, issue_token, visitor_of
from channels.webchat.adapter import OFFLINE_HEADER, VISITOR_HEADER, bearer
from inbox import metrics, ratelimit, realtime
from inbox.api.visitors import HUB, history, thread_of, visitors_ctx
from inbox.ingest.webhooks import accept_delivery, client_address, load_channel, public_url
from inbox.models import Conversation
from inbox.routing.sla import Hours
from inbox.state import ARQ, SESSIONS, SETTINGS, ChannelInfo

log = structlog.get_logger(__name__)

KIND = "webchat"
WIDGET = Path(channels.webchat.__file__).parent / "widget.js"
POLL_S = 25.0  # a long poll's longest wait, under common proxies' idle timeouts
TYPING_EVERY_S = 2.0  # a visitor's typing is told to the inbox at most this often


class Refused(Exception):
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


def cors(request: web.Request, config: ChatConfig) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if not config.allows(origin):
        return {}
    return {
        "Access-Control-Allow-Origin": str(origin),
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


async def channel_of(request: web.Request) -> tuple[ChannelInfo, ChatConfig, dict[str, str]]:
    """The channel, its settings and the CORS headers for this page; 403 for another site."""
    channel = await load_channel(request, KIND, request.match_info["channel_id"])
    try:
        config = ChatConfig.from_json(channel.config)
    except ValueError as exc:
        log.error("channel misconfigured", kind=KIND, channel_id=channel.id, error=str(exc))
        raise Refused(503, "this channel is misconfigured") from None
    headers = cors(request, config)
    if not headers:
        raise Refused(403, "this site is not among the channel's allowed_origins")
    return channel, config, headers


def visitor(request: web.Request, config: ChatConfig) -> str:
    token = bearer(request.headers) or request.query.get("token")
    found = visitor_of(config.visitor_secret or "", token) if config.visitor_secret else None
    if found is None:
        raise Refused(401, "missing or wrong visitor token; ask /visitors for a new one")
    return found


def online(config: ChatConfig, now: datetime) -> bool:
    return config.business_hours is None or Hours.from_json(config.business_hours).is_open(now)


async def limited(request: web.Request, key: str, limit: int) -> int | None:
    if limit <= 0:
        return None
    try:
        return await ratelimit.hit(request.app[ARQ], key, limit)
    except Exception as exc:  # Redis away: accepting (and journaling) beats losing the message
        log.warning("rate limit unavailable", error=type(exc).__name__)
        return None


def refusals(handler: Any) -> Any:
    """Answer a Refused as JSON with its reason (and the CORS headers, when the site may read)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except Refused as exc:
            metrics.DELIVERIES.labels(KIND, str(exc.status)).inc()
            return web.json_response({"error": exc.reason}, status=exc.status, headers=exc.headers)

    return wrapped


async def widget(request: web.Request) -> web.Response:
    return web.Response(
        body=WIDGET.read_bytes(),
        content_type="application/javascript",
        charset="utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def preflight(request: web.Request) -> web.Response:
    try:
        _, _, headers = await channel_of(request)
    except Refused as exc:
        return web.Response(status=exc.status)
    return web.Response(status=204, headers=headers)


@refusals
async def settings_view(request: web.Request) -> web.Response:
    """What the widget shows before the visitor writes: texts, the pre-chat form, online."""
    _, config, headers = await channel_of(request)
    body = {
        "title": config.title,
        "greeting": config.greeting,
        "offline_text": config.offline_text,
        "prechat": dict(config.prechat),
        "online": online(config, datetime.now(UTC)),
        "max_file_bytes": config.max_file_bytes,
    }
    return web.json_response(body, headers=headers)


@refusals
async def new_visitor(request: web.Request) -> web.Response:
    channel, config, headers = await channel_of(request)
    key = f"switchboard:rl:webchat-new:{channel.id}:{client_address(request)}"
    if (wait := await limited(request, key, config.visitors_per_minute)) is not None:
        raise Refused(429, "too many new visitors from here", headers | {"Retry-After": str(wait)})
    visitor_id, token = issue_token(config.visitor_secret or "")
    return web.json_response({"visitor_id": visitor_id, "token": token}, headers=headers)


async def take_message(
    request: web.Request, channel: ChannelInfo, config: ChatConfig, visitor_id: str, body: bytes
) -> tuple[int, dict[str, object]]:
    """Rate-limit, then journal a visitor's message through the channels' accept path."""
    key = f"switchboard:rl:webchat:{channel.id}:{visitor_id}"
    if (wait := await limited(request, key, config.rate_limit_per_minute)) is not None:
        metrics.DELIVERIES.labels(KIND, "429").inc()
        return 429, {"error": "too many messages; try again later", "retry_after": wait}
    headers = {
        k.lower(): v
        for k, v in request.headers.items()
        if k.lower() not in (VISITOR_HEADER, OFFLINE_HEADER, "upgrade", "sec-websocket-key")
    }
    headers[VISITOR_HEADER] = visitor_id  # checked against the token just now
    headers[OFFLINE_HEADER] = "0" if online(config, datetime.now(UTC)) else "1"
    headers["content-type"] = "application/json"
    delivery = Delivery(
        body=body,
        headers=headers,
        query={},
        url=public_url(request),
        remote=client_address(request),
    )
    status, answer, _ = await accept_delivery(
        request.app, KIND, adapter_for(KIND), channel, delivery
    )
    return status, answer


@refusals
async def post_message(request: web.Request) -> web.Response:
    channel, config, headers = await channel_of(request)
    visitor_id = visitor(request, config)
    limit = min(request.app[SETTINGS].max_body_bytes, config.max_file_bytes * 2 + 65_536)
    if (request.content_length or 0) > limit:
        raise Refused(413, f"body over {limit} bytes", headers)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Refused(413, f"body over {limit} bytes", headers) from None
    if len(body) > limit:
        raise Refused(413, f"body over {limit} bytes", headers)
    status, answer = await take_message(request, channel, config, visitor_id, body)
    return web.json_response(answer, status=status, headers=headers)


async def messages_since(request: web.Request, channel_id: str, visitor_id: str, since: int) -> Any:
    async with request.app[SESSIONS]() as session:
        return await history(session, channel_id, visitor_id, since)


def since_of(request: web.Request) -> int:
    try:
        return max(0, int(request.query.get("since", "0")))
    except ValueError:
        raise Refused(400, "since must be a message id") from None


@refusals
async def poll(request: web.Request) -> web.Response:
    """History after `since`; with `wait=1`, held open until there is some (the fallback for
    networks without websockets)."""
    channel, config, headers = await channel_of(request)
    visitor_id = visitor(request, config)
    since = since_of(request)
    hub = request.app[HUB]
    waiter = hub.join(channel.id, visitor_id)
    try:
        found = await messages_since(request, channel.id, visitor_id, since)
        if not found and request.query.get("wait") == "1":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.changed.wait(), POLL_S)
            found = await messages_since(request, channel.id, visitor_id, since)
    finally:
        hub.leave(channel.id, visitor_id, waiter)
    return web.json_response({"messages": found}, headers=headers)


@refusals
async def socket(request: web.Request) -> web.StreamResponse:
    channel, config, _ = await channel_of(request)
    visitor_id = visitor(request, config)
    since = since_of(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=config.max_file_bytes * 2 + 65_536)
    await ws.prepare(request)
    hub = request.app[HUB]
    waiter = hub.join(channel.id, visitor_id)
    waiter.changed.set()  # send what the visitor missed first
    pusher = asyncio.create_task(push(request, ws, channel.id, visitor_id, since, waiter))
    typed_at = 0.0
    try:
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            if frame.data == "ping":
                await ws.send_str("pong")
                continue
            try:
                data = json.loads(frame.data)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            if data.get("type") == "typing":
                now = asyncio.get_running_loop().time()
                if now - typed_at >= TYPING_EVERY_S:
                    typed_at = now
                    await visitor_typing(request, channel.id, visitor_id)
            elif data.get("type") == "message":
                typed_at = 0.0  # the message ends that typing: the next is told at once
                message = data.get("message")
                status, answer = await take_message(
                    request, channel, config, visitor_id, json.dumps(message).encode()
                )
                await ws.send_json(answer | {"type": "ack", "id": data.get("id"), "code": status})
    finally:
        hub.leave(channel.id, visitor_id, waiter)
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
    return ws


async def push(
    request: web.Request,
    ws: web.WebSocketResponse,
    channel_id: str,
    visitor_id: str,
    since: int,
    waiter: Any,
) -> None:
    """Send the visitor's new messages whenever the hub says there may be some."""
    typing = asyncio.ensure_future(waiter.typing.wait())
    changed = asyncio.ensure_future(waiter.changed.wait())
    try:
        while not ws.closed:
            await asyncio.wait({typing, changed}, return_when=asyncio.FIRST_COMPLETED)
            if typing.done():
                waiter.typing.clear()
                typing = asyncio.ensure_future(waiter.typing.wait())
                await ws.send_json({"type": "typing"})
            if changed.done():
                waiter.changed.clear()
                changed = asyncio.ensure_future(waiter.changed.wait())
                found = await messages_since(request, channel_id, visitor_id, since)
                if found:
                    since = found[-1]["id"]
                    await ws.send_json({"type": "messages", "messages": found})
                    if len(found) == 200:
                        waiter.changed.set()
    except (ConnectionError, RuntimeError):
        return
    finally:
        typing.cancel()
        changed.cancel()


async def visitor_typing(request: web.Request, channel_id: str, visitor_id: str) -> None:
    """Tell the inbox (as a realtime event scoped like the conversation) that the visitor types."""
    async with request.app[SESSIONS]() as session:
        conversation = (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.channel_id == channel_id,
                    Conversation.thread_key == thread_of(visitor_id),
                    Conversation.status != "resolved",
                )
                .limit(1)
            )
        ).first()
    if conversation is not None:
        await realtime.publish(request.app[ARQ], "visitor.typing", conversation)


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(visitors_ctx)
    app.router.add_get("/webchat/widget.js", widget)
    for path, get, post in (
        ("/webchat/{channel_id}/settings", settings_view, None),
        ("/webchat/{channel_id}/visitors", None, new_visitor),
        ("/webchat/{channel_id}/messages", poll, post_message),
        ("/webchat/{channel_id}/ws", socket, None),
    ):
        if get is not None:
            app.router.add_get(path, get, allow_head=False)
        if post is not None:
            app.router.add_post(path, post)
        app.router.add_route("OPTIONS", path, preflight)
