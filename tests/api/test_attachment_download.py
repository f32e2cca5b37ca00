"""Attachments download from the API only for those who may see the conversation, never inline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from api.test_api import conversation_in, make_user, team_id, token_for

from inbox.attachments import FileStore
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Attachment, Message
from inbox.settings import Settings

Client = TestClient[Any, Any]
PAGE = b"<html><script>alert('hi')</script></html>"


async def test_an_attachment_downloads_for_its_team_as_a_file_and_not_for_others(
    client: Client, sessions: Sessions, settings: Settings
) -> None:
    sales = await make_user(sessions, "sales@example.nl", "agent", "Verkoop")
    service = await make_user(sessions, "service@example.nl", "agent", "Service")
    async with sessions() as session, session.begin():
        channel = await add_channel(session, "webform", "Website", {})
    conversation = await conversation_in(
        sessions, channel, await team_id(sessions, "Verkoop"), "Tekening"
    )
    sha = await FileStore(settings.data_dir.expanduser().resolve() / "files").put(PAGE)
    async with sessions() as session, session.begin():
        message = Message(
            conversation_id=conversation.id,
            channel_id=channel.id,
            external_id="m1",
            direction="inbound",
            kind="message",
            text="Zie bijlage",
            sent_at=datetime.now(UTC),
        )
        session.add(message)
        await session.flush()
        kept = Attachment(
            message_id=message.id,
            filename="tekening dakkapel.html",
            content_type="text/html",
            size=len(PAGE),
            sha256=sha,
        )
        refused = Attachment(
            message_id=message.id,
            filename="virus.exe",
            content_type="application/octet-stream",
            size=10,
            refused="blocked file type",
        )
        session.add_all([kept, refused])

    own = await token_for(sessions, sales)
    response = await client.get(f"/api/attachments/{kept.id}", headers=own)
    assert response.status == 200
    assert await response.read() == PAGE
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename*=UTF-8''tekening%20dakkapel.html"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    gone = await client.get(f"/api/attachments/{refused.id}", headers=own)
    assert gone.status == 410
    assert (await gone.json())["error"]["message"] == "blocked file type"

    other = await client.get(
        f"/api/attachments/{kept.id}", headers=await token_for(sessions, service)
    )
    assert other.status == 404
    bot = await client.get(
        f"/api/attachments/{kept.id}", headers=await token_for(sessions, sales, scope="bot")
    )
    assert bot.status == 403
