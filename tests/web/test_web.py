"""The web inbox's pages and the API routes made for it: the enriched list, the customer panel
(scoped like the conversations), record cards, a message's full original, linking a sender."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from crm.models import Activity, Contact, Identity, Lead, Relation, Task, Team, TeamMember, User
from inbox.api.auth import create_api_token
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Conversation, HistoryEntry, Message
from inbox.users import hash_password

Client = TestClient[Any, Any]
PASSWORD = "correct horse battery"
PASSWORD_HASH = hash_password(PASSWORD)


async def person(sessions: Sessions, email: str, role: str, team: str) -> User:
    async with sessions() as session, session.begin():
        team_row = (await session.scalars(select(Team).where(Team.name == team))).first()
        if team_row is None:
            team_row = Team(name=team)
            session.add(team_row)
            await session.flush()
        user = User(
            email=email,
            name=email.split("@")[0].title(),
            role=role,
            password_hash=PASSWORD_HASH,
            language="en",
        )
        session.add(user)
        await session.flush()
        session.add(TeamMember(team_id=team_row.id, user_id=user.id))
        return user


async def test_pages_are_served_with_a_strict_content_security_policy(client: Client) -> None:
    anonymous = await client.get("/", allow_redirects=False)
    assert (anonymous.status, anonymous.headers["Location"]) == (302, "/login")
    deep = await client.get("/conversations/12", allow_redirects=False)
    assert (deep.status, deep.headers["Location"]) == (302, "/login?next=/conversations/12")
    response = await client.get("/login")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert (await client.get("/static/inbox.js")).status == 200
    assert (await client.get("/ws")).status == 401


async def test_customer_panel_shows_relation_tasks_activities_and_complaints(
    client: Client, sessions: Sessions
) -> None:
    from datetime import UTC, datetime

    from crm.models import Activity, Contact, Relation, Task

    agent = await person(sessions, "pieter@example.nl", "manager", "Verkoop")
    async with sessions() as session, session.begin():
        team_id = (await session.scalars(select(Team.id).where(Team.name == "Verkoop"))).one()
        channel = await add_channel(session, "webform", "W", {})
        relation = Relation(
            name="Hamerslag B.V.",
            normalized_name="hamerslag",
            status="customer",
            abc_class="A",
            account_manager_id=agent.id,
        )
        session.add(relation)
        await session.flush()
        contact = Contact(relation_id=relation.id, full_name="Jan Visser")
        session.add(contact)
        await session.flush()
        now = datetime.now(UTC)
        current = Conversation(
            channel_id=channel.id,
            subject="Offerte",
            team_id=team_id,
            relation_id=relation.id,
            contact_id=contact.id,
        )
        complaint = Conversation(
            channel_id=channel.id,
            subject="Kras op kozijn",
            team_id=team_id,
            relation_id=relation.id,
            labels=["klacht"],
        )
        session.add_all([current, complaint])
        await session.flush()
        session.add(
            Activity(
                kind="call",
                direction="inbound",
                occurred_at=now,
                relation_id=relation.id,
                outcome="missed",
            )
        )
        session.add(
            Task(kind="call_back", title="Terugbellen", relation_id=relation.id, due_at=now)
        )
        token = await create_api_token(session, agent.id, "t")
    response = await client.get(
        f"/api/conversations/{current.id}/panel", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    data = await response.json()
    assert data["contact"]["full_name"] == "Jan Visser"
    assert (
        data["relation"]["name"],
        data["relation"]["abc_class"],
        data["relation"]["account_manager"],
    ) == ("Hamerslag B.V.", "A", "Pieter")
    assert [t["title"] for t in data["tasks"]] == ["Terugbellen"]
    assert [a["outcome"] for a in data["activities"]] == ["missed"]
    assert [c["subject"] for c in data["complaints"]] == ["Kras op kozijn"]


async def bearer(sessions: Sessions, user: User) -> dict[str, str]:
    async with sessions() as session, session.begin():
        return {"Authorization": f"Bearer {await create_api_token(session, user.id, 't')}"}


async def test_inbox_list_names_the_customer_and_shows_last_message_waiting_time_and_sla(
    client: Client, sessions: Sessions
) -> None:
    agent = await person(sessions, "ank@example.nl", "agent", "Verkoop")
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        team_id = (await session.scalars(select(Team.id).where(Team.name == "Verkoop"))).one()
        channel = await add_channel(session, "webform", "Website", {})
        lead = Lead(name="Karin Prins", company="Prins Bouw")
        session.add(lead)
        await session.flush()
        waiting = Conversation(
            channel_id=channel.id,
            subject="Offerte",
            team_id=team_id,
            lead_id=lead.id,
            last_message_at=now,
            last_inbound_at=now - timedelta(minutes=30),
        )
        answered = Conversation(
            channel_id=channel.id,
            subject="Levering",
            team_id=team_id,
            last_message_at=now - timedelta(hours=1),
        )
        session.add_all([waiting, answered])
        await session.flush()
        session.add_all(
            [
                Message(
                    conversation_id=waiting.id,
                    channel_id=channel.id,
                    external_id="a",
                    direction="inbound",
                    kind="form",
                    text="Graag   een\nofferte",
                    sender_name="Karin Prins",
                    sent_at=now - timedelta(minutes=30),
                ),
                Message(
                    conversation_id=waiting.id,
                    channel_id=channel.id,
                    external_id="n",
                    direction="internal",
                    kind="note",
                    text="intern",
                    sent_at=now,
                ),
                Message(
                    conversation_id=answered.id,
                    channel_id=channel.id,
                    external_id="b",
                    direction="outbound",
                    kind="message",
                    text="Is geleverd",
                    status="sent",
                    sent_at=now - timedelta(hours=1),
                ),
                Task(
                    kind="follow_up_lead",
                    title="Bel",
                    team_id=team_id,
                    conversation_id=waiting.id,
                    due_at=now - timedelta(minutes=1),
                ),
                Task(
                    kind="reply",
                    title="Later",
                    team_id=team_id,
                    conversation_id=waiting.id,
                    due_at=now + timedelta(hours=5),
                ),
            ]
        )
    page = await (
        await client.get("/api/inbox/conversations", headers=await bearer(sessions, agent))
    ).json()
    first, second = page["items"]
    assert (first["customer_name"], first["preview"]["text"], first["sla"]) == (
        "Karin Prins",
        "Graag een offerte",
        "breached",
    )
    assert first["waiting_since"] is not None and first["due_at"] is not None
    assert (second["subject"], second["waiting_since"], second["sla"]) == ("Levering", None, None)
    assert second["preview"]["status"] == "sent"


async def test_bootstrap_lists_colleagues_teams_channels_and_the_search_feature(
    client: Client, sessions: Sessions
) -> None:
    agent = await person(sessions, "ank@example.nl", "agent", "Verkoop")
    await person(sessions, "bert@example.nl", "agent", "Service")
    async with sessions() as session, session.begin():
        await add_channel(session, "webform", "Website", {"token": "geheim"})
    auth = await bearer(sessions, agent)
    boot = await (await client.get("/api/inbox/bootstrap", headers=auth)).json()
    assert [u["name"] for u in boot["users"]] == ["Ank", "Bert"]
    assert [t["name"] for t in boot["teams"]] == ["Service", "Verkoop"]
    assert [(c["kind"], c["name"]) for c in boot["channels"]] == [("webform", "Website")]
    assert "geheim" not in str(boot) and boot["features"]["search"] is True
    assert boot["language"] == "en"
    changed = await client.post("/api/me/language", json={"language": "nl"}, headers=auth)
    assert changed.status == 200
    assert (await (await client.get("/api/inbox/bootstrap", headers=auth)).json())[
        "language"
    ] == "nl"


async def test_customer_panel_hides_what_lives_in_conversations_the_user_may_not_see(
    client: Client, sessions: Sessions
) -> None:
    agent = await person(sessions, "ank@example.nl", "agent", "Verkoop")
    await person(sessions, "bert@example.nl", "agent", "Klachten")
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        teams = {t.name: t.id for t in (await session.scalars(select(Team))).all()}
        channel = await add_channel(session, "webform", "W", {})
        relation = Relation(name="Hamerslag B.V.", normalized_name="hamerslag", status="customer")
        session.add(relation)
        await session.flush()
        mine = Conversation(
            channel_id=channel.id,
            subject="Offerte",
            team_id=teams["Verkoop"],
            relation_id=relation.id,
        )
        theirs = Conversation(
            channel_id=channel.id,
            subject="Kras",
            team_id=teams["Klachten"],
            relation_id=relation.id,
            labels=["klacht"],
        )
        secret = Conversation(
            channel_id=channel.id,
            subject="Geheim",
            team_id=teams["Verkoop"],
            relation_id=relation.id,
            labels=["klacht"],
            confidential=True,
        )
        session.add_all([mine, theirs, secret])
        await session.flush()
        session.add_all(
            [
                Activity(
                    kind="form",
                    occurred_at=now,
                    relation_id=relation.id,
                    conversation_id=mine.id,
                    subject="zichtbaar",
                ),
                Activity(
                    kind="form",
                    occurred_at=now,
                    relation_id=relation.id,
                    conversation_id=theirs.id,
                    subject="onzichtbaar",
                ),
                Task(
                    kind="reply",
                    title="Klacht beantwoorden",
                    relation_id=relation.id,
                    conversation_id=theirs.id,
                    team_id=teams["Klachten"],
                ),
            ]
        )
    auth = await bearer(sessions, agent)
    data = await (await client.get(f"/api/conversations/{mine.id}/panel", headers=auth)).json()
    assert [a["subject"] for a in data["activities"]] == ["zichtbaar"]
    assert data["complaints"] == [] and data["tasks"] == []
    forbidden = await client.get(f"/api/conversations/{theirs.id}/panel", headers=auth)
    assert forbidden.status == 404


async def test_record_cards_for_search_results_and_one_click_link_of_a_suggested_contact(
    client: Client, sessions: Sessions
) -> None:
    agent = await person(sessions, "ank@example.nl", "agent", "Verkoop")
    async with sessions() as session, session.begin():
        team_id = (await session.scalars(select(Team.id).where(Team.name == "Verkoop"))).one()
        channel = await add_channel(session, "webform", "W", {})
        relation = Relation(
            name="Hamerslag B.V.", normalized_name="hamerslag", status="customer", abc_class="A"
        )
        session.add(relation)
        await session.flush()
        jan = Contact(relation_id=relation.id, full_name="Jan Visser")
        lead = Lead(name="J. Visser", company="Hamerslag")
        session.add_all([jan, lead])
        await session.flush()
        session.add(Identity(kind="email", value="jvisser@gmail.com", lead_id=lead.id))
        conversation = Conversation(
            channel_id=channel.id, subject="Offerte", team_id=team_id, lead_id=lead.id
        )
        session.add(conversation)
        await session.flush()
        session.add(
            Message(
                conversation_id=conversation.id,
                channel_id=channel.id,
                external_id="m1",
                direction="inbound",
                kind="form",
                text="Offerte graag",
                sent_at=datetime.now(UTC),
                meta={
                    "match": {
                        "decision": "review",
                        "candidates": [
                            {"contact_id": jan.id, "score": 0.91, "reasons": {"name": 0.9}}
                        ],
                    }
                },
            )
        )
    auth = await bearer(sessions, agent)
    card = await (await client.get(f"/api/records/contact/{jan.id}", headers=auth)).json()
    assert (card["title"], card["relation"]["name"], card["relation"]["abc_class"]) == (
        "Jan Visser",
        "Hamerslag B.V.",
        "A",
    )
    assert (await client.get("/api/records/contact/999999", headers=auth)).status == 404
    assert (await client.get("/api/records/secret/1", headers=auth)).status == 404
    panel = await (
        await client.get(f"/api/conversations/{conversation.id}/panel", headers=auth)
    ).json()
    [suggestion] = panel["suggestions"]
    assert (suggestion["contact_name"], suggestion["relation_name"], suggestion["score"]) == (
        "Jan Visser",
        "Hamerslag B.V.",
        0.91,
    )
    linked = await client.post(
        f"/api/conversations/{conversation.id}/link", json={"contact_id": jan.id}, headers=auth
    )
    assert linked.status == 200
    assert ((await linked.json())["contact_id"], (await linked.json())["relation_id"]) == (
        jan.id,
        relation.id,
    )
    async with sessions() as session:
        identity = (await session.scalars(select(Identity))).one()
        assert (identity.contact_id, identity.lead_id) == (jan.id, None)
        assert (await session.get(Lead, lead.id)).status == "converted"  # type: ignore[union-attr]
        assert (await session.scalars(select(HistoryEntry.action))).all() == ["link"]
    again = await (
        await client.get(f"/api/conversations/{conversation.id}/panel", headers=auth)
    ).json()
    assert again["suggestions"] == [] and again["contact"]["full_name"] == "Jan Visser"


async def test_full_original_of_a_message_is_its_whole_text_and_raw_delivery(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    agent = await person(sessions, "ank@example.nl", "agent", "Verkoop")
    other = await person(sessions, "bert@example.nl", "agent", "Service")
    async with sessions() as session, session.begin():
        channel = await add_channel(session, "webform", "W", {}, team="Verkoop")
    posted = await client.post(
        f"/webhooks/webform/{channel.id}?token={channel.config['token']}",
        json={"name": "Karin", "email": "karin@example.nl", "message": "Hallo <b>daar</b>"},
    )
    assert posted.status == 202
    await run_worker()
    async with sessions() as session:
        message = (await session.scalars(select(Message))).one()
        message_id = message.id
    auth = await bearer(sessions, agent)
    original = await (await client.get(f"/api/messages/{message_id}/original", headers=auth)).json()
    assert original["text"] == "Hallo <b>daar</b>"
    assert '"karin@example.nl"' in original["raw"] and original["raw_truncated"] is False
    hidden = await client.get(
        f"/api/messages/{message_id}/original", headers=await bearer(sessions, other)
    )
    assert hidden.status == 404
