"""The ingest pipeline: a journaled event becomes a message in a conversation, an activity,
a lead for an unknown sender and a task for a manager, all in the caller's transaction."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import InboundMessage
from crm import normalizers
from crm.matcher import DEFAULT as MATCH_DEFAULT
from crm.matcher import (
    Decision,
    Match,
    MatchConfig,
    Sender,
    add_identities,
    identity_keys,
    match_exact,
    match_sender,
)
from crm.models import Activity, Lead, MatchReview, Task
from inbox.attachments import FileStore
from inbox.bot import dialog as bot
from inbox.models import Attachment, Channel, Conversation, Message
from inbox.routing import rules as routing
from inbox.routing import sla

log = structlog.get_logger(__name__)

ACTIVITY_KIND = {"call": "call", "form": "form", "message": "message", "email": "email"}


@dataclass(frozen=True)
class Policy:
    """The knobs of the pipeline that come from settings."""

    region: str = "NL"
    task_due: timedelta = timedelta(hours=4)
    callback_due: timedelta = timedelta(hours=1)
    files: FileStore | None = None  # where attachment bytes go; None keeps metadata only
    match: MatchConfig = MATCH_DEFAULT  # thresholds of the staged matcher


@dataclass(frozen=True)
class Outcome:
    event_id: int
    status: str  # processed, ignored, failed, or retry (left pending for a later batch)
    error: str | None = None
    conversation_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "status": self.status,
            "error": self.error,
            "conversation_id": self.conversation_id,
        }


class ProcessingError(Exception):
    """An event that cannot be processed as it is; it is marked failed with this reason."""


def retryable(exc: DBAPIError) -> bool:
    """A deadlock or serialization failure: nothing wrong with the event, try it again later."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001") or "deadlock detected" in str(
        exc
    )


async def store(
    session: AsyncSession,
    channel: Channel,
    event_id: int | None,
    msg: InboundMessage,
    policy: Policy,
    now: datetime,
) -> Message:
    """Match, thread, record and route one inbound message (or update the one it repeats)."""
    existing = (
        await session.scalars(
            select(Message)
            .where(Message.channel_id == channel.id, Message.external_id == msg.external_id)
            .with_for_update()
        )
    ).first()
    if existing is not None:
        return await update_existing(session, existing, msg, policy, now)

    keys = identity_keys(
        msg.sender.emails, msg.sender.phones, msg.sender.telegram_id, region=policy.region
    )
    match = await match_exact(session, keys)
    decision: Decision | None = None
    if match.contact_id is None and match.lead_id is None and not msg.automated:
        # No person owns these addresses: the staged matcher looks for one by name, company,
        # domain and city; linked above the threshold, candidates kept for review below it.
        decision = await match_sender(session, sender_of(msg), config=policy.match)
        if decision.decision == "linked" and decision.contact_id is not None:
            match = Match(contact_id=decision.contact_id, relation_id=decision.relation_id)
            await add_identities(session, keys, contact_id=decision.contact_id)
            match = await match_exact(session, keys) if keys else match
            match = Match(match.identity_id, decision.contact_id, decision.relation_id)
        elif decision.lead_id is not None:
            match = Match(lead_id=decision.lead_id)
        elif decision.relation_id is not None and match.relation_id is None:
            match = Match(match.identity_id, relation_id=decision.relation_id)
    lead_id = match.lead_id
    if not match.known and lead_id is None and not msg.automated:
        lead_id = await create_lead(session, channel, msg)
        await add_identities(session, keys, lead_id=lead_id)
        match = Match(lead_id=lead_id)
    elif match.found and keys:
        # A known sender who shows up with a new address or number gets it added.
        owner = (
            {"contact_id": match.contact_id}
            if match.contact_id
            else ({"relation_id": match.relation_id} if match.relation_id else {"lead_id": lead_id})
        )
        await add_identities(session, keys, **owner)

    conversation, is_new = await thread(session, channel, msg, match, policy.region)
    if msg.bounce_of:
        await mark_bounced(session, msg)
    message = new_message(channel.id, conversation.id, event_id, msg, match, decision)
    session.add(message)
    await session.flush()
    if decision is not None and decision.decision == "review":
        session.add(
            MatchReview(
                message_id=message.id,
                conversation_id=conversation.id,
                sender=asdict(sender_of(msg)),
                candidates=decision.as_meta()["candidates"],
            )
        )
    await store_attachments(session, message.id, msg, policy.files)
    activity = new_activity(
        channel.id, conversation.id, msg, Match(None, match.contact_id, match.relation_id, lead_id)
    )
    session.add(activity)
    await session.flush()
    await bot.after_inbound(session, channel, conversation, message, msg, is_new, now)
    if not msg.automated:
        await maybe_create_task(session, channel, conversation, activity, msg, policy, now, is_new)
    return message


async def store_attachments(
    session: AsyncSession, message_id: int, msg: InboundMessage, files: FileStore | None
) -> None:
    for a in msg.attachments:
        sha256 = await files.put(a.content) if files and a.content is not None else None
        session.add(
            Attachment(
                message_id=message_id,
                filename=a.filename[:300] or "attachment",
                content_type=a.content_type[:200],
                size=a.size,
                sha256=sha256,
                inline=a.inline,
                content_id=a.content_id,
                ref=a.ref,
                refused=a.refused,
            )
        )


async def update_existing(
    session: AsyncSession, message: Message, msg: InboundMessage, policy: Policy, now: datetime
) -> Message:
    """A later callback for the same call (or an edit): newer information replaces older."""
    activity = (
        await session.scalars(
            select(Activity).where(
                Activity.channel_id == message.channel_id,
                Activity.external_id == message.external_id,
            )
        )
    ).first()
    newer = (
        msg.call is None
        or activity is None
        or ((msg.call.sequence or 0) >= (activity.sequence or 0))
    )
    if not newer:
        return message
    meta = message_meta(msg)
    edits = list(message.meta.get("edits", []))
    if msg.edited and msg.text != message.text:  # a chat edit: the earlier wording stays visible
        edits.append({"text": message.text, "replaced_at": msg.occurred_at.isoformat()})
    if edits:
        meta["edits"] = edits
    message.text, message.meta = msg.text, meta
    if activity is not None:
        had_outcome = activity.outcome
        activity.body = msg.text
        for name, value in call_fields(msg).items():
            setattr(activity, name, value)
        conversation = await session.get(Conversation, message.conversation_id)
        channel = await session.get(Channel, message.channel_id)
        if conversation and channel and not msg.automated and had_outcome != activity.outcome:
            await session.flush()
            await maybe_create_task(
                session, channel, conversation, activity, msg, policy, now, False
            )
    return message


def new_message(
    channel_id: str,
    conversation_id: int,
    event_id: int | None,
    msg: InboundMessage,
    match: Match,
    decision: Decision | None,
) -> Message:
    return Message(
        conversation_id=conversation_id,
        channel_id=channel_id,
        event_id=event_id,
        external_id=msg.external_id,
        direction=msg.direction,
        kind=msg.kind,
        subject=msg.subject[:500] if msg.subject else None,
        text=msg.text,
        html=msg.html,
        sender_identity_id=match.identity_id,
        sender_name=msg.sender.name[:300] if msg.sender.name else None,
        meta=message_meta(msg) | match_meta(decision),
        sent_at=msg.occurred_at,
    )


def new_activity(
    channel_id: str, conversation_id: int, msg: InboundMessage, match: Match
) -> Activity:
    return Activity(
        **{
            "kind": ACTIVITY_KIND.get(msg.kind, "message"),
            "direction": msg.direction,
            "subject": msg.subject,
            "body": msg.text,
            "occurred_at": msg.occurred_at,
            "channel_id": channel_id,
            "external_id": msg.external_id,
            "relation_id": match.relation_id,
            "contact_id": match.contact_id,
            "lead_id": match.lead_id,
            "conversation_id": conversation_id,
        }
        | call_fields(msg)
    )


def new_lead(channel: Channel, msg: InboundMessage) -> Lead:
    return Lead(
        name=msg.sender.name,
        company=msg.sender.company,
        source_channel_id=channel.id,
        source_detail=msg.source_detail,
        fields=dict(msg.fields) | ({"city": msg.sender.city} if msg.sender.city else {}),
    )


async def create_lead(session: AsyncSession, channel: Channel, msg: InboundMessage) -> int:
    lead = new_lead(channel, msg)
    session.add(lead)
    await session.flush()
    return lead.id


def match_meta(decision: Decision | None) -> dict[str, Any]:
    """The matcher's verdict and reasons, kept on the message whenever it had something to say."""
    if decision is None:
        return {}
    if decision.decision == "unknown" and not decision.candidates and not decision.relation_id:
        return {}
    return {"match": decision.as_meta()}


def sender_of(msg: InboundMessage) -> Sender:
    """What the matcher gets to go on: the channel's sender plus the form's own fields."""
    s = msg.sender
    return Sender(
        email=s.emails[0] if s.emails else None,
        phone=s.phones[0] if s.phones else None,
        telegram_id=s.telegram_id,
        name=s.name,
        company=s.company,
        city=s.city,
    )


def thread_key(msg: InboundMessage, region: str) -> str | None:
    """The adapter's thread key, with phone numbers in E.164 so every format threads together."""
    if msg.thread_key and msg.thread_key.startswith("phone:"):
        number = normalizers.phone(msg.thread_key[len("phone:") :], region)
        return f"phone:{number}" if number else msg.thread_key
    return msg.thread_key


async def thread(
    session: AsyncSession, channel: Channel, msg: InboundMessage, match: Match, region: str
) -> tuple[Conversation, bool]:
    """The conversation this message continues (by reference first, then by thread key), or a
    new one. A reply to a resolved conversation reopens it."""
    found = await by_reference(session, channel, msg)
    review = None
    if found is None and channel.kind == "email":
        found, review = await by_subject(session, channel, msg, match)
    key = thread_key(msg, region)
    if found is None and key:
        found = (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.channel_id == channel.id,
                    Conversation.thread_key == key,
                    Conversation.status != "resolved",
                )
                .order_by(Conversation.id.desc())
                .limit(1)
                .with_for_update()
            )
        ).first()
    if found is not None:
        continue_conversation(found, msg)
        return found, False
    conversation = new_conversation(channel, key, msg, match, review)
    session.add(conversation)
    await session.flush()
    return conversation, True


def continue_conversation(found: Conversation, msg: InboundMessage) -> None:
    """A new message in a conversation: its times, and a reply reopens it."""
    found.last_message_at = max(found.last_message_at or msg.occurred_at, msg.occurred_at)
    if msg.direction == "inbound":
        found.last_inbound_at = msg.occurred_at
        if found.status in ("snoozed", "resolved", "pending") and not msg.automated:
            found.status, found.snoozed_until, found.resolved_at = "open", None, None


def new_conversation(
    channel: Channel,
    key: str | None,
    msg: InboundMessage,
    match: Match,
    review: str | None = None,
) -> Conversation:
    return Conversation(
        channel_id=channel.id,
        thread_key=key,
        subject=(msg.subject or summary(msg))[:500],
        contact_id=match.contact_id,
        relation_id=match.relation_id,
        lead_id=match.lead_id,
        team_id=channel.default_team_id,
        last_message_at=msg.occurred_at,
        last_inbound_at=msg.occurred_at if msg.direction == "inbound" else None,
        needs_review=review,
    )


SUBJECT_PREFIX = re.compile(
    r"^\s*((re|aw|antw|fwd?|fw|wg|doorst|tr|sv|vs)\s*(\[\d+\])?\s*:\s*)+", re.I
)
SUBJECT_WINDOW = timedelta(days=3)


def base_subject(subject: str | None) -> str:
    return SUBJECT_PREFIX.sub("", subject or "").strip().lower()


async def by_subject(
    session: AsyncSession, channel: Channel, msg: InboundMessage, match: Match
) -> tuple[Conversation | None, str | None]:
    """Last resort for mail no header links: the same sender, the same subject, recently.

    Guards against over-merging: a message that answers something we do not know (a
    newsletter, a stranger's old thread) or an automated one never joins by subject; a
    likely continuation that is not joined is flagged for a person instead.
    """
    subject = base_subject(msg.subject)
    owner = (
        Conversation.contact_id == match.contact_id
        if match.contact_id
        else Conversation.lead_id == match.lead_id
        if match.lead_id
        else None
    )
    if not subject or owner is None or len(subject) < 4:
        return None, None
    candidate = (
        await session.scalars(
            select(Conversation)
            .where(
                Conversation.channel_id == channel.id,
                owner,
                Conversation.last_message_at >= msg.occurred_at - SUBJECT_WINDOW,
                func.lower(Conversation.subject).contains(subject, autoescape=True),
            )
            .order_by(Conversation.last_message_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if candidate is None or base_subject(candidate.subject) != subject:
        return None, None
    if msg.in_reply_to or msg.automated:
        return None, f"same subject as conversation {candidate.id}, but it answers another message"
    return candidate, None


def bounced_message(bounce_of: str) -> ColumnElement[bool]:
    """Our outbound message with this Message-ID (the domain part may differ or be missing)."""
    local = bounce_of.split("@", 1)[0]
    return and_(
        Message.direction == "outbound",
        or_(
            Message.meta["provider_id"].astext == bounce_of,
            Message.meta["provider_id"].astext.startswith(local + "@", autoescape=True),
        ),
    )


async def mark_bounced(session: AsyncSession, msg: InboundMessage) -> None:
    """A bounce fails the outbound message it returns."""
    await session.execute(
        update(Message)
        .where(bounced_message(msg.bounce_of or ""))
        .values(status="failed", error=str(msg.meta.get("bounce") or "bounced")[:2000])
    )


async def by_reference(
    session: AsyncSession, channel: Channel, msg: InboundMessage
) -> Conversation | None:
    """A reply that names what it answers: our reply token, or a message id we stored."""
    if msg.bounce_of:
        returned = (
            await session.execute(
                select(Message.conversation_id).where(bounced_message(msg.bounce_of)).limit(1)
            )
        ).first()
        if returned is not None:
            return await session.get(Conversation, returned.conversation_id, with_for_update=True)
    if msg.reply_token:
        found = (
            await session.scalars(
                select(Conversation)
                .where(Conversation.reply_token == msg.reply_token)
                .with_for_update()
            )
        ).first()
        if found is not None:
            return found
    if not msg.in_reply_to:
        return None
    refs = list(msg.in_reply_to)
    row = (
        await session.execute(
            select(Message.conversation_id)
            .where(Message.channel_id == channel.id, Message.external_id.in_(refs))
            .order_by(Message.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return await session.get(Conversation, row.conversation_id, with_for_update=True)


async def maybe_create_task(
    session: AsyncSession,
    channel: Channel,
    conversation: Conversation,
    activity: Activity,
    msg: InboundMessage,
    policy: Policy,
    now: datetime,
    is_new: bool,
    untracked: list[tuple[Task, sla.Clock | None]] | None = None,
) -> Task | None:
    """Route the conversation by the rules and strategies; then a call-back for a missed inbound
    call, a follow-up for anything else that needs an answer, due by the SLA. With `untracked`,
    the task is left for the caller to flush and put under the SLA sweep with a whole batch."""
    if msg.call is not None:
        if msg.call.direction != "inbound" or msg.call.status == "answered":
            return None
        kind, due = "call_back", policy.callback_due
        title = f"Call back {msg.sender.name or msg.call.number}"
    else:
        kind, due = ("follow_up_lead" if activity.lead_id else "reply"), policy.task_due
        title = f"{'Follow up' if activity.lead_id else 'Answer'}: {conversation.subject or summary(msg)}"
    event = await routing.event_for(session, conversation, is_new)
    routed = await routing.route(session, conversation, channel, event=event, now=now, msg=msg)
    if conversation.handled_by == "bot":
        return None  # the bot answers first; a hand-over routes it again
    if not is_new and await has_open_task(session, conversation.id, kind):
        return None
    chosen = routed.assignment
    clock = routed.clock or await sla.clock_for(session, conversation, now)
    task = Task(
        kind=kind,
        title=title[:500],
        assignee_id=chosen.user_id,
        team_id=chosen.team_id or conversation.team_id,
        due_at=(clock.first_response_due_at if clock else None) or now + due,
        priority=conversation.priority,
        relation_id=activity.relation_id,
        contact_id=activity.contact_id,
        lead_id=activity.lead_id,
        conversation_id=conversation.id,
        activity_id=activity.id,
    )
    session.add(task)
    if untracked is not None:
        untracked.append((task, clock))
    else:
        await session.flush()
        sla.track_task(session, task, clock, now)
    log.info("task created", kind=kind, assignee_id=chosen.user_id, reason=chosen.reason)
    return task


async def has_open_task(session: AsyncSession, conversation_id: int, kind: str) -> bool:
    count = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.conversation_id == conversation_id, Task.kind == kind, Task.status == "open")
    )
    return bool(count)


def call_fields(msg: InboundMessage) -> dict[str, Any]:
    if msg.call is None:
        return {}
    call = msg.call
    return {
        "duration_s": call.duration_s,
        "outcome": call.status,
        "agent": call.agent,
        "recording_url": call.recording_url,
        "sequence": call.sequence,
        "direction": call.direction,
    }


def message_meta(msg: InboundMessage) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if msg.meta:
        meta["channel"] = dict(msg.meta)
    address = msg.meta.get("reply_address") or msg.meta.get("chat_id")
    if address is None and msg.sender.emails:
        address = msg.sender.emails[0]
    if address is not None:
        meta["reply_address"] = str(address)
    if msg.full_text and msg.full_text.strip() != msg.text.strip():
        meta["full_text"] = msg.full_text  # the whole original, one click away in the inbox
    if msg.fields:
        meta["fields"] = dict(msg.fields)
    if msg.call is not None:
        c = msg.call
        meta["call"] = {
            "status": c.status,
            "direction": c.direction,
            "number": c.number,
            "our_number": c.our_number,
            "agent": c.agent,
            "duration_s": c.duration_s,
            "recording_url": c.recording_url,
            "sequence": c.sequence,
        }
    if msg.attachments:
        meta["attachments"] = [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size, "ref": a.ref}
            for a in msg.attachments
        ]
    if msg.source_detail:
        meta["source_detail"] = msg.source_detail
    if msg.automated:
        meta["automated"] = True
    return meta


def summary(msg: InboundMessage) -> str:
    first_line = (msg.text or "").strip().splitlines()[0] if (msg.text or "").strip() else ""
    return (msg.subject or first_line or msg.kind)[:200]
