"""Routing rules: conditions on the conversation, its sender and its text, and actions (team,
person, priority, SLA, labels, bot, acknowledgement), evaluated in order on each new
conversation and on the events a rule lists; then assignment by the team's strategy."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import InboundMessage
from crm.models import Category, Contact, Relation, User, relation_categories
from inbox.history import record
from inbox.models import Channel, Conversation, HistoryEntry, Message
from inbox.outbound import CannotSend, queue_reply
from inbox.routing import sla
from inbox.routing.assignment import Assignment, Needs, assign, forget_loads, unqueue
from inbox.routing.models import Acknowledgement, Notification, RoutingRule

log = structlog.get_logger(__name__)

PRIORITIES = ("low", "normal", "high", "urgent")
FIELDS = (
    "event",
    "channel_kind",
    "channel_id",
    "message_kind",
    "sender_known",
    "relation_status",
    "abc_class",
    "categories",
    "region",
    "account_manager_id",
    "subject",
    "body",
    "text",
    "language",
    "within_business_hours",
    "priority",
    "labels",
)
OPS = (
    "eq",
    "ne",
    "in",
    "not_in",
    "contains",
    "contains_any",
    "contains_all",
    "matches",
    "is_set",
    "is_not_set",
)
ACTIONS = (
    "set_team",
    "assign_user",
    "set_priority",
    "set_sla",
    "add_labels",
    "set_bot",
    "acknowledge",
    "require",
    "skip_account_manager",
    "stop",
)


@dataclass(frozen=True)
class Facts:
    """What rules look at, gathered once per routing decision."""

    event: str
    channel_kind: str
    channel_id: str
    message_kind: str | None = None
    sender_known: bool = False
    relation_status: str | None = None
    abc_class: str | None = None
    categories: tuple[str, ...] = ()
    region: str | None = None
    account_manager_id: int | None = None
    subject: str = ""
    body: str = ""
    language: str | None = None
    within_business_hours: bool = True
    priority: str = "normal"
    labels: tuple[str, ...] = ()
    automated: bool = False

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}"


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    match: str
    conditions: tuple[Mapping[str, Any], ...]
    actions: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, row: RoutingRule) -> Rule:
        return cls(row.id, row.name, row.match, tuple(row.conditions), tuple(row.actions))


@dataclass
class Decision:
    """What the matching rules want, later rules overriding earlier ones (labels add up)."""

    team_id: int | None = None
    user_id: int | None = None
    priority: str | None = None
    sla_policy_id: int | None = None
    labels: list[str] = field(default_factory=list)
    bot: bool | None = None
    acknowledge: Mapping[str, Any] | None = None
    skills: list[str] = field(default_factory=list)
    language: str | None = None
    skip_account_manager: bool = False
    rules: list[int] = field(default_factory=list)


@lru_cache(maxsize=1024)
def pattern(source: str) -> re.Pattern[str]:
    return re.compile(source, re.IGNORECASE)


def fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set | frozenset) else [value]


def holds(condition: Mapping[str, Any], facts: Facts, memo: dict[str, Any] | None = None) -> bool:
    """One condition: {"field", "op", "value"}; text comparisons ignore case."""
    name, op, want = condition.get("field", ""), condition.get("op", "eq"), condition.get("value")
    if name not in FIELDS:
        return False
    memo = {} if memo is None else memo
    if name not in memo:  # read and fold each field once per decision, not once per condition
        value = getattr(facts, name)
        memo[name] = (value, fold(value))
    have, folded = memo[name]
    if op == "is_set":
        return have not in (None, "", ())
    if op == "is_not_set":
        return have in (None, "", ())
    if op == "matches":
        return isinstance(have, str) and pattern(str(want)).search(have) is not None
    many = isinstance(have, tuple)
    items = {fold(x) for x in have} if many else set()
    if op in ("eq", "ne"):
        equal = (fold(want) in items) if many else folded == fold(want)
        return equal if op == "eq" else not equal
    if op in ("in", "not_in"):
        options = {fold(x) for x in as_list(want)}
        inside = bool(items & options) if many else folded in options
        return inside if op == "in" else not inside
    if op in ("contains", "contains_any", "contains_all"):
        needles = [fold(x) for x in as_list(want) if x not in (None, "")]
        if many:
            hits = [n in items for n in needles]
        else:
            haystack = folded if isinstance(folded, str) else ""
            hits = [str(n) in haystack for n in needles]
        return bool(hits) and (all(hits) if op == "contains_all" else any(hits))
    return False


def matches(rule: Rule, facts: Facts, memo: dict[str, Any] | None = None) -> bool:
    if not rule.conditions:
        return True
    results = (holds(c, facts, memo) for c in rule.conditions)
    return any(results) if rule.match == "any" else all(results)


def decide(rules: Sequence[Rule], facts: Facts) -> Decision:
    """Evaluate the rules in order; a `stop` action ends the evaluation."""
    d = Decision()
    memo: dict[str, Any] = {}
    for rule in rules:
        if not matches(rule, facts, memo):
            continue
        d.rules.append(rule.id)
        stop = False
        for action in rule.actions:
            kind = action.get("type")
            if kind == "set_team":
                d.team_id = int(action["team_id"])
            elif kind == "assign_user":
                d.user_id = int(action["user_id"])
            elif kind == "set_priority" and action.get("priority") in PRIORITIES:
                d.priority = str(action["priority"])
            elif kind == "set_sla":
                d.sla_policy_id = int(action["policy_id"])
            elif kind == "add_labels":
                d.labels += [str(x) for x in action.get("labels", ()) if str(x) not in d.labels]
            elif kind == "set_bot":
                d.bot = bool(action.get("enabled", True))
            elif kind == "acknowledge":
                d.acknowledge = action
            elif kind == "require":
                d.skills += [str(s) for s in action.get("skills", ()) if str(s) not in d.skills]
                d.language = action.get("language") or d.language
            elif kind == "skip_account_manager":
                d.skip_account_manager = True
            elif kind == "stop":
                stop = True
        if stop:
            break
    return d


async def active_rules(session: AsyncSession, event: str) -> list[Rule]:
    """The event's rules in order, read once per transaction."""
    key = ("rules", event)
    if key not in sla.cache(session):
        sla.cache(session)[key] = await load_rules(session, event)
    rules: list[Rule] = sla.cache(session)[key]
    return rules


async def load_rules(session: AsyncSession, event: str) -> list[Rule]:
    rows = (
        await session.scalars(
            select(RoutingRule)
            .where(RoutingRule.is_active, RoutingRule.events.contains([event]))
            .order_by(RoutingRule.position, RoutingRule.id)
        )
    ).all()
    return [Rule.of(r) for r in rows]


async def gather(
    session: AsyncSession,
    conversation: Conversation,
    channel: Channel,
    event: str,
    now: datetime,
    msg: InboundMessage | None = None,
) -> Facts:
    relation = (
        await session.get(Relation, conversation.relation_id) if conversation.relation_id else None
    )
    categories: tuple[str, ...] = ()
    if relation is not None:
        categories = (await categories_of(session, [relation.id]))[relation.id]
    contact = (
        await session.get(Contact, conversation.contact_id) if conversation.contact_id else None
    )
    language = contact.language if contact else None
    kind: str | None = None
    if msg is not None:
        subject, body, kind = msg.subject or "", msg.full_text or msg.text, msg.kind
        language = language or _str(msg.meta.get("language_code") or msg.meta.get("language"))
    else:
        last = (
            await session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
                .order_by(Message.id.desc())
                .limit(1)
            )
        ).first()
        subject, body = (
            (last.subject or "", last.text) if last else (conversation.subject or "", "")
        )
        kind = last.kind if last else None
    hours = await sla.calendar_hours(session)
    return Facts(
        event=event,
        channel_kind=channel.kind,
        channel_id=channel.id,
        message_kind=kind,
        sender_known=conversation.contact_id is not None or conversation.relation_id is not None,
        relation_status=relation.status if relation else None,
        abc_class=relation.abc_class if relation else None,
        categories=categories,
        region=relation.region if relation else None,
        account_manager_id=relation.account_manager_id if relation else None,
        subject=subject,
        body=body,
        language=(language or "")[:2].lower() or None,
        within_business_hours=hours.is_open(now) if hours else True,
        priority=conversation.priority,
        labels=tuple(conversation.labels or ()),
        automated=bool(msg and msg.automated),
    )


async def categories_of(
    session: AsyncSession, relation_ids: list[int]
) -> dict[int, tuple[str, ...]]:
    """The relations' category names, read once per transaction for all asked at once."""
    known = sla.cache(session)
    wanted = sorted({r for r in relation_ids if ("categories", r) not in known})
    if wanted:
        rows = await session.execute(
            select(relation_categories.c.relation_id, Category.name)
            .join(Category, relation_categories.c.category_id == Category.id)
            .where(relation_categories.c.relation_id.in_(wanted))
            .order_by(relation_categories.c.relation_id, Category.name)
        )
        found: dict[int, list[str]] = {}
        for relation_id, name in rows:
            found.setdefault(relation_id, []).append(name)
        for r in wanted:
            known[("categories", r)] = tuple(found.get(r, ()))
    return {r: known[("categories", r)] for r in relation_ids}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Routed:
    assignment: Assignment
    decision: Decision
    clock: sla.Clock | None
    newly_assigned: bool
    acknowledgement_id: int | None = None


async def event_for(session: AsyncSession, conversation: Conversation, is_new: bool) -> str:
    """conversation.created, conversation.reopened (a reply after it was resolved) or
    message.inbound."""
    if is_new:
        return "conversation.created"
    last = (
        await session.scalars(
            select(HistoryEntry)
            .where(HistoryEntry.conversation_id == conversation.id, HistoryEntry.action == "status")
            .order_by(HistoryEntry.id.desc())
            .limit(1)
        )
    ).first()
    if last is not None and last.data.get("after") == "resolved" and conversation.status == "open":
        return "conversation.reopened"
    return "message.inbound"


async def route(
    session: AsyncSession,
    conversation: Conversation,
    channel: Channel,
    *,
    event: str,
    now: datetime,
    msg: InboundMessage | None = None,
) -> Routed:
    """Apply the rules for this event, start the SLA clock and assign the conversation."""
    facts = await gather(session, conversation, channel, event, now, msg)
    d = decide(await active_rules(session, event), facts)
    changes: dict[str, Any] = {}
    if d.priority and d.priority != conversation.priority:
        changes["priority"] = [conversation.priority, d.priority]
        conversation.priority = d.priority
    new_labels = [x[:60] for x in d.labels if x[:60] not in (conversation.labels or [])]
    if new_labels:
        conversation.labels = [*(conversation.labels or []), *new_labels]
        changes["labels"] = new_labels
    if d.bot is not None and (want := "bot" if d.bot else "human") != conversation.handled_by:
        changes["handled_by"] = [conversation.handled_by, want]
        conversation.handled_by = want
    moved = d.team_id is not None and d.team_id != conversation.team_id
    if moved:
        changes["team_id"] = [conversation.team_id, d.team_id]
        conversation.team_id = d.team_id
        if event != "conversation.created" and d.user_id is None:
            conversation.assignee_id = None  # a new team: its own strategy chooses again
            forget_loads(session)
            await unqueue(session, conversation.id)
    if d.rules:
        record(session, conversation.id, "routed", None, event=event, rules=d.rules, **changes)

    c = None
    if event in ("conversation.created", "conversation.reopened") or d.sla_policy_id or d.priority:
        c = await sla.start_conversation_clock(
            session, conversation, now, d.sla_policy_id, new=event == "conversation.created"
        )

    ack = None
    if d.acknowledge is not None and not facts.automated:
        ack = await acknowledge(session, conversation, d.acknowledge, now)

    chosen, fresh = await choose_owner(
        session, conversation, channel, d, now, queued=event != "conversation.created"
    )
    return Routed(chosen, d, c, fresh, ack)


async def choose_owner(
    session: AsyncSession,
    conversation: Conversation,
    channel: Channel,
    d: Decision,
    now: datetime,
    queued: bool = True,
) -> tuple[Assignment, bool]:
    """Keep the owner; else the rule's person, else the strategies. Records and notifies."""
    team_id = conversation.team_id or channel.default_team_id
    if d.user_id is not None and d.user_id != conversation.assignee_id:
        if await session.get(User, d.user_id) is not None:
            chosen = Assignment(d.user_id, team_id, "rule")
        else:
            chosen = Assignment(None, team_id, "rule names no such person")
    elif conversation.assignee_id is not None:
        return Assignment(
            conversation.assignee_id, conversation.team_id, "conversation owner"
        ), False
    elif conversation.handled_by == "bot":
        return Assignment(None, team_id, "with the bot"), False
    else:
        chosen = await assign(
            session,
            relation_id=None if d.skip_account_manager else conversation.relation_id,
            team_id=team_id,
            now=now,
            conversation_id=conversation.id,
            needs=Needs(tuple(d.skills), d.language),
        )
    conversation.team_id = chosen.team_id or conversation.team_id
    if chosen.user_id is None:
        return chosen, False
    conversation.assignee_id = chosen.user_id
    if queued:  # it may have waited in a queue before
        await unqueue(session, conversation.id)
    record(
        session,
        conversation.id,
        "assign",
        None,
        after={"assignee_id": chosen.user_id, "team_id": conversation.team_id},
        reason=chosen.reason,
    )
    session.add(
        Notification(
            user_id=chosen.user_id,
            kind="assigned",
            conversation_id=conversation.id,
            data={"reason": chosen.reason, "subject": conversation.subject},
            created_at=now,
        )
    )
    return chosen, True


async def acknowledge(
    session: AsyncSession, conversation: Conversation, action: Mapping[str, Any], now: datetime
) -> int | None:
    """Queue the automatic acknowledgement, once per conversation; the sender job sends it."""
    if await session.get(Acknowledgement, conversation.id) is not None:
        return None
    text = str(action.get("text") or "").strip()
    if not text:
        return None
    try:
        message = await queue_reply(
            session,
            conversation,
            text=text,
            html=None,
            subject=action.get("subject") or None,
            author_id=None,
            now=now,
        )
    except CannotSend as exc:
        log.info("no acknowledgement", conversation_id=conversation.id, reason=str(exc))
        return None
    message.meta = message.meta | {"auto": "acknowledgement"}
    session.add(
        Acknowledgement(conversation_id=conversation.id, message_id=message.id, created_at=now)
    )
    record(session, conversation.id, "acknowledged", None, message_id=message.id)
    return message.id
