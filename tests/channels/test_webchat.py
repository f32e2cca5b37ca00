"""The web chat's door: origins, visitor tokens, sizes, rate limits, journaling and history."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from support import fixture_bytes

from channels.base import Delivery
from channels.webchat import issue_token
from channels.webchat.adapter import WebchatAdapter
from inbox.db import Sessions
from inbox.ingest.channels import add_channel, describe
from inbox.models import Attachment, Channel, Conversation, Event, Message

Client = TestClient[Any, Any]
SITE = "https://www.kozijnen.example"


async def make_channel(sessions: Sessions, **config: Any) -> Channel:
    async with sessions() as session, session.begin():
        return await add_channel(
            session, "webchat", "Website", {"allowed_origins": [SITE]} | config
        )


async def new_visitor(client: Client, channel: Channel) -> dict[str, str]:
    response = await client.post(f"/webchat/{channel.id}/visitors", headers={"Origin": SITE})
    assert response.status == 200, await response.text()
    data: dict[str, str] = await response.json()
    return {"Origin": SITE, "Authorization": f"Bearer {data['token']}"}


async def events(sessions: Sessions) -> list[Event]:
    async with sessions() as session:
        return list((await session.scalars(select(Event).order_by(Event.id))).all())


def test_normalize_a_widget_message_threads_by_visitor_and_answers_on_the_chat() -> None:
    config = WebchatAdapter().prepare_config({"allowed_origins": [SITE]})
    delivery = Delivery(
        body=fixture_bytes("webchat", "message__text.json"),
        headers={"x-webchat-visitor": "abc123", "x-webchat-offline": "0", "origin": SITE},
        query={},
        url="",
    )
    msg = WebchatAdapter().normalize(config, delivery)
    assert msg is not None
    assert msg.external_id == "abc123:4f1c2a9e0b7d"
    assert msg.thread_key == "webchat:abc123"
    assert msg.sender.name == "Sanne de Wit"
    assert msg.sender.emails == ("sanne@dewit.nl",)
    assert msg.meta["reply_address"] == "abc123"
    assert msg.meta["page"] == "https://www.kozijnen.example/offerte"


def test_an_offline_message_is_answered_by_email_and_needs_an_address() -> None:
    adapter = WebchatAdapter()
    config = adapter.prepare_config({"allowed_origins": [SITE]})
    headers = {"x-webchat-visitor": "abc123", "x-webchat-offline": "1"}
    msg = adapter.normalize(
        config, Delivery(fixture_bytes("webchat", "message__text.json"), headers, {}, "")
    )
    assert msg is not None
    assert msg.meta["reply_by"] == "email"
    assert "reply_address" not in msg.meta
    assert msg.subject == "Web chat (offline)"
    body = json.dumps({"id": "x1", "text": "Bel me terug"}).encode()
    try:
        adapter.accept(config, Delivery(body, headers, {}, ""))
    except Exception as exc:
        assert getattr(exc, "status", None) == 422
        assert "email" in str(exc)
    else:
        raise AssertionError("an offline message without e-mail was accepted")


async def test_cli_describe_gives_the_embed_snippet_and_keeps_the_secret(
    sessions: Sessions,
) -> None:
    channel = await make_channel(sessions)
    info = describe(channel, "https://inbox.example")
    assert info["embed"] == (
        f'<script src="https://inbox.example/webchat/widget.js" data-channel="{channel.id}"'
        " async></script>"
    )
    assert info["secrets"] == {"visitor_secret": channel.config["visitor_secret"]}


async def test_a_message_is_journaled_once_with_the_visitor_as_sender_key(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    channel = await make_channel(sessions)
    headers = await new_visitor(client, channel)
    body = fixture_bytes("webchat", "message__text.json")
    first = await client.post(f"/webchat/{channel.id}/messages", data=body, headers=headers)
    again = await client.post(f"/webchat/{channel.id}/messages", data=body, headers=headers)
    assert first.status == 202, await first.text()
    assert first.headers["Access-Control-Allow-Origin"] == SITE
    assert again.status == 200 and (await again.json())["duplicate"] is True
    [event] = await events(sessions)
    assert "authorization" not in event.headers["headers"]  # the token is never journaled
    await run_worker()
    response = await client.get(f"/webchat/{channel.id}/messages?since=0", headers=headers)
    [shown] = (await response.json())["messages"]
    assert shown["text"] == "Hebben jullie de kozijnen ook in antraciet?"
    assert shown["client_id"] == "4f1c2a9e0b7d" and shown["from"] == "visitor"


async def test_a_file_is_stored_and_one_over_the_limit_is_413_and_kept_as_failed(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    channel = await make_channel(sessions, max_file_bytes=1000)
    headers = await new_visitor(client, channel)
    ok = await client.post(
        f"/webchat/{channel.id}/messages",
        data=fixture_bytes("webchat", "message__file.json"),
        headers=headers,
    )
    assert ok.status == 202, await ok.text()
    big = {
        "id": "big",
        "files": [{"name": "a.bin", "data": base64.b64encode(b"x" * 1001).decode()}],
    }
    refused = await client.post(f"/webchat/{channel.id}/messages", json=big, headers=headers)
    assert refused.status == 413
    assert "1000 byte limit" in (await refused.json())["error"]
    huge = await client.post(f"/webchat/{channel.id}/messages", data=b"x" * 70_000, headers=headers)
    assert huge.status == 413
    await run_worker()
    async with sessions() as session:
        stored = (await session.scalars(select(Attachment))).one()
        assert (stored.filename, stored.size) == ("tekening.txt", 19)
    statuses = sorted(e.status for e in await events(sessions))
    assert statuses == ["failed", "processed"]


async def test_another_site_is_refused_and_gets_no_cors_headers(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions)
    headers = await new_visitor(client, channel)
    evil = headers | {"Origin": "https://evil.example"}
    for method, path in (
        ("POST", "/visitors"),
        ("GET", "/settings"),
        ("POST", "/messages"),
        ("GET", "/messages"),
    ):
        response = await client.request(
            method, f"/webchat/{channel.id}{path}", headers=evil, data=b"{}"
        )
        assert response.status == 403, path
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "allowed_origins" in (await response.json())["error"]
    preflight = await client.options(
        f"/webchat/{channel.id}/messages",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 403
    assert await events(sessions) == []


async def test_a_bad_or_foreign_token_is_401_and_not_journaled(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions)
    other = await make_channel(sessions)
    _, foreign = issue_token(other.config["visitor_secret"])
    body = fixture_bytes("webchat", "message__text.json")
    for token in ("", "v1.abc.def", foreign):
        response = await client.post(
            f"/webchat/{channel.id}/messages",
            data=body,
            headers={"Origin": SITE, "Authorization": f"Bearer {token}"},
        )
        assert response.status == 401
        assert "visitor token" in (await response.json())["error"]
    socket = await client.get(f"/webchat/{channel.id}/ws?token={foreign}", headers={"Origin": SITE})
    assert socket.status == 401
    assert await events(sessions) == []


async def test_broken_json_is_400_and_kept_as_failed(client: Client, sessions: Sessions) -> None:
    channel = await make_channel(sessions)
    headers = await new_visitor(client, channel)
    response = await client.post(f"/webchat/{channel.id}/messages", data=b"{not", headers=headers)
    assert response.status == 400
    [event] = await events(sessions)
    assert event.status == "failed" and event.payload == b"{not"


async def test_rate_limit_is_per_visitor(client: Client, sessions: Sessions) -> None:
    channel = await make_channel(sessions, rate_limit_per_minute=2)
    chatty = await new_visitor(client, channel)
    quiet = await new_visitor(client, channel)
    statuses = [
        (
            await client.post(
                f"/webchat/{channel.id}/messages",
                json={"id": f"m{i}", "text": "hallo?"},
                headers=chatty,
            )
        ).status
        for i in range(4)
    ]
    assert statuses == [202, 202, 429, 429]
    other = await client.post(
        f"/webchat/{channel.id}/messages", json={"id": "q1", "text": "hoi"}, headers=quiet
    )
    assert other.status == 202
    assert len(await events(sessions)) == 3


async def test_required_prechat_field_missing_is_422(client: Client, sessions: Sessions) -> None:
    channel = await make_channel(sessions, prechat={"email": "required"})
    headers = await new_visitor(client, channel)
    settings = await client.get(f"/webchat/{channel.id}/settings", headers={"Origin": SITE})
    assert (await settings.json())["prechat"] == {"name": "optional", "email": "required"}
    response = await client.post(
        f"/webchat/{channel.id}/messages", json={"id": "a", "text": "hoi"}, headers=headers
    )
    assert response.status == 422
    assert "email" in (await response.json())["error"]


async def test_outside_business_hours_the_answer_goes_by_email(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    closed = {"mon": [["00:00", "00:01"]], "tz": "Europe/Amsterdam"}  # open one minute a week
    channel = await make_channel(sessions, business_hours=closed)
    headers = await new_visitor(client, channel)
    settings = await (
        await client.get(f"/webchat/{channel.id}/settings", headers={"Origin": SITE})
    ).json()
    assert settings["online"] is False
    response = await client.post(
        f"/webchat/{channel.id}/messages",
        json={"id": "o1", "text": "Graag een offerte", "email": "piet@bouw.example"},
        headers=headers,
    )
    assert response.status == 202
    await run_worker()
    async with sessions() as session:
        message = (await session.scalars(select(Message))).one()
        assert message.meta["channel"]["reply_by"] == "email"
        conversation = (await session.scalars(select(Conversation))).one()
        assert conversation.subject == "Web chat (offline)"


async def test_over_the_socket_a_message_is_acknowledged_and_history_follows_the_cursor(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    channel = await make_channel(sessions)
    headers = await new_visitor(client, channel)
    token = headers["Authorization"].removeprefix("Bearer ")
    ws = await client.ws_connect(
        f"/webchat/{channel.id}/ws?token={token}", headers={"Origin": SITE}
    )
    message = {"id": "s1", "text": "Via de socket", "name": "Sanne"}
    await ws.send_json({"type": "message", "id": "s1", "message": message})
    ack = await ws.receive_json(timeout=10)
    assert (ack["type"], ack["id"], ack["code"]) == ("ack", "s1", 202)
    await ws.send_json({"type": "message", "id": "s1", "message": message})
    assert (await ws.receive_json(timeout=10))["code"] == 200  # the outbox sent it again
    await run_worker()
    pushed = await ws.receive_json(timeout=10)  # the worker's realtime event woke the socket
    assert pushed["type"] == "messages"
    assert [m["text"] for m in pushed["messages"]] == ["Via de socket"]
    await ws.close()
    newest = pushed["messages"][-1]["id"]
    again = await client.ws_connect(
        f"/webchat/{channel.id}/ws?token={token}&since={newest}", headers={"Origin": SITE}
    )
    await client.post(
        f"/webchat/{channel.id}/messages", json={"id": "s2", "text": "Nummer twee"}, headers=headers
    )
    await run_worker()
    later = await again.receive_json(timeout=10)
    assert [m["text"] for m in later["messages"]] == ["Nummer twee"]  # nothing twice
    await again.close()


async def test_the_first_line_bot_answers_a_visitor(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    from inbox.bot.demo import seed_knowledge_base

    async with sessions() as session, session.begin():
        await seed_knowledge_base(session)
    channel = await make_channel(sessions, bot={"enabled": True})
    headers = await new_visitor(client, channel)
    response = await client.post(
        f"/webchat/{channel.id}/messages",
        json={"id": "b1", "text": "Wat zijn jullie openingstijden?"},
        headers=headers,
    )
    assert response.status == 202
    await run_worker()
    await run_worker()  # the bot's turn runs as a job of its own
    shown = (await (await client.get(f"/webchat/{channel.id}/messages", headers=headers)).json())[
        "messages"
    ]
    assert [m["from"] for m in shown][:2] == ["visitor", "bot"]
    async with sessions() as session:
        answer = (
            await session.scalars(select(Message).where(Message.direction == "outbound"))
        ).first()
        assert answer is not None and answer.status == "sent"
        visitor_id = headers["Authorization"].split(".")[1]
        assert answer.meta["to"] == visitor_id  # on the chat, to this visitor
