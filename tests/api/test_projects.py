"""Projects: create, list and update with validation, link conversations and activities, and the
timeline of activities, messages, call logs, tasks and documents, scoped per role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from crm.models import Activity, Relation, Task, Team, TeamMember, User
from inbox.api.auth import create_api_token
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Attachment, Conversation, HistoryEntry, Message

Client = TestClient[Any, Any]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def world(sessions: Sessions) -> dict[str, Any]:
    """Verkoop (Ank, agent; Mia, manager) and Service (Sam, agent); a relation, a mail
    conversation of Verkoop with a message, a call log and a drawing, and one of Service."""
    async with sessions() as session, session.begin():
        sales, service = Team(name="Verkoop"), Team(name="Service")
        session.add_all([sales, service])
        await session.flush()
        people = {
            name: User(email=f"{name}@switchboard.test", name=name.title(), role=role)
            for name, role in (("ank", "agent"), ("sam", "agent"), ("mia", "manager"), ("max", "manager"), ("root", "admin"))
        }  # fmt: skip
        session.add_all(people.values())
        await session.flush()
        session.add_all(
            [
                TeamMember(team_id=sales.id, user_id=people["ank"].id),
                TeamMember(team_id=sales.id, user_id=people["mia"].id),
                TeamMember(team_id=service.id, user_id=people["sam"].id),
            ]
        )
        relation = Relation(name="Hamerslag B.V.", normalized_name="hamerslag")
        session.add(relation)
        mail = await add_channel(session, "webform", "Website", {})
        phone = await add_channel(session, "telephony", "Centrale", {})
        await session.flush()
        offer = Conversation(
            channel_id=mail.id, subject="Offerte kozijnen", team_id=sales.id,
            relation_id=relation.id,
        )  # fmt: skip
        storing = Conversation(
            channel_id=phone.id, subject="Storing", team_id=service.id, relation_id=relation.id
        )
        session.add_all([offer, storing])
        await session.flush()
        question = Message(
            conversation_id=offer.id, channel_id=mail.id, external_id="m1", direction="inbound",
            kind="form", text="Graag een offerte voor 12 kozijnen", sent_at=T0,
        )  # fmt: skip
        call = Message(
            conversation_id=offer.id, channel_id=phone.id, external_id="c1", direction="inbound",
            kind="call", text="", sent_at=T0 + timedelta(hours=1),
            meta={"call": {"status": "answered", "duration_s": 95}},
        )  # fmt: skip
        fault = Message(
            conversation_id=storing.id, channel_id=phone.id, external_id="c2",
            direction="inbound", kind="call", text="", sent_at=T0 + timedelta(hours=2),
        )  # fmt: skip
        session.add_all([question, call, fault])
        await session.flush()
        session.add(
            Attachment(
                message_id=question.id, filename="tekening.pdf", content_type="application/pdf",
                size=2048, sha256="0" * 64,
            )
        )  # fmt: skip
        session.add(
            Attachment(
                message_id=question.id, filename="logo.png", content_type="image/png",
                size=10, sha256="1" * 64, inline=True,
            )
        )  # fmt: skip
        # The activity the ingest made of the form: it is the message, listed once.
        echo = Activity(
            kind="form", subject="Offerte kozijnen", occurred_at=T0, relation_id=relation.id,
            conversation_id=offer.id,
        )  # fmt: skip
        visit = Activity(
            kind="meeting", direction="internal", subject="Bouwplaats bekeken",
            body="Maten opgenomen", occurred_at=T0 + timedelta(days=1), relation_id=relation.id,
        )  # fmt: skip
        session.add_all([echo, visit])
        await session.flush()
        session.add(
            Task(
                kind="follow_up", title="Offerte sturen", conversation_id=offer.id,
                team_id=sales.id, due_at=T0 + timedelta(days=2),
            )
        )  # fmt: skip
        tokens = {
            name: {
                "Authorization": f"Bearer {await create_api_token(session, u.id, 't', 'api', None)}"
            }
            for name, u in people.items()
        }
        return {
            "tokens": tokens, "relation": relation.id, "offer": offer.id, "storing": storing.id,
            "visit": visit.id, "echo": echo.id, "sales": sales.id, "people": people,
        }  # fmt: skip


async def test_projects_are_created_listed_and_updated_with_validation(
    client: Client, sessions: Sessions
) -> None:
    w = await world(sessions)
    ank = w["tokens"]["ank"]
    created = await client.post(
        "/api/projects",
        json={
            "name": "Nieuwbouw Almere", "relation_id": w["relation"], "city": "Almere",
            "team_id": w["sales"], "starts_on": "2026-11-01", "ends_on": "2027-03-31",
        },
        headers=ank,
    )  # fmt: skip
    assert created.status == 201, await created.text()
    project = await created.json()
    assert (project["name"], project["status"], project["confidential"]) == (
        "Nieuwbouw Almere",
        "open",
        False,
    )
    listed = await (
        await client.get("/api/projects", params={"relation_id": w["relation"]}, headers=ank)
    ).json()
    assert [p["id"] for p in listed["items"]] == [project["id"]]
    found = await (await client.get("/api/projects", params={"q": "almere"}, headers=ank)).json()
    assert [p["name"] for p in found["items"]] == ["Nieuwbouw Almere"]

    path = f"/api/projects/{project['id']}"
    patched = await client.patch(path, json={"status": "on_hold", "city": "Lelystad"}, headers=ank)
    assert patched.status == 200
    assert ((await patched.json())["status"], (await patched.json())["city"]) == (
        "on_hold",
        "Lelystad",
    )
    # Bad input: 422 naming the field.
    for body, field in (
        ({"status": "gesloten"}, "status"),
        ({"relation_id": 999999}, "relation_id"),
        ({"owner_id": 999999}, "owner_id"),
        ({"ends_on": "2026-10-01"}, "ends_on"),
        ({"name": ""}, "name"),
    ):
        bad = await client.patch(path, json=body, headers=ank)
        assert bad.status == 422, body
        details = (await bad.json())["error"]["details"]
        assert details[0]["loc"][-1] == field, details
    missing = await client.post("/api/projects", json={"city": "Almere"}, headers=ank)
    assert missing.status == 422
    assert (await client.get("/api/projects/999999", headers=ank)).status == 404


async def test_confidential_projects_only_for_linked_users_and_admins(
    client: Client, sessions: Sessions
) -> None:
    w = await world(sessions)
    t = w["tokens"]
    refused = await client.post(
        "/api/projects", json={"name": "Overname", "confidential": True}, headers=t["ank"]
    )
    assert refused.status == 403
    made = await client.post(
        "/api/projects", json={"name": "Overname", "confidential": True}, headers=t["mia"]
    )
    assert made.status == 201
    project = await made.json()
    path = f"/api/projects/{project['id']}"
    for name, status in (("mia", 200), ("root", 200), ("max", 404), ("ank", 404)):
        assert (await client.get(path, headers=t[name])).status == status, name
        assert (await client.get(f"{path}/timeline", headers=t[name])).status == status, name
        listed = await (await client.get("/api/projects", headers=t[name])).json()
        assert (project["id"] in [p["id"] for p in listed["items"]]) is (status == 200), name
    # Nobody links their conversation to a project they cannot see.
    hidden = await client.put(
        f"/api/conversations/{w['offer']}/project",
        json={"project_id": project["id"]},
        headers=t["ank"],
    )
    assert hidden.status == 422
    assert (await hidden.json())["error"]["details"][0]["loc"] == ["body", "project_id"]
    assert (await client.patch(path, json={"status": "closed"}, headers=t["max"])).status == 404


async def test_timeline_gathers_messages_calls_tasks_documents_and_activities(
    client: Client, sessions: Sessions
) -> None:
    w = await world(sessions)
    t = w["tokens"]
    project = await (
        await client.post(
            "/api/projects", json={"name": "Kozijnen", "relation_id": w["relation"]}, headers=t["mia"]
        )
    ).json()  # fmt: skip
    pid = project["id"]
    for conversation in (w["offer"], w["storing"]):
        linked = await client.put(
            f"/api/conversations/{conversation}/project",
            json={"project_id": pid},
            headers=t["root"],
        )
        assert linked.status == 200, await linked.text()
    # Ank (Verkoop) cannot link the Service conversation she does not see.
    assert (
        await client.put(
            f"/api/conversations/{w['storing']}/project", json={"project_id": None}, headers=t["ank"]
        )
    ).status == 404  # fmt: skip
    activity = await client.put(
        f"/api/activities/{w['visit']}/project", json={"project_id": pid}, headers=t["ank"]
    )
    assert activity.status == 200
    # The form's own activity is linked too, but it is the message: listed once.
    await client.put(
        f"/api/activities/{w['echo']}/project", json={"project_id": pid}, headers=t["ank"]
    )

    admin = await (await client.get(f"/api/projects/{pid}/timeline", headers=t["root"])).json()
    assert [(i["kind"], i["title"]) for i in admin["items"]] == [
        ("task", "Offerte sturen"),
        ("activity", "Bouwplaats bekeken"),
        ("call", "Storing"),
        ("call", "Offerte kozijnen"),
        ("message", "Offerte kozijnen"),
        ("document", "tekening.pdf"),
    ]
    call = admin["items"][3]
    assert (call["status"], call["duration_s"], call["channel_kind"]) == (
        "answered",
        95,
        "telephony",
    )
    document = admin["items"][5]
    assert (document["content_type"], document["size"]) == ("application/pdf", 2048)
    # Ank sees her team's conversation in it, not Service's.
    ank = await (await client.get(f"/api/projects/{pid}/timeline", headers=t["ank"])).json()
    assert [i["title"] for i in ank["items"] if i["kind"] == "call"] == ["Offerte kozijnen"]
    # Pages by time.
    first = await (
        await client.get(f"/api/projects/{pid}/timeline", params={"limit": 2}, headers=t["root"])
    ).json()
    assert [i["kind"] for i in first["items"]] == ["task", "activity"]
    rest = await (
        await client.get(
            f"/api/projects/{pid}/timeline",
            params={"limit": 10, "before": first["next_cursor"]},
            headers=t["root"],
        )
    ).json()
    assert [i["kind"] for i in rest["items"]] == ["call", "call", "message", "document"]
    assert rest["next_cursor"] is None
    # Linking is in the conversation's history; unlinking takes it out of the timeline.
    async with sessions() as session:
        entry = (
            await session.scalars(
                select(HistoryEntry).where(
                    HistoryEntry.conversation_id == w["offer"], HistoryEntry.action == "project"
                )
            )
        ).one()
    assert entry.data == {"project_id": pid, "previous": None}
    await client.put(
        f"/api/conversations/{w['offer']}/project", json={"project_id": None}, headers=t["ank"]
    )
    after = await (await client.get(f"/api/projects/{pid}/timeline", headers=t["ank"])).json()
    assert [i["kind"] for i in after["items"]] == ["activity", "activity"]
