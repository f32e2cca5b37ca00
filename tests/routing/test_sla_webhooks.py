"""The SLA sweep writes task.overdue to the outbound webhook outbox in its own transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from crm.models import Task
from inbox.outbox.models import WebhookDelivery, WebhookSubscription
from tests.routing.test_sla import office_policy
from workers.sla import sweep_sla


async def test_an_escalated_task_is_a_task_overdue_event_once(world: Any) -> None:
    team, _ = await world.team("Service", "Ank")
    await office_policy(world, business_hours=False)  # first response in 120 min
    async with world.sessions() as session, session.begin():
        session.add(
            WebhookSubscription(
                url="https://93.184.216.34/hook",
                secret="x" * 32,
                events=["task.overdue"],
                active=True,
            )
        )
    channel = await world.channel(team)
    conversation = await world.receive(channel, at=world.start)

    def ctx(minutes: int) -> dict[str, Any]:
        at = world.start + timedelta(minutes=minutes)
        return {"sessions": world.sessions, "clock": lambda: at}

    await sweep_sla(ctx(100))  # a reminder is no event
    assert (await sweep_sla(ctx(121)))["escalated"] == 1
    await sweep_sla(ctx(240))

    async with world.sessions() as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
        task_id = await session.scalar(
            select(Task.id).where(Task.conversation_id == conversation.id)
        )
    assert [(r.event_type, r.conversation_id) for r in rows] == [("task.overdue", conversation.id)]
    task = rows[0].payload["data"]["task"]
    assert (task["id"], task["priority"], task["status"]) == (task_id, "high", "open")
