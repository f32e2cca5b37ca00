"""SLA clocks: business hours with holidays, due times per policy and priority, and the sweep
that reminds before a task is due and escalates when it is not done in time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

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

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TZ = "Europe/Amsterdam"
MAX_DAYS = 3660  # how far a clock may search for opening hours before giving up
RAISED = {"low": "normal", "normal": "high", "high": "urgent", "urgent": "urgent"}

Span = tuple[time, time | None]  # None as the end: until midnight


def parse_time(value: str) -> time | None:
    """'08:30' → 08:30; '24:00' → None (the end of the day)."""
    hours, _, minutes = value.strip().partition(":")
    h, m = int(hours), int(minutes or 0)
    if (h, m) == (24, 0):
        return None
    return time(h, m)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


@dataclass(frozen=True)
class Hours:
    """Opening hours in a time zone, with closed days; no hours at all means open around the
    clock (holidays still close)."""

    tz: ZoneInfo
    week: tuple[tuple[Span, ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any] | None, holidays: Iterable[date] = (), tz: str | None = None
    ) -> Hours:
        data = data or {}
        week: list[tuple[Span, ...]] = []
        for day in WEEKDAYS:
            spans: list[Span] = []
            for pair in data.get(day) or ():
                start, end = parse_time(str(pair[0])), parse_time(str(pair[1]))
                spans.append((start or time(0), end))
            week.append(tuple(sorted(spans, key=lambda s: s[0])))
        return cls(zone(str(data.get("tz") or tz or DEFAULT_TZ)), tuple(week), frozenset(holidays))

    @property
    def around_the_clock(self) -> bool:
        return not any(self.week)

    def spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open periods of a local day, as aware datetimes."""
        if day in self.holidays:
            return []
        midnight = datetime.combine(day + timedelta(days=1), time(0), self.tz)
        if self.around_the_clock:
            return [(datetime.combine(day, time(0), self.tz), midnight)]
        out = []
        for start, end in self.week[day.weekday()]:
            opens = datetime.combine(day, start, self.tz)
            closes = datetime.combine(day, end, self.tz) if end is not None else midnight
            if closes > opens:
                out.append((opens, closes))
        return out

    def is_open(self, at: datetime) -> bool:
        return any(o <= at < c for o, c in self.spans(at.astimezone(self.tz).date()))

    def next_open(self, at: datetime) -> datetime:
        """`at` when open, else the next opening time (or `at` if it never opens)."""
        day = at.astimezone(self.tz).date()
        for offset in range(MAX_DAYS):
            for opens, closes in self.spans(day + timedelta(days=offset)):
                if closes > at:
                    return max(opens, at).astimezone(UTC)
        return at

    def add(self, start: datetime, minutes: float) -> datetime:
        """The moment `minutes` of opening time after `start` have passed."""
        left = timedelta(minutes=minutes)
        day = start.astimezone(self.tz).date()
        for offset in range(MAX_DAYS):
            for opens, closes in self.spans(day + timedelta(days=offset)):
                begin = max(opens, start)
                if closes <= begin:
                    continue
                if begin + left <= closes:
                    return (begin + left).astimezone(UTC)
                left -= closes - begin
        return start + timedelta(minutes=minutes)


ALWAYS = Hours(zone(DEFAULT_TZ))


def cache(session: AsyncSession) -> dict[Any, Any]:
    """Configuration looked up once per transaction (a worker's batch), not once per message."""
    found: dict[Any, Any] = session.info.setdefault("routing_config", {})
    return found


def forget(session: AsyncSession) -> None:
    """Drop what the transaction looked up once: after a rolled-back savepoint it may be wrong
    (a team lock released, a load or queue that changed back)."""
    session.info.pop("routing_config", None)


async def calendar_hours(session: AsyncSession, calendar_id: int | None = None) -> Hours | None:
    """The calendar's hours and holidays; without an id, the default calendar (None if none)."""
    key = ("calendar", calendar_id)
    if key not in cache(session):
        cache(session)[key] = await load_calendar(session, calendar_id)
    hours: Hours | None = cache(session)[key]
    return hours


async def load_calendar(session: AsyncSession, calendar_id: int | None) -> Hours | None:
    query = select(BusinessCalendar)
    query = (
        query.where(BusinessCalendar.id == calendar_id)
        if calendar_id is not None
        else query.where(BusinessCalendar.is_default)
    )
    calendar = (await session.scalars(query.limit(1))).first()
    if calendar is None:
        return None
    days = (
        await session.scalars(select(Holiday.day).where(Holiday.calendar_id == calendar.id))
    ).all()
    return Hours.from_json(calendar.hours, days, tz=calendar.timezone)


async def any_policy(session: AsyncSession) -> bool:
    """Whether any SLA policy exists (looked up once per transaction)."""
    if "any_policy" not in cache(session):
        cache(session)["any_policy"] = bool(
            await session.scalar(select(exists().where(SlaPolicy.id.is_not(None))))
        )
    found: bool = cache(session)["any_policy"]
    return found


async def policy_by_id(session: AsyncSession, policy_id: int | None) -> SlaPolicy | None:
    """The given policy, else the default one, else None."""
    if policy_id is not None:
        policy = await session.get(SlaPolicy, policy_id)
        if policy is not None:
            return policy
    if "default_policy" not in cache(session):
        cache(session)["default_policy"] = (
            await session.scalars(select(SlaPolicy).where(SlaPolicy.is_default).limit(1))
        ).first()
    default: SlaPolicy | None = cache(session)["default_policy"]
    return default


def target(policy: SlaPolicy, priority: str, kind: str) -> float | None:
    """Minutes for `kind` (first_response or resolution) at this priority; normal as fallback."""
    targets: Mapping[str, Any] = policy.targets or {}
    for level in (priority, "normal"):
        value = (targets.get(level) or {}).get(kind)
        if value is not None:
            return float(value)
    return None


@dataclass(frozen=True)
class Clock:
    """When an SLA clock started and what falls due when."""

    policy_id: int | None
    started_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    remind_at: datetime | None


def clock(policy: SlaPolicy, hours: Hours | None, priority: str, now: datetime) -> Clock:
    """Due times under the policy; in business hours the clock starts at the next opening."""
    business = hours if policy.business_hours and hours is not None else None
    started = business.next_open(now) if business else now

    def after(minutes: float | None) -> datetime | None:
        if minutes is None:
            return None
        return business.add(started, minutes) if business else started + timedelta(minutes=minutes)

    first = after(target(policy, priority, "first_response"))
    remind = None
    if first is not None and policy.remind_before_minutes > 0:
        remind = max(first - timedelta(minutes=policy.remind_before_minutes), started)
    return Clock(policy.id, started, first, after(target(policy, priority, "resolution")), remind)


async def clock_for(
    session: AsyncSession,
    conversation: Conversation,
    now: datetime,
    policy_id: int | None = None,
    new: bool = False,
) -> Clock | None:
    """A clock starting now under the given policy, else the conversation's, else the default."""
    if policy_id is None and not await any_policy(session):
        return None  # no SLA policies at all: nothing to look up per conversation
    existing = None if new else await session.get(ConversationSla, conversation.id)
    policy = await policy_by_id(session, policy_id or (existing.policy_id if existing else None))
    if policy is None:
        return None
    return clock(
        policy, await calendar_hours(session, policy.calendar_id), conversation.priority, now
    )


async def start_conversation_clock(
    session: AsyncSession,
    conversation: Conversation,
    now: datetime,
    policy_id: int | None = None,
    new: bool = False,
) -> Clock | None:
    """Start (or restart) the conversation's SLA clock under its policy; None without one."""
    existing = None if new else await session.get(ConversationSla, conversation.id)
    c = await clock_for(session, conversation, now, policy_id, new=existing is None)
    if c is None or c.policy_id is None:
        return None
    if existing is None:
        session.add(
            ConversationSla(
                conversation_id=conversation.id,
                policy_id=c.policy_id,
                priority=conversation.priority,
                started_at=c.started_at,
                first_response_due_at=c.first_response_due_at,
                resolution_due_at=c.resolution_due_at,
            )
        )
    else:
        existing.policy_id, existing.priority = c.policy_id, conversation.priority
        existing.started_at = c.started_at
        existing.first_response_due_at = c.first_response_due_at
        existing.resolution_due_at = c.resolution_due_at
        existing.resolution_breached_at = existing.resolved_at = None
    return c


def track_task(session: AsyncSession, task: Task, c: Clock | None, now: datetime) -> None:
    """Put the task under the sweep: a reminder before its due time, escalation after."""
    if task.due_at is None:
        return
    remind_at = c.remind_at if c is not None and c.first_response_due_at == task.due_at else None
    session.add(
        TaskSla(
            task_id=task.id,
            policy_id=c.policy_id if c else None,
            started_at=c.started_at if c else now,
            remind_at=remind_at,
            next_check_at=remind_at or task.due_at,
        )
    )


@dataclass
class SweepResult:
    reminded: list[int] = field(default_factory=list)  # task ids
    escalated: list[int] = field(default_factory=list)  # task ids
    resolution_breached: list[int] = field(default_factory=list)  # conversation ids
    notifications: list[int] = field(default_factory=list)
    conversations: set[int] = field(default_factory=set)  # changed: for realtime events


async def sweep(session: AsyncSession, now: datetime, batch: int = 20_000) -> SweepResult:
    """Remind and escalate what is due, each exactly once however many workers sweep at once:
    rows are claimed with SKIP LOCKED and leave the sweep's index once handled."""
    result = SweepResult()
    for _ in range(50):  # bounded: 50 batches per sweep, the rest waits for the next run
        if await sweep_tasks(session, now, batch, result) < batch:
            break
    await sweep_resolutions(session, now, result)
    return result


async def sweep_tasks(session: AsyncSession, now: datetime, batch: int, out: SweepResult) -> int:
    rows = (
        await session.execute(
            select(
                TaskSla.task_id,
                TaskSla.reminded_at,
                TaskSla.escalated_at,
                Task.status,
                Task.due_at,
                Task.assignee_id,
                Task.team_id,
                Task.conversation_id,
                Task.priority,
                Task.title,
                Team.lead_id,
            )
            .join(Task, Task.id == TaskSla.task_id)
            .outerjoin(Team, Team.id == Task.team_id)
            .where(TaskSla.next_check_at <= now)
            .order_by(TaskSla.next_check_at)
            .limit(batch)
            .with_for_update(of=TaskSla, skip_locked=True)
        )
    ).all()
    settled: list[int] = []
    reminded: list[Any] = []
    escalated: list[Any] = []
    for r in rows:
        if r.status != "open" or r.due_at is None or r.escalated_at is not None:
            settled.append(r.task_id)
        elif r.due_at <= now:
            escalated.append(r)
        elif r.reminded_at is None:
            reminded.append(r)
        else:
            settled.append(r.task_id)  # reminded, not yet due: wait for the due time
    if settled:
        await session.execute(
            update(TaskSla)
            .where(TaskSla.task_id.in_(settled))
            .values(
                next_check_at=select(Task.due_at)
                .where(
                    Task.id == TaskSla.task_id,
                    Task.status == "open",
                    TaskSla.escalated_at.is_(None),
                    Task.due_at > now,
                )
                .scalar_subquery()
            )
        )
    notes: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    if reminded:
        ids = [r.task_id for r in reminded]
        await session.execute(
            update(TaskSla)
            .where(TaskSla.task_id.in_(ids))
            .values(
                reminded_at=now,
                next_check_at=select(Task.due_at)
                .where(Task.id == TaskSla.task_id)
                .scalar_subquery(),
            )
        )
        for r in reminded:
            for user_id in {r.assignee_id or r.lead_id} - {None}:
                notes.append(note(user_id, "reminder", r, due_at=r.due_at.isoformat()))
        out.reminded.extend(ids)
    if escalated:
        ids = [r.task_id for r in escalated]
        await session.execute(
            update(TaskSla)
            .where(TaskSla.task_id.in_(ids))
            .values(escalated_at=now, next_check_at=None)
        )
        await session.execute(
            update(Task).where(Task.id.in_(ids)).values(priority=raised(Task.priority))
        )
        conversation_ids = {r.conversation_id for r in escalated} - {None}
        if conversation_ids:
            await session.execute(
                update(Conversation)
                .where(Conversation.id.in_(conversation_ids))
                .values(priority=raised(Conversation.priority))
            )
        for r in escalated:
            for user_id in {r.assignee_id, r.lead_id} - {None}:
                notes.append(
                    note(
                        user_id, "breach", r, due_at=r.due_at.isoformat(), lead=user_id == r.lead_id
                    )
                )
            if r.conversation_id is not None:
                history.append(
                    {
                        "conversation_id": r.conversation_id,
                        "actor_id": None,
                        "action": "escalated",
                        "data": {
                            "task_id": r.task_id,
                            "due_at": r.due_at.isoformat(),
                            "priority": RAISED.get(r.priority, r.priority),
                            "notified": sorted({r.assignee_id, r.lead_id} - {None}),
                        },
                        "created_at": now,
                    }
                )
                out.conversations.add(r.conversation_id)
        out.escalated.extend(ids)
    await save(session, notes, history, now, out)
    return len(rows)


async def sweep_resolutions(session: AsyncSession, now: datetime, out: SweepResult) -> None:
    """Record resolutions that came in time; escalate open conversations past their target."""
    await session.execute(
        update(ConversationSla)
        .where(
            ConversationSla.conversation_id == Conversation.id,
            ConversationSla.resolution_breached_at.is_(None),
            ConversationSla.resolved_at.is_(None),
            ConversationSla.resolution_due_at <= now,
            Conversation.status == "resolved",
        )
        .values(resolved_at=func.coalesce(Conversation.resolved_at, now))
    )
    breached = (
        await session.execute(
            update(ConversationSla)
            .where(
                ConversationSla.conversation_id == Conversation.id,
                ConversationSla.resolution_breached_at.is_(None),
                ConversationSla.resolved_at.is_(None),
                ConversationSla.resolution_due_at <= now,
                Conversation.status != "resolved",
            )
            .values(resolution_breached_at=now)
            .returning(
                ConversationSla.conversation_id,
                ConversationSla.resolution_due_at,
                Conversation.assignee_id,
                Conversation.team_id,
            )
        )
    ).all()
    if not breached:
        return
    leads = dict(
        (
            await session.execute(
                select(Team.id, Team.lead_id).where(Team.id.in_({b.team_id for b in breached}))
            )
        ).all()
    )
    notes, history = [], []
    for b in breached:
        lead = leads.get(b.team_id)
        for user_id in {b.assignee_id, lead} - {None}:
            notes.append(
                {
                    "user_id": user_id,
                    "kind": "resolution_breach",
                    "conversation_id": b.conversation_id,
                    "task_id": None,
                    "data": {"due_at": b.resolution_due_at.isoformat()},
                }
            )
        history.append(
            {
                "conversation_id": b.conversation_id,
                "actor_id": None,
                "action": "resolution_overdue",
                "data": {"due_at": b.resolution_due_at.isoformat()},
                "created_at": now,
            }
        )
        out.resolution_breached.append(b.conversation_id)
        out.conversations.add(b.conversation_id)
    await save(session, notes, history, now, out)


def raised(column: Any) -> Any:
    return case({"low": "normal", "normal": "high", "high": "urgent"}, value=column, else_="urgent")


def note(user_id: int, kind: str, row: Any, **data: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "kind": kind,
        "conversation_id": row.conversation_id,
        "task_id": row.task_id,
        "data": {"title": row.title, **data},
    }


async def save(
    session: AsyncSession,
    notes: Sequence[dict[str, Any]],
    history: Sequence[dict[str, Any]],
    now: datetime,
    out: SweepResult,
) -> None:
    if notes:
        ids = (
            await session.scalars(
                insert(Notification).returning(Notification.id),
                [n | {"created_at": now} for n in notes],
            )
        ).all()
        out.notifications.extend(ids)
    if history:
        await session.execute(insert(HistoryEntry), list(history))
