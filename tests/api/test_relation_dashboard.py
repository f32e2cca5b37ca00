"""The relation dashboard: one request with the relation's card, contacts, open tasks, last
activities, complaints, projects and linked relations, scoped to what the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from crm.matcher import add_identities, identity_keys
from crm.models import (
    Activity,
    Contact,
    Project,
    Relation,
    RelationLink,
    Task,
    Team,
    TeamMember,
    User,
)
from crm.opportunities import Opportunity, default_pipeline
from inbox.api.auth import create_api_token
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Conversation

Client = TestClient[Any, Any]
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def world(sessions: Sessions) -> dict[str, Any]:
    async with sessions() as session, session.begin():
        sales, service = Team(name="Verkoop"), Team(name="Service")
        session.add_all([sales, service])
        await session.flush()
        ank = User(email="ank@switchboard.test", name="Ank", role="agent")
        pieter = User(email="pieter@switchboard.test", name="Pieter Jansen", role="manager")
        root = User(email="root@switchboard.test", name="Root", role="admin")
        session.add_all([ank, pieter, root])
        await session.flush()
        session.add(TeamMember(team_id=sales.id, user_id=ank.id))
        hamerslag = Relation(
            name="Hamerslag B.V.", normalized_name="hamerslag", abc_class="A",
            status="customer", account_manager_id=pieter.id,
        )  # fmt: skip
        holding = Relation(name="Hamerslag Holding", normalized_name="hamerslag holding")
        dealer = Relation(name="Bouwmarkt Oost", normalized_name="bouwmarkt oost", abc_class="C")
        other = Relation(name="Vos & Zonen", normalized_name="vos zonen")
        session.add_all([hamerslag, holding, dealer, other])
        await session.flush()
        session.add_all(
            [
                RelationLink(from_relation_id=hamerslag.id, to_relation_id=holding.id, kind="parent"),
                RelationLink(from_relation_id=dealer.id, to_relation_id=hamerslag.id, kind="dealer"),
                RelationLink(from_relation_id=other.id, to_relation_id=holding.id, kind="parent"),
            ]
        )  # fmt: skip
        jan = Contact(relation_id=hamerslag.id, first_name="Jan", last_name="Visser", full_name="Jan Visser", job_title="Inkoper")  # fmt: skip
        els = Contact(
            relation_id=hamerslag.id, first_name="Els", last_name="Bos", full_name="Els Bos"
        )
        piet = Contact(
            relation_id=other.id, first_name="Piet", last_name="Vos", full_name="Piet Vos"
        )
        session.add_all([jan, els, piet])
        await session.flush()
        await add_identities(
            session, identity_keys(["jan.visser@hamerslag.nl"], ["0612345678"]), contact_id=jan.id
        )
        channel = await add_channel(session, "webform", "Website", {})
        complaint = Conversation(
            channel_id=channel.id, subject="Kozijn lekt", team_id=sales.id,
            relation_id=hamerslag.id, contact_id=jan.id, labels=["klacht"], status="resolved",
        )  # fmt: skip
        hidden = Conversation(
            channel_id=channel.id, subject="Schade bij levering", team_id=service.id,
            relation_id=hamerslag.id, labels=["complaint"],
        )  # fmt: skip
        question = Conversation(
            channel_id=channel.id, subject="Offerte", team_id=sales.id, relation_id=hamerslag.id
        )
        session.add_all([complaint, hidden, question])
        await session.flush()
        session.add_all(
            [
                Activity(kind="call", subject="Teruggebeld", occurred_at=T0, relation_id=hamerslag.id, contact_id=jan.id, duration_s=120),
                Activity(kind="meeting", direction="internal", subject="Bouwplaats", occurred_at=T0 + timedelta(days=1), relation_id=hamerslag.id),
                Activity(kind="message", subject="Schade", occurred_at=T0 + timedelta(days=2), relation_id=hamerslag.id, conversation_id=hidden.id),
                Activity(kind="note", subject="Elders", occurred_at=T0, relation_id=other.id),
                Task(kind="call_back", title="Jan terugbellen", relation_id=hamerslag.id, assignee_id=ank.id, due_at=T0),
                Task(kind="follow_up", title="Klaar", relation_id=hamerslag.id, status="done"),
                Task(kind="follow_up", title="Schade opnemen", relation_id=hamerslag.id, conversation_id=hidden.id),
                Project(name="Nieuwbouw Almere", relation_id=hamerslag.id, city="Almere"),
                Project(name="Overname", relation_id=hamerslag.id, confidential=True),
            ]
        )  # fmt: skip
        await session.flush()
        pipeline = await default_pipeline(session)
        stage = {st.code: st for st in pipeline.stages}

        def deal(code: str, amount: int, **fields: Any) -> Opportunity:
            st = stage[code]
            return Opportunity(
                name=f"{st.name} {amount}", pipeline_id=pipeline.id, stage_id=st.id,
                status=st.outcome, probability=st.probability, amount=amount,
                **({"relation_id": hamerslag.id} | fields),
            )  # fmt: skip

        session.add_all(
            [
                deal("offerte", 10000, owner_id=pieter.id, team_id=sales.id),
                deal("nieuw", 2000, owner_id=root.id, team_id=service.id),
                deal("gewonnen", 7000, owner_id=pieter.id, team_id=sales.id),
                deal("onderhandeling", 500, team_id=sales.id, relation_id=other.id),
            ]
        )
        tokens = {
            name: {"Authorization": f"Bearer {await create_api_token(session, u.id, 't', 'api', None)}"}
            for name, u in (("ank", ank), ("root", root))
        }  # fmt: skip
        return {
            "tokens": tokens,
            "relation": hamerslag.id,
            "holding": holding.id,
            "dealer": dealer.id,
        }


async def test_relation_dashboard_in_one_request(client: Client, sessions: Sessions) -> None:
    w = await world(sessions)
    response = await client.get(
        f"/api/relations/{w['relation']}/dashboard", headers=w["tokens"]["root"]
    )
    assert response.status == 200, await response.text()
    board = await response.json()
    relation = board["relation"]
    assert (relation["name"], relation["abc_class"], relation["account_manager"]) == (
        "Hamerslag B.V.",
        "A",
        "Pieter Jansen",
    )
    assert [(c["full_name"], c["emails"], c["phones"]) for c in board["contacts"]] == [
        ("Els Bos", [], []),
        ("Jan Visser", ["jan.visser@hamerslag.nl"], ["0612345678"]),
    ]
    assert [t["title"] for t in board["tasks"]] == ["Jan terugbellen", "Schade opnemen"]
    assert [a["subject"] for a in board["activities"]] == ["Schade", "Bouwplaats", "Teruggebeld"]
    assert {c["subject"] for c in board["complaints"]} == {"Kozijn lekt", "Schade bij levering"}
    assert {p["name"] for p in board["projects"]} == {"Nieuwbouw Almere", "Overname"}
    assert [(x["name"], x["kind"], x["direction"]) for x in board["links"]] == [
        ("Bouwmarkt Oost", "dealer", "from"),
        ("Hamerslag Holding", "parent", "to"),
    ]
    # Open ones only, largest weighted value first: 10,000 x 40 % and 2,000 x 10 %.
    assert [
        (o["stage"], o["amount"], o["probability"], o["weighted"], o["owner"])
        for o in board["opportunities"]
    ] == [("Offerte", 10000.0, 40, 4000.0, "Pieter Jansen"), ("Nieuw", 2000.0, 10, 200.0, "Root")]
    assert (board["open_value"], board["weighted_value"]) == (12000.0, 4200.0)


async def test_relation_dashboard_is_scoped_like_the_inbox(
    client: Client, sessions: Sessions
) -> None:
    w = await world(sessions)
    board = await (
        await client.get(f"/api/relations/{w['relation']}/dashboard", headers=w["tokens"]["ank"])
    ).json()
    # Ank (Verkoop) does not see Service's complaint, its activity and task, or the
    # confidential project.
    assert [c["subject"] for c in board["complaints"]] == ["Kozijn lekt"]
    assert [a["subject"] for a in board["activities"]] == ["Bouwplaats", "Teruggebeld"]
    assert [t["title"] for t in board["tasks"]] == ["Jan terugbellen"]
    assert [p["name"] for p in board["projects"]] == ["Nieuwbouw Almere"]
    # Agents see their own and their teams' opportunities: not Service's.
    assert [o["stage"] for o in board["opportunities"]] == ["Offerte"]
    assert (board["open_value"], board["weighted_value"]) == (10000.0, 4000.0)
    missing = await client.get("/api/relations/999999/dashboard", headers=w["tokens"]["ank"])
    assert missing.status == 404
