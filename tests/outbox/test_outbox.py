"""Outbound webhooks: events written set-based with the change, signed deliveries retried
with back-off in order per conversation, the SSRF guard, the admin API, disabling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from support import call_log

from channels.egress import for_webhooks
from crm.models import User
from inbox.bot.external import DELIVERY, EVENT, verify
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Channel, Conversation, Message
from inbox.outbox import delivery
from inbox.outbox.delivery import Rules, client
from inbox.outbox.events import emit_messages
from inbox.outbox.models import EVENT_TYPES, WebhookDelivery, WebhookSubscription
from inbox.routing.models import Notification
from inbox.settings import Settings
from tests.ingest.test_drain import journal_call
from tests.ingest.test_ingest import make_channel, make_team, post_form
from workers.jobs import process_batch
from workers.webhooks import deliver_webhooks
from workers.worker import policy_from

Client = TestClient[Any, Any]
SECRET = "s3cret-of-the-integrator-0123456789"
ALL = list(EVENT_TYPES)


@dataclass
class Receiver:
    """A local integrator: verifies every signature, fails the first `failures` requests."""

    failures: int = 0
    status: int = 500
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify(SECRET, request.headers, raw):
            return web.Response(status=401, text="bad signature")
        self.headers.append(dict(request.headers))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=self.status)
        self.received.append(json.loads(raw))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    r.url = str(server.make_url("/hook"))
    yield r
    await server.close()


def rules(**changes: Any) -> Rules:
    base = Rules(
        retry_window=timedelta(hours=24),
        backoff_s=0.0,
        timeout_s=5.0,
        concurrency=20,
        allow_loopback=True,
    )
    return Rules(**(base.__dict__ | changes))


@pytest.fixture
async def ctx(sessions: Sessions, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    r = rules()
    http = delivery.client(r)
    yield {
        "sessions": sessions,
        "policy": policy_from(settings),
        "batch": 100,
        "webhook_rules": r,
        "webhook_http": http,
    }
    await http.close()


async def subscribe(
    sessions: Sessions, url: str, events: list[str] = ALL, owner_id: int | None = None
) -> int:
    async with sessions() as session, session.begin():
        row = WebhookSubscription(
            url=url, secret=SECRET, events=events, active=True, owner_id=owner_id
        )
        session.add(row)
        await session.flush()
        return row.id


async def pbx(sessions: Sessions) -> Channel:
    async with sessions() as session, session.begin():
        return await add_channel(session, "telephony", "PBX", {"dialect": "generic"})


async def ingest_calls(sessions: Sessions, ctx: dict[str, Any], bodies: list[bytes]) -> None:
    channel = await pbx(sessions)
    async with sessions() as session, session.begin():
        for body in bodies:
            await journal_call(session, channel, body)
    assert await process_batch(ctx)


async def outbox(sessions: Sessions) -> list[WebhookDelivery]:
    async with sessions() as session:
        return list(
            (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()
        )


async def test_a_batch_writes_its_events_to_the_outbox_in_event_order_per_subscriber(
    sessions: Sessions, ctx: dict[str, Any]
) -> None:
    first = await subscribe(sessions, "https://hooks.example.com/a")
    calls_only = await subscribe(sessions, "https://hooks.example.com/b", ["call.logged"])
    await ingest_calls(
        sessions,
        ctx,
        [
            call_log("c1", "06-12345601", "missed", minute=0),
            call_log("c2", "06-12345601", "answered", minute=5),
            call_log("c3", "06-12345602", "answered", minute=6),
        ],
    )
    rows = await outbox(sessions)
    mine = [r for r in rows if r.subscription_id == first]
    by_conversation: dict[int | None, list[str]] = {}
    for r in mine:
        by_conversation.setdefault(r.conversation_id, []).append(r.event_type)
    assert sorted(by_conversation.values(), key=len) == [
        ["conversation.created", "lead.created", "message.created", "call.logged"],
        [
            "conversation.created",
            "lead.created",
            "message.created",
            "call.logged",
            "message.created",
            "call.logged",
            "task.created",
        ],
    ]
    assert [r.event_type for r in rows if r.subscription_id == calls_only] == ["call.logged"] * 3
    created = next(r for r in mine if r.event_type == "conversation.created")
    assert created.payload["type"] == "conversation.created"
    assert created.payload["data"]["conversation"]["id"] == created.conversation_id
    task = next(r for r in mine if r.event_type == "task.created")
    assert task.payload["data"]["task"]["kind"] == "call_back"
    # The event id is shared by the subscribers, the delivery id is each one's own.
    calls = [r for r in rows if r.event_type == "call.logged"]
    assert len({r.event_id for r in calls}) == 3
    assert len({r.delivery_id for r in rows}) == len(rows)


async def test_no_subscriber_no_outbox_rows(sessions: Sessions, ctx: dict[str, Any]) -> None:
    await ingest_calls(sessions, ctx, [call_log("c1", "06-12345601")])
    assert await outbox(sessions) == []


async def test_a_delivery_is_retried_until_the_receiver_accepts_it_signed_each_time(
    sessions: Sessions, ctx: dict[str, Any], receiver: Receiver
) -> None:
    await subscribe(sessions, receiver.url, ["call.logged"])
    await ingest_calls(sessions, ctx, [call_log("c1", "06-12345601")])
    receiver.failures = 2

    counts = await deliver_webhooks(ctx)

    assert counts == {"delivered": 1, "failed": 2, "disabled": 0}
    assert len(receiver.headers) == 3  # every attempt's signature verified
    assert len({h[DELIVERY] for h in receiver.headers}) == 1  # the same delivery each time
    assert {h[EVENT] for h in receiver.headers} == {"call.logged"}
    (body,) = receiver.received
    assert body["type"] == "call.logged" and body["data"]["call"]["outcome"] == "answered"
    (row,) = await outbox(sessions)
    assert (row.status, row.attempts, row.status_code, row.error) == ("delivered", 3, 204, None)
    assert row.latency_ms is not None and row.delivered_at is not None
    assert str(row.delivery_id) == receiver.headers[0][DELIVERY]


async def test_back_off_waits_before_the_next_attempt(
    sessions: Sessions, ctx: dict[str, Any], receiver: Receiver
) -> None:
    ctx["webhook_rules"] = rules(backoff_s=60.0)
    await subscribe(sessions, receiver.url, ["message.created"])
    await ingest_calls(sessions, ctx, [call_log("c1", "06-12345601")])
    receiver.failures = 5

    assert await deliver_webhooks(ctx) == {"delivered": 0, "failed": 1, "disabled": 0}
    (row,) = await outbox(sessions)
    assert row.status == "pending" and row.status_code == 500
    assert row.error == "the receiver answered HTTP 500"
    assert row.last_attempt_at is not None
    assert row.next_attempt_at - row.last_attempt_at == timedelta(seconds=60)

    ctx["clock"] = lambda: datetime.now(UTC) + timedelta(seconds=61)
    assert await deliver_webhooks(ctx) == {"delivered": 0, "failed": 1, "disabled": 0}
    (row,) = await outbox(sessions)
    assert row.attempts == 2
    assert row.next_attempt_at - row.last_attempt_at == timedelta(seconds=120)


async def test_a_conversations_events_arrive_in_order_when_one_must_be_retried(
    sessions: Sessions, ctx: dict[str, Any], receiver: Receiver
) -> None:
    ctx["webhook_rules"] = rules(backoff_s=0.05)
    await subscribe(sessions, receiver.url, ["message.created"])
    await ingest_calls(
        sessions,
        ctx,
        [call_log(f"c{n}", f"06-1234560{n % 3}", minute=n) for n in range(12)],
    )
    receiver.failures = 3  # the first stream to arrive loses its head three times

    for _ in range(40):
        await deliver_webhooks(ctx)
        if len(receiver.received) == 12:
            break
        await asyncio.sleep(0.05)

    per_conversation: dict[int, list[int]] = {}
    for body in receiver.received:
        message = body["data"]["message"]
        per_conversation.setdefault(message["conversation_id"], []).append(message["id"])
    assert len(per_conversation) == 3
    for ids in per_conversation.values():
        assert ids == sorted(ids) and len(ids) == 4
    assert {r.status for r in await outbox(sessions)} == {"delivered"}


async def test_a_subscription_failing_for_the_whole_window_is_disabled_and_its_owner_told(
    sessions: Sessions, ctx: dict[str, Any], receiver: Receiver
) -> None:
    async with sessions() as session, session.begin():
        owner = User(email="owner@hooks.test", name="Owner", role="admin")
        session.add(owner)
        await session.flush()
        owner_id = owner.id
    subscription_id = await subscribe(sessions, receiver.url, ["message.created"], owner_id)
    await ingest_calls(sessions, ctx, [call_log("c1", "06-12345601")])
    receiver.failures = 1000
    ctx["webhook_rules"] = rules(backoff_s=600.0, retry_window=timedelta(hours=1))

    await deliver_webhooks(ctx)  # fails; failing from now on
    ctx["clock"] = lambda: datetime.now(UTC) + timedelta(hours=2)
    counts = await deliver_webhooks(ctx)  # fails again, two hours later

    assert counts == {"delivered": 0, "failed": 1, "disabled": 1}
    async with sessions() as session:
        sub = await session.get(WebhookSubscription, subscription_id)
        assert sub is not None and not sub.active and sub.disabled_at is not None
        assert sub.disabled_reason == "every delivery failed for 1:00:00"
        notes = (await session.scalars(select(Notification))).all()
    assert [(n.user_id, n.kind, n.data["subscription_id"]) for n in notes] == [
        (owner_id, "webhook_disabled", subscription_id)
    ]
    (row,) = await outbox(sessions)
    assert (row.status, row.attempts) == ("failed", 2)  # given up: older than the window

    receiver.failures = 0  # a disabled subscription gets nothing, even when due
    await ingest_calls(sessions, ctx, [call_log("c2", "06-12345602")])
    assert await deliver_webhooks(ctx) == {"delivered": 0, "failed": 0, "disabled": 0}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private or reserved address"),
        ("http://192.168.0.10/hook", "192.168.0.10 is a private or reserved address"),
        ("http://[::ffff:10.0.0.1]/", "10.0.0.1 is a private or reserved address"),
        ("http://localhost:9/hook", "localhost resolves to an address we refuse: "),
        ("ftp://example.com/x", "the URL must be http(s)://host/…"),
        ("http://user:pw@example.com/x", "the URL must not carry credentials"),
    ],
)
async def test_the_ssrf_guard_refuses_inside_destinations(url: str, reason: str) -> None:
    found = await for_webhooks(allow_loopback=False).refused_url(url)
    assert found is not None and found.startswith(reason)


async def test_loopback_only_when_allowed(sessions: Sessions) -> None:
    allowed = for_webhooks(allow_loopback=True)
    assert await allowed.refused_url("http://127.0.0.1:8080/hook") is None
    assert await allowed.refused_url("http://10.0.0.1/hook") is not None
    assert await allowed.refused_url("http://169.254.169.254/latest/meta-data") is not None
    async with client(rules(allow_loopback=False)) as http:  # by name, at connect time
        with pytest.raises(aiohttp.ClientConnectorError, match="loopback"):
            await http.post("http://localhost:9/hook")


async def test_a_delivery_to_a_refused_address_fails_without_a_request(
    sessions: Sessions, ctx: dict[str, Any], receiver: Receiver
) -> None:
    ctx["webhook_rules"] = rules(allow_loopback=False, backoff_s=600.0)
    await subscribe(sessions, receiver.url, ["message.created"])  # stored before the guard
    await ingest_calls(sessions, ctx, [call_log("c1", "06-12345601")])

    await deliver_webhooks(ctx)

    assert receiver.headers == []
    (row,) = await outbox(sessions)
    assert row.status == "pending" and row.status_code is None
    assert row.error is not None and "127.0.0.1 is a loopback address" in row.error


async def test_only_admins_manage_subscriptions(client: Client, login: Callable[..., Any]) -> None:
    body = {"url": "https://hooks.example.com/x", "events": ["lead.created"]}
    assert (await client.get("/api/webhooks/subscriptions")).status == 401
    for role in ("agent", "manager"):
        headers = await login(role)
        response = await client.post("/api/webhooks/subscriptions", json=body, headers=headers)
        assert response.status == 403
        assert (await client.get("/api/webhooks/subscriptions", headers=headers)).status == 403


async def test_the_subscription_api_round_trip(
    client: Client, login: Callable[..., Any], sessions: Sessions
) -> None:
    admin = await login("admin")
    base = "/api/webhooks/subscriptions"
    refused = await client.post(
        base, json={"url": "http://127.0.0.1/x", "events": ["lead.created"]}, headers=admin
    )
    assert refused.status == 422
    assert (await refused.json())["error"]["code"] == "refused_destination"
    unknown = await client.post(
        base, json={"url": "https://93.184.216.34/x", "events": ["lead.eaten"]}, headers=admin
    )
    assert unknown.status == 422
    nowhere = await client.post(
        base, json={"url": "https://nowhere.invalid/x", "events": ["lead.created"]}, headers=admin
    )
    assert (await nowhere.json())["error"]["message"] == "nowhere.invalid does not resolve"

    created = await client.post(
        base,
        json={"url": "https://93.184.216.34/x", "events": ["lead.created", "call.logged"]},
        headers=admin,
    )
    assert created.status == 201
    sub = await created.json()
    assert len(sub["secret"]) >= 32 and sub["active"] is True
    listed = await (await client.get(base, headers=admin)).json()
    assert [s["id"] for s in listed] == [sub["id"]] and listed[0]["secret"] is None

    patched = await client.patch(
        f"{base}/{sub['id']}", json={"active": False, "rotate_secret": True}, headers=admin
    )
    out = await patched.json()
    assert out["active"] is False and out["secret"] not in (None, sub["secret"])

    async with sessions() as session, session.begin():
        session.add(
            WebhookDelivery(
                event_id="7d6f1c1e-0000-4000-8000-000000000001",
                subscription_id=sub["id"],
                event_type="lead.created",
                payload={"type": "lead.created"},
                status="failed",
                attempts=3,
                status_code=500,
                latency_ms=12.5,
            )
        )
    deliveries = await (await client.get(f"{base}/{sub['id']}/deliveries", headers=admin)).json()
    (d,) = deliveries["items"]
    assert (d["status"], d["attempts"], d["status_code"], d["latency_ms"]) == (
        "failed",
        3,
        500,
        12.5,
    )
    again = await client.post(f"{base}/{sub['id']}/deliveries/{d['id']}/redeliver", headers=admin)
    assert again.status == 202
    copy = await again.json()
    assert copy["redelivery_of"] == d["id"] and copy["status"] == "pending"
    assert copy["event_id"] == d["event_id"] and copy["delivery_id"] != d["delivery_id"]
    missing = await client.post(f"{base}/{sub['id']}/deliveries/999999/redeliver", headers=admin)
    assert missing.status == 404

    assert (await client.delete(f"{base}/{sub['id']}", headers=admin)).status == 204
    assert (await client.get(f"{base}/{sub['id']}", headers=admin)).status == 404
    assert await outbox(sessions) == []


async def test_assigning_and_resolving_write_their_events_with_the_change(
    client: Client, login: Callable[..., Any], sessions: Sessions, ctx: dict[str, Any]
) -> None:
    await subscribe(sessions, "https://hooks.example.com/a", ["conversation.assigned"])
    await subscribe(sessions, "https://hooks.example.com/b", ["conversation.resolved"])
    await ingest_calls(sessions, ctx, [call_log("c1", "06-12345601")])
    admin = await login("admin")
    async with sessions() as session:
        conversation_id = await session.scalar(select(Conversation.id))
        admin_id = await session.scalar(select(User.id).where(User.role == "admin"))
    url = f"/api/conversations/{conversation_id}"
    assigned = await client.post(f"{url}/assign", json={"assignee_id": admin_id}, headers=admin)
    assert assigned.status == 200
    resolved = await client.post(f"{url}/status", json={"status": "resolved"}, headers=admin)
    assert resolved.status == 200
    again = await client.post(f"{url}/status", json={"status": "resolved"}, headers=admin)
    assert again.status == 200

    rows = await outbox(sessions)
    assert [r.event_type for r in rows] == ["conversation.assigned", "conversation.resolved"]
    assigned_data = rows[0].payload["data"]
    assert assigned_data["conversation"]["assignee_id"] == admin_id
    assert assigned_data["actor_id"] == admin_id
    assert rows[1].payload["data"]["conversation"]["status"] == "resolved"


async def test_a_reply_written_outside_ingest_is_a_message_created_event(
    sessions: Sessions, ctx: dict[str, Any]
) -> None:
    await ingest_calls(sessions, ctx, [call_log("c1", "06-12345601")])
    await subscribe(sessions, "https://93.184.216.34/hook", ["message.created"])
    async with sessions() as session, session.begin():
        conversation = (await session.scalars(select(Conversation))).one()
        reply = Message(
            conversation_id=conversation.id,
            channel_id=conversation.channel_id,
            external_id="reply-1",
            direction="outbound",
            kind="message",
            text="We bellen u terug.",
            sent_at=datetime.now(UTC),
            status="queued",
        )
        session.add(reply)
        await session.flush()
        assert await emit_messages(session, [reply.id]) == 1
    (row,) = await outbox(sessions)
    message = row.payload["data"]["message"]
    assert (row.event_type, row.conversation_id) == ("message.created", conversation.id)
    assert (message["id"], message["direction"], message["text"]) == (
        reply.id,
        "outbound",
        "We bellen u terug.",
    )


async def test_a_form_from_a_new_sender_reaches_the_integrator_signed_and_in_order(
    client: Client,
    sessions: Sessions,
    run_worker: Callable[[], Any],
    ctx: dict[str, Any],
    receiver: Receiver,
) -> None:
    async with sessions() as session, session.begin():
        await make_team(session, "Verkoop", "Ank", "Bert")
    channel = await make_channel(sessions, "webform", {}, team="Verkoop")
    await subscribe(sessions, receiver.url)
    form = {"name": "Jan Visser", "email": "jan@hamerslag.nl", "message": "Graag een offerte."}
    assert (await post_form(client, channel, form)).status == 202
    await run_worker()  # the ingest batch writes the events

    assert (await deliver_webhooks(ctx))["delivered"] == 5

    assert [b["type"] for b in receiver.received] == [
        "conversation.created",
        "conversation.assigned",
        "lead.created",
        "message.created",
        "task.created",
    ]
    created, assigned, lead, message, task = (b["data"] for b in receiver.received)
    conversation_id = created["conversation"]["id"]
    assert assigned["conversation"]["assignee_id"] == task["task"]["assignee_id"] is not None
    assert lead["lead"]["name"] == "Jan Visser" and lead["conversation_id"] == conversation_id
    assert message["message"]["text"] == "Graag een offerte."
    assert task["task"]["kind"] == "follow_up_lead"
