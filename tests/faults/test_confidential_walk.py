"""A confidential conversation of a team, its message, attachment and project: every GET route
of the router (a new one included), every record card, search and the realtime socket are
walked as outsiders, and none of them gives away a word of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from api.test_confidential import world as confidential_world

from inbox.api.router import API
from inbox.attachments import FileStore
from inbox.db import Sessions
from inbox.models import Attachment, Conversation, Message
from inbox.settings import Settings

Client = TestClient[Any, Any]
SECRET = "fusie7731"  # in the message's text, the file's name and its bytes
# ...and the conversation's subject and the project's name in tests/api/test_confidential.py
MARKERS = (SECRET.encode(), b"overname hamerslag", b"fusie hamerslag")
RECORD_KINDS = ("conversation", "project", "relation", "contact", "lead")


async def world(sessions: Sessions, settings: Settings) -> dict[str, Any]:
    """tests/api/test_confidential.py's world, with a message and a file in its secret."""
    w = await confidential_world(sessions)
    sha = await FileStore(settings.data_dir.expanduser().resolve() / "files").put(
        f"notulen {SECRET}".encode()
    )
    async with sessions() as session, session.begin():
        secret = await session.get(Conversation, w["conversation"])
        assert secret is not None
        message = Message(
            conversation_id=secret.id,
            channel_id=secret.channel_id,
            external_id="walk-1",
            direction="inbound",
            kind="message",
            text=f"De {SECRET} gaat door",
            sent_at=datetime.now(UTC),
        )
        session.add(message)
        await session.flush()
        attachment = Attachment(
            message_id=message.id, filename=f"{SECRET}.txt", content_type="text/plain", size=18, sha256=sha
        )  # fmt: skip
        session.add(attachment)
        await session.flush()
    ids = {
        "conversation_id": secret.id,
        "message_id": message.id,
        "attachment_id": attachment.id,
        "project_id": w["project"],
    }
    records = {"conversation": secret.id, "project": w["project"]}
    return {"tokens": w["tokens"], "ids": ids, "records": records}


def paths_of(template: str, ids: dict[str, int], records: dict[str, int]) -> list[str]:
    """The template filled with the secret's ids (1 for any other id); cards of every kind."""
    if "{kind}" in template:
        return [
            template.replace("{kind}", kind).replace("{record_id}", str(records.get(kind, 1)))
            for kind in RECORD_KINDS
        ]
    return [re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: str(ids.get(m[1], 1)), template)]


async def walk(client: Client, headers: dict[str, str], w: dict[str, Any]) -> dict[str, int]:
    """Every GET route as this caller: {path: status} of the answers that show the secret."""
    leaks = {}
    queries: dict[str, str] = {"q": "hamerslag", "status": "open"}
    for route in API.routes:
        if route.method != "GET":
            continue
        for path in paths_of(route.path, w["ids"], w["records"]):
            for params in ({}, queries):
                response = await client.get(path, params=params, headers=headers)
                assert response.status < 500, (path, await response.text())
                body = await response.read()
                if response.status < 300 and any(m in body.lower() for m in MARKERS):
                    leaks[path] = response.status
    return leaks


async def test_no_get_route_shows_a_confidential_conversation_to_an_outsider(
    client: Client, sessions: Sessions, settings: Settings
) -> None:
    w = await world(sessions, settings)
    seen_by_admin = await walk(client, w["tokens"]["root"], w)
    ids = w["ids"]
    # The walk reaches the secret where it lives: without the rule, these would leak.
    for path in (
        f"/api/conversations/{ids['conversation_id']}",
        f"/api/conversations/{ids['conversation_id']}/messages",
        f"/api/attachments/{ids['attachment_id']}",
        f"/api/messages/{ids['message_id']}/original",
        "/api/search",
        f"/api/records/project/{ids['project_id']}",
    ):
        assert path in seen_by_admin, path
    for outsider in ("ank", "bert", "lisa", "mia"):  # its team, another team, a manager
        assert await walk(client, w["tokens"][outsider], w) == {}, outsider


async def test_the_socket_of_an_outsider_hears_nothing_of_a_confidential_conversation(
    client: Client, sessions: Sessions, settings: Settings
) -> None:
    w = await world(sessions, settings)
    conversation = w["ids"]["conversation_id"]
    sockets = {}
    for name in ("root", "ank", "bert", "lisa", "mia"):
        ws = await client.ws_connect("/ws", headers=w["tokens"][name])
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        sockets[name] = ws
    note = await client.post(
        f"/api/conversations/{conversation}/notes",
        json={"text": "intern"},
        headers=w["tokens"]["root"],
    )
    assert note.status == 201, await note.text()
    heard = await sockets["root"].receive_json(timeout=5)
    assert heard["conversation_id"] == conversation
    # The admin's event went out; a sentinel the outsiders may see closes their stream.
    lifted = await client.put(
        f"/api/conversations/{conversation}/access",
        json={"confidential": False, "user_ids": [], "team_ids": []},
        headers=w["tokens"]["root"],
    )
    assert lifted.status == 200
    await client.post(
        f"/api/conversations/{conversation}/notes",
        json={"text": "nu openbaar"},
        headers=w["tokens"]["root"],
    )
    for name in ("ank", "bert"):
        first = await sockets[name].receive_json(timeout=5)
        assert first["conversation_id"] == conversation and not first["confidential"], name
    for ws in sockets.values():
        await ws.close()
