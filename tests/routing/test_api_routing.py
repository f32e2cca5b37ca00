"""The admin API of routing: rules, SLA policies and calendars validated and stored; people set
their own availability (and only their own), and coming back takes work from the queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm.models import User
from inbox.api.auth import create_api_token
from inbox.models import Conversation


async def bearer(world: Any, user_id: int) -> dict[str, str]:
    async with world.sessions() as session, session.begin():
        token = await create_api_token(session, user_id, "test", "api", None)
    return {"Authorization": f"Bearer {token}"}


async def make_admin(world: Any) -> int:
    async with world.sessions() as session, session.begin():
        admin = User(email="admin@switchboard.test", name="Admin", role="admin")
        session.add(admin)
        await session.flush()
        return admin.id


async def test_admin_configures_rules_policies_and_business_hours(client: Any, world: Any) -> None:
    admin = await bearer(world, await make_admin(world))
    complaints, _ = await world.team("Klachten", "Kees")
    calendar = await client.post(
        "/api/business-hours",
        json={
            "name": "Kantoor",
            "hours": {"mon": [["08:30", "17:00"]], "tue": [["08:30", "17:00"]]},
            "holidays": [{"day": "2026-12-25", "name": "Kerst"}],
            "is_default": True,
        },
        headers=admin,
    )
    assert calendar.status == 201, await calendar.text()
    calendar_id = (await calendar.json())["id"]
    bad_hours = await client.post(
        "/api/business-hours",
        json={"name": "Fout", "hours": {"mon": [["17:00", "08:30"]]}},
        headers=admin,
    )
    assert bad_hours.status == 422
    policy = await client.post(
        "/api/sla/policies",
        json={
            "name": "Standaard",
            "calendar_id": calendar_id,
            "targets": {"high": {"first_response": 30, "resolution": 240}},
            "is_default": True,
        },
        headers=admin,
    )
    assert policy.status == 201, await policy.text()
    rule = await client.post(
        "/api/routing/rules",
        json={
            "name": "Klachten",
            "conditions": [{"field": "text", "op": "contains_any", "value": ["klacht"]}],
            "actions": [
                {"type": "set_team", "team_id": complaints},
                {"type": "set_priority", "priority": "high"},
                {"type": "set_sla", "policy_id": (await policy.json())["id"]},
            ],
        },
        headers=admin,
    )
    assert rule.status == 201, await rule.text()
    unknown = await client.post(
        "/api/routing/rules",
        json={
            "name": "x",
            "conditions": [{"field": "mood", "op": "eq"}],
            "actions": [{"type": "stop"}],
        },
        headers=admin,
    )
    assert unknown.status == 422
    missing_team = await client.post(
        "/api/routing/rules",
        json={"name": "x", "actions": [{"type": "set_team", "team_id": 999999}]},
        headers=admin,
    )
    assert missing_team.status == 422
    tried = await client.post(
        "/api/routing/test", json={"subject": "Klacht", "body": "kapot"}, headers=admin
    )
    assert (await tried.json())["team_id"] == complaints
    assert (await tried.json())["priority"] == "high"
    listed = await (await client.get("/api/routing/rules", headers=admin)).json()
    assert [r["name"] for r in listed] == ["Klachten"]


async def test_people_set_their_own_availability_and_coming_back_drains_the_queue(
    client: Any, world: Any
) -> None:
    team, (ank, bert) = await world.team("Service", "Ank", "Bert")
    channel = await world.channel(team)
    ank_auth, bert_auth = await bearer(world, ank), await bearer(world, bert)
    for auth in (ank_auth, bert_auth):
        me = (await (await client.get("/api/me", headers=auth)).json())["id"]
        away = await client.put(f"/api/users/{me}/availability", json={"away": True}, headers=auth)
        assert away.status == 200 and (await away.json())["available_now"] is False
    other = await client.get(f"/api/users/{bert}/availability", headers=ank_auth)
    assert other.status == 404
    capacity = await client.put(
        f"/api/users/{ank}/availability", json={"capacity": 99}, headers=ank_auth
    )
    assert capacity.status == 422

    waiting = await world.receive(channel)
    assert waiting.assignee_id is None
    queue = await (await client.get(f"/api/teams/{team}/queue", headers=ank_auth)).json()
    assert [q["conversation_id"] for q in queue] == [waiting.id]

    back = await client.put(
        f"/api/users/{bert}/availability",
        json={"away": False, "skills": ["cv-ketels"], "languages": ["NL", "de"]},
        headers=bert_auth,
    )
    body = await back.json()
    assert (body["available_now"], body["assigned_to_queue"]) == (True, 1)
    assert (body["skills"], body["languages"]) == (["cv-ketels"], ["de", "nl"])
    async with world.sessions() as session:
        row = (
            await session.scalars(select(Conversation).where(Conversation.id == waiting.id))
        ).one()
    assert row.assignee_id == bert
    mine = await (await client.get("/api/notifications", headers=bert_auth)).json()
    assert [(n["kind"], n["conversation_id"]) for n in mine] == [("assigned", waiting.id)]
