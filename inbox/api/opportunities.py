"""REST routes of the sales pipeline: pipelines and their stages, opportunities (list, create,
update and move through stages with a history), and the weighted value per stage and owner."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.lists import Invalid
from crm.models import Contact, Relation, User
from crm.opportunities import (
    CLOSED_DAYS,
    Draft,
    Opportunity,
    Pipeline,
    StageChange,
    StageSpec,
    board_ids,
    create_opportunity,
    create_pipeline,
    default_pipeline,
    make_default,
    pipeline_value,
    replace_stages,
    update_opportunity,
)
from inbox.access import Principal, visible_opportunities
from inbox.api.router import API, ApiError, ApiRequest, decode_cursor, encode_cursor, not_found
from inbox.models import Channel
from inbox.schemas import Out

STAFF = ("admin", "manager")
Outcome = Literal["open", "won", "lost"]


class StageOut(Out):
    id: int
    code: str
    name: str
    position: int
    probability: int
    outcome: str


class PipelineOut(Out):
    id: int
    name: str
    is_default: bool
    stages: list[StageOut]


class PipelineList(BaseModel):
    items: list[PipelineOut]


class StageIn(BaseModel):
    id: int | None = None  # an existing stage to keep; without it a new one
    code: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1, max_length=100)
    probability: int = Field(ge=0, le=100)
    outcome: Outcome = "open"


class PipelineIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    is_default: bool = False
    stages: list[StageIn] = Field(min_length=1, max_length=30)


class PipelinePatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    is_default: Literal[True] | None = None  # another pipeline stops being the default
    stages: list[StageIn] | None = Field(default=None, min_length=1, max_length=30)


class OpportunityFields(BaseModel):
    """What a new opportunity may have and an update may change (empty: not given)."""

    pipeline_id: int | None = None
    stage_id: int | None = None
    probability: int | None = Field(default=None, ge=0, le=100)  # the stage's when empty
    expected_close_date: date | None = None
    owner_id: int | None = None
    team_id: int | None = None
    relation_id: int | None = None
    contact_id: int | None = None
    source: str | None = Field(default=None, max_length=40)  # a code of the lead_sources list
    lost_reason: str | None = Field(default=None, max_length=500)


class OpportunityIn(OpportunityFields):
    name: str = Field(min_length=1, max_length=300)
    amount: Decimal = Field(default=Decimal(0), ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(default="EUR", pattern="^[A-Z]{3}$")
    lead_id: int | None = None
    source_channel_id: str | None = Field(default=None, max_length=32)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class OpportunityPatch(OpportunityFields):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")
    custom_fields: dict[str, Any] | None = None


class OpportunityOut(Out):
    id: int
    name: str
    pipeline_id: int
    stage_id: int
    status: str
    amount: float
    currency: str
    probability: int
    weighted: float = 0.0
    expected_close_date: date | None
    owner_id: int | None
    team_id: int | None
    relation_id: int | None
    contact_id: int | None
    lead_id: int | None
    source_channel_id: str | None
    source: str | None
    lost_reason: str | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    custom_fields: dict[str, Any]


class StageChangeOut(Out):
    from_stage_id: int | None
    from_stage: str | None
    to_stage_id: int | None
    to_stage: str
    probability: int
    user_id: int | None
    created_at: datetime


class OpportunityDetail(OpportunityOut):
    history: list[StageChangeOut] = Field(default_factory=list)


class OpportunityPage(BaseModel):
    items: list[OpportunityOut]
    next_cursor: str | None


class OpportunityQuery(BaseModel):
    pipeline_id: int | None = None
    stage_id: int | None = None
    status: Literal["open", "won", "lost", "all"] = "all"
    owner_id: int | None = None
    relation_id: int | None = None
    team_id: int | None = None
    cursor: str | None = None
    limit: int = Field(default=100, ge=1, le=500)


class StageValueOut(Out):
    stage_id: int
    name: str
    outcome: str
    probability: int
    count: int
    amount: float
    weighted: float


class OwnerValueOut(Out):
    owner_id: int | None
    name: str | None
    count: int
    amount: float
    weighted: float


class PipelineValue(BaseModel):
    pipeline_id: int
    stages: list[StageValueOut]
    owners: list[OwnerValueOut]
    open_amount: float
    open_weighted: float


def out(opportunity: Opportunity) -> OpportunityOut:
    result = OpportunityOut.model_validate(opportunity)
    result.weighted = round(float(opportunity.amount) * opportunity.probability / 100, 2)
    return result


def specs(stages: list[StageIn]) -> list[StageSpec]:
    return [StageSpec(**s.model_dump()) for s in stages]


# --- pipelines ---------------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/pipelines",
    summary="Pipelines with their stages in order (the default first)",
    tag="opportunities",
    response=PipelineList,
)
async def list_pipelines(req: ApiRequest) -> PipelineList:
    async with req.sessions() as session, session.begin():
        await default_pipeline(session)
        rows = (
            await session.scalars(
                select(Pipeline).order_by(
                    Pipeline.is_default.desc(), Pipeline.position, Pipeline.id
                )
            )
        ).all()
        return PipelineList(items=[PipelineOut.model_validate(p) for p in rows])


@API.route(
    "POST",
    "/api/pipelines",
    summary="Create a pipeline with its stages",
    tag="opportunities",
    roles=STAFF,
    body=PipelineIn,
    response=PipelineOut,
    status=201,
)
async def add_pipeline(req: ApiRequest) -> PipelineOut:
    body: PipelineIn = req.body
    async with req.sessions() as session, session.begin():
        pipeline = await create_pipeline(session, body.name, specs(body.stages), body.is_default)
        return PipelineOut.model_validate(pipeline)


@API.route(
    "PATCH",
    "/api/pipelines/{pipeline_id}",
    summary="Rename a pipeline, make it the default or replace its stages (kept ones by id)",
    tag="opportunities",
    roles=STAFF,
    body=PipelinePatch,
    response=PipelineOut,
)
async def edit_pipeline(req: ApiRequest) -> PipelineOut:
    body: PipelinePatch = req.body
    async with req.sessions() as session, session.begin():
        pipeline = await session.get(Pipeline, req.path_int("pipeline_id"), with_for_update=True)
        if pipeline is None:
            raise not_found("pipeline")
        if body.name and body.name != pipeline.name:
            if await session.scalar(select(Pipeline.id).where(Pipeline.name == body.name)):
                raise Invalid("name", "a pipeline of this name exists")
            pipeline.name = body.name
        if body.stages is not None:
            await replace_stages(session, pipeline, specs(body.stages))
        if body.is_default:
            await make_default(session, pipeline)
        await session.flush()
        return PipelineOut.model_validate(pipeline)


class ValueQuery(BaseModel):
    closed_days: int = Field(default=CLOSED_DAYS, ge=1, le=3660)


@API.route(
    "GET",
    "/api/pipelines/{pipeline_id}/value",
    summary="Count, amount and weighted value per stage (won and lost: closed in the last"
    " closed_days), and of the open opportunities per owner",
    tag="opportunities",
    query=ValueQuery,
    response=PipelineValue,
)
async def get_pipeline_value(req: ApiRequest) -> PipelineValue:
    pipeline_id = req.path_int("pipeline_id")
    async with req.sessions() as session:
        if await session.get(Pipeline, pipeline_id) is None:
            raise not_found("pipeline")
    stages, owners = await pipeline_value(
        req.sessions, pipeline_id, visible_opportunities(req.principal), req.query.closed_days
    )
    open_stages = [s for s in stages if s.outcome == "open"]
    return PipelineValue(
        pipeline_id=pipeline_id,
        stages=[StageValueOut.model_validate(s) for s in stages],
        owners=[OwnerValueOut.model_validate(o) for o in owners],
        open_amount=float(sum(s.amount for s in open_stages)),
        open_weighted=float(sum(s.weighted for s in open_stages)),
    )


# --- opportunities -----------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/opportunities",
    summary="Opportunities the caller may see, newest first",
    tag="opportunities",
    query=OpportunityQuery,
    response=OpportunityPage,
)
async def list_opportunities(req: ApiRequest) -> OpportunityPage:
    q: OpportunityQuery = req.query
    query = select(Opportunity).where(visible_opportunities(req.principal))
    for name in ("pipeline_id", "stage_id", "owner_id", "relation_id", "team_id"):
        if (value := getattr(q, name)) is not None:
            query = query.where(getattr(Opportunity, name) == value)
    if q.status != "all":
        query = query.where(Opportunity.status == q.status)
    if (cursor := decode_cursor(q.cursor)) is not None:
        query = query.where(Opportunity.id < int(cursor[0]))
    async with req.sessions() as session:
        rows = list(
            (await session.scalars(query.order_by(Opportunity.id.desc()).limit(q.limit + 1))).all()
        )
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return OpportunityPage(
        items=[out(o) for o in rows], next_cursor=encode_cursor(rows[-1].id) if more else None
    )


@API.route(
    "GET",
    "/api/opportunities/{opportunity_id}",
    summary="An opportunity with its stage history",
    tag="opportunities",
    response=OpportunityDetail,
)
async def get_opportunity(req: ApiRequest) -> OpportunityDetail:
    async with req.sessions() as session:
        opportunity = await load(req, session)
        changes = (
            await session.scalars(
                select(StageChange)
                .where(StageChange.opportunity_id == opportunity.id)
                .order_by(StageChange.id)
            )
        ).all()
    return OpportunityDetail(
        **out(opportunity).model_dump(),
        history=[StageChangeOut.model_validate(c) for c in changes],
    )


@API.route(
    "POST",
    "/api/opportunities",
    summary="Create an opportunity (the default pipeline's first stage unless given)",
    tag="opportunities",
    body=OpportunityIn,
    response=OpportunityOut,
    status=201,
)
async def add_opportunity(req: ApiRequest) -> OpportunityOut:
    body: OpportunityIn = req.body
    p = req.principal
    draft = Draft(**body.model_dump())
    if draft.owner_id is None:
        draft.owner_id = p.user_id
    async with req.sessions() as session, session.begin():
        await check_channel(session, draft.source_channel_id)
        opportunity = await create_opportunity(session, draft, p.user_id)
        within_scope(p, opportunity)
    return out(opportunity)


@API.route(
    "PATCH",
    "/api/opportunities/{opportunity_id}",
    summary="Update an opportunity; a new stage_id moves it (recorded in its history)",
    tag="opportunities",
    body=OpportunityPatch,
    response=OpportunityOut,
)
async def edit_opportunity(req: ApiRequest) -> OpportunityOut:
    body: OpportunityPatch = req.body
    changes = body.model_dump(exclude_unset=True)
    for name in ("name", "amount", "currency", "custom_fields"):
        if name in changes and changes[name] is None:
            raise Invalid(name, "this field cannot be emptied")
    async with req.sessions() as session, session.begin():
        opportunity = await load(req, session, lock=True)
        await update_opportunity(session, opportunity, changes, req.principal.user_id)
        within_scope(req.principal, opportunity)
    return out(opportunity)


async def load(req: ApiRequest, session: AsyncSession, lock: bool = False) -> Opportunity:
    """The opportunity of the path, if the caller may see it."""
    query = select(Opportunity).where(
        Opportunity.id == req.path_int("opportunity_id"), visible_opportunities(req.principal)
    )
    opportunity = await session.scalar(query.with_for_update() if lock else query)
    if opportunity is None:
        raise not_found("opportunity")
    return opportunity


def within_scope(p: Principal, opportunity: Opportunity) -> None:
    """An agent cannot create or hand an opportunity to where they would not see it."""
    if p.role in STAFF:
        return
    if opportunity.owner_id != p.user_id and opportunity.team_id not in p.team_ids:
        raise ApiError(403, "forbidden", "the opportunity would be outside your teams")


async def check_channel(session: AsyncSession, channel_id: str | None) -> None:
    if channel_id is not None and await session.get(Channel, channel_id) is None:
        raise Invalid("source_channel_id", "no such channel")


async def stages_of(session: AsyncSession, pipeline_id: int | None) -> Pipeline:
    """A pipeline (the default one when none is named) with its stages."""
    if pipeline_id is None:
        return await default_pipeline(session)
    pipeline = await session.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise Invalid("pipeline_id", "no such pipeline")
    return pipeline


# --- the board of the web inbox ----------------------------------------------------------------


class BoardCard(OpportunityOut):
    relation_name: str | None = None
    contact_name: str | None = None
    owner_name: str | None = None


class Board(BaseModel):
    pipeline: PipelineOut
    value: PipelineValue
    cards: list[BoardCard]


BOARD_PER_STAGE = 50  # cards per stage: the most recently changed


class BoardQuery(BaseModel):
    closed_days: int = Field(default=CLOSED_DAYS, ge=1, le=3660)


@API.route(
    "GET",
    "/api/pipelines/{pipeline_id}/board",
    summary="A pipeline's board: its stages with their value and each stage's latest opportunities",
    tag="opportunities",
    query=BoardQuery,
    response=Board,
)
async def get_board(req: ApiRequest) -> Board:
    pipeline_id = req.path_int("pipeline_id")
    # The sums and the cards are read at once, on connections of their own.
    value = asyncio.ensure_future(get_pipeline_value(req))
    try:
        shown, cards = await board_cards(req, pipeline_id)
        return Board(pipeline=shown, value=await value, cards=cards)
    finally:  # a refusal of either: the other is stopped, and its outcome taken
        value.cancel()
        await asyncio.gather(value, return_exceptions=True)


async def board_cards(req: ApiRequest, pipeline_id: int) -> tuple[PipelineOut, list[BoardCard]]:
    visible = visible_opportunities(req.principal)
    async with req.sessions() as session:
        pipeline = await session.get(Pipeline, pipeline_id)
        if pipeline is None:
            raise not_found("pipeline")
        shown = PipelineOut.model_validate(pipeline)
        ids = await board_ids(session, pipeline_id, visible, BOARD_PER_STAGE, req.query.closed_days)
        rows = (
            await session.execute(
                select(
                    *Opportunity.__table__.columns,
                    Relation.name.label("relation_name"),
                    Contact.full_name.label("contact_name"),
                    User.name.label("owner_name"),
                )
                .outerjoin(Relation, Relation.id == Opportunity.relation_id)
                .outerjoin(Contact, Contact.id == Opportunity.contact_id)
                .outerjoin(User, User.id == Opportunity.owner_id)
                .where(Opportunity.id.in_(ids))
                .order_by(Opportunity.updated_at.desc(), Opportunity.id.desc())
            )
        ).mappings()
    # Plain rows, not ORM objects: a board has a few hundred cards.
    cards = [
        BoardCard.model_validate(
            {**row, "weighted": round(float(row["amount"]) * row["probability"] / 100, 2)}
        )
        for row in rows
    ]
    return shown, cards
