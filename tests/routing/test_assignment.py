"""Assignment strategies: account manager first, round-robin, least-loaded against capacity,
working hours and absences, skills, the team queue, and two workers routing at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from crm.models import Relation, Task, User
from inbox.models import Conversation, HistoryEntry
from inbox.routing.assignment import drain_all
from inbox.routing.models import Absence, AgentProfile, Notification, QueueEntry, TeamRouting
from workers.sla import drain_queues


async def test_account_manager_away_goes_to_team_round_robin(world: Any) -> None:
    team, (ank, bert) = await world.team("Verkoop", "Ank", "Bert")
    channel = await world.channel(team)
    async with world.sessions() as session, session.begin():
        manager = User(email="pieter@switchboard.test", name="Pieter", role="manager", away=True)
        session.add(manager)
        await session.flush()
        relation = Relation(
            name="Hamerslag B.V.", normalized_name="hamerslag", account_manager_id=manager.id
        )
        session.add(relation)
        await session.flush()
        from crm.matcher import add_identities, identity_keys
        from crm.models import Contact

        contact = Contact(relation_id=relation.id, full_name="Jan Visser")
        session.add(contact)
        await session.flush()
        await add_identities(
            session, identity_keys(["jan@hamerslag.nl"], []), contact_id=contact.id
        )

    first = await world.receive(channel, email="jan@hamerslag.nl", subject="Offerte 1")
    second = await world.receive(channel, email="jan@hamerslag.nl", subject="Offerte 2")
    assert (first.relation_id, first.assignee_id, second.assignee_id) == (relation.id, ank, bert)

    async with world.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == manager.id).values(away=False))
    back = await world.receive(channel, email="jan@hamerslag.nl", subject="Offerte 3")
    assert back.assignee_id == manager.id
    async with world.sessions() as session:
        reasons = (
            await session.scalars(
                select(HistoryEntry.data["reason"].astext)
                .where(HistoryEntry.action == "assign")
                .order_by(HistoryEntry.id)
            )
        ).all()
    assert reasons == ["round-robin", "round-robin", "account manager"]


async def test_round_robin_skips_people_on_leave_or_outside_working_hours(world: Any) -> None:
    team, (ank, bert, carla) = await world.team("Service", "Ank", "Bert", "Carla")
    channel = await world.channel(team)
    async with world.sessions() as session, session.begin():
        session.add(
            Absence(
                user_id=ank,
                starts_at=world.start - timedelta(days=1),
                ends_at=world.start + timedelta(days=5),
                reason="vakantie",
            )
        )
        # Bert works afternoons only (Amsterdam time); it is 10:00 there.
        await session.execute(
            update(User)
            .where(User.id == bert)
            .values(working_hours={"tz": "Europe/Amsterdam", "mon": [["13:00", "17:30"]]})
        )
    morning = [await world.receive(channel) for _ in range(2)]
    assert [c.assignee_id for c in morning] == [carla, carla]
    afternoon = [
        await world.receive(channel, at=world.start + timedelta(hours=4)) for _ in range(2)
    ]
    assert {c.assignee_id for c in afternoon} == {bert, carla}


async def test_least_loaded_respects_capacity(world: Any) -> None:
    team, (ank, bert) = await world.team("Support", "Ank", "Bert")
    channel = await world.channel(team)
    async with world.sessions() as session, session.begin():
        session.add(TeamRouting(team_id=team, strategy="least_loaded"))
        await session.execute(update(User).where(User.id == ank).values(capacity=2))
        await session.execute(update(User).where(User.id == bert).values(capacity=6))
    got = [(await world.receive(channel)).assignee_id for _ in range(8)]
    # Least loaded by share of capacity: Ank fills 2 of 2, Bert 6 of 6; nobody goes over.
    assert Counter(got) == {ank: 2, bert: 6}
    assert got[:3] == [ank, bert, bert]  # 1/2 is fuller than 1/6: Bert next
    ninth = await world.receive(channel)
    assert ninth.assignee_id is None and ninth.team_id == team


async def test_skills_and_language_pick_who_can_take_it(world: Any) -> None:
    team, (ank, bert) = await world.team("Export", "Ank", "Bert")
    channel = await world.channel(team)
    async with world.sessions() as session, session.begin():
        session.add(AgentProfile(user_id=bert, skills=["warmtepompen"], languages=["de", "en"]))
        from inbox.routing.models import RoutingRule

        session.add(
            RoutingRule(
                name="Duits",
                conditions=[{"field": "text", "op": "contains_any", "value": ["bitte", "danke"]}],
                actions=[{"type": "require", "language": "de"}],
            )
        )
    german = [await world.receive(channel, text="Bitte um ein Angebot.") for _ in range(3)]
    assert [c.assignee_id for c in german] == [bert, bert, bert]
    dutch = await world.receive(channel, text="Graag een offerte.")
    assert dutch.assignee_id == ank


async def test_queue_when_everyone_is_full_and_assignment_when_someone_frees_up(
    world: Any,
) -> None:
    team, (ank, bert) = await world.team("Klachten", "Ank", "Bert", capacity=1)
    channel = await world.channel(team)
    first, second = await world.receive(channel), await world.receive(channel)
    assert {first.assignee_id, second.assignee_id} == {ank, bert}
    waiting = [await world.receive(channel, at=world.start + timedelta(minutes=i)) for i in (1, 2)]
    assert [w.assignee_id for w in waiting] == [None, None]
    async with world.sessions() as session:
        queue = (await session.scalars(select(QueueEntry).order_by(QueueEntry.id))).all()
        assert [q.conversation_id for q in queue] == [w.id for w in waiting]
        tasks = (
            await session.scalars(select(Task).where(Task.conversation_id == waiting[0].id))
        ).all()
        assert [(t.assignee_id, t.team_id) for t in tasks] == [(None, team)]

    # Ank resolves her conversation: the first in the queue is hers, the second still waits.
    freed = first if first.assignee_id == ank else second
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(Conversation).where(Conversation.id == freed.id).values(status="resolved")
        )
    ctx: dict[str, Any] = {"sessions": world.sessions, "clock": lambda: world.start}
    assert await drain_queues(ctx) == 1
    async with world.sessions() as session:
        now_first = await session.get(Conversation, waiting[0].id)
        now_second = await session.get(Conversation, waiting[1].id)
        assert now_first is not None and now_first.assignee_id == ank
        assert now_second is not None and now_second.assignee_id is None
        task = (
            await session.scalars(select(Task).where(Task.conversation_id == waiting[0].id))
        ).one()
        assert task.assignee_id == ank
        told = (
            await session.scalars(
                select(Notification.conversation_id).where(
                    Notification.user_id == ank, Notification.kind == "assigned"
                )
            )
        ).all()
        assert waiting[0].id in told

    # A newcomer does not jump the queue: the second waiting one goes first when Bert frees up.
    late = await world.receive(channel, at=world.start + timedelta(minutes=5))
    assert late.assignee_id is None
    bert_conv = first if first.assignee_id == bert else second
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(Conversation).where(Conversation.id == bert_conv.id).values(status="resolved")
        )
        assert await drain_all(session, world.start) == [(waiting[1].id, bert)]
    async with world.sessions() as session:
        left = (await session.scalars(select(QueueEntry.conversation_id))).all()
    assert left == [late.id]


async def test_two_workers_routing_200_conversations_share_them_evenly(world: Any) -> None:
    team, people = await world.team("Binnendienst", "Ank", "Bert", "Carla", "Daan", capacity=100)
    channel = await world.channel(team)

    async def worker(n: int) -> None:
        for i in range(n):
            # A few messages per transaction, as a worker's batch does.
            async with world.sessions() as session, session.begin():
                for j in range(4):
                    await world.receive_in(
                        session, channel, world.start + timedelta(seconds=i), text=f"vraag {j}"
                    )

    await asyncio.gather(worker(25), worker(25))
    async with world.sessions() as session:
        per_person = dict(
            (
                await session.execute(
                    select(Conversation.assignee_id, func.count()).group_by(
                        Conversation.assignee_id
                    )
                )
            ).all()
        )
        tasks = (
            await session.execute(
                select(Task.conversation_id, func.count(), func.min(Task.assignee_id))
                .group_by(Task.conversation_id)
                .having(func.count() > 1)
            )
        ).all()
        mismatched = await session.scalar(
            select(func.count())
            .select_from(Task)
            .join(Conversation, Conversation.id == Task.conversation_id)
            .where(Task.assignee_id.is_distinct_from(Conversation.assignee_id))
        )
        assigns = await session.scalar(
            select(func.count()).select_from(HistoryEntry).where(HistoryEntry.action == "assign")
        )
    assert per_person == dict.fromkeys(people, 50)
    assert tasks == [] and mismatched == 0
    assert assigns == 200  # every conversation assigned exactly once
