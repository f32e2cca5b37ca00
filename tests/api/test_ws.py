"""The realtime socket: who may connect, which events reach which socket, one Redis subscription
per process, and the 'hidden' notice when a conversation leaves a user's view."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient
from redis.asyncio import ConnectionPool, Redis
from sqlalchemy import select

from crm.models import AccessGrant, Team, TeamMember, User
from inbox.access import Principal, visible_conversations
from inbox.api.auth import create_api_token
from inbox.api.ws import may_see
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Conversation
from inbox.realtime import channel_of
from inbox.state import ARQ
from inbox.users import hash_password

Client = TestClient[Any, Any]
PASSWORD = "correct horse battery"


async def user(sessions: Sessions, email: str, role: str, teams: list[str]) -> User:
    async with sessions() as session, session.begin():
        row = User(
            email=email, name=email.split("@")[0], role=role, password_hash=hash_password(PASSWORD)
        )
        session.add(row)
        await session.flush()
        for name in teams:
            team = (await session.scalars(select(Team).where(Team.name == name))).first()
            if team is None:
                team = Team(name=name)
                session.add(team)
                await session.flush()
            session.add(TeamMember(team_id=team.id, user_id=row.id))
        return row


async def token(
    sessions: Sessions, who: User, scope: str = "api", channel_id: str | None = None
) -> str:
    async with sessions() as session, session.begin():
        return await create_api_token(session, who.id, "ws", scope, channel_id)


async def team_ids(sessions: Sessions) -> dict[str, int]:
    async with sessions() as session:
        return {t.name: t.id for t in (await session.scalars(select(Team))).all()}


def event(conversation_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "message.created",
        "conversation_id": conversation_id,
        "team_id": None,
        "assignee_id": None,
        "status": "open",
        "confidential": False,
        "channel_id": "none",
    } | fields


async def publish(client: Client, *events: dict[str, Any]) -> None:
    for e in events:
        await client.app[ARQ].publish(channel_of(client.app[ARQ]), json.dumps(e))


async def until(ws: Any, sentinel: int, ours: range = range(1, 100)) -> list[int]:
    """Conversation ids this socket received before its own sentinel event, in `ours`."""
    seen: list[int] = []
    while True:
        message = await ws.receive_json(timeout=5)
        if message.get("conversation_id") == sentinel:
            return seen
        if message.get("conversation_id") in ours:
            seen.append(message["conversation_id"])


async def test_events_reach_only_the_sockets_whose_user_may_see_the_conversation(
    client: Client, sessions: Sessions
) -> None:
    admin = await user(sessions, "admin@example.nl", "admin", [])
    sales = await user(sessions, "sales@example.nl", "agent", ["Verkoop"])
    service = await user(sessions, "service@example.nl", "agent", ["Service"])
    manager = await user(sessions, "manager@example.nl", "manager", ["Verkoop", "Service"])
    async with sessions() as session, session.begin():
        form = await add_channel(session, "webform", "Website", {})
        phone = await add_channel(session, "telephony", "PBX", {"dialect": "generic"})
    bot = await token(sessions, admin, "bot", phone.id)
    teams = await team_ids(sessions)
    verkoop, service_team = teams["Verkoop"], teams["Service"]
    sockets = {
        "admin": (await client.ws_connect(f"/ws?token={await token(sessions, admin)}"), -1),
        "sales": (
            await client.ws_connect(
                "/ws", headers={"Authorization": f"Bearer {await token(sessions, sales)}"}
            ),
            -2,
        ),
        "service": (await client.ws_connect(f"/ws?token={await token(sessions, service)}"), -3),
        "manager": (await client.ws_connect(f"/ws?token={await token(sessions, manager)}"), -4),
        "bot": (await client.ws_connect(f"/ws?token={bot}"), -5),
    }
    for ws, _ in sockets.values():
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
    await publish(
        client,
        event(1, team_id=verkoop, channel_id=form.id),
        event(2, team_id=service_team, channel_id=phone.id),
        event(3, team_id=verkoop, confidential=True, channel_id=form.id),
        event(4, team_id=service_team, assignee_id=sales.id, confidential=True, channel_id=form.id),
        event(5, team_id=None, channel_id=phone.id),
        # Sentinels, one per socket, each visible to its own socket.
        event(-1),
        event(-2, assignee_id=sales.id),
        event(-3, assignee_id=service.id),
        event(-4, assignee_id=manager.id),
        event(-5, channel_id=phone.id),
    )
    received = {name: await until(ws, sentinel) for name, (ws, sentinel) in sockets.items()}
    assert received == {
        "admin": [1, 2, 3, 4, 5],
        "sales": [1, 4],  # the team's open ones and the confidential one assigned to them
        "service": [2],
        "manager": [1, 2],  # confidential ones only by link
        "bot": [2, 5],  # its channel only
    }
    for ws, _ in sockets.values():
        await ws.close()


async def test_the_event_rule_is_the_api_rule(client: Client, sessions: Sessions) -> None:
    """may_see on an event agrees with visible_conversations on the row, case by case."""
    async with sessions() as session, session.begin():
        form = await add_channel(session, "webform", "Website", {})
        other = await add_channel(session, "webform", "Other", {})
        teams = [Team(name="A"), Team(name="B")]
        session.add_all(teams)
        people = [User(email=f"u{i}@example.nl", name=f"U{i}", role="agent") for i in range(2)]
        session.add_all(people)
        await session.flush()
        rows = [
            Conversation(channel_id=ch.id, team_id=team, assignee_id=assignee, confidential=conf)
            for ch, team, assignee, conf in itertools.product(
                (form, other), (None, teams[0].id, teams[1].id), (None, people[0].id), (False, True)
            )
        ]
        session.add_all(rows)
        await session.flush()
        # Some confidential ones are linked to a person or a team (access grants).
        grants: dict[int, dict[str, list[int]]] = {}
        for i, r in enumerate(r for r in rows if r.confidential):
            grant = {"users": [people[1].id], "teams": []} if i % 3 == 0 else (
                {"users": [], "teams": [teams[1].id]} if i % 3 == 1 else {"users": [], "teams": []}
            )  # fmt: skip
            grants[r.id] = grant
            session.add_all(AccessGrant(conversation_id=r.id, user_id=u) for u in grant["users"])
            session.add_all(AccessGrant(conversation_id=r.id, team_id=t) for t in grant["teams"])
        await session.flush()
        principals = [
            Principal(people[0].id, role, "x", team_set, "token")
            for role in ("admin", "manager", "agent")
            for team_set in ((), (teams[0].id,), (teams[0].id, teams[1].id))
        ] + [
            Principal(people[0].id, "admin", "bot", (), "token", scope="bot", channel_id=form.id),
            Principal(people[1].id, "agent", "y", (teams[1].id,), "token"),
        ]
        for p in principals:
            visible = set(
                (
                    await session.scalars(
                        select(Conversation.id).where(
                            Conversation.id.in_([r.id for r in rows]), visible_conversations(p)
                        )
                    )
                ).all()
            )
            by_event = {
                r.id
                for r in rows
                if may_see(
                    p,
                    {
                        "conversation_id": r.id,
                        "team_id": r.team_id,
                        "assignee_id": r.assignee_id,
                        "confidential": r.confidential,
                        "channel_id": r.channel_id,
                        "grants": grants.get(r.id),
                    },
                )
            }
            assert by_event == visible, p


async def test_anonymous_and_cross_origin_cookie_sockets_are_refused(
    client: Client, sessions: Sessions
) -> None:
    with pytest.raises(WSServerHandshakeError) as anonymous:
        await client.ws_connect("/ws")
    assert anonymous.value.status == 401
    with pytest.raises(WSServerHandshakeError) as bad_token:
        await client.ws_connect("/ws?token=sbt_nope")
    assert bad_token.value.status == 401
    await user(sessions, "sales@example.nl", "agent", ["Verkoop"])
    login = await client.post(
        "/api/auth/login", json={"email": "sales@example.nl", "password": PASSWORD}
    )
    assert login.status == 200
    with pytest.raises(WSServerHandshakeError) as foreign:
        await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert foreign.value.status == 403
    own = await client.ws_connect("/ws", headers={"Origin": f"http://{client.host}:{client.port}"})
    assert (await own.receive_json(timeout=5))["type"] == "hello"
    await own.close()


async def test_one_redis_subscription_serves_every_socket_of_the_process(
    client: Client, sessions: Sessions
) -> None:
    admin = await user(sessions, "admin@example.nl", "admin", [])
    auth = await token(sessions, admin)
    [(_, before)] = await client.app[ARQ].pubsub_numsub(channel_of(client.app[ARQ]))
    assert before >= 1  # this process listens already
    sockets = [await client.ws_connect(f"/ws?token={auth}") for _ in range(5)]
    for ws in sockets:
        await ws.receive_json(timeout=5)
    [(_, after)] = await client.app[ARQ].pubsub_numsub(channel_of(client.app[ARQ]))
    assert after == before  # (other runs on the same Redis may listen too)
    await publish(client, event(7), event(-1))
    assert [await until(ws, -1) for ws in sockets] == [[7]] * 5
    for ws in sockets:
        await ws.close()


async def test_events_of_another_redis_database_do_not_reach_the_sockets(
    client: Client, sessions: Sessions
) -> None:
    """Pub/sub ignores Redis database numbers: two services on one Redis server, each with its
    own database, must still not hear each other's conversations."""
    admin = await user(sessions, "admin@example.nl", "admin", [])
    ws = await client.ws_connect(f"/ws?token={await token(sessions, admin)}")
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    ours = client.app[ARQ]
    db = int(ours.connection_pool.connection_kwargs.get("db", 0))
    pool = ours.connection_pool  # same server and settings, another database
    neighbour = Redis(
        connection_pool=ConnectionPool(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "db": (db + 1) % 16},
        )
    )
    try:
        assert channel_of(neighbour) != channel_of(ours)
        await neighbour.publish(channel_of(neighbour), json.dumps(event(21)))
    finally:
        await neighbour.aclose()
        await neighbour.connection_pool.disconnect()
    await publish(client, event(22), event(-1))
    assert await until(ws, -1) == [22]
    await ws.close()


async def test_a_watched_conversation_that_leaves_the_users_view_is_announced_as_hidden(
    client: Client, sessions: Sessions
) -> None:
    sales = await user(sessions, "sales@example.nl", "agent", ["Verkoop"])
    teams = await team_ids(sessions)
    ws = await client.ws_connect(f"/ws?token={await token(sessions, sales)}")
    await ws.receive_json(timeout=5)
    await ws.send_str(json.dumps({"type": "watch", "conversation_ids": [11, 12]}))
    await ws.send_str("ping")
    assert (await ws.receive(timeout=5)).data == "pong"  # the watch list is in place
    await publish(
        client,
        event(11, team_id=teams["Verkoop"] + 100),  # moved to a team they are not in
        event(13, team_id=teams["Verkoop"] + 100),  # never theirs: nothing at all
        event(99, assignee_id=sales.id),
    )
    received = []
    while not received or received[-1].get("conversation_id") != 99:
        message = await ws.receive_json(timeout=5)
        if message.get("conversation_id") in (11, 12, 13, 99):
            received.append(message)
    assert received == [
        {"type": "conversation.hidden", "conversation_id": 11},
        event(99, assignee_id=sales.id),
    ]
    await ws.close()


async def test_an_agent_typing_in_a_web_chat_they_may_see_is_published_once_per_while(
    client: Client, sessions: Sessions
) -> None:
    admin = await user(sessions, "admin@example.nl", "admin", [])
    sales = await user(sessions, "sales@example.nl", "agent", ["Verkoop"])
    service = await user(sessions, "service@example.nl", "agent", ["Service"])
    teams = await team_ids(sessions)
    async with sessions() as session, session.begin():
        chat = await add_channel(session, "webchat", "Website", {"allowed_origins": ["*"]})
        visitor = Conversation(
            channel_id=chat.id, thread_key="webchat:v1", team_id=teams["Verkoop"], subject="?"
        )
        other = Conversation(
            channel_id=chat.id, thread_key="mail:x", team_id=teams["Verkoop"], subject="?"
        )
        session.add_all([visitor, other])
    listener = await client.ws_connect(f"/ws?token={await token(sessions, admin)}")
    await listener.receive_json(timeout=5)

    async def typing(who: User, *conversation_ids: int) -> None:
        ws = await client.ws_connect(f"/ws?token={await token(sessions, who)}")
        await ws.receive_json(timeout=5)
        for conversation_id in conversation_ids:
            await ws.send_str(json.dumps({"type": "typing", "conversation_id": conversation_id}))
        await ws.send_str("ping")
        while (await ws.receive(timeout=5)).data != "pong":  # handled in order: all told
            pass
        await ws.close()

    await typing(service, visitor.id)  # not their team's conversation
    await typing(sales, visitor.id, visitor.id, visitor.id, other.id)  # a burst; not a web chat
    await publish(client, event(-7))
    told = []
    while True:
        message = await listener.receive_json(timeout=5)
        if message.get("conversation_id") == -7:
            break
        if message.get("type") == "agent.typing" and message.get("channel_id") == chat.id:
            told.append(message["conversation_id"])
    assert told == [visitor.id]
    await listener.close()
