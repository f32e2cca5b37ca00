"""REST routes of routing and SLAs: rules, SLA policies, business hours, team strategies and
queues, people's availability, notifications and a conversation's SLA."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Team, TeamMember, User
from inbox.access import visible_conversations
from inbox.api.router import API, ApiError, ApiRequest, not_found
from inbox.models import Conversation
from inbox.routing.assignment import drain_team
from inbox.routing.models import (
    RULE_EVENTS,
    STRATEGIES,
    Absence,
    AgentProfile,
    BusinessCalendar,
    ConversationSla,
    Holiday,
    Notification,
    QueueEntry,
    RoutingRule,
    SlaPolicy,
    TeamRouting,
)
from inbox.routing.rules import ACTIONS, FIELDS, OPS, Facts, Rule, decide
from inbox.routing.sla import WEEKDAYS, Hours, zone

ADMIN = ("admin",)
STAFF = ("admin", "manager")

Priority = Literal["low", "normal", "high", "urgent"]


def now() -> datetime:
    return datetime.now(UTC)


# --- wire types -------------------------------------------------------------------------------


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ConditionIn(BaseModel):
    field: str
    op: str = "eq"
    value: Any = None

    @model_validator(mode="after")
    def known(self) -> ConditionIn:
        if self.field not in FIELDS:
            raise ValueError(f"unknown field {self.field!r}; one of {', '.join(FIELDS)}")
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; one of {', '.join(OPS)}")
        if self.op == "matches":
            try:
                re.compile(str(self.value))
            except re.error as exc:
                raise ValueError(f"bad pattern: {exc}") from None
        return self


REQUIRED = {
    "set_team": "team_id",
    "assign_user": "user_id",
    "set_priority": "priority",
    "set_sla": "policy_id",
    "add_labels": "labels",
    "acknowledge": "text",
}


class ActionIn(BaseModel):
    type: str
    team_id: int | None = None
    user_id: int | None = None
    priority: Priority | None = None
    policy_id: int | None = None
    labels: list[str] | None = Field(default=None, max_length=20)
    enabled: bool | None = None
    text: str | None = Field(default=None, max_length=5000)
    subject: str | None = Field(default=None, max_length=500)
    skills: list[str] | None = Field(default=None, max_length=20)
    language: str | None = Field(default=None, max_length=5)

    @model_validator(mode="after")
    def complete(self) -> ActionIn:
        if self.type not in ACTIONS:
            raise ValueError(f"unknown action {self.type!r}; one of {', '.join(ACTIONS)}")
        needed = REQUIRED.get(self.type)
        if needed and getattr(self, needed) in (None, "", []):
            raise ValueError(f"{self.type} needs {needed}")
        return self


class RuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    position: int = 0
    is_active: bool = True
    events: list[str] = Field(default_factory=lambda: ["conversation.created"], min_length=1)
    match: Literal["all", "any"] = "all"
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=50)
    actions: list[ActionIn] = Field(min_length=1, max_length=20)

    @field_validator("events")
    @classmethod
    def known_events(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e not in RULE_EVENTS]
        if unknown:
            raise ValueError(f"unknown events {unknown}; one of {', '.join(RULE_EVENTS)}")
        return value


class RuleOut(Out):
    id: int
    name: str
    position: int
    is_active: bool
    events: list[str]
    match: str
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]


class RuleTestIn(BaseModel):
    """Facts to try the rules on, without a conversation."""

    event: str = "conversation.created"
    channel_kind: str = "email"
    channel_id: str = ""
    message_kind: str | None = "message"
    sender_known: bool = False
    relation_status: str | None = None
    abc_class: str | None = None
    categories: list[str] = Field(default_factory=list)
    region: str | None = None
    account_manager_id: int | None = None
    subject: str = ""
    body: str = ""
    language: str | None = None
    within_business_hours: bool = True
    priority: Priority = "normal"
    labels: list[str] = Field(default_factory=list)


Targets = dict[Priority, dict[Literal["first_response", "resolution"], int]]


class SlaPolicyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    business_hours: bool = True
    calendar_id: int | None = None
    targets: Targets
    remind_before_minutes: int = Field(default=30, ge=0, le=10080)
    is_default: bool = False

    @field_validator("targets")
    @classmethod
    def positive(cls, value: Targets) -> Targets:
        for level, kinds in value.items():
            for kind, minutes in kinds.items():
                if minutes <= 0:
                    raise ValueError(f"{level}.{kind} must be positive minutes")
        return value


class SlaPolicyOut(Out):
    id: int
    name: str
    business_hours: bool
    calendar_id: int | None
    targets: dict[str, dict[str, int]]
    remind_before_minutes: int
    is_default: bool


Week = dict[str, list[tuple[str, str]]]


def check_week(value: Week) -> Week:
    for day, spans in value.items():
        if day not in WEEKDAYS:
            raise ValueError(f"unknown day {day!r}; one of {', '.join(WEEKDAYS)}")
        for start, end in spans:
            for t in (start, end):
                h, _, m = t.partition(":")
                if not (h.isdigit() and m.isdigit() and (int(h), int(m)) <= (24, 0)):
                    raise ValueError(f"{day}: {t!r} is not HH:MM")
                if int(m) > 59:
                    raise ValueError(f"{day}: {t!r} is not HH:MM")
            if end != "24:00" and end <= start:
                raise ValueError(f"{day}: {start}-{end} ends before it starts")
    return value


class HolidayIn(BaseModel):
    day: date
    name: str = Field(default="", max_length=200)


class CalendarIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "Europe/Amsterdam"
    hours: Week = Field(default_factory=dict)
    holidays: list[HolidayIn] = Field(default_factory=list, max_length=1000)
    is_default: bool = False

    @field_validator("hours")
    @classmethod
    def valid_week(cls, value: Week) -> Week:
        return check_week(value)

    @field_validator("timezone")
    @classmethod
    def valid_zone(cls, value: str) -> str:
        if zone(value).key != value:
            raise ValueError(f"unknown time zone {value!r}")
        return value


class CalendarOut(BaseModel):
    id: int
    name: str
    timezone: str
    hours: dict[str, Any]
    holidays: list[HolidayIn]
    is_default: bool
    open_now: bool


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


class NotificationOut(Out):
    id: int
    kind: str
    conversation_id: int | None
    task_id: int | None
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class ConversationSlaOut(Out):
    conversation_id: int
    policy_id: int | None
    priority: str
    started_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    resolution_breached_at: datetime | None
    resolved_at: datetime | None


# --- rules ------------------------------------------------------------------------------------


@API.route(
    "GET", "/api/routing/rules", summary="Routing rules in order", tag="routing", roles=STAFF
)
async def list_rules(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        rows = (
            await session.scalars(
                select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)
            )
        ).all()
    return [RuleOut.model_validate(r).model_dump(mode="json") for r in rows]


def rule_values(body: RuleIn) -> dict[str, Any]:
    return {
        "name": body.name,
        "position": body.position,
        "is_active": body.is_active,
        "events": list(dict.fromkeys(body.events)),
        "match": body.match,
        "conditions": [c.model_dump() for c in body.conditions],
        "actions": [a.model_dump(exclude_none=True) for a in body.actions],
    }


@API.route(
    "POST",
    "/api/routing/rules",
    summary="Add a routing rule",
    tag="routing",
    roles=ADMIN,
    body=RuleIn,
    response=RuleOut,
    status=201,
)
async def create_rule(req: ApiRequest) -> RuleOut:
    async with req.sessions() as session, session.begin():
        await check_references(session, req.body)
        rule = RoutingRule(**rule_values(req.body))
        session.add(rule)
        await session.flush()
    return RuleOut.model_validate(rule)


@API.route(
    "PUT",
    "/api/routing/rules/{rule_id}",
    summary="Change a routing rule",
    tag="routing",
    roles=ADMIN,
    body=RuleIn,
    response=RuleOut,
)
async def update_rule(req: ApiRequest) -> RuleOut:
    async with req.sessions() as session, session.begin():
        rule = await session.get(RoutingRule, req.path_int("rule_id"), with_for_update=True)
        if rule is None:
            raise not_found("rule")
        await check_references(session, req.body)
        for name, value in rule_values(req.body).items():
            setattr(rule, name, value)
    return RuleOut.model_validate(rule)


@API.route(
    "DELETE",
    "/api/routing/rules/{rule_id}",
    summary="Remove a routing rule",
    tag="routing",
    roles=ADMIN,
)
async def delete_rule(req: ApiRequest) -> dict[str, Any]:
    async with req.sessions() as session, session.begin():
        gone = await session.execute(
            delete(RoutingRule).where(RoutingRule.id == req.path_int("rule_id"))
        )
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise not_found("rule")
    return {"deleted": True}


@API.route(
    "POST",
    "/api/routing/test",
    summary="Which rules match these facts, and what they decide",
    tag="routing",
    roles=STAFF,
    body=RuleTestIn,
)
async def test_rules(req: ApiRequest) -> dict[str, Any]:
    body: RuleTestIn = req.body
    facts = Facts(
        **body.model_dump(exclude={"categories", "labels"}),
        categories=tuple(body.categories),
        labels=tuple(body.labels),
    )
    async with req.sessions() as session:
        rows = (
            await session.scalars(
                select(RoutingRule)
                .where(RoutingRule.is_active, RoutingRule.events.contains([body.event]))
                .order_by(RoutingRule.position, RoutingRule.id)
            )
        ).all()
    d = decide([Rule.of(r) for r in rows], facts)
    return {
        "rules": d.rules,
        "team_id": d.team_id,
        "user_id": d.user_id,
        "priority": d.priority,
        "sla_policy_id": d.sla_policy_id,
        "labels": d.labels,
        "bot": d.bot,
        "acknowledge": d.acknowledge is not None,
        "skills": d.skills,
        "language": d.language,
    }


async def check_references(session: AsyncSession, body: RuleIn) -> None:
    for a in body.actions:
        for model, value, what in (
            (Team, a.team_id, "team"),
            (User, a.user_id, "user"),
            (SlaPolicy, a.policy_id, "SLA policy"),
        ):
            if value is not None and await session.get(model, value) is None:
                raise ApiError(422, "invalid", f"no such {what}: {value}")


# --- SLA policies -----------------------------------------------------------------------------


@API.route("GET", "/api/sla/policies", summary="SLA policies", tag="sla", roles=STAFF)
async def list_policies(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        rows = (await session.scalars(select(SlaPolicy).order_by(SlaPolicy.id))).all()
    return [SlaPolicyOut.model_validate(r).model_dump(mode="json") for r in rows]


async def save_policy(session: AsyncSession, policy: SlaPolicy, body: SlaPolicyIn) -> None:
    if (
        body.calendar_id is not None
        and await session.get(BusinessCalendar, body.calendar_id) is None
    ):
        raise ApiError(422, "invalid", "no such business-hours calendar")
    if body.is_default:
        await clear_default(session, SlaPolicy, policy.id)
    policy.name, policy.business_hours = body.name, body.business_hours
    policy.calendar_id, policy.is_default = body.calendar_id, body.is_default
    policy.targets = {level: dict(kinds) for level, kinds in body.targets.items()}
    policy.remind_before_minutes = body.remind_before_minutes


async def clear_default(session: AsyncSession, model: Any, keep_id: int | None) -> None:
    for row in (await session.scalars(select(model).where(model.is_default))).all():
        if row.id != keep_id:
            row.is_default = False
    await session.flush()


@API.route(
    "POST",
    "/api/sla/policies",
    summary="Add an SLA policy",
    tag="sla",
    roles=ADMIN,
    body=SlaPolicyIn,
    response=SlaPolicyOut,
    status=201,
)
async def create_policy(req: ApiRequest) -> SlaPolicyOut:
    async with req.sessions() as session, session.begin():
        await unique_name(session, SlaPolicy, req.body.name, None)
        policy = SlaPolicy()
        await save_policy(session, policy, req.body)
        session.add(policy)
        await session.flush()
    return SlaPolicyOut.model_validate(policy)


@API.route(
    "PUT",
    "/api/sla/policies/{policy_id}",
    summary="Change an SLA policy",
    tag="sla",
    roles=ADMIN,
    body=SlaPolicyIn,
    response=SlaPolicyOut,
)
async def update_policy(req: ApiRequest) -> SlaPolicyOut:
    async with req.sessions() as session, session.begin():
        policy = await session.get(SlaPolicy, req.path_int("policy_id"), with_for_update=True)
        if policy is None:
            raise not_found("SLA policy")
        await unique_name(session, SlaPolicy, req.body.name, policy.id)
        await save_policy(session, policy, req.body)
    return SlaPolicyOut.model_validate(policy)


@API.route(
    "DELETE",
    "/api/sla/policies/{policy_id}",
    summary="Remove an SLA policy",
    tag="sla",
    roles=ADMIN,
)
async def delete_policy(req: ApiRequest) -> dict[str, Any]:
    async with req.sessions() as session, session.begin():
        gone = await session.execute(
            delete(SlaPolicy).where(SlaPolicy.id == req.path_int("policy_id"))
        )
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise not_found("SLA policy")
    return {"deleted": True}


async def unique_name(session: AsyncSession, model: Any, name: str, own_id: int | None) -> None:
    other = await session.scalar(select(model.id).where(model.name == name))
    if other is not None and other != own_id:
        raise ApiError(409, "exists", f"the name {name!r} is taken")


# --- business hours ---------------------------------------------------------------------------


async def calendar_out(session: AsyncSession, c: BusinessCalendar) -> CalendarOut:
    days = (
        await session.execute(
            select(Holiday.day, Holiday.name)
            .where(Holiday.calendar_id == c.id)
            .order_by(Holiday.day)
        )
    ).all()
    hours = Hours.from_json(c.hours, [d.day for d in days], tz=c.timezone)
    return CalendarOut(
        id=c.id,
        name=c.name,
        timezone=c.timezone,
        hours=c.hours,
        holidays=[HolidayIn(day=d.day, name=d.name) for d in days],
        is_default=c.is_default,
        open_now=hours.is_open(now()),
    )


@API.route("GET", "/api/business-hours", summary="Business-hour calendars", tag="sla", roles=STAFF)
async def list_calendars(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        rows = (await session.scalars(select(BusinessCalendar).order_by(BusinessCalendar.id))).all()
        return [(await calendar_out(session, c)).model_dump(mode="json") for c in rows]


async def save_calendar(session: AsyncSession, c: BusinessCalendar, body: CalendarIn) -> None:
    if body.is_default:
        await clear_default(session, BusinessCalendar, c.id)
    c.name, c.timezone, c.is_default = body.name, body.timezone, body.is_default
    c.hours = {day: [list(span) for span in spans] for day, spans in body.hours.items()}
    session.add(c)
    await session.flush()
    await session.execute(delete(Holiday).where(Holiday.calendar_id == c.id))
    seen: set[date] = set()
    for h in body.holidays:
        if h.day not in seen:
            seen.add(h.day)
            session.add(Holiday(calendar_id=c.id, day=h.day, name=h.name))
    await session.flush()


@API.route(
    "POST",
    "/api/business-hours",
    summary="Add a business-hours calendar with holidays",
    tag="sla",
    roles=ADMIN,
    body=CalendarIn,
    response=CalendarOut,
    status=201,
)
async def create_calendar(req: ApiRequest) -> CalendarOut:
    async with req.sessions() as session, session.begin():
        await unique_name(session, BusinessCalendar, req.body.name, None)
        calendar = BusinessCalendar()
        await save_calendar(session, calendar, req.body)
        return await calendar_out(session, calendar)


@API.route(
    "PUT",
    "/api/business-hours/{calendar_id}",
    summary="Change a calendar (its holidays are replaced)",
    tag="sla",
    roles=ADMIN,
    body=CalendarIn,
    response=CalendarOut,
)
async def update_calendar(req: ApiRequest) -> CalendarOut:
    async with req.sessions() as session, session.begin():
        calendar = await session.get(
            BusinessCalendar, req.path_int("calendar_id"), with_for_update=True
        )
        if calendar is None:
            raise not_found("calendar")
        await unique_name(session, BusinessCalendar, req.body.name, calendar.id)
        await save_calendar(session, calendar, req.body)
        return await calendar_out(session, calendar)


@API.route(
    "DELETE",
    "/api/business-hours/{calendar_id}",
    summary="Remove a calendar",
    tag="sla",
    roles=ADMIN,
)
async def delete_calendar(req: ApiRequest) -> dict[str, Any]:
    async with req.sessions() as session, session.begin():
        gone = await session.execute(
            delete(BusinessCalendar).where(BusinessCalendar.id == req.path_int("calendar_id"))
        )
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise not_found("calendar")
    return {"deleted": True}


# --- people and teams -------------------------------------------------------------------------


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


# --- notifications and a conversation's SLA ---------------------------------------------------


@API.route("GET", "/api/notifications", summary="My latest notifications", tag="routing")
async def list_notifications(req: ApiRequest) -> list[dict[str, Any]]:
    unread = req.request.query.get("unread") in ("1", "true", "yes")
    query = select(Notification).where(Notification.user_id == req.principal.user_id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    async with req.sessions() as session:
        rows = (await session.scalars(query.order_by(Notification.id.desc()).limit(100))).all()
    return [NotificationOut.model_validate(n).model_dump(mode="json") for n in rows]


@API.route(
    "POST",
    "/api/notifications/{notification_id}/read",
    summary="Mark a notification read",
    tag="routing",
    response=NotificationOut,
)
async def read_notification(req: ApiRequest) -> NotificationOut:
    async with req.sessions() as session, session.begin():
        n = await session.get(Notification, req.path_int("notification_id"), with_for_update=True)
        if n is None or n.user_id != req.principal.user_id:
            raise not_found("notification")
        n.read_at = n.read_at or now()
    return NotificationOut.model_validate(n)


@API.route(
    "GET",
    "/api/conversations/{conversation_id}/sla",
    summary="The conversation's SLA: policy, due times, breaches",
    tag="sla",
    response=ConversationSlaOut,
)
async def conversation_sla(req: ApiRequest) -> ConversationSlaOut:
    async with req.sessions() as session:
        visible = await session.scalar(
            select(Conversation.id).where(
                Conversation.id == req.path_int("conversation_id"),
                visible_conversations(req.principal),
            )
        )
        row = await session.get(ConversationSla, visible) if visible is not None else None
    if row is None:
        raise not_found("SLA")
    return ConversationSlaOut.model_validate(row)
