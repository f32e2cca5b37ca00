"""The list over every status is one newest-first order across statuses, page after page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from api.test_api import make_user, team_id, token_for
from sqlalchemy import select

from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import CONVERSATION_STATUSES, Conversation

Client = TestClient[Any, Any]


async def test_all_statuses_pages_newest_first_across_statuses_within_the_users_teams(
    client: Client, sessions: Sessions
) -> None:
    sales = await make_user(sessions, "sales@example.nl", "agent", "Verkoop")
    await make_user(sessions, "service@example.nl", "agent", "Service")
    verkoop, service = await team_id(sessions, "Verkoop"), await team_id(sessions, "Service")
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        channel = await add_channel(session, "webform", "Website", {})
        session.add_all(
            Conversation(
                channel_id=channel.id,
                subject=f"#{i}",
                status=CONVERSATION_STATUSES[i % 4],
                team_id=service if i % 5 == 0 else verkoop,
                last_message_at=now - timedelta(minutes=(i * 7) % 23),
            )
            for i in range(20)
        )
    async with sessions() as session:
        rows = [
            (c.last_message_at, c.id, c.subject)
            for c in (
                await session.scalars(select(Conversation).where(Conversation.team_id == verkoop))
            ).all()
        ]
    expected = [subject for *_, subject in sorted(rows, reverse=True)]

    headers = await token_for(sessions, sales)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        url = "/api/inbox/conversations?status=all&limit=3" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = await (await client.get(url, headers=headers)).json()
        seen += [c["subject"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert len(seen) == 16 and set(seen) & {"#0", "#5", "#10", "#15"} == set()
