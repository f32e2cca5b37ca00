"""The REST API: log-in, CSRF, tokens, role scoping over every route, and the inbox actions."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from crm.models import Identity, Lead, Task, Team, TeamMember, User
from inbox.api.auth import create_api_token
from inbox.api.router import API
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Channel, Conversation, HistoryEntry, Message
from inbox.users import hash_password

Client = TestClient[Any, Any]
PASSWORD = "correct horse battery"
PASSWORD_HASH = hash_password(PASSWORD)


async def make_user(sessions: Sessions, email: str, role: str, team: str | None = None) -> User:
    async with sessions() as session, session.begin():
        user = User(
            email=email, name=email.split("@")[0].title(), role=role, password_hash=PASSWORD_HASH
        )
        session.add(user)
        await session.flush()
        if team:
            team_row = (await session.scalars(select(Team).where(Team.name == team))).first()
            if team_row is None:
                team_row = Team(name=team)
                session.add(team_row)
                await session.flush()
            session.add(TeamMember(team_id=team_row.id, user_id=user.id))
        return user


async def token_for(
    sessions: Sessions, user: User, scope: str = "api", channel_id: str | None = None
) -> dict[str, str]:
    async with sessions() as session, session.begin():
        token = await create_api_token(session, user.id, "test", scope, channel_id)
    return {"Authorization": f"Bearer {token}"}


async def team_id(sessions: Sessions, name: str) -> int:
    async with sessions() as session:
        return int((await session.scalars(select(Team.id).where(Team.name == name))).one())


async def conversation_in(
    sessions: Sessions, channel: Channel, team: int | None, subject: str
) -> Conversation:
    async with sessions() as session, session.begin():
        lead = Lead(name="Karin Prins", company="Prins Bouw", source_channel_id=channel.id)
        session.add(lead)
        await session.flush()
        session.add(Identity(kind="email", value=f"karin{lead.id}@prins-bouw.nl", lead_id=lead.id))
        conversation = Conversation(
            channel_id=channel.id, subject=subject, team_id=team, lead_id=lead.id
        )
        session.add(conversation)
        await session.flush()
        session.add(
            Task(
                kind="follow_up_lead",
                title="Follow up",
                team_id=team,
                lead_id=lead.id,
                conversation_id=conversation.id,
            )
        )
        return conversation


@pytest.fixture
async def world(sessions: Sessions) -> dict[str, Any]:
    admin = await make_user(sessions, "admin@example.nl", "admin")
    sales = await make_user(sessions, "sales@example.nl", "agent", "Verkoop")
    service = await make_user(sessions, "service@example.nl", "agent", "Service")
    manager = await make_user(sessions, "manager@example.nl", "manager", "Verkoop")
    async with sessions() as session, session.begin():
        channel = await add_channel(session, "webform", "Website", {})
    sales_conv = await conversation_in(
        sessions, channel, await team_id(sessions, "Verkoop"), "Offerte kozijnen"
    )
    service_conv = await conversation_in(
        sessions, channel, await team_id(sessions, "Service"), "Storing cv-ketel"
    )
    return {
        "admin": admin,
        "sales": sales,
        "service": service,
        "manager": manager,
        "channel": channel,
        "sales_conv": sales_conv,
        "service_conv": service_conv,
    }


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_api_route_refuses_anonymous_callers(client: Client) -> None:
    assert API.routes, "no routes registered"
    for route in API.routes:
        response = await client.request(route.method, concrete(route.path), json={})
        assert response.status == 401, f"{route.method} {route.path} answered {response.status}"
        body = await response.json()
        assert body["error"]["code"] == "unauthenticated"


async def test_role_matrix_over_every_route(
    client: Client, sessions: Sessions, world: dict[str, Any]
) -> None:
    headers = {
        role: await token_for(sessions, world[name])
        for role, name in (("admin", "admin"), ("manager", "manager"), ("agent", "sales"))
    }
    for route in API.routes:
        for role, auth in headers.items():
            response = await client.request(
                route.method, concrete(route.path), json={}, headers=auth
            )
            if role in route.roles:
                assert (
                    response.status != 403
                    or (await response.json())["error"]["code"] != "forbidden"
                    or route.path == "/api/tokens"
                ), f"{role} refused on {route.method} {route.path}"
            else:
                assert response.status == 403, (
                    f"{role} allowed on {route.method} {route.path}: {response.status}"
                )


async def test_login_sets_a_session_and_unsafe_calls_need_the_csrf_token(
    client: Client, world: dict[str, Any]
) -> None:
    bad = await client.post(
        "/api/auth/login", json={"email": "sales@example.nl", "password": "wrong password"}
    )
    assert bad.status == 401
    good = await client.post(
        "/api/auth/login", json={"email": "Sales@Example.nl", "password": PASSWORD}
    )
    assert good.status == 200
    csrf = (await good.json())["csrf_token"]
    me = await client.get("/api/me")
    assert (await me.json())["name"] == "Sales"
    # Every API answer, a refusal too, says how long the server took on it.
    timing = me.headers["Server-Timing"]
    assert timing.startswith("app;dur=") and float(timing.removeprefix("app;dur=")) > 0
    conv = world["sales_conv"].id
    without = await client.post(f"/api/conversations/{conv}/notes", json={"text": "intern"})
    assert without.status == 403 and (await without.json())["error"]["code"] == "csrf"
    with_token = await client.post(
        f"/api/conversations/{conv}/notes", json={"text": "intern"}, headers={"X-CSRF-Token": csrf}
    )
    assert with_token.status == 201
    await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    refused = await client.get("/api/me")
    assert refused.status == 401 and refused.headers["Server-Timing"].startswith("app;dur=")


async def test_login_is_rate_limited(client: Client, world: dict[str, Any]) -> None:
    statuses = [
        (
            await client.post(
                "/api/auth/login", json={"email": "admin@example.nl", "password": f"guess {i}"}
            )
        ).status
        for i in range(7)
    ]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429


async def test_agents_see_their_teams_conversations_only(
    client: Client, sessions: Sessions, world: dict[str, Any]
) -> None:
    sales = await token_for(sessions, world["sales"])
    listed = await (await client.get("/api/conversations", headers=sales)).json()
    assert [c["subject"] for c in listed["items"]] == ["Offerte kozijnen"]
    other = await client.get(f"/api/conversations/{world['service_conv'].id}", headers=sales)
    assert other.status == 404
    reply = await client.post(
        f"/api/conversations/{world['service_conv'].id}/notes", json={"text": "x"}, headers=sales
    )
    assert reply.status == 404
    admin = await token_for(sessions, world["admin"])
    everything = await (await client.get("/api/conversations", headers=admin)).json()
    assert len(everything["items"]) == 2


async def test_conversation_list_paginates_with_a_cursor(
    client: Client, sessions: Sessions, world: dict[str, Any]
) -> None:
    for i in range(5):
        await conversation_in(
            sessions, world["channel"], await team_id(sessions, "Verkoop"), f"Vraag {i}"
        )
    admin = await token_for(sessions, world["admin"])
    seen: list[int] = []
    url = "/api/conversations?limit=3"
    while url:
        page = await (await client.get(url, headers=admin)).json()
        seen += [c["id"] for c in page["items"]]
        url = (
            f"/api/conversations?limit=3&cursor={page['next_cursor']}"
            if page["next_cursor"]
            else ""
        )
    assert len(seen) == 7 and len(set(seen)) == 7
    bad = await client.get("/api/conversations?cursor=!!!", headers=admin)
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_cursor"


async def test_assign_status_labels_and_history(
    client: Client, sessions: Sessions, world: dict[str, Any]
) -> None:
    manager = await token_for(sessions, world["manager"])
    conv = world["sales_conv"].id
    assigned = await client.post(
        f"/api/conversations/{conv}/assign",
        json={"assignee_id": world["sales"].id},
        headers=manager,
    )
    assert (await assigned.json())["assignee_id"] == world["sales"].id
    labelled = await client.post(
        f"/api/conversations/{conv}/labels", json={"add": ["offerte", "klacht"]}, headers=manager
    )
    assert (await labelled.json())["labels"] == ["offerte", "klacht"]
    snooze = await client.post(
        f"/api/conversations/{conv}/status", json={"status": "snoozed"}, headers=manager
    )
    assert snooze.status == 422
    resolved = await client.post(
        f"/api/conversations/{conv}/status", json={"status": "resolved"}, headers=manager
    )
    assert (await resolved.json())["status"] == "resolved"
    async with sessions() as session:
        task = (await session.scalars(select(Task).where(Task.conversation_id == conv))).one()
        assert (task.status, task.assignee_id) == ("done", world["sales"].id)
        actions = (
            await session.scalars(
                select(HistoryEntry.action)
                .where(HistoryEntry.conversation_id == conv)
                .order_by(HistoryEntry.id)
            )
        ).all()
    assert actions == ["assign", "labels", "status"]
    history = await (await client.get(f"/api/conversations/{conv}/history", headers=manager)).json()
    assert history[0]["actor_id"] == world["manager"].id


async def test_reply_without_a_route_back_is_a_clear_409(
    client: Client, sessions: Sessions, world: dict[str, Any]
) -> None:
    sales = await token_for(sessions, world["sales"])
    response = await client.post(
        f"/api/conversations/{world['sales_conv'].id}/messages",
        json={"text": "Dank u"},
        headers=sales,
    )
    assert response.status == 409
    assert "e-mail" in (await response.json())["error"]["message"]


async def test_bad_bodies_get_422_or_400_with_details(
    client: Client, sessions: Sessions, world: dict[str, Any]
) -> None:
    sales = await token_for(sessions, world["sales"])
    conv = world["sales_conv"].id
    empty = await client.post(f"/api/conversations/{conv}/notes", json={"text": ""}, headers=sales)
    assert empty.status == 422 and (await empty.json())["error"]["details"][0]["loc"] == ["text"]
    broken = await client.post(
        f"/api/conversations/{conv}/notes",
        data=b"{nope",
        headers=sales | {"Content-Type": "application/json"},
    )
    assert broken.status == 400
    missing = await client.get("/api/conversations/999999", headers=sales)
    assert missing.status == 404
    huge = await client.post(
        f"/api/conversations/{conv}/notes",
        data=io.BytesIO(b'{"text": "' + b"x" * (2 * 1024 * 1024) + b'"}'),
        headers=sales | {"Content-Type": "application/json"},
    )
    assert huge.status == 413 and huge.content_type == "application/json"
    assert (await huge.json())["error"]["code"] == "too_large"


async def test_lead_conversion_moves_identities_and_conversations(
    client: Client, sessions: Sessions, world: dict[str, Any]
) -> None:
    manager = await token_for(sessions, world["manager"])
    lead_id = world["sales_conv"].lead_id
    converted = await client.post(f"/api/leads/{lead_id}/convert", json={}, headers=manager)
    assert converted.status == 201
    result = await converted.json()
    async with sessions() as session:
        identity = (
            await session.scalars(
                select(Identity).where(Identity.contact_id == result["contact_id"])
            )
        ).one()
        assert identity.lead_id is None
        conversation = await session.get(Conversation, world["sales_conv"].id)
        assert conversation is not None and conversation.contact_id == result["contact_id"]
        assert conversation.relation_id == result["relation_id"]
    again = await client.post(f"/api/leads/{lead_id}/convert", json={}, headers=manager)
    assert again.status == 409


async def test_tokens_bot_scope_and_admin_only_channels(
    client: Client, sessions: Sessions, world: dict[str, Any]
) -> None:
    agent = await token_for(sessions, world["sales"])
    denied = await client.post(
        "/api/tokens",
        json={"name": "bot", "scope": "bot", "channel_id": world["channel"].id},
        headers=agent,
    )
    assert denied.status == 403
    admin = await token_for(sessions, world["admin"])
    made = await client.post(
        "/api/tokens",
        json={"name": "bot", "scope": "bot", "channel_id": world["channel"].id},
        headers=admin,
    )
    assert made.status == 201
    bot = {"Authorization": f"Bearer {(await made.json())['token']}"}
    assert (await client.get("/api/tasks", headers=bot)).status == 403
    seen = await (await client.get("/api/conversations", headers=bot)).json()
    assert len(seen["items"]) == 2  # every conversation of its channel
    channels = await client.get("/api/channels", headers=admin)
    assert [c["kind"] for c in await channels.json()] == ["webform"]


async def test_openapi_document_lists_every_route(client: Client) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for route in API.routes:
        assert route.method.lower() in doc["paths"][route.path]
    assert doc["components"]["schemas"]["ConversationPage"]["properties"]["items"]
    json.dumps(doc)


async def test_notes_are_internal_messages(
    client: Client, sessions: Sessions, world: dict[str, Any], run_worker: Callable[[], Any]
) -> None:
    sales = await token_for(sessions, world["sales"])
    conv = world["sales_conv"].id
    await client.post(
        f"/api/conversations/{conv}/notes", json={"text": "Klant belt morgen terug"}, headers=sales
    )
    page = await (await client.get(f"/api/conversations/{conv}/messages", headers=sales)).json()
    assert [(m["direction"], m["status"], m["text"]) for m in page["items"]] == [
        ("internal", "note", "Klant belt morgen terug")
    ]
    async with sessions() as session:
        assert (await session.scalars(select(Message))).one().author_id == world["sales"].id


async def test_a_token_records_its_use_at_most_once_a_minute_and_a_revoked_one_is_refused(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    """The token check reads in autocommit; its once-a-minute write of last_used_at commits on
    its own, and revocation applies to the very next call."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from inbox.api.auth import revoke_token
    from inbox.models import ApiToken

    headers = await login("agent")

    async def last_used() -> datetime | None:
        async with sessions() as session:
            return await session.scalar(select(ApiToken.last_used_at))

    assert (await client.get("/api/me", headers=headers)).status == 200
    first = await last_used()
    assert first is not None
    assert (await client.get("/api/me", headers=headers)).status == 200
    assert await last_used() == first  # not again within the minute
    async with sessions() as session, session.begin():
        await session.execute(update(ApiToken).values(last_used_at=first - timedelta(minutes=2)))
    assert (await client.get("/api/me", headers=headers)).status == 200
    later = await last_used()
    assert later is not None and later > first - timedelta(minutes=1)
    assert later <= datetime.now(UTC)
    async with sessions() as session, session.begin():
        token_id = await session.scalar(select(ApiToken.id))
        await revoke_token(session, token_id)
    assert (await client.get("/api/me", headers=headers)).status == 401
