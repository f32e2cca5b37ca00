"""REST routes of SLAs: the policies (targets per priority), the business-hours calendars with
their holidays, and a conversation's SLA with its due times and breaches."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.access import visible_conversations
from inbox.api.router import API, ApiError, ApiRequest, not_found
from inbox.models import Conversation
from inbox.routing.models import BusinessCalendar, ConversationSla, Holiday, SlaPolicy
from inbox.routing.sla import WEEKDAYS, Hours, zone
from inbox.schemas import Out

ADMIN = ("admin",)
STAFF = ("admin", "manager")


Priority = Literal["low", "normal", "high", "urgent"]


def now() -> datetime:
    return datetime.now(UTC)


# --- wire types -----------------------------------------------------------------------------------


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


class ConversationSlaOut(Out):
    conversation_id: int
    policy_id: int | None
    priority: str
    started_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    resolution_breached_at: datetime | None
    resolved_at: datetime | None


# --- SLA policies ---------------------------------------------------------------------------------


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


# --- business hours -------------------------------------------------------------------------------


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


# --- a conversation's SLA -------------------------------------------------------------------------


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
