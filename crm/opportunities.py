"""Opportunities: pipelines of ordered stages with a default probability each, the deals that move
through them with a history of every stage move, and the weighted value of a pipeline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    UniqueConstraint,
    func,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.base import Base, Json, Sessions, Timestamped
from crm.lists import Invalid, check_record_fields, require_value
from crm.models import Contact, Lead, Relation, Team, TeamMember, User, one_of

OUTCOMES = ("open", "won", "lost")  # what reaching a stage means for the opportunity
PROBABILITY = "probability BETWEEN 0 AND 100"
DEFAULT_PIPELINE = "Verkoop"
# (code, name, probability, outcome) of the pipeline every installation starts with.
DEFAULT_STAGES = (
    ("nieuw", "Nieuw", 10, "open"),
    ("offerte", "Offerte", 40, "open"),
    ("onderhandeling", "Onderhandeling", 70, "open"),
    ("gewonnen", "Gewonnen", 100, "won"),
    ("verloren", "Verloren", 0, "lost"),
)


class Pipeline(Timestamped, Base):
    """A sales process: its stages in order."""

    __tablename__ = "pipelines"
    __table_args__ = (
        # At most one default pipeline: the one conversions and new opportunities use.
        Index(
            "ix_pipelines_one_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200), unique=True)
    is_default: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    position: Mapped[int] = mapped_column(default=0)

    stages: Mapped[list[PipelineStage]] = relationship(
        order_by="PipelineStage.position", cascade="all, delete-orphan", lazy="selectin"
    )


class PipelineStage(Timestamped, Base):
    """One step of a pipeline with the probability an opportunity gets on reaching it."""

    __tablename__ = "pipeline_stages"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "code"),
        # The target of the opportunities' (pipeline_id, stage_id) key: a stage of its pipeline.
        UniqueConstraint("pipeline_id", "id"),
        CheckConstraint(PROBABILITY, name="probability_range"),
        one_of("outcome", OUTCOMES),
    )

    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(default=0)
    probability: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str] = mapped_column(String(10), default="open")


class Opportunity(Timestamped, Base):
    """A possible deal with a relation/contact, in one stage of one pipeline."""

    __tablename__ = "opportunities"
    __table_args__ = (
        # A stage of another pipeline cannot be stored, whatever the code above does.
        ForeignKeyConstraint(
            ["pipeline_id", "stage_id"],
            ["pipeline_stages.pipeline_id", "pipeline_stages.id"],
            name="fk_opportunities_stage_of_pipeline",
        ),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(PROBABILITY, name="probability_range"),
        one_of("status", OUTCOMES),
        # The value of a pipeline: its open opportunities and those closed lately, read from
        # the index alone; the board: a stage's most recently changed opportunities.
        Index(
            "ix_opportunities_open_value",
            "pipeline_id",
            "stage_id",
            postgresql_include=["amount", "probability", "owner_id", "team_id"],
            postgresql_where=text("status = 'open'"),
        ),
        Index(
            "ix_opportunities_closed_value",
            "pipeline_id",
            "closed_at",
            postgresql_include=["stage_id", "amount", "probability", "owner_id", "team_id"],
            postgresql_where=text("status <> 'open'"),
        ),
        Index("ix_opportunities_stage_recent", "stage_id", "updated_at", "id"),
        # The relation dashboard: a relation's open opportunities.
        Index(
            "ix_opportunities_open_relation",
            "relation_id",
            postgresql_where=text("status = 'open'"),
        ),
    )

    name: Mapped[str] = mapped_column(String(300))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(10), default="open")  # the stage's outcome
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    probability: Mapped[int] = mapped_column(default=0)  # the stage's default unless set
    expected_close_date: Mapped[date | None]
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    relation_id: Mapped[int | None] = mapped_column(ForeignKey("relations.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True
    )  # the lead it came from
    source_channel_id: Mapped[str | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    source: Mapped[str | None] = mapped_column(String(40))  # a code of the lead_sources list
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    custom_fields: Mapped[Json] = mapped_column(default=dict)


class StageChange(Timestamped, Base):
    """A stage an opportunity entered (from_stage_id empty when it was created), who moved it
    and when (created_at); stage names are kept in case a stage is later removed."""

    __tablename__ = "opportunity_stage_changes"

    opportunity_id: Mapped[int] = mapped_column(
        ForeignKey("opportunities.id", ondelete="CASCADE"), index=True
    )
    from_stage_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipeline_stages.id", ondelete="SET NULL")
    )
    to_stage_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipeline_stages.id", ondelete="SET NULL")
    )
    from_stage: Mapped[str | None] = mapped_column(String(100))
    to_stage: Mapped[str] = mapped_column(String(100))
    probability: Mapped[int]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


async def default_pipeline(session: AsyncSession) -> Pipeline:
    """The default pipeline; the first use of an empty installation creates it with its stages."""
    query = select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.position, Pipeline.id)
    pipeline = await session.scalar(query.limit(1))
    if pipeline is not None:
        return pipeline
    new_id = await session.scalar(
        insert(Pipeline)
        .values(name=DEFAULT_PIPELINE, is_default=True)
        .on_conflict_do_nothing()
        .returning(Pipeline.id)
    )
    if new_id is not None:  # not created meanwhile by a concurrent first use
        await session.execute(
            insert(PipelineStage).values(
                [
                    {
                        "pipeline_id": new_id,
                        "code": c,
                        "name": n,
                        "probability": p,
                        "outcome": o,
                        "position": i,
                    }
                    for i, (c, n, p, o) in enumerate(DEFAULT_STAGES)
                ]
            )
        )
    pipeline = await session.scalar(query.limit(1))
    assert pipeline is not None
    return pipeline


async def stage_in(session: AsyncSession, pipeline_id: int, stage_id: int) -> PipelineStage:
    stage = await session.get(PipelineStage, stage_id)
    if stage is None:
        raise Invalid("stage_id", "no such stage")
    if stage.pipeline_id != pipeline_id:
        raise Invalid("stage_id", "this stage belongs to another pipeline")
    return stage


async def first_stage(session: AsyncSession, pipeline_id: int) -> PipelineStage:
    stage = await session.scalar(
        select(PipelineStage)
        .where(PipelineStage.pipeline_id == pipeline_id)
        .order_by(PipelineStage.position, PipelineStage.id)
        .limit(1)
    )
    if stage is None:
        raise Invalid("pipeline_id", "this pipeline has no stages")
    return stage


@dataclass
class Draft:
    """What a new opportunity is made of; empty pipeline and stage mean the default's first."""

    name: str
    pipeline_id: int | None = None
    stage_id: int | None = None
    amount: Decimal = Decimal(0)
    currency: str = "EUR"
    probability: int | None = None
    expected_close_date: date | None = None
    owner_id: int | None = None
    team_id: int | None = None
    relation_id: int | None = None
    contact_id: int | None = None
    lead_id: int | None = None
    source_channel_id: str | None = None
    source: str | None = None
    lost_reason: str | None = None
    custom_fields: Json = field(default_factory=dict)


async def create_opportunity(
    session: AsyncSession, draft: Draft, user_id: int | None
) -> Opportunity:
    """Validate and add an opportunity in its first stage, with that stage in its history."""
    if not draft.name.strip():
        raise Invalid("name", "an opportunity needs a name")
    if draft.pipeline_id is None:
        pipeline_id = (await default_pipeline(session)).id
    elif await session.get(Pipeline, draft.pipeline_id) is None:
        raise Invalid("pipeline_id", "no such pipeline")
    else:
        pipeline_id = draft.pipeline_id
    stage = (
        await stage_in(session, pipeline_id, draft.stage_id)
        if draft.stage_id is not None
        else await first_stage(session, pipeline_id)
    )
    values = {k: v for k, v in vars(draft).items() if k not in ("pipeline_id", "stage_id")}
    opportunity = Opportunity(pipeline_id=pipeline_id, stage_id=stage.id, custom_fields={})
    await apply(session, opportunity, values)
    enter(opportunity, stage, draft.probability)
    session.add(opportunity)
    await session.flush()
    session.add(history(opportunity, None, stage, user_id))
    await session.flush()
    await session.refresh(opportunity)  # the times the database set
    return opportunity


async def update_opportunity(
    session: AsyncSession, opportunity: Opportunity, changes: Json, user_id: int | None
) -> None:
    """Apply a partial update; a new stage (or pipeline) is a move recorded in the history."""
    pipeline_id = changes.pop("pipeline_id", None) or opportunity.pipeline_id
    stage_id = changes.pop("stage_id", None)
    if pipeline_id != opportunity.pipeline_id and await session.get(Pipeline, pipeline_id) is None:
        raise Invalid("pipeline_id", "no such pipeline")
    if stage_id is None and pipeline_id != opportunity.pipeline_id:
        stage: PipelineStage | None = await first_stage(session, pipeline_id)
    elif stage_id is not None and stage_id != opportunity.stage_id:
        stage = await stage_in(session, pipeline_id, stage_id)
    else:
        stage = None
    probability = changes.pop("probability", None)
    await apply(session, opportunity, changes)
    if stage is not None:
        before = await session.get(PipelineStage, opportunity.stage_id)
        opportunity.pipeline_id = pipeline_id
        enter(opportunity, stage, probability)
        session.add(history(opportunity, before, stage, user_id))
    elif probability is not None:
        opportunity.probability = probability
    opportunity.updated_at = func.now()
    await session.flush()
    await session.refresh(opportunity)  # the times the database set


def enter(opportunity: Opportunity, stage: PipelineStage, probability: int | None) -> None:
    """The opportunity reaches a stage: its probability (unless given), outcome and close time."""
    opportunity.stage_id = stage.id
    opportunity.probability = stage.probability if probability is None else probability
    closing = stage.outcome != "open"
    if closing and opportunity.status in (None, "open"):  # None: not yet stored
        opportunity.closed_at = func.now()
    elif not closing:
        opportunity.closed_at = None
    if stage.outcome != "lost":
        opportunity.lost_reason = None
    opportunity.status = stage.outcome


def history(
    opportunity: Opportunity,
    before: PipelineStage | None,
    stage: PipelineStage,
    user_id: int | None,
) -> StageChange:
    return StageChange(
        opportunity_id=opportunity.id,
        from_stage_id=before.id if before else None,
        from_stage=before.name if before else None,
        to_stage_id=stage.id,
        to_stage=stage.name,
        probability=opportunity.probability,
        user_id=user_id,
    )


REFERENCES = {
    "owner_id": User,
    "relation_id": Relation,
    "contact_id": Contact,
    "lead_id": Lead,
    "team_id": Team,
}


async def apply(session: AsyncSession, opportunity: Opportunity, values: Json) -> None:
    """Set fields after checking them: references exist, the contact is at the relation, the
    source is a listed lead source, the custom fields are defined and of their type."""
    for name, model in REFERENCES.items():
        if values.get(name) is not None and await session.get(model, values[name]) is None:
            raise Invalid(name, f"no such {name.removesuffix('_id')}")
    if values.get("amount") is not None and values["amount"] < 0:
        raise Invalid("amount", "the amount cannot be negative")
    if "name" in values and not (values["name"] or "").strip():
        raise Invalid("name", "an opportunity needs a name")
    if "source" in values:
        await require_value(session, "lead_sources", values["source"], "source")
    if "custom_fields" in values:
        values["custom_fields"] = await check_record_fields(
            session, "opportunity", values["custom_fields"] or {}, opportunity.custom_fields
        )
    for name, value in values.items():
        setattr(opportunity, name, value)
    if opportunity.contact_id is not None:
        contact = await session.get(Contact, opportunity.contact_id)
        if contact is not None and contact.relation_id is not None:
            if opportunity.relation_id is None:
                opportunity.relation_id = contact.relation_id
            elif opportunity.relation_id != contact.relation_id:
                raise Invalid("contact_id", "this contact is at another relation")
    if opportunity.team_id is None:
        opportunity.team_id = await default_team(session, opportunity)


async def default_team(session: AsyncSession, opportunity: Opportunity) -> int | None:
    """The relation's team, else the owner's first team: who else may see it."""
    if opportunity.relation_id is not None:
        team = await session.scalar(
            select(Relation.team_id).where(Relation.id == opportunity.relation_id)
        )
        if team is not None:
            return team
    if opportunity.owner_id is None:
        return None
    return await session.scalar(
        select(func.min(TeamMember.team_id)).where(TeamMember.user_id == opportunity.owner_id)
    )


@dataclass
class StageValue:
    stage_id: int
    name: str
    outcome: str
    probability: int
    count: int
    amount: Decimal
    weighted: Decimal


@dataclass
class OwnerValue:
    owner_id: int | None
    name: str | None
    count: int
    amount: Decimal
    weighted: Decimal


WEIGHTED = func.coalesce(func.sum(Opportunity.amount * Opportunity.probability / 100), 0)
AMOUNT = func.coalesce(func.sum(Opportunity.amount), 0)
CLOSED_DAYS = 90  # won and lost opportunities count on a pipeline's value and board this long


def closed_since(days: int = CLOSED_DAYS) -> ColumnElement[datetime]:
    return func.now() - func.make_interval(0, 0, 0, days)


def on_board(since: ColumnElement[datetime]) -> ColumnElement[bool]:
    return or_(Opportunity.status == "open", Opportunity.closed_at >= since)


async def pipeline_value(
    sessions: Sessions,
    pipeline_id: int,
    visible: ColumnElement[bool] | None = None,
    closed_days: int = CLOSED_DAYS,
) -> tuple[list[StageValue], list[OwnerValue]]:
    """Count, amount and weighted amount (amount x probability) per stage of the pipeline (won
    and lost ones closed in the last closed_days), and of its open opportunities per owner, over
    the opportunities the caller may see. (The two sums are read at once, on two connections:
    tens of thousands of rows each on a busy pipeline.)"""
    seen = true() if visible is None else visible
    columns = (Opportunity.stage_id, Opportunity.amount, Opportunity.probability)
    # Two index-only reads (open; closed lately) rather than one OR over the whole pipeline.
    rows = union_all(
        select(*columns).where(
            Opportunity.pipeline_id == pipeline_id, Opportunity.status == "open", seen
        ),
        select(*columns).where(
            Opportunity.pipeline_id == pipeline_id,
            Opportunity.status != "open",
            Opportunity.closed_at >= closed_since(closed_days),
            seen,
        ),
    ).subquery()
    per_stage = (
        select(
            rows.c.stage_id,
            func.count().label("count"),
            func.coalesce(func.sum(rows.c.amount), 0).label("amount"),
            func.coalesce(func.sum(rows.c.amount * rows.c.probability / 100), 0).label("weighted"),
        )
        .group_by(rows.c.stage_id)
        .subquery()
    )
    by_stage = (
        select(PipelineStage, per_stage.c.count, per_stage.c.amount, per_stage.c.weighted)
        .outerjoin(per_stage, per_stage.c.stage_id == PipelineStage.id)
        .where(PipelineStage.pipeline_id == pipeline_id)
        .order_by(PipelineStage.position, PipelineStage.id)
    )
    by_owner = (
        select(
            Opportunity.owner_id,
            User.name,
            func.count().label("count"),
            AMOUNT.label("amount"),
            WEIGHTED.label("weighted"),
        )
        .outerjoin(User, User.id == Opportunity.owner_id)
        .where(Opportunity.pipeline_id == pipeline_id, Opportunity.status == "open", seen)
        .group_by(Opportunity.owner_id, User.name)
        .order_by(WEIGHTED.desc())
    )

    async def read(statement: Any) -> list[Any]:
        async with sessions() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return list((await session.execute(statement)).all())

    stages, owners = await asyncio.gather(read(by_stage), read(by_owner))
    return (
        [
            StageValue(
                s.id, s.name, s.outcome, s.probability, count or 0, money(amount), money(weighted)
            )
            for s, count, amount, weighted in stages
        ],
        [
            OwnerValue(owner_id, name, count, money(amount), money(weighted))
            for owner_id, name, count, amount, weighted in owners
        ],
    )


async def board_ids(
    session: AsyncSession,
    pipeline_id: int,
    visible: ColumnElement[bool],
    per_stage: int,
    closed_days: int = CLOSED_DAYS,
) -> list[int]:
    """The ids of each stage's most recently changed opportunities (closed ones lately only)."""
    stages = select(PipelineStage.id).where(PipelineStage.pipeline_id == pipeline_id).subquery()
    newest = (
        select(Opportunity.id)
        .where(Opportunity.stage_id == stages.c.id, on_board(closed_since(closed_days)), visible)
        .order_by(Opportunity.updated_at.desc(), Opportunity.id.desc())
        .limit(per_stage)
        .lateral()
    )
    return list(
        (await session.scalars(select(newest.c.id).select_from(stages).join(newest, true()))).all()
    )


def money(value: Decimal | int | None) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


@dataclass
class StageSpec:
    """A stage as an administrator lists it; id keeps an existing stage (and its opportunities)."""

    name: str
    probability: int
    outcome: str = "open"
    code: str | None = None
    id: int | None = None


async def replace_stages(session: AsyncSession, pipeline: Pipeline, specs: list[StageSpec]) -> None:
    """Give the pipeline these stages in this order; a stage left out must have no opportunities."""
    if not specs:
        raise Invalid("stages", "a pipeline needs at least one stage")
    if all(s.outcome != "open" for s in specs):
        raise Invalid("stages", "a pipeline needs an open stage")
    codes = [s.code or slug(s.name) for s in specs]
    if len(set(codes)) != len(codes):
        raise Invalid("stages", "stage codes must be unique within a pipeline")
    current = {s.id: s for s in pipeline.stages}
    for i, spec in enumerate(specs):
        if spec.id is not None and spec.id not in current:
            raise Invalid(f"stages.{i}.id", "not a stage of this pipeline")
        if not spec.name.strip():
            raise Invalid(f"stages.{i}.name", "a stage needs a name")
    kept = {s.id for s in specs if s.id is not None}
    if len(kept) != sum(s.id is not None for s in specs):
        raise Invalid("stages", "a stage is listed twice")
    gone = [stage for stage_id, stage in current.items() if stage_id not in kept]
    if gone:
        used = await session.scalar(
            select(PipelineStage.name)
            .join(Opportunity, Opportunity.stage_id == PipelineStage.id)
            .where(PipelineStage.id.in_([s.id for s in gone]))
            .limit(1)
        )
        if used is not None:
            raise Invalid("stages", f"stage {used!r} still has opportunities")
        for stage in gone:
            pipeline.stages.remove(stage)
        await session.flush()
    # Kept stages may swap codes: free them first, the unique key is checked per statement.
    for stage_id in kept:
        current[stage_id].code = f"~{stage_id}"
    await session.flush()
    for i, (spec, code) in enumerate(zip(specs, codes, strict=True)):
        stage = current[spec.id] if spec.id is not None else PipelineStage()
        stage.code, stage.name, stage.position = code, spec.name.strip(), i
        stage.probability, stage.outcome = spec.probability, spec.outcome
        if spec.id is None:
            pipeline.stages.append(stage)
    await session.flush()
    pipeline.stages.sort(key=lambda s: s.position)


def slug(name: str) -> str:
    return (
        "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split())[:40] or "stage"
    )


async def create_pipeline(
    session: AsyncSession, name: str, specs: list[StageSpec], is_default: bool = False
) -> Pipeline:
    if not name.strip():
        raise Invalid("name", "a pipeline needs a name")
    if await session.scalar(select(Pipeline.id).where(Pipeline.name == name.strip())):
        raise Invalid("name", "a pipeline of this name exists")
    await default_pipeline(session)  # the first pipeline made by hand is not the only one
    pipeline = Pipeline(
        name=name.strip(),
        stages=[],
        position=await session.scalar(select(func.coalesce(func.max(Pipeline.position), 0) + 1)),
    )
    session.add(pipeline)
    await session.flush()
    await replace_stages(session, pipeline, specs)
    if is_default:
        await make_default(session, pipeline)
    return pipeline


async def make_default(session: AsyncSession, pipeline: Pipeline) -> None:
    await session.execute(
        update(Pipeline)
        .where(Pipeline.is_default, Pipeline.id != pipeline.id)
        .values(is_default=False)
    )
    pipeline.is_default = True
    await session.flush()
