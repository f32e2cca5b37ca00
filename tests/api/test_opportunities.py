"""Pipelines and opportunities over the API: stage moves with their history, bad input named by
field, weighted value per stage and owner, team scoping, and conversion with an opportunity."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from crm.models import Contact, Identity, Lead, Relation, Team, TeamMember, User
from crm.opportunities import Opportunity
from inbox.api.auth import create_api_token
from inbox.db import Sessions

Client = TestClient[Any, Any]


async def user(sessions: Sessions, name: str, role: str, team: str | None = None) -> int:
    async with sessions() as session, session.begin():
        row = User(email=f"{name}@example.nl", name=name.title(), role=role)
        session.add(row)
        await session.flush()
        if team:
            team_id = await session.scalar(select(Team.id).where(Team.name == team))
            if team_id is None:
                new = Team(name=team)
                session.add(new)
                await session.flush()
                team_id = new.id
            session.add(TeamMember(team_id=team_id, user_id=row.id))
        return row.id


async def auth(sessions: Sessions, user_id: int) -> dict[str, str]:
    async with sessions() as session, session.begin():
        token = await create_api_token(session, user_id, "test", "api", None)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def people(sessions: Sessions) -> dict[str, Any]:
    ids = {
        "admin": await user(sessions, "admin", "admin"),
        "manager": await user(sessions, "manager", "manager", "Verkoop"),
        "sales": await user(sessions, "sales", "agent", "Verkoop"),
        "colleague": await user(sessions, "colleague", "agent", "Verkoop"),
        "service": await user(sessions, "service", "agent", "Service"),
    }
    return {"ids": ids, **{name: await auth(sessions, i) for name, i in ids.items()}}


async def stages(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/pipelines", headers=headers)
    assert response.status == 200
    pipeline = (await response.json())["items"][0]
    return {"id": pipeline["id"], **{s["code"]: s for s in pipeline["stages"]}}


def error_field(body: dict[str, Any]) -> list[Any]:
    assert body["error"]["status"] == 422
    return [d["loc"] for d in body["error"]["details"]]


async def test_the_default_pipeline_has_ordered_stages_with_probabilities(
    client: Client, people: dict[str, Any]
) -> None:
    response = await client.get("/api/pipelines", headers=people["sales"])
    [pipeline] = (await response.json())["items"]
    assert pipeline["name"] == "Verkoop" and pipeline["is_default"]
    assert [(s["name"], s["probability"], s["outcome"]) for s in pipeline["stages"]] == [
        ("Nieuw", 10, "open"),
        ("Offerte", 40, "open"),
        ("Onderhandeling", 70, "open"),
        ("Gewonnen", 100, "won"),
        ("Verloren", 0, "lost"),
    ]


async def test_a_stage_move_takes_the_stage_probability_and_is_in_the_history(
    client: Client, people: dict[str, Any]
) -> None:
    s = await stages(client, people["sales"])
    created = await client.post(
        "/api/opportunities",
        json={"name": "Kozijnen Almere", "amount": "12500.00", "expected_close_date": "2027-02-01"},
        headers=people["sales"],
    )
    assert created.status == 201, await created.text()
    opp = await created.json()
    assert (opp["stage_id"], opp["probability"], opp["status"]) == (s["nieuw"]["id"], 10, "open")
    assert opp["owner_id"] == people["ids"]["sales"] and opp["weighted"] == 1250.0

    moved = await client.patch(
        f"/api/opportunities/{opp['id']}",
        json={"stage_id": s["offerte"]["id"]},
        headers=people["sales"],
    )
    assert moved.status == 200, await moved.text()
    assert (await moved.json())["probability"] == 40
    lost = await client.patch(
        f"/api/opportunities/{opp['id']}",
        json={"stage_id": s["verloren"]["id"], "lost_reason": "te duur"},
        headers=people["manager"],
    )
    body = await lost.json()
    assert (body["status"], body["probability"], body["lost_reason"]) == ("lost", 0, "te duur")
    assert body["closed_at"] is not None

    detail = await (
        await client.get(f"/api/opportunities/{opp['id']}", headers=people["sales"])
    ).json()
    assert [(h["from_stage"], h["to_stage"], h["user_id"]) for h in detail["history"]] == [
        (None, "Nieuw", people["ids"]["sales"]),
        ("Nieuw", "Offerte", people["ids"]["sales"]),
        ("Offerte", "Verloren", people["ids"]["manager"]),
    ]
    assert all(h["created_at"] for h in detail["history"])

    # An update without a new stage is not a move.
    await client.patch(
        f"/api/opportunities/{opp['id']}", json={"amount": 9000}, headers=people["sales"]
    )
    detail = await (
        await client.get(f"/api/opportunities/{opp['id']}", headers=people["sales"])
    ).json()
    assert len(detail["history"]) == 3 and detail["amount"] == 9000.0


async def test_bad_input_is_a_422_naming_the_field(
    client: Client, sessions: Sessions, people: dict[str, Any]
) -> None:
    s = await stages(client, people["admin"])
    other = await client.post(
        "/api/pipelines",
        json={"name": "Service", "stages": [{"name": "Intake", "probability": 20}]},
        headers=people["admin"],
    )
    assert other.status == 201, await other.text()
    foreign_stage = (await other.json())["stages"][0]["id"]
    cases = [
        ({"name": "x", "stage_id": 99999}, ["stage_id"]),
        ({"name": "x", "stage_id": foreign_stage}, ["stage_id"]),
        ({"name": "x", "pipeline_id": s["id"], "stage_id": foreign_stage}, ["stage_id"]),
        ({"name": "x", "amount": -5}, ["amount"]),
        ({"name": "x", "source": "carrier-pigeon"}, ["source"]),
        ({"name": "x", "pipeline_id": 99999}, ["pipeline_id"]),
        ({"name": "x", "relation_id": 99999}, ["relation_id"]),
        ({"name": "x", "source_channel_id": "nope"}, ["source_channel_id"]),
    ]
    for body, loc in cases:
        response = await client.post("/api/opportunities", json=body, headers=people["sales"])
        assert response.status == 422, body
        assert loc in error_field(await response.json()), body

    ok = await (
        await client.post(
            "/api/opportunities", json={"name": "ok", "source": "fair"}, headers=people["sales"]
        )
    ).json()
    for patch, loc in (
        ({"stage_id": foreign_stage}, ["stage_id"]),
        ({"amount": -1}, ["amount"]),
        ({"name": None}, ["name"]),
        ({"source": "nope"}, ["source"]),
    ):
        response = await client.patch(
            f"/api/opportunities/{ok['id']}", json=patch, headers=people["sales"]
        )
        assert response.status == 422, patch
        assert loc in error_field(await response.json()), patch
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Opportunity)) == 1


async def test_weighted_value_per_stage_and_owner(client: Client, people: dict[str, Any]) -> None:
    s = await stages(client, people["admin"])
    ids = people["ids"]
    for name, amount, stage, owner in (
        ("a", 1000, "nieuw", "sales"),  # 100
        ("b", 2000, "offerte", "sales"),  # 800
        ("c", 500, "offerte", "colleague"),  # 200
        ("d", 4000, "onderhandeling", "colleague"),  # 2800
        ("e", 3000, "gewonnen", "sales"),  # won: 3000, not open
        ("f", 900, "verloren", "colleague"),  # lost: 0
    ):
        response = await client.post(
            "/api/opportunities",
            json={
                "name": name,
                "amount": amount,
                "stage_id": s[stage]["id"],
                "owner_id": ids[owner],
            },
            headers=people["admin"],
        )
        assert response.status == 201, await response.text()
    value = await (
        await client.get(f"/api/pipelines/{s['id']}/value", headers=people["manager"])
    ).json()
    assert [(x["name"], x["count"], x["amount"], x["weighted"]) for x in value["stages"]] == [
        ("Nieuw", 1, 1000.0, 100.0),
        ("Offerte", 2, 2500.0, 1000.0),
        ("Onderhandeling", 1, 4000.0, 2800.0),
        ("Gewonnen", 1, 3000.0, 3000.0),
        ("Verloren", 1, 900.0, 0.0),
    ]
    assert [(x["name"], x["count"], x["amount"], x["weighted"]) for x in value["owners"]] == [
        ("Colleague", 2, 4500.0, 3000.0),
        ("Sales", 2, 3000.0, 900.0),
    ]
    assert (value["open_amount"], value["open_weighted"]) == (7500.0, 3900.0)
    # The board: the same value, and every card with its names, newest first per stage.
    board = await client.get(f"/api/pipelines/{s['id']}/board", headers=people["manager"])
    assert board.status == 200, await board.text()
    body = await board.json()
    assert body["value"] == value and body["pipeline"]["id"] == s["id"]
    assert sorted((c["name"], c["owner_name"], c["weighted"]) for c in body["cards"]) == [
        ("a", "Sales", 100.0),
        ("b", "Sales", 800.0),
        ("c", "Colleague", 200.0),
        ("d", "Colleague", 2800.0),
        ("e", "Sales", 3000.0),
        ("f", "Colleague", 0.0),
    ]
    missing = await client.get("/api/pipelines/999999/board", headers=people["manager"])
    assert missing.status == 404


async def test_agents_see_their_own_and_their_teams_opportunities_only(
    client: Client, people: dict[str, Any]
) -> None:
    ids = people["ids"]
    mine = await (
        await client.post("/api/opportunities", json={"name": "van sales"}, headers=people["sales"])
    ).json()
    service = await (
        await client.post(
            "/api/opportunities", json={"name": "van service"}, headers=people["service"]
        )
    ).json()
    assert mine["team_id"] is not None and mine["team_id"] != service["team_id"]

    async def names(who: str) -> list[str]:
        page = await (await client.get("/api/opportunities", headers=people[who])).json()
        return sorted(o["name"] for o in page["items"])

    assert await names("colleague") == ["van sales"]  # same team
    assert await names("service") == ["van service"]
    assert await names("manager") == ["van sales", "van service"]
    assert await names("admin") == ["van sales", "van service"]
    hidden = await client.patch(
        f"/api/opportunities/{mine['id']}", json={"amount": 1}, headers=people["service"]
    )
    assert hidden.status == 404
    assert (
        await client.get(f"/api/opportunities/{mine['id']}", headers=people["service"])
    ).status == 404
    # An agent cannot hand an opportunity to a team they are not in.
    away = await client.patch(
        f"/api/opportunities/{mine['id']}",
        json={"owner_id": ids["service"], "team_id": service["team_id"]},
        headers=people["sales"],
    )
    assert away.status == 403
    value = await (
        await client.get(f"/api/pipelines/{mine['pipeline_id']}/value", headers=people["service"])
    ).json()
    assert sum(x["count"] for x in value["stages"]) == 1
    board = await (
        await client.get(f"/api/pipelines/{mine['pipeline_id']}/board", headers=people["service"])
    ).json()
    assert [c["name"] for c in board["cards"]] == ["van service"]
    assert sum(x["count"] for x in board["value"]["stages"]) == 1
    for who in ("sales", "service"):
        refused = await client.post(
            "/api/pipelines",
            json={"name": "Eigen", "stages": [{"name": "Open", "probability": 5}]},
            headers=people[who],
        )
        assert refused.status == 403


async def lead(sessions: Sessions) -> int:
    async with sessions() as session, session.begin():
        row = Lead(name="Karin Prins", company="Prins Bouw")
        session.add(row)
        await session.flush()
        session.add(
            Identity(
                kind="email", value="karin@prins-bouw.nl", key="karin@prins-bouw.nl", lead_id=row.id
            )
        )
        return row.id


async def test_converting_a_lead_creates_relation_contact_and_opportunity_at_once(
    client: Client, sessions: Sessions, people: dict[str, Any]
) -> None:
    s = await stages(client, people["sales"])
    lead_id = await lead(sessions)
    response = await client.post(
        f"/api/leads/{lead_id}/convert",
        json={"opportunity": {"name": "Dakrenovatie", "amount": "8000", "pipeline_id": s["id"]}},
        headers=people["sales"],
    )
    assert response.status == 201, await response.text()
    out = await response.json()
    opp = await (
        await client.get(f"/api/opportunities/{out['opportunity_id']}", headers=people["sales"])
    ).json()
    assert (opp["relation_id"], opp["contact_id"], opp["lead_id"]) == (
        out["relation_id"],
        out["contact_id"],
        lead_id,
    )
    assert (opp["stage_id"], opp["amount"], opp["probability"]) == (s["nieuw"]["id"], 8000.0, 10)


async def test_a_failing_conversion_leaves_nothing_half_made(
    client: Client, sessions: Sessions, people: dict[str, Any]
) -> None:
    other = await client.post(
        "/api/pipelines",
        json={"name": "Service", "stages": [{"name": "Intake", "probability": 20}]},
        headers=people["manager"],
    )
    s = await stages(client, people["sales"])
    lead_id = await lead(sessions)
    for opportunity, loc in (
        (
            {
                "name": "x",
                "pipeline_id": s["id"],
                "stage_id": (await other.json())["stages"][0]["id"],
            },
            "stage_id",
        ),
        ({"name": "x", "pipeline_id": 99999}, "pipeline_id"),
        ({"name": "x", "amount": -1}, "amount"),
    ):
        response = await client.post(
            f"/api/leads/{lead_id}/convert",
            json={"opportunity": opportunity},
            headers=people["sales"],
        )
        assert response.status == 422, opportunity
        assert loc in (await response.text())
    async with sessions() as session:
        for model in (Relation, Contact, Opportunity):
            assert await session.scalar(select(func.count()).select_from(model)) == 0, model
        row = await session.get(Lead, lead_id)
        assert row is not None and row.status == "new" and row.converted_contact_id is None
        identity = await session.scalar(select(Identity).where(Identity.lead_id == lead_id))
        assert identity is not None


async def test_the_demo_company_has_a_pipeline_with_a_dozen_opportunities(
    client: Client, sessions: Sessions
) -> None:
    from inbox.service.demo import seed

    async with sessions() as session, session.begin():
        await seed(session)
        pieter = await session.scalar(select(User.id).where(User.email.startswith("pieter@")))
    assert pieter is not None
    headers = await auth(sessions, pieter)
    s = await stages(client, headers)
    value = await (await client.get(f"/api/pipelines/{s['id']}/value", headers=headers)).json()
    counts = {x["name"]: x["count"] for x in value["stages"]}
    assert sum(counts.values()) == 12
    assert counts["Gewonnen"] == 2 and counts["Verloren"] == 1
    assert all(counts[name] > 0 for name in ("Nieuw", "Offerte", "Onderhandeling"))
    assert value["open_weighted"] > 0 and len(value["owners"]) == 3
    page = await (await client.get("/api/opportunities?status=lost", headers=headers)).json()
    [lost] = page["items"]
    assert lost["lost_reason"] and lost["closed_at"]
    detail = await (await client.get(f"/api/opportunities/{lost['id']}", headers=headers)).json()
    assert [h["to_stage"] for h in detail["history"]] == [
        "Nieuw",
        "Offerte",
        "Onderhandeling",
        "Verloren",
    ]
    assert detail["history"][0]["created_at"] < detail["history"][-1]["created_at"]
