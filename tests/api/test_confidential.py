"""Confidential conversations and projects: visible to admins, the assignee and linked users or
teams only, through every route that shows them (list, detail, search, records)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from crm.models import Project, Relation, Team, TeamMember, User
from inbox.api.auth import create_api_token
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Conversation

Client = TestClient[Any, Any]


async def world(sessions: Sessions) -> dict[str, Any]:
    async with sessions() as session, session.begin():
        sales, legal = Team(name="Verkoop"), Team(name="Juridisch")
        session.add_all([sales, legal])
        await session.flush()
        people = {
            name: User(email=f"{name}@switchboard.test", name=name.title(), role=role)
            for name, role in (("ank", "agent"), ("bert", "agent"), ("lisa", "agent"), ("mia", "manager"), ("root", "admin"))
        }  # fmt: skip
        session.add_all(people.values())
        await session.flush()
        session.add(TeamMember(team_id=sales.id, user_id=people["ank"].id))
        session.add(TeamMember(team_id=sales.id, user_id=people["bert"].id))
        session.add(TeamMember(team_id=legal.id, user_id=people["lisa"].id))
        channel = await add_channel(session, "webform", "W", {})
        secret = Conversation(
            channel_id=channel.id, subject="Overname Hamerslag", team_id=sales.id, confidential=True
        )
        relation = Relation(name="Hamerslag B.V.", normalized_name="hamerslag")
        session.add_all([secret, relation])
        await session.flush()
        project = Project(
            name="Fusie Hamerslag", relation_id=relation.id, city="Almere", confidential=True
        )
        session.add(project)
        await session.flush()
        tokens = {
            name: {
                "Authorization": f"Bearer {await create_api_token(session, u.id, 't', 'api', None)}"
            }
            for name, u in people.items()
        }
        return {
            "tokens": tokens, "conversation": secret.id, "project": project.id,
            "legal": legal.id, "bert": people["bert"].id,
        }  # fmt: skip


async def sees(
    client: Client, headers: dict[str, str], w: dict[str, Any]
) -> tuple[bool, bool, bool, bool]:
    detail = await client.get(f"/api/conversations/{w['conversation']}", headers=headers)
    listed = await (
        await client.get("/api/conversations", params={"status": "open"}, headers=headers)
    ).json()
    found = await (
        await client.get("/api/search", params={"q": "hamerslag"}, headers=headers)
    ).json()
    record = await client.get(f"/api/records/project/{w['project']}", headers=headers)
    return (
        detail.status == 200 and any(c["id"] == w["conversation"] for c in listed["items"]),
        any(h["id"] == w["conversation"] for h in found.get("conversation", [])),
        any(h["id"] == w["project"] for h in found.get("project", [])),
        record.status == 200,
    )


async def test_only_admins_and_linked_users_or_teams_see_confidential_items(
    client: Client, sessions: Sessions
) -> None:
    w = await world(sessions)
    t = w["tokens"]
    assert await sees(client, t["root"], w) == (True, True, True, True)
    for name in ("ank", "bert", "lisa"):
        assert await sees(client, t[name], w) == (False, False, False, False), name
    # An agent cannot hand out access; an admin links Bert and the legal team.
    body = {"user_ids": [w["bert"]], "team_ids": [w["legal"]]}
    refused = await client.put(
        f"/api/conversations/{w['conversation']}/access", json=body, headers=t["ank"]
    )
    assert refused.status == 403
    for path in (
        f"/api/conversations/{w['conversation']}/access",
        f"/api/projects/{w['project']}/access",
    ):
        granted = await client.put(path, json=body, headers=t["root"])
        assert granted.status == 200, await granted.text()
        assert await granted.json() == {
            "confidential": True,
            "user_ids": [w["bert"]],
            "team_ids": [w["legal"]],
        }
    assert await sees(client, t["bert"], w) == (True, True, True, True)
    assert await sees(client, t["lisa"], w) == (True, True, True, True)  # through her team
    assert await sees(client, t["ank"], w) == (False, False, False, False)  # same team as Bert
    # Lifting the flag makes the conversation an ordinary one of its team again.
    lifted = await client.put(
        f"/api/conversations/{w['conversation']}/access",
        json={"confidential": False, "user_ids": [], "team_ids": []},
        headers=t["root"],
    )
    assert (await lifted.json())["confidential"] is False
    assert (await sees(client, t["ank"], w))[:2] == (True, True)
    assert (await sees(client, t["lisa"], w))[:2] == (False, False)
    unknown = await client.put(
        f"/api/projects/{w['project']}/access", json={"user_ids": [999999]}, headers=t["root"]
    )
    assert unknown.status == 422
