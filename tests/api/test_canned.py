"""Canned replies over the API: who sees which, who may change which, placeholders, shortcuts."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from api.test_api import make_user, team_id, token_for
from sqlalchemy import select

from crm.models import CannedReply
from inbox.db import Sessions

Client = TestClient[Any, Any]
Headers = dict[str, str]


@pytest.fixture
async def people(sessions: Sessions) -> dict[str, Any]:
    users = {
        "admin": await make_user(sessions, "admin@example.nl", "admin"),
        "sales": await make_user(sessions, "sales@example.nl", "agent", "Verkoop"),
        "colleague": await make_user(sessions, "colleague@example.nl", "agent", "Verkoop"),
        "service": await make_user(sessions, "service@example.nl", "agent", "Service"),
        "manager": await make_user(sessions, "manager@example.nl", "manager", "Verkoop"),
    }
    tokens = {name: await token_for(sessions, user) for name, user in users.items()}
    teams = {name: await team_id(sessions, name) for name in ("Verkoop", "Service")}
    return {"users": users, "tokens": tokens, "teams": teams}


async def save(client: Client, headers: Headers, status: int = 201, **body: Any) -> Any:
    response = await client.post("/api/canned-replies", json=body, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


async def titles(client: Client, headers: Headers) -> list[str]:
    response = await client.get("/api/canned-replies", headers=headers)
    assert response.status == 200
    return [item["title"] for item in (await response.json())["items"]]


async def test_an_agent_sees_everyones_their_teams_and_their_own_replies_only(
    client: Client, people: dict[str, Any]
) -> None:
    tokens, teams = people["tokens"], people["teams"]
    await save(client, tokens["admin"], title="Bedankt", body="Dank u wel.", scope="everyone")
    await save(
        client, tokens["manager"], title="Offerte", body="Offerte volgt.", scope="team",
        team_id=teams["Verkoop"],
    )  # fmt: skip
    await save(
        client, tokens["admin"], title="Storing", body="Monteur komt.", scope="team",
        team_id=teams["Service"],
    )  # fmt: skip
    await save(client, tokens["sales"], title="Mijn groet", body="Groet, {{agent.name}}")
    await save(client, tokens["colleague"], title="Andermans groet", body="Hoi")

    assert await titles(client, tokens["sales"]) == ["Bedankt", "Mijn groet", "Offerte"]
    assert await titles(client, tokens["service"]) == ["Bedankt", "Storing"]
    assert len(await titles(client, tokens["admin"])) == 5

    listed = await (await client.get("/api/canned-replies", headers=tokens["sales"])).json()
    by_title = {item["title"]: item for item in listed["items"]}
    assert by_title["Offerte"]["scope"] == "team"
    assert by_title["Offerte"]["team_name"] == "Verkoop"
    assert by_title["Offerte"]["editable"] is False
    assert by_title["Mijn groet"]["scope"] == "personal"
    assert by_title["Mijn groet"]["editable"] is True
    assert by_title["Bedankt"]["scope"] == "everyone"
    assert "contact.first_name" in listed["placeholders"]


async def test_an_agent_saves_personal_replies_but_not_team_or_everyones(
    client: Client, sessions: Sessions, people: dict[str, Any]
) -> None:
    tokens, teams = people["tokens"], people["teams"]
    mine = await save(client, tokens["sales"], title="Terugbellen", body="Ik bel u terug.")
    assert mine["owner_id"] == people["users"]["sales"].id and mine["team_id"] is None
    refused_team = await save(
        client, tokens["sales"], 403, title="T", body="x", scope="team", team_id=teams["Verkoop"]
    )
    assert refused_team["error"]["code"] == "forbidden"
    refused_all = await save(client, tokens["sales"], 403, title="A", body="x", scope="everyone")
    assert refused_all["error"]["code"] == "forbidden"
    refused_other_team = await save(
        client, tokens["manager"], 403, title="S", body="x", scope="team", team_id=teams["Service"]
    )
    assert refused_other_team["error"]["code"] == "forbidden"
    async with sessions() as session:
        stored = (await session.scalars(select(CannedReply.title))).all()
    assert stored == ["Terugbellen"]


async def test_a_manager_edits_their_teams_replies_and_agents_cannot(
    client: Client, sessions: Sessions, people: dict[str, Any]
) -> None:
    tokens, teams = people["tokens"], people["teams"]
    team_reply = await save(
        client, tokens["manager"], title="Offerte", body="Offerte volgt.", scope="team",
        team_id=teams["Verkoop"], shortcut="/Offerte",
    )  # fmt: skip
    assert team_reply["shortcut"] == "offerte"
    url = f"/api/canned-replies/{team_reply['id']}"

    by_agent = await client.patch(url, json={"body": "Nee"}, headers=tokens["sales"])
    assert by_agent.status == 403
    by_outsider = await client.patch(url, json={"body": "Nee"}, headers=tokens["service"])
    assert by_outsider.status == 404  # another team's reply is not even there for them
    assert (await client.delete(url, headers=tokens["sales"])).status == 403

    edited = await client.patch(
        url,
        json={"body": "Beste {{contact.first_name}}, de offerte volgt.", "language": "nl"},
        headers=tokens["manager"],
    )
    assert edited.status == 200, await edited.text()
    assert (await edited.json())["body"] == "Beste {{contact.first_name}}, de offerte volgt."
    async with sessions() as session:
        row = await session.get(CannedReply, team_reply["id"])
        assert row is not None
        assert (row.body, row.language, row.team_id) == (
            "Beste {{contact.first_name}}, de offerte volgt.",
            "nl",
            teams["Verkoop"],
        )

    own = await save(client, tokens["colleague"], title="Eigen", body="x")
    other_url = f"/api/canned-replies/{own['id']}"
    assert (await client.delete(other_url, headers=tokens["sales"])).status == 404
    assert (await client.delete(url, headers=tokens["manager"])).status == 204
    assert (await client.delete(other_url, headers=tokens["admin"])).status == 204
    async with sessions() as session:
        assert (await session.scalars(select(CannedReply))).all() == []


async def test_unknown_placeholders_and_a_taken_shortcut_are_refused(
    client: Client, people: dict[str, Any]
) -> None:
    tokens = people["tokens"]
    typo = await save(
        client, tokens["sales"], 422, title="Groet", body="Beste {{ contact.firstname }}"
    )
    assert typo["error"]["details"]["unknown"] == ["contact.firstname"]
    await save(client, tokens["sales"], title="Groet", body="Beste {{ contact.first_name }}",
               shortcut="groet")  # fmt: skip
    taken = await save(client, tokens["sales"], 409, title="Groet 2", body="Hoi", shortcut="groet")
    assert taken["error"]["code"] == "conflict"
    # Another scope may use the same shortcut: a colleague's own /groet is theirs.
    await save(client, tokens["colleague"], title="Groet", body="Hallo", shortcut="groet")
    bad = await save(client, tokens["sales"], 422, title="X", body="x", shortcut="two words")
    assert bad["error"]["code"] == "invalid"
    team = await save(client, tokens["manager"], 422, title="T", body="x", scope="team")
    assert "team_id" in team["error"]["message"]


async def test_canned_replies_are_for_people_not_bot_tokens(
    client: Client, sessions: Sessions, people: dict[str, Any]
) -> None:
    bot = await token_for(sessions, people["users"]["admin"], scope="bot")
    assert (await client.get("/api/canned-replies", headers=bot)).status == 403
    assert (await client.get("/api/canned-replies")).status == 401
