"""The bot's REST API: knowledge base and settings for admins, hand-over rules, attributes."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from crm.models import User
from inbox.api.auth import create_api_token
from inbox.bot.models import BotFaq
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Channel, Conversation

Client = TestClient[Any, Any]
TOKEN = "7012345678:AAF1x-Kq9zR2vT8wYb3nLmP4sD6fGh7JkLc"
FAQ = {
    "key": "opening_hours",
    "language": "nl",
    "question": "Wat zijn jullie openingstijden?",
    "paraphrases": ["Hoe laat zijn jullie open?", " "],
    "keywords": ["openingstijden"],
    "answer": "Maandag tot vrijdag 8:30-17:00.",
    "buttons": [{"label": "Route", "data": "faq:address"}],
}


async def auth(
    sessions: Sessions, role: str, scope: str = "api", channel_id: str | None = None
) -> dict[str, str]:
    async with sessions() as session, session.begin():
        user = User(email=f"{role}.{scope}@example.nl", name=role.title(), role=role)
        session.add(user)
        await session.flush()
        token = await create_api_token(session, user.id, "test", scope, channel_id)
    return {"Authorization": f"Bearer {token}"}


async def chat_channel(sessions: Sessions, **config: Any) -> Channel:
    async with sessions() as session, session.begin():
        return await add_channel(session, "telegram", "Bot", {"token": TOKEN} | config)


async def test_admins_keep_the_knowledge_base_and_managers_try_it(
    client: Client, sessions: Sessions
) -> None:
    admin, manager = await auth(sessions, "admin"), await auth(sessions, "manager")
    made = await client.post("/api/bot/faqs", json=FAQ, headers=admin)
    assert made.status == 201, await made.text()
    faq = await made.json()
    assert faq["paraphrases"] == ["Hoe laat zijn jullie open?"]  # blanks dropped
    assert (await client.post("/api/bot/faqs", json=FAQ, headers=admin)).status == 409
    assert (await client.post("/api/bot/faqs", json=FAQ, headers=manager)).status == 403
    bad = await client.post("/api/bot/faqs", json=FAQ | {"language": "de"}, headers=admin)
    assert bad.status == 422

    tried = await client.post(
        "/api/bot/match", json={"text": "hoe laat gaan jullie open"}, headers=manager
    )
    result = await tried.json()
    assert result["answers"] is True and result["key"] == "opening_hours"
    assert result["threshold"] == 70.0

    changed = await client.put(
        f"/api/bot/faqs/{faq['id']}", json=FAQ | {"answer": "Ma-vr 8-17."}, headers=admin
    )
    assert (await changed.json())["answer"] == "Ma-vr 8-17."
    listed = await client.get("/api/bot/faqs?language=nl", headers=manager)
    assert [f["key"] for f in await listed.json()] == ["opening_hours"]
    assert (await client.delete(f"/api/bot/faqs/{faq['id']}", headers=admin)).status == 200
    assert (await client.delete(f"/api/bot/faqs/{faq['id']}", headers=admin)).status == 404
    async with sessions() as session:
        assert (await session.scalars(select(BotFaq))).all() == []


async def test_bot_settings_and_the_external_bot_secret(client: Client, sessions: Sessions) -> None:
    admin = await auth(sessions, "admin")
    channel = await chat_channel(sessions)
    url = f"/api/channels/{channel.id}/bot"
    start = await (await client.get(url, headers=admin)).json()
    assert start["settings"]["enabled"] is False and start["bot_secret"] is None
    body = {"settings": {"enabled": True, "threshold": 80}, "bot_url": "https://bot.example.nl/h"}
    first = await (await client.put(url, json=body, headers=admin)).json()
    assert first["settings"]["threshold"] == 80 and len(first["bot_secret"]) >= 40
    same = await (await client.put(url, json=body, headers=admin)).json()
    assert same["bot_secret"] == first["bot_secret"]
    rotated = await (
        await client.put(url, json=body | {"rotate_secret": True}, headers=admin)
    ).json()
    assert rotated["bot_secret"] != first["bot_secret"]
    bad = await client.put(url, json={"settings": {"threshold": 101}}, headers=admin)
    assert bad.status == 422
    off = await (await client.put(url, json={"settings": {}}, headers=admin)).json()
    assert off["bot_url"] is None and off["bot_secret"] is None


async def test_hand_over_and_back_need_the_right_state_and_channel(
    client: Client, sessions: Sessions
) -> None:
    admin = await auth(sessions, "admin")
    bot_channel = await chat_channel(sessions, bot={"enabled": True})
    async with sessions() as session, session.begin():
        form = await add_channel(session, "webform", "Website", {})
        human = Conversation(channel_id=form.id, subject="Vraag", handled_by="human")
        with_bot = Conversation(channel_id=bot_channel.id, subject="Chat", handled_by="bot")
        session.add_all([human, with_bot])
    bot_token = await auth(sessions, "agent", "bot", bot_channel.id)
    taken = await client.post(f"/api/conversations/{human.id}/handover", json={}, headers=admin)
    assert taken.status == 409
    no_bot = await client.post(f"/api/conversations/{human.id}/handback", headers=admin)
    assert (await no_bot.json())["error"]["code"] == "no_bot"
    other = await client.post(f"/api/conversations/{human.id}/handover", json={}, headers=bot_token)
    assert other.status == 404  # a bot token sees its own channel only
    back = await client.post(f"/api/conversations/{with_bot.id}/handback", headers=bot_token)
    assert back.status == 403  # a bot cannot take a conversation back from a person
    handed = await client.post(
        f"/api/conversations/{with_bot.id}/handover", json={"text": ""}, headers=bot_token
    )
    assert handed.status == 200 and (await handed.json())["handled_by"] == "human"


async def test_attributes_validate_contact_details(client: Client, sessions: Sessions) -> None:
    admin = await auth(sessions, "admin")
    channel = await chat_channel(sessions, bot={"enabled": True})
    async with sessions() as session, session.begin():
        conversation = Conversation(channel_id=channel.id, subject="Chat", handled_by="bot")
        session.add(conversation)
    url = f"/api/conversations/{conversation.id}/attributes"
    bad = await client.put(url, json={"email": "jan@", "phone": "12"}, headers=admin)
    assert bad.status == 422
    assert [d["loc"][-1] for d in (await bad.json())["error"]["details"]] == ["email", "phone"]
    ok = await client.put(
        url,
        json={"attributes": {"order": "A-1"}, "phone": "06 12345678", "language": "en"},
        headers=admin,
    )
    body = await ok.json()
    assert body["linked_to"] == "lead" and body["lead_id"] is not None
    assert body["attributes"] == {"order": "A-1"}
