"""Every webhook kind and dialect, a real delivery sent three times in a row and three times at
once (and again after it was processed): one event, one message, one conversation each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fault_peers import DIALECTS, Dialect
from sqlalchemy import func, select

from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Channel, Conversation, Event, Message

Client = TestClient[Any, Any]


async def post(client: Client, dialect: Dialect, channel: Channel) -> tuple[int, Any]:
    path = f"/webhooks/{channel.kind}/{channel.id}"
    body = dialect.body()
    headers = dialect.headers(channel.config, str(client.make_url(path)), body)
    response = await client.post(path, data=body, headers=headers, allow_redirects=False)
    answer = await response.json() if response.content_type == "application/json" else None
    return response.status, answer


@pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])
async def test_a_delivery_sent_three_times_in_a_row_or_at_once_is_one_event_and_one_record(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], dialect: Dialect
) -> None:
    async with sessions() as session, session.begin():
        in_a_row = await add_channel(session, dialect.kind, "In a row", dict(dialect.config))
        at_once = await add_channel(session, dialect.kind, "At once", dict(dialect.config))
    sequential = [await post(client, dialect, in_a_row) for _ in range(3)]
    assert [s for s, _ in sequential] == [202, 200, 200], sequential
    assert [a["duplicate"] for _, a in sequential] == [False, True, True]
    assert len({a["event_id"] for _, a in sequential}) == 1
    concurrent = await asyncio.gather(*(post(client, dialect, at_once) for _ in range(3)))
    assert sorted(s for s, _ in concurrent) == [200, 200, 202], concurrent
    assert len({a["event_id"] for _, a in concurrent}) == 1

    await run_worker()
    assert [s for s, _ in [await post(client, dialect, in_a_row)]] == [200]  # after processing
    await run_worker()

    async with sessions() as session:
        events = (await session.execute(select(Event.channel_id, Event.status))).all()
        assert sorted(events) == sorted([(in_a_row.id, "processed"), (at_once.id, "processed")])
        per_event = (
            await session.execute(select(Message.event_id, func.count()).group_by(Message.event_id))
        ).all()
        assert len(per_event) == 2 and {n for _, n in per_event} == {1}, per_event
        conversations = (
            await session.scalars(select(Conversation.channel_id).order_by(Conversation.id))
        ).all()
        assert sorted(conversations) == sorted([in_a_row.id, at_once.id])
