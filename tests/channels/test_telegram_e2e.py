"""Telegram end to end: real Updates on POST /webhooks/telegram/<id> with the secret token, a real
arq worker, the first-line bot, and aiogram sending to a local fake Bot API."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis
from sqlalchemy import func, select
from support import fixture_bytes, stored_file
from telegram_api import BOT_USERNAME, TOKEN, FakeBotAPI

from crm.matcher import add_identities, identity_keys
from crm.models import Contact, Identity, Lead, Relation, Task, Team, TeamMember, User
from inbox.api.auth import create_api_token
from inbox.bot import external as bot_external
from inbox.bot.demo import seed_knowledge_base
from inbox.bot.models import ChatJob
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Attachment, Channel, Conversation, Event, HistoryEntry, Message
from inbox.routing.models import BusinessCalendar, Holiday
from inbox.service.engines import EngineUrls
from inbox.settings import Settings
from workers import bot as bot_jobs
from workers.worker import close_worker, make_worker

Client = TestClient[Any, Any]
JAN = {
    "id": 604512387,
    "is_bot": False,
    "first_name": "Jan",
    "last_name": "de Vries",
    "username": "jandevries",
    "language_code": "nl",
}
GROUP = {"id": -1001876543210, "title": "Bouwbedrijf Hendriks — inkoop", "type": "supergroup"}
OPENING_HOURS = "Onze showroom en klantenservice zijn open"


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as api:
        yield api


class Chat:
    """One customer's Telegram chat with our bot: builds Updates and posts them as Telegram does."""

    def __init__(self, client: Client, channel: Channel, user: dict[str, Any] = JAN) -> None:
        self.client, self.channel, self.user = client, channel, user
        self.update_id = 500_000 + user["id"] % 1000 * 100
        self.message_id = 10

    def chat(self) -> dict[str, Any]:
        return {k: v for k, v in self.user.items() if k in ("id", "first_name", "username")} | {
            "type": "private"
        }

    def update(
        self, text: str | None = None, chat: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        self.update_id += 1
        self.message_id += 1
        message: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.user,
            "chat": chat or self.chat(),
            "date": 1732183200 + self.message_id,
        }
        if text is not None:
            message["text"] = text
        return {"update_id": self.update_id, "message": message | extra}

    async def post(self, update: dict[str, Any], secret: str | None = None) -> Any:
        return await self.client.post(
            f"/webhooks/telegram/{self.channel.id}",
            data=json.dumps(update),
            headers={
                "Content-Type": "application/json",
                "X-Telegram-Bot-Api-Secret-Token": secret or self.channel.config["webhook_secret"],
            },
        )

    async def say(self, text: str, **extra: Any) -> dict[str, Any]:
        update = self.update(text, **extra)
        response = await self.post(update)
        assert response.status == 202, await response.text()
        return update

    async def press(self, data: str) -> None:
        self.update_id += 1
        update = {
            "update_id": self.update_id,
            "callback_query": {
                "id": f"cb{self.update_id}",
                "from": self.user,
                "message": {
                    "message_id": 101,
                    "chat": self.chat(),
                    "date": 1732183300,
                    "text": "…",
                },
                "chat_instance": "-43982349",
                "data": data,
            },
        }
        response = await self.post(update)
        assert response.status == 202


async def telegram_channel(
    sessions: Sessions, bot_api: FakeBotAPI, team: str | None = "Verkoop", **config: Any
) -> Channel:
    settings = config.pop("bot", {"enabled": True})
    async with sessions() as session, session.begin():
        await seed_knowledge_base(session)
        if team and not await session.scalar(select(Team.id).where(Team.name == team)):
            team = None  # a test without people
        return await add_channel(
            session,
            "telegram",
            "Helpdesk bot",
            {
                "token": TOKEN,
                "api_base": bot_api.base_url,
                "bot_username": BOT_USERNAME,
                "bot": settings,
            }
            | config,
            team,
        )


async def sales_team(sessions: Sessions) -> User:
    async with sessions() as session, session.begin():
        team = Team(name="Verkoop")
        manager = User(email="pieter@switchboard.test", name="Pieter", role="manager")
        session.add_all([team, manager])
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=manager.id))
        return manager


async def known_contact(
    sessions: Sessions, manager: User, phone: str | None = None, telegram: bool = True
) -> Contact:
    async with sessions() as session, session.begin():
        relation = Relation(
            name="De Vries Bouw",
            normalized_name="de vries bouw",
            status="customer",
            account_manager_id=manager.id,
        )
        session.add(relation)
        await session.flush()
        contact = Contact(relation_id=relation.id, first_name="Jan", full_name="Jan de Vries")
        session.add(contact)
        await session.flush()
        keys = identity_keys([], [phone] if phone else [], str(JAN["id"]) if telegram else None)
        await add_identities(session, keys, contact_id=contact.id)
        return contact


def texts(api: FakeBotAPI) -> list[str]:
    return [call["text"] for call in api.sent("sendMessage")]


async def the_conversation(sessions: Sessions) -> Conversation:
    async with sessions() as session:
        return (await session.scalars(select(Conversation))).one()


async def tasks(sessions: Sessions) -> list[Task]:
    async with sessions() as session:
        return list((await session.scalars(select(Task).order_by(Task.id))).all())


async def test_a_text_from_a_new_user_gets_the_faq_answer(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    await sales_team(sessions)
    channel = await telegram_channel(sessions, bot_api)
    response = await Chat(client, channel).post(
        json.loads(fixture_bytes("telegram", "text__private.json"))
    )
    assert response.status == 202
    await run_worker()

    [answer] = bot_api.sent("sendMessage")
    assert answer["chat_id"] == "604512387"
    assert answer["text"].startswith(OPENING_HOURS)
    markup = json.loads(answer["reply_markup"])
    assert ["handover"] == [b["callback_data"] for row in markup["inline_keyboard"] for b in row][
        -1:
    ]
    conversation = await the_conversation(sessions)
    assert (
        conversation.handled_by == "bot" and conversation.bot_state["answered"] == "opening_hours"
    )
    assert await tasks(sessions) == []  # the bot answered: nothing for a person
    async with sessions() as session:
        lead = (await session.scalars(select(Lead))).one()
        assert lead.name == "Jan de Vries" and conversation.lead_id == lead.id
        out = (await session.scalars(select(Message).where(Message.direction == "outbound"))).one()
        assert out.status == "sent" and out.author_id is None and out.meta["auto"] == "bot"
        assert out.meta["provider_id"] == "604512387:101"


async def test_medewerker_hands_over_to_the_manager_and_the_bot_stays_silent(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    manager = await sales_team(sessions)
    contact = await known_contact(sessions, manager)
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    await chat.say("Wat is jullie adres?")
    await run_worker()
    assert "Industrieweg 12" in texts(bot_api)[0]

    await chat.say("Ik wil graag een medewerker spreken")
    await run_worker()
    assert texts(bot_api)[1].startswith("Ik geef het gesprek door aan een collega")
    conversation = await the_conversation(sessions)
    assert conversation.handled_by == "human" and conversation.contact_id == contact.id
    assert conversation.assignee_id == manager.id  # the account manager, by the routing rules
    [task] = await tasks(sessions)
    assert (task.kind, task.assignee_id, task.conversation_id) == (
        "reply",
        manager.id,
        conversation.id,
    )
    assert conversation.bot_state["handover"]["reason"] == "asked"

    await chat.say("Wat zijn jullie openingstijden?")
    await run_worker()
    assert len(bot_api.sent("sendMessage")) == 2  # a person has it now: the bot says nothing
    assert len(await tasks(sessions)) == 1


async def test_a_managers_reply_from_the_api_reaches_sendmessage(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    manager = await sales_team(sessions)
    await known_contact(sessions, manager)
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    await chat.say("mens")
    await run_worker()
    conversation = await the_conversation(sessions)
    async with sessions() as session, session.begin():
        token = await create_api_token(session, manager.id, "inbox", "api", None)
    response = await client.post(
        f"/api/conversations/{conversation.id}/messages",
        json={"text": "Goedemiddag Jan, ik bel u zo <even> terug."},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 201, await response.text()
    await run_worker()
    last = bot_api.sent("sendMessage")[-1]
    assert last["chat_id"] == "604512387"
    assert last["text"] == "Goedemiddag Jan, ik bel u zo &lt;even&gt; terug."
    assert [t.status for t in await tasks(sessions)] == ["done"]


async def test_contact_sharing_links_the_phone_to_the_known_contact(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    manager = await sales_team(sessions)
    contact = await known_contact(sessions, manager, phone="06-12345678", telegram=False)
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    await chat.say("Hallo")
    await run_worker()
    conversation = await the_conversation(sessions)
    assert conversation.contact_id is None and conversation.lead_id is not None

    share = json.loads(fixture_bytes("telegram", "contact__share.json"))
    response = await chat.post(share)
    assert response.status == 202
    await run_worker()
    conversation = await the_conversation(sessions)
    assert conversation.contact_id == contact.id
    async with sessions() as session:
        owners = {
            (i.kind, i.value): i.contact_id for i in (await session.scalars(select(Identity))).all()
        }
        lead = await session.get(Lead, conversation.lead_id)
    assert owners == {("phone", "+31612345678"): contact.id, ("telegram", "604512387"): contact.id}
    assert lead is not None and lead.status == "converted"


async def test_a_shared_unknown_phone_becomes_an_identity_of_the_lead(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    channel = await telegram_channel(sessions, bot_api, team=None)
    chat = Chat(client, channel)
    await chat.say("Hallo")
    await chat.post(json.loads(fixture_bytes("telegram", "contact__share.json")))
    await run_worker()
    async with sessions() as session:
        lead = (await session.scalars(select(Lead))).one()
        kinds = {
            i.kind: i.value
            for i in (await session.scalars(select(Identity).where(Identity.lead_id == lead.id)))
        }
    assert kinds == {"telegram": "604512387", "phone": "+31612345678"}
    assert lead.fields["phone"] == "+31612345678"


async def test_a_redelivered_update_is_stored_and_answered_once(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    update = chat.update("Hoe kan ik betalen?")
    assert (await chat.post(update)).status == 202
    again = await chat.post(update)
    assert again.status == 200 and (await again.json())["duplicate"] is True
    await run_worker()
    assert (await chat.post(update)).status == 200
    await run_worker()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1
        inbound = await session.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "inbound")
        )
    assert inbound == 1
    assert len(bot_api.sent("sendMessage")) == 1


async def test_a_wrong_secret_token_is_401_and_nothing_is_kept(
    client: Client, sessions: Sessions, bot_api: FakeBotAPI
) -> None:
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    response = await chat.post(chat.update("Hallo"), secret="not-the-secret")
    assert response.status == 401
    missing = await client.post(
        f"/webhooks/telegram/{channel.id}",
        data=json.dumps(chat.update("Hallo")),
        headers={"Content-Type": "application/json"},
    )
    assert missing.status == 401
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 0


async def test_an_external_bot_that_is_down_hands_the_conversation_to_a_person(
    client: Client,
    sessions: Sessions,
    run_worker: Callable[[], Any],
    bot_api: FakeBotAPI,
    unused_tcp_port: int,
) -> None:
    manager = await sales_team(sessions)
    channel = await telegram_channel(
        sessions, bot_api, bot={}, bot_url=f"http://127.0.0.1:{unused_tcp_port}/hook"
    )
    assert channel.config["bot_secret"]  # generated when the channel was added
    await Chat(client, channel).say("Wat kost een pallet kalkzandsteen?")
    await run_worker()
    conversation = await the_conversation(sessions)
    assert conversation.handled_by == "human"
    assert conversation.bot_state["handover"]["reason"].startswith("external bot failed")
    [task] = await tasks(sessions)
    assert task.assignee_id == manager.id and task.kind == "follow_up_lead"
    assert texts(bot_api) == [
        "Ik geef het gesprek door aan een collega; die reageert hier zo snel mogelijk."
    ]
    async with sessions() as session:
        statuses = sorted(
            (j.event, j.status)
            for j in (await session.scalars(select(ChatJob).where(ChatJob.kind == "external")))
        )
    assert statuses == [("conversation.created", "failed"), ("message.created", "failed")]


class ExternalBot:
    """A customer's own bot: checks our signature and records what it got."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.secret = ""
        self.slow = False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not bot_external.verify(self.secret, request.headers, body):
            return web.Response(status=401)
        if self.slow:
            await asyncio.sleep(2)
        self.events.append(json.loads(body))
        self.headers.append(dict(request.headers))
        return web.json_response({"ok": True})


async def test_an_external_bot_gets_signed_events_and_answers_through_the_api(
    client: Client,
    sessions: Sessions,
    run_worker: Callable[[], Any],
    bot_api: FakeBotAPI,
    aiohttp_server: Callable[..., Any],
) -> None:
    manager = await sales_team(sessions)
    external = ExternalBot()
    app = web.Application()
    app.router.add_post("/hook", external.handle)
    server = await aiohttp_server(app)
    channel = await telegram_channel(
        sessions, bot_api, bot={}, bot_url=str(server.make_url("/hook"))
    )
    external.secret = channel.config["bot_secret"]
    chat = Chat(client, channel)
    await chat.say("Hebben jullie nog kozijnen op voorraad?")
    await run_worker()
    assert [e["type"] for e in external.events] == ["conversation.created", "message.created"]
    event = external.events[1]
    assert event["message"]["text"] == "Hebben jullie nog kozijnen op voorraad?"
    assert event["conversation"]["handled_by"] == "bot"
    assert external.headers[1]["X-Switchboard-Delivery"] == event["id"]
    assert bot_api.sent("sendMessage") == []  # the built-in bot stays out of it

    async with sessions() as session, session.begin():
        token = await create_api_token(session, manager.id, "bot", "bot", channel.id)
    auth = {"Authorization": f"Bearer {token}"}
    conversation_id = event["conversation"]["id"]
    reply = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "Ja, 40 stuks op voorraad."},
        headers=auth,
    )
    assert reply.status == 201
    await run_worker()
    attrs = await client.put(
        f"/api/conversations/{conversation_id}/attributes",
        json={"attributes": {"intent": "stock"}, "email": "jan@devries-bouw.nl", "name": "Jan"},
        headers=auth,
    )
    assert attrs.status == 200, await attrs.text()
    assert (await attrs.json())["linked_to"] == "lead"
    handed = await client.post(
        f"/api/conversations/{conversation_id}/handover",
        json={"reason": "wants a quote"},
        headers=auth,
    )
    assert handed.status == 200, await handed.text()
    await run_worker()
    assert texts(bot_api) == [
        "Ja, 40 stuks op voorraad.",
        "Ik geef het gesprek door aan een collega; die reageert hier zo snel mogelijk.",
    ]
    late = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "Nog iets"}, headers=auth
    )
    assert late.status == 409
    conversation = await the_conversation(sessions)
    assert conversation.bot_state["attributes"] == {"intent": "stock"}
    [task] = await tasks(sessions)
    assert task.assignee_id == manager.id
    async with sessions() as session:
        lead = (await session.scalars(select(Lead))).one()
    assert lead.name == "Jan" and lead.fields["email"] == "jan@devries-bouw.nl"


async def test_lead_capture_collects_validated_details_before_the_hand_over(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    manager = await sales_team(sessions)
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    for text in (
        "medewerker",
        "Karin Prins",
        "Prins Bouw B.V.",
        "karin@prins",  # no top-level domain: asked again
        "karin.prins@prins-bouw.nl of 06 87654321",
        "Een offerte voor 40 kozijnen",
    ):
        await chat.say(text)
        await run_worker()
    assert texts(bot_api) == [
        "Dan zet ik het even klaar voor een collega. Wat is uw naam?",
        "Voor welk bedrijf neemt u contact op? (Typ 'geen' als dat niet zo is.)",
        "Op welk e-mailadres of telefoonnummer kunnen we u bereiken?",
        "Dat lijkt geen geldig e-mailadres of telefoonnummer. Probeer het nog eens, "
        "bijvoorbeeld naam@bedrijf.nl of 06 12345678.",
        "Waarmee kunnen we u helpen?",
        "Dank u wel, Karin Prins.",
        "Ik geef het gesprek door aan een collega; die reageert hier zo snel mogelijk.",
    ]
    async with sessions() as session:
        lead = (await session.scalars(select(Lead))).one()
        identities = {
            (i.kind, i.value)
            for i in (await session.scalars(select(Identity).where(Identity.lead_id == lead.id)))
        }
    assert (lead.name, lead.company) == ("Karin Prins", "Prins Bouw B.V.")
    assert lead.fields["question"] == "Een offerte voor 40 kozijnen"
    assert identities == {("telegram", "604512387"), ("email", "karin.prins@prins-bouw.nl")}
    [task] = await tasks(sessions)
    assert (task.kind, task.assignee_id, task.lead_id) == ("follow_up_lead", manager.id, lead.id)


async def test_two_failed_understandings_hand_over_after_one_rephrase(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    await sales_team(sessions)
    channel = await telegram_channel(
        sessions, bot_api, bot={"enabled": True, "lead_capture": False}
    )
    chat = Chat(client, channel)
    await chat.say("Mijn kat is ziek")
    await run_worker()
    [rephrase] = bot_api.sent("sendMessage")
    assert rephrase["text"].startswith("Sorry, dat begreep ik niet helemaal.")
    buttons = [
        b["callback_data"]
        for row in json.loads(rephrase["reply_markup"])["inline_keyboard"]
        for b in row
    ]
    assert "faq:opening_hours" in buttons and buttons[-1] == "handover"
    await chat.say("Wie wint de Tour de France?")
    await run_worker()
    assert texts(bot_api)[-1].startswith("Ik geef het gesprek door")
    conversation = await the_conversation(sessions)
    assert conversation.handled_by == "human"
    assert conversation.bot_state["handover"]["reason"] == "not understood"
    assert len(await tasks(sessions)) == 1


async def test_a_button_press_answers_the_callback_and_the_topic(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    await chat.say("/start")
    await run_worker()
    assert texts(bot_api)[0].startswith("Welkom!")
    await chat.press("faq:address")
    await run_worker()
    assert [c["callback_query_id"] for c in bot_api.sent("answerCallbackQuery")] == [
        f"cb{chat.update_id}"
    ]
    assert "Industrieweg 12" in texts(bot_api)[1]
    await chat.press("handover")
    await run_worker()
    assert texts(bot_api)[2] == "Dan zet ik het even klaar voor een collega. Wat is uw naam?"


async def test_outside_business_hours_the_bot_says_when_someone_answers(
    settings: Settings,
    engine_urls: EngineUrls,
    client: Client,
    sessions: Sessions,
    bot_api: FakeBotAPI,
) -> None:
    manager = await sales_team(sessions)
    await known_contact(sessions, manager)
    async with sessions() as session, session.begin():
        calendar = BusinessCalendar(
            name="Kantoor",
            hours={day: [["08:30", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
            is_default=True,
        )
        session.add(calendar)
        await session.flush()
        session.add(Holiday(calendar_id=calendar.id, day=date(2026, 11, 23), name="Studiedag"))
    channel = await telegram_channel(sessions, bot_api)
    saturday_evening = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)
    await Chat(client, channel).say("Ik wil een medewerker spreken")
    worker = make_worker(
        settings,
        engine_urls.database_url,
        engine_urls.redis_url,
        handle_signals=False,
        burst=True,
        extra_ctx={"clock": lambda: saturday_evening},
    )
    try:
        await worker.main()
    finally:
        await close_worker(worker)
    # Monday 23 November is a holiday: Tuesday 08:30 in Amsterdam.
    assert texts(bot_api) == [
        "Ik geef het gesprek door aan een collega. We zijn nu gesloten; dinsdag 24 november om "
        "08:30 zijn we er weer en reageren we zo snel mogelijk."
    ]
    [task] = await tasks(sessions)
    assert task.due_at is not None and task.due_at >= datetime(2026, 11, 24, 7, 30, tzinfo=UTC)


async def test_in_a_group_the_bot_answers_only_when_addressed(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    await chat.say("Wat zijn jullie openingstijden?", chat=GROUP)
    await run_worker()
    assert bot_api.sent("sendMessage") == []
    await chat.say(f"@{BOT_USERNAME} wat zijn jullie openingstijden?", chat=GROUP)
    await run_worker()
    [answer] = bot_api.sent("sendMessage")
    assert answer["chat_id"] == str(GROUP["id"]) and answer["text"].startswith(OPENING_HOURS)
    assert json.loads(answer["reply_parameters"])["message_id"] == chat.message_id
    async with sessions() as session:
        inbound = await session.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "inbound")
        )
    assert inbound == 2  # both stored, in one conversation
    assert (await the_conversation(sessions)).thread_key == f"tg:{GROUP['id']}"


async def test_a_person_hands_the_conversation_back_and_the_bot_answers_again(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    manager = await sales_team(sessions)
    await known_contact(sessions, manager)
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    await chat.say("human")
    await run_worker()
    conversation = await the_conversation(sessions)
    async with sessions() as session, session.begin():
        token = await create_api_token(session, manager.id, "inbox", "api", None)
    auth = {"Authorization": f"Bearer {token}"}
    await client.post(
        f"/api/conversations/{conversation.id}/messages", json={"text": "Geregeld!"}, headers=auth
    )
    back = await client.post(f"/api/conversations/{conversation.id}/handback", headers=auth)
    assert back.status == 200, await back.text()
    assert (await back.json())["handled_by"] == "bot"
    await chat.say("Wat is de levertijd?")
    await run_worker()
    assert texts(bot_api)[-1].startswith("Op voorraad betekent")
    assert [t.status for t in await tasks(sessions)] == ["done"]
    again = await client.post(f"/api/conversations/{conversation.id}/handback", headers=auth)
    assert again.status == 409
    async with sessions() as session:
        actions = (
            await session.scalars(
                select(HistoryEntry.action).where(HistoryEntry.action.in_(("handover", "handback")))
            )
        ).all()
    assert actions == ["handover", "handback"]


async def test_a_person_replying_in_a_bot_conversation_silences_the_bot(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    manager = await sales_team(sessions)
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    await chat.say("Hoe kan ik betalen?")
    await run_worker()
    conversation = await the_conversation(sessions)
    async with sessions() as session, session.begin():
        token = await create_api_token(session, manager.id, "inbox", "api", None)
    await client.post(
        f"/api/conversations/{conversation.id}/messages",
        json={"text": "Ik help u verder."},
        headers={"Authorization": f"Bearer {token}"},
    )
    await chat.say("Wat is de levertijd?")
    await run_worker()
    assert texts(bot_api)[-1] == "Ik help u verder."
    assert (await the_conversation(sessions)).handled_by == "human"


async def test_a_photo_is_downloaded_into_the_file_store(
    client: Client,
    sessions: Sessions,
    run_worker: Callable[[], Any],
    bot_api: FakeBotAPI,
    settings: Settings,
) -> None:
    channel = await telegram_channel(sessions, bot_api)
    update = json.loads(fixture_bytes("telegram", "photo__caption.json"))
    largest = update["message"]["photo"][-1]["file_id"]
    bot_api.add_file(b"\xff\xd8\xff\xe0 a jpeg", largest)
    assert (await Chat(client, channel).post(update)).status == 202
    await run_worker()
    async with sessions() as session:
        attachment = (await session.scalars(select(Attachment))).one()
    assert attachment.sha256 is not None and attachment.refused is None
    assert attachment.size == len(b"\xff\xd8\xff\xe0 a jpeg")
    assert stored_file(settings.data_dir, attachment.sha256) == b"\xff\xd8\xff\xe0 a jpeg"


async def test_an_edit_updates_the_message_and_keeps_the_earlier_text(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], bot_api: FakeBotAPI
) -> None:
    channel = await telegram_channel(sessions, bot_api)
    chat = Chat(client, channel)
    await chat.post(json.loads(fixture_bytes("telegram", "text__private.json")))
    await chat.post(json.loads(fixture_bytes("telegram", "edited__text.json")))
    await run_worker()
    async with sessions() as session:
        message = (
            await session.scalars(select(Message).where(Message.direction == "inbound"))
        ).one()
    assert message.text.endswith("op zaterdag en zondag?")
    assert message.meta["edits"] == [
        {
            "text": "Goedemiddag, wat zijn jullie openingstijden op zaterdag?",
            "replaced_at": "2024-11-21T10:01:02+00:00",
        }
    ]
    assert len(bot_api.sent("sendMessage")) == 1  # an edit is not a new question


async def test_long_polling_journals_updates_like_webhooks_one_poller_per_bot(
    sessions: Sessions,
    run_worker: Callable[[], Any],
    bot_api: FakeBotAPI,
    engine_urls: EngineUrls,
    session_factory: Sessions,
) -> None:
    channel = await telegram_channel(sessions, bot_api, mode="polling")
    update = json.loads(fixture_bytes("telegram", "text__private.json"))
    bot_api.add_update(update)
    bot_api.add_update(copy.deepcopy(update))  # Telegram sends it again: journaled once
    redis = ArqRedis.from_url(engine_urls.redis_url)
    engine = session_factory.kw["bind"]
    ctx = {
        "engine": engine,
        "sessions": sessions,
        "redis": redis,
        "telegram_poll_s": 1.5,
        "telegram_poll_wait_s": 1,
    }
    try:
        first, second = await asyncio.gather(
            bot_jobs.poll_telegram(ctx, channel.id), bot_jobs.poll_telegram(ctx, channel.id)
        )
    finally:
        await redis.aclose()
    assert sorted([first, second]) == [-1, 2]  # one poller; the other found the lock taken
    assert bot_api.sent("deleteWebhook")
    async with sessions() as session:
        events = (await session.scalars(select(Event))).all()
    assert [(e.external_id, e.status) for e in events] == [("918273601", "pending")]
    await run_worker()
    assert texts(bot_api)[0].startswith(OPENING_HOURS)


async def test_adding_a_telegram_channel_with_a_public_url_sets_the_webhook(
    sessions: Sessions, bot_api: FakeBotAPI
) -> None:
    channel = await telegram_channel(sessions, bot_api, public_url="https://inbox.example.nl")
    assert bot_api.webhook is not None
    assert bot_api.webhook["url"] == f"https://inbox.example.nl/webhooks/telegram/{channel.id}"
    assert bot_api.webhook["secret_token"] == channel.config["webhook_secret"]
    assert json.loads(bot_api.webhook["allowed_updates"])[:2] == ["message", "edited_message"]
    assert channel.config["webhook_url"] == bot_api.webhook["url"]
    bot_api.queue_error("setWebhook", 400, "Bad Request: bad webhook: HTTPS url must be provided")
    with pytest.raises(ValueError, match="Telegram refused the webhook"):
        await telegram_channel(sessions, bot_api, public_url="http://inbox.example.nl")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Channel)) == 1


async def test_an_external_bot_that_does_not_answer_in_time_hands_over(
    client: Client,
    sessions: Sessions,
    run_worker: Callable[[], Any],
    bot_api: FakeBotAPI,
    aiohttp_server: Callable[..., Any],
) -> None:
    await sales_team(sessions)
    external = ExternalBot()
    external.slow = True
    app = web.Application()
    app.router.add_post("/hook", external.handle)
    server = await aiohttp_server(app)
    channel = await telegram_channel(
        sessions, bot_api, bot={"timeout_s": 0.3}, bot_url=str(server.make_url("/hook"))
    )
    external.secret = channel.config["bot_secret"]
    await Chat(client, channel).say("Hallo?")
    await run_worker()
    conversation = await the_conversation(sessions)
    assert conversation.handled_by == "human"
    assert conversation.bot_state["handover"]["reason"] == (
        "external bot failed: no answer within 0.3 s"
    )
    assert len(await tasks(sessions)) == 1
    assert texts(bot_api)[-1].startswith("Ik geef het gesprek door")
