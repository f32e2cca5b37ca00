"""Routing rules: conditions and actions in order, the complaint rule, stop, and the automatic
acknowledgement (never to auto-replies or bounces, once per conversation)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm.models import Task
from inbox.models import HistoryEntry, Message
from inbox.routing.models import Acknowledgement, RoutingRule
from inbox.routing.rules import Facts, Rule, decide
from workers.sla import send_acknowledgements

COMPLAINT = {
    "name": "Klachten",
    "conditions": [{"field": "text", "op": "contains_any", "value": ["klacht", "complaint"]}],
}


async def test_complaint_rule_sets_high_priority_and_the_complaints_team(world: Any) -> None:
    sales, sales_people = await world.team("Verkoop", "Ank")
    complaints, (kees, lotte) = await world.team("Klachten", "Kees", "Lotte")
    channel = await world.channel(sales)
    async with world.sessions() as session, session.begin():
        session.add(
            RoutingRule(
                **COMPLAINT,
                actions=[
                    {"type": "set_priority", "priority": "high"},
                    {"type": "set_team", "team_id": complaints},
                    {"type": "add_labels", "labels": ["klacht"]},
                ],
            )
        )
    dutch = await world.receive(channel, subject="KLACHT over levering", text="Kapot geleverd.")
    english = await world.receive(channel, subject="Delivery", text="I want to file a complaint.")
    normal = await world.receive(channel, subject="Offerte", text="Graag een prijs.")

    assert (dutch.team_id, dutch.priority, dutch.labels, dutch.assignee_id) == (
        complaints,
        "high",
        ["klacht"],
        kees,
    )
    assert (english.team_id, english.priority, english.assignee_id) == (complaints, "high", lotte)
    assert (normal.team_id, normal.priority, normal.labels) == (sales, "normal", [])
    assert normal.assignee_id == sales_people[0]
    async with world.sessions() as session:
        task = (await session.scalars(select(Task).where(Task.conversation_id == dutch.id))).one()
        assert (task.priority, task.team_id, task.assignee_id) == ("high", complaints, kees)
        routed = (
            await session.scalars(
                select(HistoryEntry).where(
                    HistoryEntry.conversation_id == dutch.id, HistoryEntry.action == "routed"
                )
            )
        ).one()
        assert routed.data["priority"] == ["normal", "high"]
        assert routed.data["team_id"] == [sales, complaints]


def test_rules_apply_in_order_and_stop_ends_the_evaluation() -> None:
    facts = Facts(
        event="conversation.created",
        channel_kind="email",
        channel_id="c1",
        subject="Storing",
        body="De ketel doet het niet",
        relation_status="customer",
        abc_class="A",
        categories=("Installateur",),
    )
    rules = [
        Rule(1, "A-klant", "all", ({"field": "abc_class", "op": "eq", "value": "a"},), (
            {"type": "set_priority", "priority": "high"},
            {"type": "add_labels", "labels": ["A"]},
        )),
        Rule(2, "no match", "all", ({"field": "region", "op": "is_set"},), (
            {"type": "set_team", "team_id": 9},
        )),
        Rule(3, "storing", "any", (
            {"field": "subject", "op": "matches", "value": r"^stor(ing|ingen)\b"},
            {"field": "categories", "op": "contains", "value": "nope"},
        ), ({"type": "set_team", "team_id": 2}, {"type": "stop"})),
        Rule(4, "after stop", "all", (), ({"type": "set_team", "team_id": 3},)),
    ]  # fmt: skip
    d = decide(rules, facts)
    assert (d.rules, d.team_id, d.priority, d.labels) == ([1, 3], 2, "high", ["A"])
    facts_b = Facts(event="conversation.created", channel_kind="email", channel_id="c1")
    assert decide(rules, facts_b).team_id == 3


async def test_acknowledgement_goes_once_and_never_to_auto_replies_or_bounces(world: Any) -> None:
    team, _ = await world.team("Verkoop", "Ank")
    channel = await world.channel(team)
    async with world.sessions() as session, session.begin():
        session.add(
            RoutingRule(
                name="Ontvangstbevestiging",
                events=["conversation.created", "message.inbound"],
                actions=[{"type": "acknowledge", "text": "Dank u, we antwoorden binnen 4 uur."}],
            )
        )
    human = await world.receive(channel, email="jan@hamerslag.nl", subject="Vraag")
    auto = await world.receive(
        channel, email="mailer-daemon@example.nl", subject="Out of office", automated=True
    )
    async with world.sessions() as session:
        outbound = (
            await session.scalars(select(Message).where(Message.direction == "outbound"))
        ).all()
        assert [(m.conversation_id, m.meta["to"], m.meta["auto"]) for m in outbound] == [
            (human.id, "jan@hamerslag.nl", "acknowledgement")
        ]
        assert outbound[0].status == "queued" and outbound[0].author_id is None
        auto_tasks = (
            await session.scalars(select(Task).where(Task.conversation_id == auto.id))
        ).all()
        assert auto_tasks == []
        first = await session.get(type(human), human.id)
        assert first is not None and first.first_response_at is None  # not a human answer

    ctx: dict[str, Any] = {"sessions": world.sessions, "clock": lambda: world.start}
    assert await send_acknowledgements(ctx) == 1
    assert await send_acknowledgements(ctx) == 0
    async with world.sessions() as session:
        acks = (await session.scalars(select(Acknowledgement))).all()
    assert [a.conversation_id for a in acks] == [human.id]
