"""The first-line bot, channel-agnostic: it answers from the knowledge base, collects a lead's
details, says when someone will answer, and hands the conversation to a person.

The pipeline calls `after_inbound` for every stored inbound message. On a chat channel with the
bot (or an external bot) enabled a new conversation starts in bot mode (no task for a person),
and each message leaves a `ChatJob` that a worker runs after the commit: `run_turns` for the
built-in bot, a signed delivery for an external one. All dialogue state lives in
`Conversation.bot_state`, so any worker can continue a conversation; a person who replies, takes
the conversation or gets it handed over silences the bot until someone hands it back.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import structlog
from arq.connections import ArqRedis
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from channels.base import InboundMessage, JsonValue
from crm.models import Activity, Task
from crm.normalizers import fold
from inbox.bot import faq as bot_faq
from inbox.bot.leads import Details, apply_details, company_of, find_email, find_phone, valid_name
from inbox.bot.models import ChatJob
from inbox.bot.texts import say, when
from inbox.history import record
from inbox.models import Channel, Conversation, Message
from inbox.outbound import CannotSend, reply_route
from inbox.routing import rules as routing
from inbox.routing import sla

log = structlog.get_logger(__name__)

BOT_KINDS = frozenset({"telegram", "webchat", "whatsapp"})  # chat channels the bot talks on
# Attachments arrive as a reference, fetched later.
DOWNLOAD_KINDS = frozenset({"telegram", "whatsapp"})
GROUP_TYPES = frozenset({"group", "supergroup"})
HANDOVER_WORDS = (
    "medewerker",
    "mens",
    "agent",
    "human",
    "persoon",
    "person",
    "operator",
    "iemand spreken",
    "echt iemand",
    "real person",
)
HANDOVER_DATA = "handover"  # the data of a "talk to a person" button
MENU_DATA = "menu"
FAQ_DATA = "faq:"
COMMANDS_HANDOVER = frozenset({"human", "medewerker", "agent", "mens"})
COMMANDS_MENU = frozenset({"menu", "help", "hulp"})
LEAD_STEPS = ("name", "company", "contact", "question")


class BotSettings(BaseModel):
    """A channel's bot settings: `config["bot"]` (the external bot is `config["bot_url"]`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    language: Literal["nl", "en"] = "nl"
    threshold: float = Field(default=70.0, ge=0, le=100)  # FAQ score from which it answers
    max_misses: int = Field(default=2, ge=1, le=10)  # failed understandings before a hand-over
    handover_keywords: list[str] = Field(default_factory=list, max_length=50)
    lead_capture: bool = True  # ask an unknown sender's details before handing over
    # Opening hours when there is no default business calendar: {"tz": ..., "mon": [["08:30",
    # "17:00"]], ...}; a day left out is closed.
    hours: dict[str, Any] | None = None
    holidays: list[date] = Field(default_factory=list, max_length=400)
    timeout_s: float = Field(default=5.0, gt=0, le=30)  # the external bot's time to answer


def settings_of(config: Mapping[str, Any]) -> BotSettings:
    """The channel's bot settings; broken ones leave the bot off rather than stop the pipeline."""
    try:
        return BotSettings.model_validate(config.get("bot") or {})
    except ValidationError as exc:
        log.warning("bot settings invalid; bot off", error=str(exc).splitlines()[0])
        return BotSettings()


@dataclass(frozen=True)
class ExternalBot:
    url: str
    secret: str


def external_of(config: Mapping[str, Any]) -> ExternalBot | None:
    url, secret = config.get("bot_url"), config.get("bot_secret")
    if isinstance(url, str) and url and isinstance(secret, str) and secret:
        return ExternalBot(url, secret)
    return None


def bot_enabled(channel: Channel) -> bool:
    return channel.kind in BOT_KINDS and (
        settings_of(channel.config).enabled or external_of(channel.config) is not None
    )


# --- waking the worker after the commit ---------------------------------------------------

Waker = Callable[[Sequence[tuple[int, str]]], Coroutine[Any, Any, None]]
WAKE_KEY = "switchboard.chat_jobs"
_waker: Waker | None = None
_waking: set[asyncio.Task[None]] = set()


def set_waker(waker: Waker | None) -> None:
    """Who queues chat jobs once their transaction commits (the worker installs one)."""
    global _waker
    _waker = waker


def current_waker() -> Waker | None:
    return _waker


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: the jobs are not visible until the real commit
    jobs = session.info.pop(WAKE_KEY, None)
    if not jobs or _waker is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a synchronous session: the sweep picks the jobs up
        return
    task = loop.create_task(_waker(list(jobs)))
    _waking.add(task)
    task.add_done_callback(_waking.discard)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    if session.get_nested_transaction() is None:  # a savepoint's jobs: waking them is harmless
        session.info.pop(WAKE_KEY, None)


JOB_FUNCTIONS = {"bot": "run_bot", "external": "deliver_to_bot", "download": "download_files"}


async def wake(redis: ArqRedis, jobs: Sequence[tuple[int, str]]) -> None:
    """Queue the arq job of each chat job; the job id keeps a second wake-up a no-op."""
    for job_id, kind in jobs:
        await redis.enqueue_job(JOB_FUNCTIONS[kind], job_id, _job_id=f"chat:{job_id}")


def woken_on_commit(session: AsyncSession) -> list[tuple[int, str]]:
    """The chat jobs this transaction leaves (to wake them by hand where no waker runs)."""
    return list(session.info.get(WAKE_KEY, []))


async def settle() -> None:
    """Wait until every wake-up scheduled so far has queued its jobs."""
    while _waking:
        await asyncio.gather(*list(_waking), return_exceptions=True)


async def add_job(
    session: AsyncSession,
    kind: str,
    conversation_id: int,
    message_id: int | None,
    event_name: str = "message.created",
) -> ChatJob:
    """Leave work for after the commit; the worker is woken when the transaction commits."""
    job = ChatJob(
        kind=kind, conversation_id=conversation_id, message_id=message_id, event=event_name
    )
    session.add(job)
    await session.flush()
    session.info.setdefault(WAKE_KEY, []).append((job.id, kind))
    return job


# --- the pipeline's step ------------------------------------------------------------------


def language_of(meta: Mapping[str, JsonValue], settings: BotSettings) -> str:
    code = str(meta.get("language_code") or "").lower()
    return code[:2] if code[:2] in ("nl", "en") else settings.language


async def after_inbound(
    session: AsyncSession,
    channel: Channel,
    conversation: Conversation,
    message: Message,
    msg: InboundMessage,
    is_new: bool,
    now: datetime,
) -> None:
    """Step 6 of the pipeline: put a new chat conversation in bot mode when the channel has a
    bot (no task for a person then), link a shared phone number, and leave the bot its turn.
    Attachments that came as a reference are fetched after the commit."""
    if msg.direction != "inbound" or msg.automated:
        return
    if channel.kind in DOWNLOAD_KINDS and any(a.ref and a.content is None for a in msg.attachments):
        await add_job(session, "download", conversation.id, message.id)
    if channel.kind not in BOT_KINDS:
        return
    settings, external = settings_of(channel.config), external_of(channel.config)
    if is_new and (settings.enabled or external is not None):
        conversation.handled_by = "bot"
        conversation.bot_state = {"language": language_of(msg.meta, settings), "since": 0}
    if msg.meta.get("contact") and msg.sender.phones:  # the customer shared their own number
        await apply_details(
            session, conversation, Details(phone=msg.sender.phones[0]), region=region_of(channel)
        )
    callback = bool(msg.meta.get("callback_query_id"))
    if conversation.handled_by != "bot":
        if callback:  # an old button pressed after a hand-over: only stop its spinner
            await add_job(session, "bot", conversation.id, message.id)
        return
    if not msg.meta.get("addressed", True):
        return  # a group chat where nobody spoke to the bot: stored, and silence
    if external is not None:
        if is_new:
            await add_job(session, "external", conversation.id, None, "conversation.created")
        await add_job(session, "external", conversation.id, message.id)
        if callback:
            await add_job(session, "bot", conversation.id, message.id)
        return
    await add_job(session, "bot", conversation.id, message.id)


def region_of(channel: Channel) -> str:
    region = channel.config.get("region")
    return region if isinstance(region, str) and len(region) == 2 else "NL"


# --- the bot's turn -----------------------------------------------------------------------


@dataclass
class Turns:
    """What a run of the bot left to do after its commit."""

    messages: list[int] = field(default_factory=list)  # queued outbound messages, in order
    callbacks: list[str] = field(default_factory=list)  # button presses to acknowledge
    handed_over: bool = False


def set_state(conversation: Conversation, **changes: Any) -> dict[str, Any]:
    """Write bot_state through (a new dict, so the change is saved); None removes a key."""
    state = dict(conversation.bot_state or {})
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    conversation.bot_state = state
    return state


def wants_person(text: str, settings: BotSettings, command: str | None) -> bool:
    if text == HANDOVER_DATA or (command in COMMANDS_HANDOVER):
        return True
    folded = fold(text)
    words = (*HANDOVER_WORDS, *(fold(k) for k in settings.handover_keywords if k.strip()))
    return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", folded) for w in words if w)


async def person_spoke(session: AsyncSession, conversation: Conversation) -> bool:
    """Whether a person replied since the bot got (back) this conversation."""
    since = int((conversation.bot_state or {}).get("since", 0))
    found = await session.scalar(
        select(Message.id)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "outbound",
            Message.author_id.is_not(None),
            Message.id > since,
        )
        .limit(1)
    )
    return found is not None


async def run_turns(
    session: AsyncSession,
    conversation: Conversation,
    channel: Channel,
    jobs: Sequence[ChatJob],
    now: datetime,
    *,
    task_due: timedelta = timedelta(hours=4),
) -> Turns:
    """The bot's answers to the messages of these jobs, in order, within the caller's
    transaction (which holds the conversation's row lock)."""
    out = Turns()
    settings = settings_of(channel.config)
    speaking = external_of(channel.config) is None
    matcher = await bot_faq.load(session, channel.id)
    for job in jobs:
        job.status, job.done_at, job.attempts = "done", now, job.attempts + 1
        message = await session.get(Message, job.message_id) if job.message_id else None
        if message is None:
            continue
        meta: dict[str, Any] = message.meta.get("channel", {})
        if meta.get("callback_query_id"):
            out.callbacks.append(str(meta["callback_query_id"]))
        if conversation.handled_by != "bot" or not speaking:
            continue
        if await person_spoke(session, conversation):
            conversation.handled_by = "human"
            record(session, conversation.id, "taken", None, reason="a person replied")
            continue
        address = message.meta.get("reply_address")
        route = (channel, str(address)) if address and message.channel_id == channel.id else None
        turn = Turn(session, channel, conversation, settings, matcher, now, task_due, out, route)
        await turn.answer(message, meta)
    return out


@dataclass
class Turn:
    session: AsyncSession
    channel: Channel
    conversation: Conversation
    settings: BotSettings
    matcher: bot_faq.Matcher
    now: datetime
    task_due: timedelta
    out: Turns
    route: tuple[Channel, str] | None = None  # where answers go: the message's own chat

    @property
    def state(self) -> dict[str, Any]:
        return dict(self.conversation.bot_state or {})

    @property
    def language(self) -> str:
        return str(self.state.get("language") or self.settings.language)

    async def say(self, text: str, buttons: Sequence[tuple[str, str]] = ()) -> None:
        message = await queue_bot_message(
            self.session, self.conversation, text, buttons, self.now, self.route
        )
        if message is not None:
            self.out.messages.append(message.id)

    def menu_buttons(self) -> list[tuple[str, str]]:
        topics = [(e.question[:60], f"{FAQ_DATA}{e.key}") for e in self.matcher.menu(self.language)]
        return [*topics, (say(self.language, "person"), HANDOVER_DATA)]

    async def answer(self, message: Message, meta: Mapping[str, Any]) -> None:
        # A WhatsApp button reply shows its title in the inbox; the bot acts on its data.
        text = str(meta.get("button_data") or message.text).strip()
        command = meta.get("command")
        if meta.get("callback_query_id") is None and command == "start":
            set_state(self.conversation, misses=0)
            await self.say(say(self.language, "welcome"), self.menu_buttons())
            return
        if text == MENU_DATA or command in COMMANDS_MENU:
            await self.say(say(self.language, "menu"), self.menu_buttons())
            return
        if wants_person(text, self.settings, command):
            await self.escalate("asked", explicit=True)
            return
        if self.state.get("lead"):
            await self.lead_step(text, meta)
            return
        if not text and message.meta.get("attachments"):  # a photo, a voice note: a person looks
            await self.escalate("sent a file", explicit=True)
            return
        if text.startswith(FAQ_DATA):
            entry = self.matcher.by_key(text[len(FAQ_DATA) :], self.language)
            if entry is not None:
                await self.give(entry)
                return
        hit = self.matcher.best(text, self.language) if text else None
        if hit is not None and hit.score >= self.settings.threshold:
            await self.give(hit.entry, hit.score)
            return
        misses = int(self.state.get("misses", 0)) + 1
        set_state(self.conversation, misses=misses, question=text[:2000] or None)
        if misses >= self.settings.max_misses:
            await self.escalate("not understood", explicit=False)
        else:
            await self.say(say(self.language, "rephrase"), self.menu_buttons())

    async def give(self, entry: bot_faq.Entry, score: float | None = None) -> None:
        set_state(self.conversation, misses=0, language=entry.language, answered=entry.key)
        buttons = list(entry.buttons)
        if not any(data == HANDOVER_DATA for _, data in buttons):
            buttons.append((say(entry.language, "person"), HANDOVER_DATA))
        await self.say(entry.answer, buttons)
        log.info("bot answered", conversation_id=self.conversation.id, faq=entry.key, score=score)

    async def escalate(self, reason: str, *, explicit: bool) -> None:
        """A person is needed: first the unknown sender's details, then the hand-over."""
        state = self.state
        if state.get("lead"):  # asked again during the questions: no more questions
            set_state(self.conversation, lead=None)
            await self.hand_over(reason)
            return
        if (
            self.settings.lead_capture
            and self.conversation.contact_id is None
            and self.conversation.relation_id is None
            and not state.get("lead_done")
        ):
            question = None if explicit else state.get("question")
            lead = {"step": "name", "reason": reason, "question": question, "tries": 0}
            set_state(self.conversation, lead=lead)
            await self.say(f"{say(self.language, 'lead_intro')} {say(self.language, 'ask_name')}")
            return
        await self.hand_over(reason)

    async def lead_step(self, text: str, meta: Mapping[str, Any]) -> None:
        lead: dict[str, Any] = dict(self.state["lead"])
        step, lang = lead.get("step"), self.language
        if step == "name":
            name = valid_name(text)
            if name is None:
                await self.retry(lead, "bad_name")
                return
            lead |= {"name": name, "step": "company", "tries": 0}
            set_state(self.conversation, lead=lead)
            await self.say(say(lang, "ask_company"))
        elif step == "company":
            lead |= {"company": company_of(text), "step": "contact", "tries": 0}
            set_state(self.conversation, lead=lead)
            await self.say(say(lang, "ask_contact"))
        elif step == "contact":
            shared = meta.get("contact")
            phone = None
            if isinstance(shared, dict) and shared.get("phone_number"):
                phone = find_phone("+" + str(shared["phone_number"]).lstrip("+"))
            email = find_email(text)
            phone = phone or (None if email else find_phone(text, region_of(self.channel)))
            if email is None and phone is None:
                await self.retry(lead, "bad_contact")
                return
            lead |= {"email": email, "phone": phone, "tries": 0}
            if lead.get("question"):
                await self.finish(lead)
                return
            lead["step"] = "question"
            set_state(self.conversation, lead=lead)
            await self.say(say(lang, "ask_question"))
        else:
            lead["question"] = text[:2000]
            await self.finish(lead)

    async def retry(self, lead: dict[str, Any], text_key: str) -> None:
        """Ask again; after `max_misses` tries a person takes it from here."""
        lead["tries"] = int(lead.get("tries", 0)) + 1
        if lead["tries"] >= self.settings.max_misses:
            await self.finish(lead)
            return
        set_state(self.conversation, lead=lead)
        await self.say(say(self.language, text_key))

    async def finish(self, lead: dict[str, Any]) -> None:
        details = Details(
            name=lead.get("name"),
            company=lead.get("company"),
            email=lead.get("email"),
            phone=lead.get("phone"),
            question=lead.get("question"),
        )
        if details.name or details.email or details.phone:
            await apply_details(
                self.session, self.conversation, details, region=region_of(self.channel)
            )
        set_state(self.conversation, lead=None, lead_done=True)
        if details.name:
            await self.say(say(self.language, "lead_thanks", name=details.name))
        await self.hand_over(str(lead.get("reason") or "asked"))

    async def hand_over(self, reason: str) -> None:
        queued = await hand_over(
            self.session,
            self.channel,
            self.conversation,
            reason=reason,
            now=self.now,
            task_due=self.task_due,
        )
        self.out.messages.extend(queued)
        self.out.handed_over = True


async def queue_bot_message(
    session: AsyncSession,
    conversation: Conversation,
    text: str,
    buttons: Sequence[tuple[str, str]],
    now: datetime,
    route: tuple[Channel, str] | None = None,
) -> Message | None:
    """An outbound message from the bot (no author), queued on the conversation's channel (or
    on the given channel, to the given address)."""
    try:
        channel, address = route or await reply_route(session, conversation)
    except CannotSend as exc:
        log.info("bot cannot answer", conversation_id=conversation.id, reason=str(exc))
        return None
    message = Message(
        conversation_id=conversation.id,
        channel_id=channel.id,
        external_id=f"out:{uuid.uuid4().hex}",
        direction="outbound",
        kind="message",
        text=text,
        meta={
            "to": address,
            "via_channel_kind": channel.kind,
            "auto": "bot",
            "buttons": [[label, data] for label, data in buttons],
        },
        sent_at=now,
        status="queued",
    )
    session.add(message)
    conversation.last_message_at = now
    await session.flush()
    return message


# --- hand-over and hand-back --------------------------------------------------------------


async def opening(session: AsyncSession, settings: BotSettings, now: datetime) -> sla.Hours | None:
    """The hours that say when someone answers: the default business calendar, else the bot's
    own; None when there are none (always open)."""
    hours = await sla.calendar_hours(session)
    if hours is None and settings.hours:
        hours = sla.Hours.from_json(settings.hours, settings.holidays)
    return hours


async def hand_over(
    session: AsyncSession,
    channel: Channel,
    conversation: Conversation,
    *,
    reason: str,
    now: datetime,
    task_due: timedelta = timedelta(hours=4),
    actor_id: int | None = None,
    tell: str | None = "",
    from_external: bool = False,
) -> list[int]:
    """Take the conversation out of bot mode, route it (rules on `bot.handover`, then the
    team's strategy), give a person a task and tell the customer when someone will answer.

    `tell` is what to say: "" for the standard text (with the next opening time when closed),
    None for nothing. Returns the ids of the queued messages to send after the commit."""
    conversation.handled_by = "human"
    settings = settings_of(channel.config)
    state = set_state(
        conversation, handover={"reason": reason, "at": now.isoformat()}, misses=0, lead=None
    )
    record(session, conversation.id, "handover", actor_id, reason=reason)
    routed = await routing.route(session, conversation, channel, event="bot.handover", now=now)
    conversation.handled_by = "human"  # a rule may not send it back to the bot
    hours = await opening(session, settings, now)
    opens = hours.next_open(now) if hours is not None and not hours.is_open(now) else None
    await handover_task(session, conversation, routed, now, opens, task_due)
    if not from_external and external_of(channel.config) is not None:
        await add_job(session, "external", conversation.id, None, "conversation.handover")
    queued: list[int] = []
    if tell is not None:
        language = str(state.get("language") or settings.language)
        text = tell or (
            say(language, "handover_closed", when=when(opens, now, hours.tz, language))
            if opens is not None and hours is not None
            else say(language, "handover")
        )
        message = await queue_bot_message(session, conversation, text, (), now)
        if message is not None:
            queued.append(message.id)
    log.info("bot handed over", conversation_id=conversation.id, reason=reason, opens=opens)
    return queued


async def handover_task(
    session: AsyncSession,
    conversation: Conversation,
    routed: routing.Routed,
    now: datetime,
    opens: datetime | None,
    task_due: timedelta,
) -> Task | None:
    """The routed person's task, starting at the next opening time when closed now."""
    kind = "follow_up_lead" if conversation.lead_id and not conversation.contact_id else "reply"
    open_task = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.conversation_id == conversation.id, Task.kind == kind, Task.status == "open")
    )
    if open_task:
        return None
    start = opens or now
    clock = routed.clock or await sla.clock_for(session, conversation, start)
    activity = (
        await session.scalars(
            select(Activity)
            .where(Activity.conversation_id == conversation.id, Activity.direction == "inbound")
            .order_by(Activity.id.desc())
            .limit(1)
        )
    ).first()
    title = f"{'Follow up' if kind == 'follow_up_lead' else 'Answer'}: {conversation.subject or ''}"
    task = Task(
        kind=kind,
        title=title.strip()[:500],
        assignee_id=routed.assignment.user_id,
        team_id=routed.assignment.team_id or conversation.team_id,
        due_at=(clock.first_response_due_at if clock else None) or start + task_due,
        priority=conversation.priority,
        relation_id=conversation.relation_id,
        contact_id=conversation.contact_id,
        lead_id=conversation.lead_id,
        conversation_id=conversation.id,
        activity_id=activity.id if activity else None,
    )
    session.add(task)
    await session.flush()
    sla.track_task(session, task, clock, now)
    return task


async def hand_back(
    session: AsyncSession, channel: Channel, conversation: Conversation, actor_id: int | None
) -> None:
    """A person gives the conversation back to the bot: it speaks again from the next message
    on, its open reply tasks are done."""
    conversation.handled_by = "bot"
    last = await session.scalar(
        select(func.max(Message.id)).where(Message.conversation_id == conversation.id)
    )
    state = dict(conversation.bot_state or {})
    keep = {k: state[k] for k in ("language", "lead_done", "attributes") if k in state}
    conversation.bot_state = keep | {"since": int(last or 0)}
    await session.execute(
        update(Task)
        .where(
            Task.conversation_id == conversation.id,
            Task.status == "open",
            Task.kind.in_(("reply", "follow_up_lead")),
        )
        .values(status="done", completed_at=func.now())
    )
    record(session, conversation.id, "handback", actor_id)
    if external_of(channel.config) is not None:
        await add_job(session, "external", conversation.id, None, "conversation.handback")
