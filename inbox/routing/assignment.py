"""Who gets new work: the relation's account manager when available, else a team member by the
team's strategy (round-robin or least-loaded, with skills and languages), else the team queue.

Available means active, not away, not on leave and within working hours (the person's, else the
team's; none set: always). Assignment within a team happens under a per-team advisory lock, so
two workers never pick from the same stale picture: no double assignment, no skipped turn, no one
over capacity, and the queue is served in arrival order before anything new."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Relation, Task, Team, TeamMember, User
from inbox.history import record
from inbox.models import Conversation
from inbox.routing.models import Absence, AgentProfile, Notification, QueueEntry, TeamRouting
from inbox.routing.sla import Hours, cache

log = structlog.get_logger(__name__)

LOCK_NAMESPACE = 7412
LOCK_WAIT_S = 5.0
LOADED_STATUSES = ("open", "pending")  # conversations that count against capacity


@dataclass(frozen=True)
class Needs:
    """What the person must bring: skills (all of them) and a language."""

    skills: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class Assignment:
    user_id: int | None
    team_id: int | None
    reason: str


@dataclass(frozen=True)
class Candidate:
    user_id: int
    rotation: int
    load: int
    capacity: int
    skills: frozenset[str]
    languages: frozenset[str]


async def assign(
    session: AsyncSession,
    *,
    relation_id: int | None,
    team_id: int | None,
    now: datetime,
    conversation_id: int | None = None,
    needs: Needs = Needs(),
) -> Assignment:
    """Account manager first when present and available, else the team's strategy; with a
    conversation, an unassignable one waits in the team queue (behind earlier arrivals)."""
    if relation_id is not None:
        managers = await account_managers(session, [relation_id], now)
        row = managers[relation_id]
        if row is not None and Hours.from_json(row.working_hours).is_open(now):
            return Assignment(row.account_manager_id, row.team_id or team_id, "account manager")
    if team_id is None:
        return Assignment(None, None, "no team")
    if not await lock_team(session, team_id):
        if conversation_id is not None:
            await enqueue(session, conversation_id, team_id, relation_id, needs, now)
        return Assignment(None, team_id, "team queue (team busy)")
    strategy = await strategy_of(session, team_id)
    if conversation_id is not None and await queue_length(session, team_id):
        await drain_team(session, team_id, now, locked=True)
        if await queue_length(session, team_id):
            await enqueue(session, conversation_id, team_id, relation_id, needs, now)
            return Assignment(None, team_id, "team queue")
    user_id = await pick(session, team_id, now, needs, strategy)
    if user_id is None:
        if conversation_id is not None:
            await enqueue(session, conversation_id, team_id, relation_id, needs, now)
        return Assignment(None, team_id, "team queue")
    return Assignment(user_id, team_id, strategy.replace("_", "-"))


async def account_managers(
    session: AsyncSession, relation_ids: list[int], now: datetime
) -> dict[int, Any]:
    """Each relation's account manager who is active, not away and not on leave (None if not),
    looked up once per transaction for all the relations asked at once."""
    known = cache(session)
    wanted = sorted({r for r in relation_ids if ("account_manager", r) not in known})
    if wanted:
        rows = (
            await session.execute(
                select(
                    Relation.id, Relation.account_manager_id, Relation.team_id, User.working_hours
                )
                .join(User, User.id == Relation.account_manager_id)
                .where(Relation.id.in_(wanted), User.is_active, ~User.away, ~on_leave(now))
            )
        ).all()
        found = {row.id: row for row in rows}
        for r in wanted:
            known[("account_manager", r)] = found.get(r)
    return {r: known[("account_manager", r)] for r in relation_ids}


async def next_in_rotation(session: AsyncSession, team_id: int, now: datetime) -> int | None:
    """The available member whose turn it is (round-robin), taking the turn."""
    if not await lock_team(session, team_id):
        return None
    return await pick(session, team_id, now, Needs(), "round_robin")


def on_leave(now: datetime) -> Any:
    return exists().where(
        Absence.user_id == User.id, Absence.starts_at <= now, Absence.ends_at > now
    )


async def lock_team(session: AsyncSession, team_id: int, wait_s: float = LOCK_WAIT_S) -> bool:
    """Hold the team's assignment lock until the transaction ends. Polls a try-lock instead of
    blocking, so two transactions that lock teams in opposite order give up instead of
    deadlocking; whoever gives up queues the work for the next drain."""
    if cache(session).get(("team_lock", team_id)):
        return True  # held until the transaction ends (a rolled-back savepoint forgets it)
    deadline = time.monotonic() + wait_s
    delay = 0.005
    while True:
        got = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:ns, :key)"),
            {"ns": LOCK_NAMESPACE, "key": team_id % 2**31},
        )
        if got:
            cache(session)[("team_lock", team_id)] = True
            return True
        if time.monotonic() >= deadline:
            log.warning("team lock not acquired", team_id=team_id)
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def strategy_of(session: AsyncSession, team_id: int) -> str:
    key = ("strategy", team_id)
    if key not in cache(session):
        cache(session)[key] = await session.scalar(
            select(TeamRouting.strategy).where(TeamRouting.team_id == team_id)
        )
    return str(cache(session)[key] or "round_robin")


async def candidates(session: AsyncSession, team_id: int, now: datetime) -> list[Candidate]:
    """Members who are active, present and within working hours, with their current load: read
    once per transaction (under the team lock nobody else assigns in the team meanwhile) and
    kept current by `pick`."""
    key = ("candidates", team_id)
    if key not in cache(session):
        cache(session)[key] = await load_candidates(session, team_id, now)
    people: list[Candidate] = cache(session)[key]
    return people


def forget_loads(session: AsyncSession) -> None:
    """Someone's load went down (a conversation left them): read the teams again when asked."""
    for key in [k for k in cache(session) if k[0] == "candidates"]:
        del cache(session)[key]


async def load_candidates(session: AsyncSession, team_id: int, now: datetime) -> list[Candidate]:
    open_conversations = (
        select(func.count())
        .where(
            Conversation.assignee_id == TeamMember.user_id,
            Conversation.status.in_(LOADED_STATUSES),
        )
        .scalar_subquery()
    )
    loose_tasks = (
        select(func.count())
        .where(
            Task.assignee_id == TeamMember.user_id,
            Task.status == "open",
            Task.conversation_id.is_(None),
        )
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(
                TeamMember.user_id,
                TeamMember.rotation,
                User.capacity,
                User.working_hours,
                User.language,
                Team.working_hours.label("team_hours"),
                AgentProfile.skills,
                AgentProfile.languages,
                (open_conversations + loose_tasks).label("load"),
            )
            .join(User, User.id == TeamMember.user_id)
            .join(Team, Team.id == TeamMember.team_id)
            .outerjoin(AgentProfile, AgentProfile.user_id == TeamMember.user_id)
            .where(TeamMember.team_id == team_id, User.is_active, ~User.away, ~on_leave(now))
        )
    ).all()
    out = []
    hours_cache: dict[str, Hours] = {}
    for r in rows:
        spec = r.working_hours or r.team_hours or {}
        key = repr(sorted(spec.items()))
        hours = hours_cache.get(key) or hours_cache.setdefault(key, Hours.from_json(spec))
        if not hours.is_open(now):
            continue
        languages = set(r.languages or ()) | ({r.language} if r.language else set())
        out.append(
            Candidate(
                r.user_id,
                r.rotation,
                int(r.load),
                r.capacity,
                frozenset(r.skills or ()),
                frozenset(x.lower() for x in languages),
            )
        )
    return out


def choose(people: list[Candidate], needs: Needs, strategy: str) -> Candidate | None:
    """The next person by the strategy among those with room who bring what is needed."""
    room = [p for p in people if p.load < p.capacity]
    fit = [
        p
        for p in room
        if set(needs.skills) <= p.skills
        and (needs.language is None or needs.language.lower() in p.languages)
    ]
    if not fit:
        return None
    if strategy == "least_loaded":
        return min(fit, key=lambda p: (p.load / max(p.capacity, 1), p.rotation, p.user_id))
    return min(fit, key=lambda p: (p.rotation, p.user_id))


def relaxed(needs: Needs, everyone: list[Candidate]) -> Needs:
    """Drop a need nobody in the team could ever meet, so such work does not wait forever."""
    skills = tuple(s for s in needs.skills if any(s in p.skills for p in everyone))
    language = needs.language
    if language and not any(language.lower() in p.languages for p in everyone):
        language = None
    return Needs(skills, language)


async def pick(
    session: AsyncSession, team_id: int, now: datetime, needs: Needs, strategy: str
) -> int | None:
    """Choose and take the turn: the chosen member goes to the back of the rotation."""
    people = await candidates(session, team_id, now)
    if needs.skills or needs.language:
        needs = relaxed(needs, await team_skills(session, team_id))
    chosen = choose(people, needs, strategy)
    if chosen is None:
        return None
    rotation = await session.scalar(
        update(TeamMember)
        .where(TeamMember.team_id == team_id, TeamMember.user_id == chosen.user_id)
        .values(rotation=func.nextval("team_rotation_seq"), last_assigned_at=now)
        .returning(TeamMember.rotation)
    )
    for key, members in cache(session).items():  # the person's new turn and load, in every team
        if key[0] == "candidates":
            members[:] = [
                replace(p, load=p.load + 1, rotation=rotation if key[1] == team_id else p.rotation)
                if p.user_id == chosen.user_id
                else p
                for p in members
            ]
    return chosen.user_id


async def team_skills(session: AsyncSession, team_id: int) -> list[Candidate]:
    """Every active member's skills and languages, present or not."""
    rows = (
        await session.execute(
            select(TeamMember.user_id, User.language, AgentProfile.skills, AgentProfile.languages)
            .join(User, User.id == TeamMember.user_id)
            .outerjoin(AgentProfile, AgentProfile.user_id == TeamMember.user_id)
            .where(TeamMember.team_id == team_id, User.is_active)
        )
    ).all()
    return [
        Candidate(
            r.user_id,
            0,
            0,
            0,
            frozenset(r.skills or ()),
            frozenset(
                x.lower() for x in set(r.languages or ()) | ({r.language} if r.language else set())
            ),
        )
        for r in rows
    ]


# --- the team queue ---------------------------------------------------------------------------


async def enqueue(
    session: AsyncSession,
    conversation_id: int,
    team_id: int,
    relation_id: int | None,
    needs: Needs,
    now: datetime,
) -> None:
    existing = await session.scalar(
        select(QueueEntry.id).where(QueueEntry.conversation_id == conversation_id)
    )
    if existing is not None:
        return
    queue_changed(session)
    session.add(
        QueueEntry(
            conversation_id=conversation_id,
            team_id=team_id,
            relation_id=relation_id,
            skills=list(needs.skills),
            language=needs.language,
            queued_at=now,
        )
    )
    await session.flush()
    record(session, conversation_id, "queued", None, team_id=team_id)


async def queue_length(session: AsyncSession, team_id: int) -> int:
    """The team's queue (read once per transaction while nothing is queued or taken off)."""
    key = ("queue_length", team_id)
    if key not in cache(session):
        cache(session)[key] = int(
            await session.scalar(
                select(func.count()).select_from(QueueEntry).where(QueueEntry.team_id == team_id)
            )
            or 0
        )
    length: int = cache(session)[key]
    return length


def queue_changed(session: AsyncSession) -> None:
    for key in [k for k in cache(session) if k[0] == "queue_length"]:
        del cache(session)[key]


DRAIN_CHUNK = 20


async def drain_team(
    session: AsyncSession, team_id: int, now: datetime, *, locked: bool = False
) -> list[tuple[int, int]]:
    """Assign queued conversations in arrival order while someone has room; returns
    (conversation, person) pairs. Stops at the first entry nobody can take."""
    if not locked and not await lock_team(session, team_id, wait_s=0):
        return []
    queue_changed(session)
    strategy = await strategy_of(session, team_id)
    done: list[tuple[int, int]] = []
    after = 0
    while True:
        # A few entries at a time: when nobody has room the first one stops the drain, so a
        # long queue costs one small read, not a read of the whole queue.
        entries = (
            await session.execute(
                select(QueueEntry, Conversation.status, Conversation.assignee_id)
                .join(Conversation, Conversation.id == QueueEntry.conversation_id)
                .where(QueueEntry.team_id == team_id, QueueEntry.id > after)
                .order_by(QueueEntry.id)
                .limit(DRAIN_CHUNK)
            )
        ).all()
        if not entries:
            break
        for entry, status, assignee_id in entries:
            after = entry.id
            if status == "resolved" or assignee_id is not None:
                await session.delete(entry)  # answered or taken by hand meanwhile
                continue
            user_id = await pick(
                session, team_id, now, Needs(tuple(entry.skills), entry.language), strategy
            )
            if user_id is None:
                await session.flush()
                return done
            await give(session, entry.conversation_id, user_id, team_id, now, "team queue")
            await session.delete(entry)
            done.append((entry.conversation_id, user_id))
    await session.flush()
    return done


async def give(
    session: AsyncSession,
    conversation_id: int,
    user_id: int,
    team_id: int | None,
    now: datetime,
    reason: str,
) -> None:
    """Hand a waiting conversation and its open tasks to a person, tell them, note it."""
    await session.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(assignee_id=user_id)
    )
    await session.execute(
        update(Task)
        .where(Task.conversation_id == conversation_id, Task.status == "open")
        .values(assignee_id=user_id)
    )
    record(
        session,
        conversation_id,
        "assign",
        None,
        after={"assignee_id": user_id, "team_id": team_id},
        reason=reason,
    )
    session.add(
        Notification(
            user_id=user_id,
            kind="assigned",
            conversation_id=conversation_id,
            data={"reason": reason},
            created_at=now,
        )
    )


async def waiting_teams(session: AsyncSession) -> list[int]:
    return list(
        await session.scalars(select(QueueEntry.team_id).distinct().order_by(QueueEntry.team_id))
    )


async def drain_all(session: AsyncSession, now: datetime) -> list[tuple[int, int]]:
    """Drain every team's queue whose lock is free (a busy team drains itself)."""
    done: list[tuple[int, int]] = []
    for team_id in await waiting_teams(session):
        done.extend(await drain_team(session, team_id, now))
    return done


async def unqueue(session: AsyncSession, conversation_id: int) -> None:
    result = await session.execute(
        delete(QueueEntry).where(QueueEntry.conversation_id == conversation_id)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        queue_changed(session)
