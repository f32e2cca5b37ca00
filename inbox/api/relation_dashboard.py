"""A relation at a glance, in one request: its card (status, A/B/C class, account manager),
contacts, open opportunities with their weighted value, open tasks, the last activities across
channels, complaints, projects and the relations it is linked to."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Contact, Identity, Relation, RelationLink, User
from crm.opportunities import Opportunity, PipelineStage
from inbox.access import Principal, visible_opportunities
from inbox.api.dashboard import (
    ActivityBrief,
    ConversationBrief,
    ProjectBrief,
    RelationCard,
    TaskBrief,
    dashboard,
)
from inbox.api.router import API, ApiRequest, not_found

CONTACTS = 100
LINKS = 50
OPPORTUNITIES = 20


class ContactLine(BaseModel):
    id: int
    full_name: str
    job_title: str | None
    city: str | None
    emails: list[str]
    phones: list[str]


class LinkedRelation(BaseModel):
    id: int
    name: str
    kind: str
    direction: str  # to: this relation links to it (e.g. its parent); from: it links here
    status: str
    abc_class: str | None


class OpportunityLine(BaseModel):
    id: int
    name: str
    stage: str
    amount: float
    probability: int
    weighted: float
    expected_close: str | None
    owner: str | None


class RelationDashboard(BaseModel):
    relation: RelationCard
    contacts: list[ContactLine]
    opportunities: list[OpportunityLine]
    open_value: float
    weighted_value: float
    tasks: list[TaskBrief]
    activities: list[ActivityBrief]
    complaints: list[ConversationBrief]
    projects: list[ProjectBrief]
    links: list[LinkedRelation]


@API.route(
    "GET",
    "/api/relations/{relation_id}/dashboard",
    summary="A relation at a glance: contacts, open opportunities (weighted), open tasks, last"
    " activities, complaints, projects, linked relations, A/B/C class and account manager",
    tag="crm",
    response=RelationDashboard,
)
async def relation_dashboard(req: ApiRequest) -> RelationDashboard:
    relation_id = req.path_int("relation_id")
    async with req.sessions() as session:
        if await session.get(Relation, relation_id) is None:
            raise not_found("relation")
        board = await dashboard(
            session, req.principal, contact_id=None, relation_id=relation_id, lead_id=None
        )
        contacts = await contact_lines(session, relation_id)
        links = await linked_relations(session, relation_id)
        opportunities, open_value, weighted_value = await open_opportunities(
            session, req.principal, relation_id
        )
    assert board.relation is not None
    return RelationDashboard(
        relation=board.relation,
        contacts=contacts,
        opportunities=opportunities,
        open_value=open_value,
        weighted_value=weighted_value,
        tasks=board.tasks,
        activities=board.activities,
        complaints=board.complaints,
        projects=board.projects,
        links=links,
    )


async def contact_lines(session: AsyncSession, relation_id: int) -> list[ContactLine]:
    """The relation's contacts with their addresses and numbers: two statements."""
    contacts = (
        await session.scalars(
            select(Contact)
            .where(Contact.relation_id == relation_id)
            .order_by(Contact.full_name, Contact.id)
            .limit(CONTACTS)
        )
    ).all()
    reach: dict[int, dict[str, list[str]]] = {c.id: {"email": [], "phone": []} for c in contacts}
    if contacts:
        rows = await session.execute(
            select(Identity.contact_id, Identity.kind, Identity.raw, Identity.value)
            .where(Identity.contact_id.in_(reach), Identity.kind.in_(("email", "phone")))
            .order_by(Identity.id)
        )
        for contact_id, kind, raw, value in rows:
            if contact_id is not None:
                reach[contact_id][kind].append(raw or value)
    return [
        ContactLine(
            id=c.id,
            full_name=c.full_name,
            job_title=c.job_title,
            city=c.city,
            emails=reach[c.id]["email"],
            phones=reach[c.id]["phone"],
        )
        for c in contacts
    ]


async def linked_relations(session: AsyncSession, relation_id: int) -> list[LinkedRelation]:
    rows = await session.execute(
        select(RelationLink, Relation)
        .join(
            Relation,
            or_(
                (RelationLink.from_relation_id == relation_id)
                & (Relation.id == RelationLink.to_relation_id),
                (RelationLink.to_relation_id == relation_id)
                & (Relation.id == RelationLink.from_relation_id),
            ),
        )
        .where(
            or_(
                RelationLink.from_relation_id == relation_id,
                RelationLink.to_relation_id == relation_id,
            )
        )
        .order_by(RelationLink.kind, Relation.name)
        .limit(LINKS)
    )
    return [
        LinkedRelation(
            id=other.id,
            name=other.name,
            kind=link.kind,
            direction="to" if link.from_relation_id == relation_id else "from",
            status=other.status,
            abc_class=other.abc_class,
        )
        for link, other in rows
    ]


async def open_opportunities(
    session: AsyncSession, p: Principal, relation_id: int
) -> tuple[list[OpportunityLine], float, float]:
    """Open opportunities the caller may see, largest weighted value first, with the totals of
    all of them (window sums: one statement)."""
    weighted = Opportunity.amount * Opportunity.probability / 100
    rows = await session.execute(
        select(
            Opportunity,
            PipelineStage.name,
            User.name,
            func.sum(Opportunity.amount).over(),
            func.sum(weighted).over(),
        )
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .outerjoin(User, User.id == Opportunity.owner_id)
        .where(
            Opportunity.relation_id == relation_id,
            Opportunity.status == "open",
            visible_opportunities(p),
        )
        .order_by(weighted.desc(), Opportunity.id)
        .limit(OPPORTUNITIES)
    )
    lines, open_value, weighted_value = [], 0.0, 0.0
    for o, stage, owner, total, total_weighted in rows:
        open_value, weighted_value = float(total or 0), float(total_weighted or 0)
        lines.append(
            OpportunityLine(
                id=o.id,
                name=o.name,
                stage=stage,
                amount=float(o.amount),
                probability=o.probability,
                weighted=round(float(o.amount) * o.probability / 100, 2),
                expected_close=o.expected_close_date.isoformat() if o.expected_close_date else None,
                owner=owner,
            )
        )
    return lines, round(open_value, 2), round(weighted_value, 2)
