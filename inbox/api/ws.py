"""Realtime for the web inbox: one Redis subscription per process, fanned out to the sockets
whose user may see the conversation (the same rule as the API's scoping)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict
from sqlalchemy import select

from crm.models import AccessGrant
from inbox import realtime
from inbox.access import Principal, grantees, visible_conversations
from inbox.api.auth import COOKIE, PRINCIPAL, authenticate
from inbox.models import Conversation
from inbox.realtime import channel_of
from inbox.state import ARQ, SESSIONS, SETTINGS

log = structlog.get_logger(__name__)

QUEUE = 256  # events a socket may fall behind before it is closed as too slow
RECHECK_S = 60.0  # how often a socket's log-in (and team membership) is checked again
WATCH_LIMIT = 1000  # conversation ids a client may ask to hear about when they leave its view
CLOSE_LOGGED_OUT = 4401
TYPING_EVERY_S = 2.0  # an agent's typing is told to a web chat visitor at most this often


def may_see(p: Principal, event: dict[str, Any]) -> bool:
    """The rule of inbox.access.visible_conversations, on an event instead of a row."""
    if p.scope == "bot":
        return bool(p.channel_id) and event.get("channel_id") == p.channel_id
    if p.is_admin or event.get("assignee_id") == p.user_id:
        return True
    if event.get("confidential"):
        # Linked users and teams (access grants), attached to the event by the subscriber.
        grants = event.get("grants") or {}
        return p.user_id in grants.get("users", ()) or bool(
            set(grants.get("teams", ())) & set(p.team_ids)
        )
    return event.get("team_id") in p.team_ids


class Client:
    """One open socket: who is on it, what it still has to send, which conversations it shows."""

    def __init__(self, ws: web.WebSocketResponse, principal: Principal) -> None:
        self.ws = ws
        self.principal = principal
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE)
        self.watched: set[int] = set()
        self.too_slow = False
        self.typed_at: dict[int, float] = {}  # conversation id -> when its typing was last told

    def offer(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.too_slow = True
            self.queue = asyncio.Queue(1)
            self.queue.put_nowait("")  # wakes the sender, which closes the socket


class Hub:
    """The process's sockets; the subscriber hands each event to the ones allowed to see it."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()

    def fan_out(self, event: dict[str, Any]) -> int:
        """Queue the event for every socket that may see it; returns how many. Never blocks."""
        text = json.dumps(event)
        conversation_id = event.get("conversation_id")
        hidden: str | None = None
        queued = 0
        for client in list(self.clients):
            if may_see(client.principal, event):
                client.offer(text)
                queued += 1
                if isinstance(conversation_id, int) and len(client.watched) < WATCH_LIMIT:
                    client.watched.add(conversation_id)
            elif conversation_id in client.watched:
                # It was on this user's screen and no longer is theirs: say only that.
                hidden = hidden or json.dumps(
                    {"type": "conversation.hidden", "conversation_id": conversation_id}
                )
                client.watched.discard(conversation_id)
                client.offer(hidden)
        return queued


HUB = web.AppKey("realtime_hub", Hub)


def same_origin(request: web.Request) -> bool:
    """A browser's socket must come from our own pages (cookies would ride along otherwise)."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    ours = {request.host.lower()}
    if public := request.app[SETTINGS].public_url:
        ours.add(urlsplit(public).netloc.lower())
    return urlsplit(origin).netloc.lower() in ours


async def principal_for(request: web.Request) -> Principal | None:
    """Session cookie or bearer header like the API, or ?token= for clients that cannot set
    headers on a websocket."""
    token = request.query.get("token")
    if token and "Authorization" not in request.headers:
        headers = CIMultiDict(request.headers)
        headers["Authorization"] = f"Bearer {token}"
        headers.pop("Cookie", None)
        request = request.clone(headers=headers)
    elif PRINCIPAL in request:
        del request[PRINCIPAL]  # checking again: never the cached answer
    return await authenticate(request)


async def websocket(request: web.Request) -> web.StreamResponse:
    by_cookie = COOKIE in request.cookies and "Authorization" not in request.headers
    if by_cookie and not request.query.get("token") and not same_origin(request):
        raise web.HTTPForbidden(text="cross-origin socket refused")
    principal = await principal_for(request)
    if principal is None:
        raise web.HTTPUnauthorized(text="log in first")
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    await ws.prepare(request)
    client = Client(ws, principal)
    hub = request.app[HUB]
    hub.clients.add(client)
    sender = asyncio.create_task(send_loop(request, client))
    try:
        await ws.send_json({"type": "hello", "user_id": principal.user_id})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            if msg.data == "ping":
                client.offer("pong")
                continue
            await received(request, client, msg.data)
    finally:
        hub.clients.discard(client)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return ws


async def received(request: web.Request, client: Client, data: str) -> None:
    """What a page says: what it shows now ("watch"), or that its user types a reply."""
    try:
        message = json.loads(data)
    except ValueError:
        return
    if not isinstance(message, dict):
        return
    if message.get("type") == "watch":
        watch(client, message)
    elif message.get("type") == "typing":
        await agent_typing(request, client, message.get("conversation_id"))


def watch(client: Client, message: dict[str, Any]) -> None:
    """{"type": "watch", "conversation_ids": [...]}: what the page shows now."""
    ids = message.get("conversation_ids")
    if isinstance(ids, list):
        client.watched = {i for i in ids[:WATCH_LIMIT] if isinstance(i, int)}


async def agent_typing(request: web.Request, client: Client, conversation_id: Any) -> None:
    """{"type": "typing", "conversation_id": N}: the user writes a reply in a web chat they may
    see; published (at most every TYPING_EVERY_S per conversation) for the visitor's widget,
    whichever process holds the visitor's socket."""
    if not isinstance(conversation_id, int):
        return
    now = asyncio.get_running_loop().time()
    if now - client.typed_at.get(conversation_id, -TYPING_EVERY_S) < TYPING_EVERY_S:
        return
    if len(client.typed_at) >= WATCH_LIMIT:
        client.typed_at.clear()
    client.typed_at[conversation_id] = now
    async with request.app[SESSIONS]() as session:
        conversation = (
            await session.scalars(
                select(Conversation).where(
                    Conversation.id == conversation_id,
                    Conversation.thread_key.startswith("webchat:"),
                    visible_conversations(client.principal),
                )
            )
        ).first()
    if conversation is not None:
        await realtime.publish(request.app[ARQ], "agent.typing", conversation)


async def send_loop(request: web.Request, client: Client) -> None:
    """Write queued events in order; check the log-in again now and then."""
    ws = client.ws
    while not ws.closed:
        try:
            text = await asyncio.wait_for(client.queue.get(), RECHECK_S)
        except TimeoutError:
            principal = await principal_for(request)
            if principal is None:
                await ws.close(code=CLOSE_LOGGED_OUT, message=b"logged out")
                return
            client.principal = principal
            continue
        if client.too_slow:
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow; reconnect")
            return
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            return


async def grants_of(app: web.Application, conversation_id: Any) -> dict[str, list[int]]:
    """Who besides admins and the assignee may see a confidential conversation: one query per
    event (confidential events are few), not one per socket."""
    if not isinstance(conversation_id, int):
        return {"users": [], "teams": []}
    async with app[SESSIONS]() as session:
        users, teams = await grantees(session, AccessGrant.conversation_id, conversation_id)
    return {"users": users, "teams": teams}


async def subscriber(app: web.Application, ready: asyncio.Event) -> None:
    """Listen on Redis and fan out; after a lost connection, resubscribe and tell every client
    to refresh, since events may have been missed meanwhile."""
    hub = app[HUB]
    failures = 0
    while True:
        pubsub = app[ARQ].pubsub()
        try:
            await pubsub.subscribe(channel_of(app[ARQ]))
            if failures:
                for client in list(hub.clients):
                    client.offer(json.dumps({"type": "resync"}))
            failures = 0
            ready.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    event = json.loads(message["data"])
                except (ValueError, TypeError):
                    continue
                if isinstance(event, dict):
                    if event.get("confidential") and hub.clients:
                        event["grants"] = await grants_of(app, event.get("conversation_id"))
                    hub.fan_out(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            log.warning("realtime subscriber restarts", error=str(exc), failures=failures)
            await asyncio.sleep(min(10.0, 0.5 * 2 ** min(failures, 5)))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


async def realtime_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HUB] = Hub()
    ready = asyncio.Event()
    task = asyncio.create_task(subscriber(app, ready))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ready.wait(), 5)  # subscribed before the first request is served
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for client in list(app[HUB].clients):
        await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(realtime_ctx)
    app.router.add_get("/ws", websocket)
