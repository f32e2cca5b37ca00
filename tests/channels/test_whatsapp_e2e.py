"""WhatsApp end to end: Meta's handshake, signed Cloud API deliveries on /webhooks/whatsapp/<id>,
a real arq worker, the first-line bot, and replies to a local fake of the Graph API."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from graph_api import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, FakeGraphAPI, signed_headers
from sqlalchemy import select
from support import fixture_bytes, stored_file

from crm.models import Lead, Task, Team, TeamMember, User
from inbox.api.auth import create_api_token
from inbox.bot.demo import seed_knowledge_base
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Attachment, Channel, Conversation, Event, Message
from inbox.outbox.models import WebhookDelivery, WebhookSubscription
from inbox.settings import Settings
from workers.jobs import replay_events
from workers.worker import policy_from

Client = TestClient[Any, Any]
CUSTOMER = "31612345678"
VERIFY_TOKEN = "kies-een-lang-geheim"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI() as api:
        yield api


async def whatsapp_channel(sessions: Sessions, graph: FakeGraphAPI, **config: Any) -> Channel:
    async with sessions() as session, session.begin():
        await seed_knowledge_base(session)
        team = await session.scalar(select(Team.name).where(Team.name == "Klantenservice"))
        return await add_channel(
            session,
            "whatsapp",
            "WhatsApp klantenservice",
            {
                "phone_number_id": PHONE_NUMBER_ID,
                "access_token": ACCESS_TOKEN,
                "app_secret": APP_SECRET,
                "verify_token": VERIFY_TOKEN,
                "api_base": graph.base_url,
            }
            | config,
            team,
        )


def fresh(name: str, *, seconds_ago: int = 60) -> dict[str, Any]:
    """A fixture's notification as if it were sent `seconds_ago` (the 24-hour window counts)."""
    payload: dict[str, Any] = json.loads(fixture_bytes("whatsapp", name))
    for entry in payload["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            for item in value.get("messages", []) + value.get("statuses", []):
                item["timestamp"] = str(int(time.time()) - seconds_ago)
    return payload


def receipt(status: str, of: str) -> dict[str, Any]:
    payload = fresh(f"status__{status}.json")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = of
    return payload


async def post(client: Client, channel: Channel, payload: dict[str, Any] | bytes) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post(
        f"/webhooks/whatsapp/{channel.id}", data=body, headers=signed_headers(body)
    )


async def manager_token(sessions: Sessions) -> tuple[User, str]:
    async with sessions() as session, session.begin():
        team = Team(name="Klantenservice")
        manager = User(email="fatima@switchboard.test", name="Fatima", role="manager")
        session.add_all([team, manager])
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=manager.id))
        token = await create_api_token(session, manager.id, "inbox", "api", None)
        return manager, token


async def the_conversation(sessions: Sessions) -> Conversation:
    async with sessions() as session:
        return (await session.scalars(select(Conversation))).one()


async def outbound(sessions: Sessions) -> list[Message]:
    async with sessions() as session:
        query = select(Message).where(Message.direction == "outbound").order_by(Message.id)
        return list((await session.scalars(query)).all())


async def test_meta_verifies_the_webhook_with_the_verify_token(
    client: Client, sessions: Sessions, graph: FakeGraphAPI
) -> None:
    channel = await whatsapp_channel(sessions, graph)
    url = f"/webhooks/whatsapp/{channel.id}"
    ok = await client.get(
        url,
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert (ok.status, await ok.text()) == (200, "1158201444")
    wrong = await client.get(
        url, params={"hub.mode": "subscribe", "hub.verify_token": "raden", "hub.challenge": "1"}
    )
    assert wrong.status == 403
    assert (await client.get(f"/webhooks/telegram/{channel.id}")).status in (404, 405)


async def test_bad_deliveries_get_the_contract_and_broken_ones_are_kept_replayable(
    client: Client, sessions: Sessions, graph: FakeGraphAPI, settings: Settings
) -> None:
    channel = await whatsapp_channel(sessions, graph)
    url = f"/webhooks/whatsapp/{channel.id}"
    body = fixture_bytes("whatsapp", "text__plain.json")
    unsigned = await client.post(url, data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status == 401
    forged = await client.post(url, data=body, headers=signed_headers(body, "een-ander-geheim"))
    assert forged.status == 401
    huge = b'{"object":"whatsapp_business_account","pad":"' + b"x" * settings.max_body_bytes + b'"}'
    oversize = await client.post(url, data=io.BytesIO(huge), headers=signed_headers(huge))
    assert oversize.status == 413
    broken = await post(client, channel, fixture_bytes("whatsapp", "broken__json.json"))
    assert broken.status == 400
    missing = await post(client, channel, fixture_bytes("whatsapp", "missing__id.json"))
    assert missing.status == 422
    assert "messages[0].id missing" in (await missing.json())["error"]
    async with sessions() as session:
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
    assert [(e.status, e.external_id.split(":")[0]) for e in events] == [
        ("failed", "invalid"),
        ("failed", "invalid"),
    ]
    ctx = {"sessions": sessions, "policy": policy_from(settings)}
    [outcome] = await replay_events(ctx, [(await missing.json())["event_id"]])
    assert outcome["status"] == "failed" and "messages[0].id missing" in outcome["error"]


async def test_a_text_becomes_a_lead_and_the_reply_goes_out_with_its_receipts(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], graph: FakeGraphAPI
) -> None:
    _, token = await manager_token(sessions)
    channel = await whatsapp_channel(sessions, graph)
    payload = fresh("text__plain.json")
    assert (await post(client, channel, payload)).status == 202
    assert (await post(client, channel, payload)).status == 200  # redelivery: a no-op
    await run_worker()
    conversation = await the_conversation(sessions)
    async with sessions() as session:
        lead = await session.get(Lead, conversation.lead_id)
        inbound = (await session.scalars(select(Message))).one()
    assert lead is not None and lead.name == "Sanne de Vries"
    assert inbound.meta["reply_address"] == CUSTOMER

    reply = await client.post(
        f"/api/conversations/{conversation.id}/messages",
        json={"text": "Goedemiddag Sanne, wij zijn open van 8:30 tot 17:00."},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status == 201, await reply.text()
    await run_worker()
    [sent] = graph.sent()
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "text",
        "text": {
            "body": "Goedemiddag Sanne, wij zijn open van 8:30 tot 17:00.",
            "preview_url": False,
        },
    }
    [message] = await outbound(sessions)
    assert message.status == "sent"
    wamid = message.meta["provider_id"]

    for status in ("delivered", "read"):
        assert (await post(client, channel, receipt(status, wamid))).status == 202
        await run_worker()
        assert [m.status for m in await outbound(sessions)] == [status]
    # A late "delivered" never moves a read message back.
    late = receipt("delivered", wamid)
    late["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"] = "1"
    await post(client, channel, late)
    await run_worker()
    assert [m.status for m in await outbound(sessions)] == ["read"]


async def answered_text(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], graph: FakeGraphAPI
) -> tuple[Channel, Message]:
    """A customer's text, answered by a manager: the channel and our sent reply."""
    _, token = await manager_token(sessions)
    channel = await whatsapp_channel(sessions, graph)
    await post(client, channel, fresh("text__plain.json"))
    await run_worker()
    conversation = await the_conversation(sessions)
    await client.post(
        f"/api/conversations/{conversation.id}/messages",
        json={"text": "Dank u, wij kijken ernaar."},
        headers={"Authorization": f"Bearer {token}"},
    )
    await run_worker()
    [message] = await outbound(sessions)
    return channel, message


async def test_a_batched_delivery_stores_every_message_and_receipt_once(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], graph: FakeGraphAPI
) -> None:
    channel, ours = await answered_text(client, sessions, run_worker, graph)
    # Meta batches: two entries, one with two changes, one change with two customers' messages
    # and one with the receipt of our reply.
    batch = fresh("batch__messages_and_statuses.json")
    batch["entry"][0]["changes"][1]["value"]["statuses"][0]["id"] = ours.meta["provider_id"]
    assert (await post(client, channel, batch)).status == 202
    assert (await post(client, channel, batch)).status == 200  # redelivery: a no-op
    await run_worker()
    # The same message again in another batch of Meta's: a new delivery, no second message.
    alone = fresh("batch__messages_and_statuses.json")
    alone["entry"] = alone["entry"][1:]
    assert (await post(client, channel, alone)).status == 202
    await run_worker()

    async with sessions() as session:
        inbound = (
            await session.execute(
                select(
                    Message.external_id, Message.text, Message.sender_name, Conversation.thread_key
                )
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.direction == "inbound")
                .order_by(Message.id)
            )
        ).all()
        events = (await session.scalars(select(Event.status).order_by(Event.id))).all()
    wamids = [
        m["id"]
        for entry in batch["entry"]
        for change in entry["changes"]
        for m in change["value"].get("messages", [])
    ]
    assert [row.external_id for row in inbound[1:]] == wamids
    assert [(row.text, row.sender_name, row.thread_key) for row in inbound[1:]] == [
        (
            "Goedemorgen, mijn bestelling 4471 is nog niet binnen.",
            "Sanne de Vries",
            "wa:31612345678",
        ),
        ("De beschadigde doos", "Pieter Jansen", "wa:31698765432"),
        (
            "Het ordernummer staat in de bevestiging van vrijdag.",
            "Sanne de Vries",
            "wa:31612345678",
        ),
    ]
    assert inbound[0].thread_key == inbound[1].thread_key == "wa:31612345678"
    assert [m.status for m in await outbound(sessions)] == ["delivered"]
    assert events == ["processed", "processed", "processed"]


async def test_a_failed_receipt_fails_the_message_with_meta_s_reason(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], graph: FakeGraphAPI
) -> None:
    channel, message = await answered_text(client, sessions, run_worker, graph)
    await post(client, channel, receipt("failed", message.meta["provider_id"]))
    await run_worker()
    [message] = await outbound(sessions)
    assert message.status == "failed"
    assert message.error is not None and message.error.startswith("131047: Re-engagement message")


async def test_outside_the_24_hour_window_only_a_template_may_be_sent(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], graph: FakeGraphAPI
) -> None:
    _, token = await manager_token(sessions)
    channel = await whatsapp_channel(sessions, graph)
    await post(client, channel, fresh("text__plain.json", seconds_ago=25 * 3600))
    await run_worker()
    conversation = await the_conversation(sessions)
    url = f"/api/conversations/{conversation.id}/messages"
    headers = {"Authorization": f"Bearer {token}"}
    refused = await client.post(url, json={"text": "Nog vragen?"}, headers=headers)
    assert refused.status == 409
    assert "24-hour customer-service window" in (await refused.json())["error"]["message"]

    template = {
        "name": "follow_up",
        "language": "nl",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Sanne"}]}],
    }
    accepted = await client.post(
        url, json={"text": "[sjabloon follow_up]", "template": template}, headers=headers
    )
    assert accepted.status == 201, await accepted.text()
    await run_worker()
    [sent] = graph.sent()
    assert sent["type"] == "template"
    assert sent["template"] == {
        "name": "follow_up",
        "language": {"code": "nl"},
        "components": template["components"],
    }
    assert [m.status for m in await outbound(sessions)] == ["sent"]


async def test_an_image_is_downloaded_through_the_media_url_into_the_file_store(
    client: Client,
    sessions: Sessions,
    run_worker: Callable[[], Any],
    graph: FakeGraphAPI,
    settings: Settings,
) -> None:
    channel = await whatsapp_channel(sessions, graph)
    graph.media["1479537139650973"] = (b"\xff\xd8\xff\xe0 schade", "image/jpeg")
    assert (await post(client, channel, fresh("image__caption.json"))).status == 202
    await run_worker()
    async with sessions() as session:
        attachment = (await session.scalars(select(Attachment))).one()
    assert attachment.sha256 is not None and attachment.refused is None
    assert attachment.size == len(b"\xff\xd8\xff\xe0 schade")
    assert stored_file(settings.data_dir, attachment.sha256) == b"\xff\xd8\xff\xe0 schade"


async def test_a_media_url_to_a_private_address_is_refused_not_fetched(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], graph: FakeGraphAPI
) -> None:
    channel = await whatsapp_channel(sessions, graph)
    graph.media["733398575851011"] = (b"%PDF-1.7", "application/pdf")
    graph.media_url_override = "https://169.254.169.254/latest/meta-data/iam"
    await post(client, channel, fresh("document__pdf.json"))
    await run_worker()
    async with sessions() as session:
        attachment = (await session.scalars(select(Attachment))).one()
    assert attachment.sha256 is None
    assert attachment.refused == "media host 169.254.169.254 is not a public address"


async def test_the_bot_answers_on_whatsapp_and_hands_over_on_the_button(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], graph: FakeGraphAPI
) -> None:
    await manager_token(sessions)
    channel = await whatsapp_channel(sessions, graph, bot={"enabled": True, "lead_capture": False})
    await post(client, channel, fresh("text__plain.json"))
    await run_worker()
    answers = graph.sent()
    assert answers and all(a["to"] == CUSTOMER for a in answers)
    first = answers[0]
    body = (
        first["text"]["body"] if first["type"] == "text" else first["interactive"]["body"]["text"]
    )
    assert "open" in body.lower()
    buttons = [a["interactive"]["action"] for a in answers if a["type"] == "interactive"]
    assert any(
        b["reply"]["id"] == "handover" for action in buttons for b in action.get("buttons", [])
    )
    conversation = await the_conversation(sessions)
    assert conversation.handled_by == "bot"

    await post(client, channel, fresh("interactive__button_reply.json"))  # "Medewerker": handover
    await run_worker()
    conversation = await the_conversation(sessions)
    assert conversation.handled_by == "human"
    async with sessions() as session:
        assert (await session.scalars(select(Task.kind))).all()


async def test_a_batch_whose_one_message_is_refused_still_reports_the_others_to_integrators(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], graph: FakeGraphAPI
) -> None:
    channel = await whatsapp_channel(sessions, graph)
    async with sessions() as session, session.begin():
        session.add(
            WebhookSubscription(
                url="https://hooks.example.com/crm",
                secret="s3cret-of-the-integrator-0123456789",
                events=["message.created"],
                active=True,
            )
        )
    batch = fresh("batch__messages_and_statuses.json")
    texts = [
        m
        for entry in batch["entry"]
        for change in entry["changes"]
        for m in change["value"].get("messages", [])
    ]
    texts[0]["text"]["body"] += "\x00"  # valid JSON, a NUL PostgreSQL cannot store
    assert (await post(client, channel, batch)).status == 202
    await run_worker()

    async with sessions() as session:
        [event] = (await session.execute(select(Event.status, Event.error))).all()
        stored = (
            await session.execute(
                select(Message.id, Message.external_id).where(Message.direction == "inbound")
            )
        ).all()
        reported = (
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.event_type == "message.created")
            )
        ).all()
    assert event.status == "failed" and event.error is not None and "0x00" in event.error
    assert sorted(row.external_id for row in stored) == sorted(m["id"] for m in texts[1:])
    assert sorted(r.payload["data"]["message"]["id"] for r in reported) == sorted(
        row.id for row in stored
    )
