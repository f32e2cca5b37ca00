"""REST routes of who can take work: a person's availability (away, capacity, working hours,
absences, skills, languages, notification settings) and a team's strategy, lead, hours and queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Team, TeamMember, User
from inbox.api.router import API, ApiError, ApiRequest, not_found
from inbox.api.sla import check_week
from inbox.routing.assignment import drain_team
from inbox.routing.models import STRATEGIES, Absence, AgentProfile, QueueEntry, TeamRouting
from inbox.routing.sla import Hours, zone
from inbox.schemas import Out

ADMIN = ("admin",)
STAFF = ("admin", "manager")


def now() -> datetime:
    return datetime.now(UTC)


# --- wire types -----------------------------------------------------------------------------------


class AbsenceIn(BaseModel):
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def ordered(self) -> AbsenceIn:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("times need a time zone")
        if self.ends_at <= self.starts_at:
            raise ValueError("an absence ends after it starts")
        return self


class NotifyIn(BaseModel):
    email: str | None = Field(default=None, max_length=320)
    telegram_chat_id: str | None = Field(default=None, max_length=40)
    kinds: list[str] | None = None


class AvailabilityIn(BaseModel):
    """Only the fields sent change; `absences` replaces the person's future absences."""

    away: bool | None = None
    capacity: int | None = Field(default=None, ge=0, le=1000)
    working_hours: dict[str, Any] | None = None
    skills: list[str] | None = Field(default=None, max_length=50)
    languages: list[str] | None = Field(default=None, max_length=20)
    absences: list[AbsenceIn] | None = Field(default=None, max_length=100)
    notify: NotifyIn | None = None

    @field_validator("working_hours")
    @classmethod
    def valid_hours(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        tz = value.get("tz")
        if tz is not None and zone(str(tz)).key != tz:
            raise ValueError(f"unknown time zone {tz!r}")
        check_week({k: v for k, v in value.items() if k != "tz"})
        return value


class AvailabilityOut(BaseModel):
    user_id: int
    away: bool
    capacity: int
    working_hours: dict[str, Any]
    skills: list[str]
    languages: list[str]
    absences: list[AbsenceIn]
    notify: dict[str, Any]
    available_now: bool
    assigned_to_queue: int = 0


class TeamRoutingIn(BaseModel):
    strategy: Literal["round_robin", "least_loaded"] | None = None
    lead_id: int | None = None
    working_hours: dict[str, Any] | None = None


class TeamRoutingOut(BaseModel):
    team_id: int
    strategy: str
    lead_id: int | None
    working_hours: dict[str, Any]
    queued: int


class QueueItemOut(Out):
    conversation_id: int
    team_id: int
    queued_at: datetime
    skills: list[str]
    language: str | None


# --- people and teams -----------------------------------------------------------------------------


async def load_person(session: AsyncSession, req: ApiRequest, lock: bool = False) -> User:
    """Staff see everyone; an agent only themselves (others look absent, not forbidden)."""
    user_id = req.path_int("user_id")
    if req.principal.role == "agent" and user_id != req.principal.user_id:
        raise not_found("user")
    user = await session.get(User, user_id, with_for_update=lock)
    if user is None:
        raise not_found("user")
    return user


async def availability_out(session: AsyncSession, user: User, at: datetime) -> AvailabilityOut:
    profile = await session.get(AgentProfile, user.id)
    absences = (
        await session.scalars(
            select(Absence)
            .where(Absence.user_id == user.id, Absence.ends_at > at)
            .order_by(Absence.starts_at)
        )
    ).all()
    absent = any(a.starts_at <= at < a.ends_at for a in absences)
    return AvailabilityOut(
        user_id=user.id,
        away=user.away,
        capacity=user.capacity,
        working_hours=user.working_hours,
        skills=list(profile.skills) if profile else [],
        languages=list(profile.languages) if profile else [],
        absences=[
            AbsenceIn(starts_at=a.starts_at, ends_at=a.ends_at, reason=a.reason) for a in absences
        ],
        notify=dict(profile.notify) if profile else {},
        available_now=user.is_active
        and not user.away
        and not absent
        and Hours.from_json(user.working_hours).is_open(at),
    )


@API.route(
    "GET",
    "/api/users/{user_id}/availability",
    summary="A person's availability, skills and notification settings",
    tag="routing",
    response=AvailabilityOut,
)
async def get_availability(req: ApiRequest) -> AvailabilityOut:
    async with req.sessions() as session:
        user = await load_person(session, req)
        return await availability_out(session, user, now())


@API.route(
    "PUT",
    "/api/users/{user_id}/availability",
    summary="Set away, working hours, absences, skills, languages, notifications",
    tag="routing",
    body=AvailabilityIn,
    response=AvailabilityOut,
)
async def set_availability(req: ApiRequest) -> AvailabilityOut:
    body: AvailabilityIn = req.body
    if body.capacity is not None and req.principal.role not in STAFF:
        raise ApiError(422, "invalid", "only an admin or manager sets capacity")
    at = now()
    async with req.sessions() as session, session.begin():
        user = await load_person(session, req, lock=True)
        if body.away is not None:
            user.away = body.away
        if body.capacity is not None:
            user.capacity = body.capacity
        if body.working_hours is not None:
            user.working_hours = body.working_hours
        profile = await session.get(AgentProfile, user.id)
        if profile is None:
            profile = AgentProfile(user_id=user.id, skills=[], languages=[], notify={})
            session.add(profile)
        if body.skills is not None:
            profile.skills = sorted({s.strip()[:60] for s in body.skills if s.strip()})
        if body.languages is not None:
            profile.languages = sorted({x.strip().lower()[:5] for x in body.languages if x.strip()})
        if body.notify is not None:
            profile.notify = body.notify.model_dump(exclude_none=True)
        if body.absences is not None:
            await session.execute(
                delete(Absence).where(Absence.user_id == user.id, Absence.ends_at > at)
            )
            for a in body.absences:
                session.add(
                    Absence(
                        user_id=user.id, starts_at=a.starts_at, ends_at=a.ends_at, reason=a.reason
                    )
                )
        await session.flush()
        # Someone back or with more room: their teams' queues move now, not at the next drain.
        assigned = 0
        team_ids = (
            await session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user.id))
        ).all()
        for team_id in team_ids:
            assigned += len(await drain_team(session, team_id, at))
        out = await availability_out(session, user, at)
    out.assigned_to_queue = assigned
    return out


async def load_team(session: AsyncSession, req: ApiRequest) -> Team:
    team = await session.get(Team, req.path_int("team_id"))
    p = req.principal
    if team is None or (p.role == "agent" and team.id not in p.team_ids):
        raise not_found("team")
    return team


async def team_routing_out(session: AsyncSession, team: Team) -> TeamRoutingOut:
    strategy = await session.scalar(
        select(TeamRouting.strategy).where(TeamRouting.team_id == team.id)
    )
    queued = await session.scalar(
        select(QueueEntry.id).where(QueueEntry.team_id == team.id).limit(1)
    )
    count = (
        len(
            (
                await session.scalars(select(QueueEntry.id).where(QueueEntry.team_id == team.id))
            ).all()
        )
        if queued
        else 0
    )
    return TeamRoutingOut(
        team_id=team.id,
        strategy=strategy or STRATEGIES[0],
        lead_id=team.lead_id,
        working_hours=team.working_hours,
        queued=count,
    )


@API.route(
    "GET",
    "/api/teams/{team_id}/routing",
    summary="A team's strategy, lead, hours and queue length",
    tag="routing",
    response=TeamRoutingOut,
)
async def get_team_routing(req: ApiRequest) -> TeamRoutingOut:
    async with req.sessions() as session:
        return await team_routing_out(session, await load_team(session, req))


@API.route(
    "PUT",
    "/api/teams/{team_id}/routing",
    summary="Set a team's strategy, lead and working hours",
    tag="routing",
    roles=ADMIN,
    body=TeamRoutingIn,
    response=TeamRoutingOut,
)
async def set_team_routing(req: ApiRequest) -> TeamRoutingOut:
    body: TeamRoutingIn = req.body
    async with req.sessions() as session, session.begin():
        team = await load_team(session, req)
        if body.strategy is not None:
            row = await session.get(TeamRouting, team.id)
            if row is None:
                session.add(TeamRouting(team_id=team.id, strategy=body.strategy))
            else:
                row.strategy = body.strategy
        if "lead_id" in body.model_fields_set:
            if body.lead_id is not None and await session.get(User, body.lead_id) is None:
                raise ApiError(422, "invalid", "no such user")
            team.lead_id = body.lead_id
        if body.working_hours is not None:
            AvailabilityIn(working_hours=body.working_hours)  # same validation as a person's
            team.working_hours = body.working_hours
        await session.flush()
        return await team_routing_out(session, team)


@API.route(
    "GET",
    "/api/teams/{team_id}/queue",
    summary="Conversations waiting for someone in the team, in arrival order",
    tag="routing",
)
async def team_queue(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        team = await load_team(session, req)
        rows = (
            await session.scalars(
                select(QueueEntry).where(QueueEntry.team_id == team.id).order_by(QueueEntry.id)
            )
        ).all()
    return [QueueItemOut.model_validate(r).model_dump(mode="json") for r in rows]
