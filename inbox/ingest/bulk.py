"""A batch of new messages stored set-based: identities looked up in one query, new leads,
identities, conversations, messages and activities each in one multi-row statement, threading by
key in one query. The outcome is what `pipeline.store` would give the same messages one by one;
what only a per-message look can decide (replies that name what they answer, e-mail subjects, a
message seen before) stays with `pipeline.store`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import InboundMessage
from crm.matcher import (
    Decision,
    Key,
    Match,
    add_identities_many,
    identity_keys,
    match_exact_many,
    match_senders,
)
from crm.models import Activity, Contact, Lead, MatchReview, Relation, Task
from inbox.bot import dialog as bot
from inbox.ingest.pipeline import (
    Policy,
    continue_conversation,
    maybe_create_task,
    new_activity,
    new_conversation,
    new_lead,
    new_message,
    sender_of,
    store_attachments,
    thread_key,
)
from inbox.models import Channel, Conversation, Message
from inbox.routing import assignment, rules, sla
from inbox.routing.sla import Clock


def set_based(channel: Channel, msg: InboundMessage) -> bool:
    """Whether a new message can go the set-based way: threading by key alone decides it."""
    return channel.kind != "email" and not (msg.reply_token or msg.in_reply_to or msg.bounce_of)


@dataclass
class _Item:
    event_id: int
    channel: Channel
    msg: InboundMessage
    keys: list[Key]
    match: Match = field(default_factory=Match)
    decision: Decision | None = None
    lead: Lead | None = None  # a lead this batch creates (its id comes with the flush)
    founder: bool = False  # this message's sender became that lead
    conversation: Conversation | None = None
    is_new: bool = False
    message: Message | None = None
    activity: Activity | None = None


async def store_many(
    session: AsyncSession,
    batch: Sequence[tuple[int, Channel, InboundMessage]],
    policy: Policy,
    now: datetime,
) -> dict[int, int]:
    """Store new messages (each `set_based`, none stored before, one per external id) in the
    order given; returns the conversation of each event."""
    items = [
        _Item(
            event_id,
            channel,
            msg,
            identity_keys(
                msg.sender.emails, msg.sender.phones, msg.sender.telegram_id, region=policy.region
            ),
        )
        for event_id, channel, msg in batch
    ]
    await _match(session, items, policy)
    await _thread(session, items, policy.region)
    for item in items:
        item.message = _message(item)
    session.add_all([item.message for item in items if item.message is not None])
    await session.flush()
    for item in items:
        assert item.message is not None and item.conversation is not None
        if item.decision is not None and item.decision.decision == "review":
            session.add(
                MatchReview(
                    message_id=item.message.id,
                    conversation_id=item.conversation.id,
                    sender=asdict(sender_of(item.msg)),
                    candidates=item.decision.as_meta()["candidates"],
                )
            )
        await store_attachments(session, item.message.id, item.msg, policy.files)
        item.activity = _activity(item)
        session.add(item.activity)
    await session.flush()
    # Bot and routing keep their per-conversation logic, in event order, as one by one; the
    # tasks are written together and put under the SLA sweep together. The relations, contacts,
    # categories and account managers routing looks at are loaded for the whole batch first
    # (then found in the session and the transaction's cache).
    loaded = await _preload(session, items, now)  # held: the session keeps objects only weakly
    untracked: list[tuple[Task, Clock | None]] = []
    for item in items:
        assert item.conversation and item.message and item.activity
        await bot.after_inbound(
            session, item.channel, item.conversation, item.message, item.msg, item.is_new, now
        )
        if not item.msg.automated:
            await maybe_create_task(
                session,
                item.channel,
                item.conversation,
                item.activity,
                item.msg,
                policy,
                now,
                item.is_new,
                untracked,
            )
    del loaded
    if untracked:
        await session.flush()
        for task, clock in untracked:
            sla.track_task(session, task, clock, now)
        await session.flush()
    return {item.event_id: item.conversation.id for item in items if item.conversation}


async def _preload(session: AsyncSession, items: list[_Item], now: datetime) -> list[object]:
    relations = {r for i in items if i.conversation and (r := i.conversation.relation_id)}
    contacts = {c for i in items if i.conversation and (c := i.conversation.contact_id)}
    loaded: list[object] = []
    if relations:
        loaded += (await session.scalars(select(Relation).where(Relation.id.in_(relations)))).all()
        await rules.categories_of(session, sorted(relations))
        await assignment.account_managers(session, sorted(relations), now)
    if contacts:
        loaded += (await session.scalars(select(Contact).where(Contact.id.in_(contacts)))).all()
    return loaded


async def _match(session: AsyncSession, items: list[_Item], policy: Policy) -> None:
    """Exact identities for the whole batch in one query; the staged matcher only for senders
    nobody owns; new leads and identities in one statement each. A key an earlier message of
    this batch gave an owner answers for the later ones, as it would one by one."""
    found = await match_exact_many(session, [item.keys for item in items])
    decisions = await _staged(session, items, found, policy)
    claimed: dict[tuple[str, str], _Item] = {}  # key -> the item whose owner took it here
    owned: list[_Item] = []  # whose keys go to their owner, in order
    for index, (item, match) in enumerate(zip(items, found, strict=True)):
        msg = item.msg
        earlier = next(
            (claimed[(k.kind, k.value)] for k in item.keys if (k.kind, k.value) in claimed), None
        )
        if not match.found and earlier is not None:
            item.match, item.lead = earlier.match, earlier.lead
            owned.append(item)
            continue
        if match.contact_id is None and match.lead_id is None and not msg.automated:
            item.decision = decision = decisions[index]
            if decision.decision == "linked" and decision.contact_id is not None:
                match = Match(match.identity_id, decision.contact_id, decision.relation_id)
            elif decision.lead_id is not None:
                match = Match(lead_id=decision.lead_id)
            elif decision.relation_id is not None and match.relation_id is None:
                match = Match(match.identity_id, relation_id=decision.relation_id)
        item.match = match
        if not match.known and match.lead_id is None and not msg.automated:
            item.lead, item.founder = new_lead(item.channel, msg), True
        if item.lead is not None or match.found or (item.decision and match.contact_id):
            owned.append(item)
            for k in item.keys:
                claimed.setdefault((k.kind, k.value), item)
    leads = [item.lead for item in items if item.lead is not None and item.founder]
    session.add_all(leads)
    if leads:
        await session.flush()
    rows = []
    for item in owned:
        m = item.match
        owner: dict[str, int | None] = (
            {"lead_id": item.lead.id}
            if item.lead is not None
            else {"contact_id": m.contact_id}
            if m.contact_id
            else {"relation_id": m.relation_id}
            if m.relation_id
            else {"lead_id": m.lead_id}
        )
        rows.append((item.keys, owner))
    created = await add_identities_many(session, rows)
    for item in items:
        m = item.match
        lead_id = item.lead.id if item.lead is not None else m.lead_id
        identity_id = m.identity_id or next(
            (created[(k.kind, k.value)] for k in item.keys if (k.kind, k.value) in created), None
        )
        if item.founder:  # one by one, a new lead's first message names no identity yet
            identity_id = None
        item.match = Match(identity_id, m.contact_id, m.relation_id, lead_id)


async def _staged(
    session: AsyncSession, items: list[_Item], found: list[Match], policy: Policy
) -> dict[int, Decision]:
    """The staged matcher's decision for every sender nobody owns, by the item's place in the
    batch (one event may carry several messages), all in one pass (a sender that writes several
    times in the batch is matched once)."""
    unowned = [
        (index, item)
        for index, (item, match) in enumerate(zip(items, found, strict=True))
        if match.contact_id is None and match.lead_id is None and not item.msg.automated
    ]
    keyed = [(index, sender_of(item.msg)) for index, item in unowned]
    senders = {repr(sender): sender for _, sender in keyed}  # (Sender holds a dict: unhashable)
    decisions = await match_senders(session, list(senders.values()), config=policy.match)
    decided = dict(zip(senders, decisions, strict=True))
    return {index: decided[repr(sender)] for index, sender in keyed}


async def _thread(session: AsyncSession, items: list[_Item], region: str) -> None:
    """The open conversation of each thread key (one query), else a new one; later messages of
    the batch on the same key join the conversation the first one found or started."""
    keys = {(item.channel.id, k) for item in items if (k := thread_key(item.msg, region))}
    open_: dict[tuple[str, str | None], Conversation] = {}
    if keys:
        rows = (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.thread_key.in_(sorted({k for _, k in keys})),
                    Conversation.channel_id.in_(sorted({c for c, _ in keys})),
                    Conversation.thread_key.is_not(None),
                    Conversation.status != "resolved",
                )
                .order_by(Conversation.id)
                .with_for_update()
            )
        ).all()
        for conversation in rows:  # the newest per key wins
            if (conversation.channel_id, conversation.thread_key) in keys:
                open_[(conversation.channel_id, conversation.thread_key)] = conversation
    new = []
    for item in items:
        msg, key = item.msg, thread_key(item.msg, region)
        found = open_.get((item.channel.id, key)) if key else None
        if found is not None:
            continue_conversation(found, msg)
            item.conversation, item.is_new = found, False
            continue
        conversation = new_conversation(item.channel, key, msg, item.match)
        new.append(conversation)
        item.conversation, item.is_new = conversation, True
        if key:
            open_[(item.channel.id, key)] = conversation
    session.add_all(new)
    await session.flush()


def _message(item: _Item) -> Message:
    assert item.conversation is not None
    return new_message(
        item.channel.id, item.conversation.id, item.event_id, item.msg, item.match, item.decision
    )


def _activity(item: _Item) -> Activity:
    assert item.conversation is not None
    return new_activity(item.channel.id, item.conversation.id, item.msg, item.match)
