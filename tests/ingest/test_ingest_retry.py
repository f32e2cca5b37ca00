"""An event that lost a deadlock to another worker is not failed: it stays pending for the sweep."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

import inbox.ingest.bulk
import inbox.ingest.pipeline
from channels.base import Delivery
from inbox.db import Sessions
from inbox.ingest.batches import process_events
from inbox.ingest.channels import add_channel
from inbox.ingest.journal import journal_many
from inbox.ingest.pipeline import Policy
from inbox.models import Event


class Deadlock(Exception):
    sqlstate = "40P01"


async def test_a_deadlocked_event_stays_pending_and_a_broken_one_fails(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sessions() as session, session.begin():
        channel = await add_channel(session, "webform", "W", {})
        body = json.dumps({"name": "Jan", "email": "jan@example.nl", "message": "hoi"}).encode()
        delivery = Delivery(
            body=body, headers={"content-type": "application/json"}, query={}, url="http://x/"
        )
        await journal_many(session, channel.id, [("a", delivery), ("b", delivery)])
        # Two senders: a later event of the deadlocked one's own sender would wait with it.
        await session.execute(update(Event).where(Event.external_id == "b").values(partition_key=2))

    async def lose(session: Any, channel: Any, event_id: int, *args: Any, **kw: Any) -> Any:
        first = event_id == min(e.id for e in events)
        orig = Deadlock("deadlock detected") if first else RuntimeError("broken")
        raise DBAPIError("INSERT …", {}, orig)

    async def broken_batch(*args: Any) -> Any:
        raise RuntimeError("the batch fails: each event is stored alone")

    monkeypatch.setattr(inbox.ingest.bulk, "store_many", broken_batch)
    monkeypatch.setattr(inbox.ingest.pipeline, "store", lose)
    async with sessions() as session, session.begin():
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
        outcomes = await process_events(session, list(events), Policy(), datetime.now(UTC))
    assert [o.status for o in outcomes] == ["retry", "failed"]
    async with sessions() as session:
        statuses = (await session.scalars(select(Event.status).order_by(Event.id))).all()
    assert statuses == ["pending", "failed"]
