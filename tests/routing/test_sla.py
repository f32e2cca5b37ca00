"""SLA clocks: due times in business hours across a weekend and a holiday, reminders and
escalations exactly once with two sweeps at the same moment, snoozes waking, resolution breach."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from crm.models import Task, Team
from inbox.models import Conversation, HistoryEntry
from inbox.routing.models import (
    BusinessCalendar,
    ConversationSla,
    Holiday,
    Notification,
    SlaPolicy,
    TaskSla,
)
from inbox.routing.sla import Hours
from workers.sla import sweep_sla, wake_snoozed

AMS = ZoneInfo("Europe/Amsterdam")
OFFICE = {day: [["08:30", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
FOUNDERS_DAY = date(2026, 11, 30)  # a Monday the office is closed


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)


def test_business_hours_skip_the_weekend_and_a_holiday() -> None:
    hours = Hours.from_json(OFFICE, [FOUNDERS_DAY], tz="Europe/Amsterdam")
    friday_4pm = local(2026, 11, 27, 16, 0)
    assert hours.is_open(friday_4pm) and not hours.is_open(local(2026, 11, 30, 10, 0))
    # 60 minutes left on Friday, Saturday, Sunday and Monday closed, the other 60 on Tuesday.
    assert hours.add(friday_4pm, 120) == local(2026, 12, 1, 9, 30)
    assert hours.add(friday_4pm, 60) == local(2026, 11, 27, 17, 0)
    assert hours.add(friday_4pm, 60 + 510 + 1) == local(2026, 12, 2, 8, 31)
    assert hours.next_open(local(2026, 11, 28, 11, 0)) == local(2026, 12, 1, 8, 30)
    assert hours.next_open(friday_4pm) == friday_4pm
    always = Hours.from_json({})
    assert always.add(friday_4pm, 120) == friday_4pm + timedelta(hours=2)


async def office_policy(world: Any, business_hours: bool = True) -> int:
    async with world.sessions() as session, session.begin():
        calendar = BusinessCalendar(name="Kantoor", hours=OFFICE, is_default=True)
        session.add(calendar)
        await session.flush()
        session.add(Holiday(calendar_id=calendar.id, day=FOUNDERS_DAY, name="Founders' day"))
        policy = SlaPolicy(
            name="Standaard",
            business_hours=business_hours,
            calendar_id=calendar.id,
            targets={
                "normal": {"first_response": 120, "resolution": 480},
                "high": {"first_response": 30, "resolution": 240},
            },
            remind_before_minutes=30,
            is_default=True,
        )
        session.add(policy)
        await session.flush()
        return policy.id


async def test_due_times_across_a_weekend_and_a_holiday(world: Any) -> None:
    team, _ = await world.team("Verkoop", "Ank")
    channel = await world.channel(team)
    await office_policy(world)
    friday = await world.receive(channel, at=local(2026, 11, 27, 16, 0))
    saturday = await world.receive(channel, at=local(2026, 11, 28, 11, 0))
    async with world.sessions() as session:
        rows = {
            r.conversation_id: r for r in (await session.scalars(select(ConversationSla))).all()
        }
        tasks = {t.conversation_id: t for t in (await session.scalars(select(Task))).all()}
        clocks = {c.task_id: c for c in (await session.scalars(select(TaskSla))).all()}
    assert rows[friday.id].started_at == local(2026, 11, 27, 16, 0)
    assert rows[friday.id].first_response_due_at == local(2026, 12, 1, 9, 30)
    assert rows[friday.id].resolution_due_at == local(2026, 12, 1, 15, 30)
    assert tasks[friday.id].due_at == local(2026, 12, 1, 9, 30)
    # Outside business hours the clock starts at opening: Tuesday 08:30.
    assert rows[saturday.id].started_at == local(2026, 12, 1, 8, 30)
    assert tasks[saturday.id].due_at == local(2026, 12, 1, 10, 30)
    assert clocks[tasks[saturday.id].id].remind_at == local(2026, 12, 1, 10, 0)


async def test_calendar_hours_policy_runs_through_the_weekend(world: Any) -> None:
    team, _ = await world.team("Verkoop", "Ank")
    channel = await world.channel(team)
    await office_policy(world, business_hours=False)
    saturday = await world.receive(channel, at=local(2026, 11, 28, 11, 0))
    async with world.sessions() as session:
        task = (await session.scalars(select(Task))).one()
    assert task.conversation_id == saturday.id
    assert task.due_at == local(2026, 11, 28, 13, 0)


async def test_reminder_and_escalation_happen_once_with_two_workers_sweeping(world: Any) -> None:
    team, people = await world.team("Service", "Ank", "Bert", "Carla")
    async with world.sessions() as session, session.begin():
        await session.execute(update(Team).where(Team.id == team).values(lead_id=people[2]))
        session.add(
            SlaPolicy(
                name="Snel",
                business_hours=False,
                targets={"normal": {"first_response": 60}},
                remind_before_minutes=15,
                is_default=True,
            )
        )
    channel = await world.channel(team)
    start = world.start
    conversations = [await world.receive(channel, at=start) for _ in range(30)]
    async with world.sessions() as session, session.begin():
        done = (
            await session.scalars(select(Task).where(Task.conversation_id == conversations[0].id))
        ).one()
        done.status = "done"  # answered in time: neither reminded nor escalated

    def ctx(at: datetime) -> dict[str, Any]:
        return {"sessions": world.sessions, "clock": lambda: at}

    assert (await sweep_sla(ctx(start + timedelta(minutes=44))))["reminded"] == 0
    first, second = await asyncio.gather(
        sweep_sla(ctx(start + timedelta(minutes=50))), sweep_sla(ctx(start + timedelta(minutes=50)))
    )
    assert first["reminded"] + second["reminded"] == 29
    assert first["escalated"] + second["escalated"] == 0
    first, second = await asyncio.gather(
        sweep_sla(ctx(start + timedelta(minutes=61))), sweep_sla(ctx(start + timedelta(minutes=61)))
    )
    assert first["escalated"] + second["escalated"] == 29
    again = await sweep_sla(ctx(start + timedelta(hours=5)))
    assert again == {"reminded": 0, "escalated": 0, "resolution_breached": 0}

    async with world.sessions() as session:
        counts = dict(
            (
                await session.execute(
                    select(Notification.kind, func.count()).group_by(Notification.kind)
                )
            ).all()
        )
        # Reminders to the assignee; breaches to the assignee and the team lead (Carla, lead and
        # assignee of ten of them, gets one notice for each of those).
        assert counts["reminder"] == 29
        assert counts["breach"] == 29 + 29 - 10
        escalated = (
            await session.scalars(
                select(HistoryEntry.conversation_id).where(HistoryEntry.action == "escalated")
            )
        ).all()
        assert sorted(escalated) == sorted(c.id for c in conversations[1:])
        priorities = (
            await session.execute(select(Task.status, Task.priority).order_by(Task.id))
        ).all()
        assert priorities[0] == ("done", "normal")
        assert set(priorities[1:]) == {("open", "high")}
        conv = await session.get(Conversation, conversations[1].id)
        assert conv is not None and conv.priority == "high"
        undelivered = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.delivered_at.is_(None))
        )
        assert undelivered == 0


async def test_resolution_breach_is_recorded_once_and_in_time_resolutions_too(world: Any) -> None:
    team, _ = await world.team("Service", "Ank")
    async with world.sessions() as session, session.begin():
        session.add(
            SlaPolicy(
                name="Oplossen",
                business_hours=False,
                targets={"normal": {"first_response": 60, "resolution": 120}},
                is_default=True,
            )
        )
    channel = await world.channel(team)
    late, solved = await world.receive(channel), await world.receive(channel)
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(Conversation)
            .where(Conversation.id == solved.id)
            .values(status="resolved", resolved_at=world.start + timedelta(minutes=90))
        )
    at = world.start + timedelta(hours=3)
    ctx: dict[str, Any] = {"sessions": world.sessions, "clock": lambda: at}
    results = await asyncio.gather(sweep_sla(ctx), sweep_sla(ctx))
    assert sum(r["resolution_breached"] for r in results) == 1
    async with world.sessions() as session:
        rows = {r.conversation_id: r for r in (await session.scalars(select(ConversationSla)))}
    assert rows[late.id].resolution_breached_at == at
    assert rows[solved.id].resolution_breached_at is None
    assert rows[solved.id].resolved_at == world.start + timedelta(minutes=90)


async def test_snoozed_conversations_wake_at_their_time_once(world: Any) -> None:
    team, (ank,) = await world.team("Service", "Ank")
    channel = await world.channel(team)
    conversation = await world.receive(channel)
    wake_at = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(status="snoozed", snoozed_until=wake_at)
        )

    def ctx(at: datetime) -> dict[str, Any]:
        return {"sessions": world.sessions, "clock": lambda: at}

    assert await wake_snoozed(ctx(wake_at - timedelta(seconds=1))) == 0
    woken = await asyncio.gather(wake_snoozed(ctx(wake_at)), wake_snoozed(ctx(wake_at)))
    assert sorted(woken) == [0, 1]
    async with world.sessions() as session:
        row = await session.get(Conversation, conversation.id)
        assert row is not None and (row.status, row.snoozed_until) == ("open", None)
        entries = (
            await session.scalars(
                select(HistoryEntry.data).where(
                    HistoryEntry.conversation_id == conversation.id,
                    HistoryEntry.action == "status",
                )
            )
        ).all()
        assert entries == [{"before": "snoozed", "after": "open", "reason": "wake"}]
        told = (
            await session.scalars(select(Notification.user_id).where(Notification.kind == "woken"))
        ).all()
        assert told == [ank]
