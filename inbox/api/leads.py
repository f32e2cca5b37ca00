"""REST routes of leads: list them, set a lead's status, and convert one into a relation and
contact that take over its history."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm import normalizers
from crm.base import Json
from crm.lists import Invalid, check_changes, check_record_fields
from crm.models import Activity, Contact, Identity, Lead, Relation, Task, User
from crm.opportunities import Draft, create_opportunity
from inbox.api.router import API, ApiError, ApiRequest, decode_cursor, encode_cursor, not_found
from inbox.models import Conversation
from inbox.schemas import (
    ConvertIn,
    ConvertOut,
    LeadOut,
    LeadPage,
    LeadPatch,
    LeadQuery,
    QualifyIn,
)


async def open_lead(session: AsyncSession, lead_id: int) -> Lead:
    """The lead, locked for this transaction; 404 when there is none, 409 once converted."""
    lead = await session.get(Lead, lead_id, with_for_update=True)
    if lead is None:
        raise not_found("lead")
    if lead.status == "converted":
        raise ApiError(409, "converted", "this lead is already converted")
    return lead


@API.route(
    "GET", "/api/leads", summary="List leads", tag="leads", query=LeadQuery, response=LeadPage
)
async def list_leads(req: ApiRequest) -> LeadPage:
    q: LeadQuery = req.query
    query = select(Lead)
    if q.status:
        query = query.where(Lead.status == q.status)
    if (cursor := decode_cursor(q.cursor)) is not None:
        query = query.where(Lead.id < int(cursor[0]))
    async with req.sessions() as session:
        rows = list(
            (await session.scalars(query.order_by(Lead.id.desc()).limit(q.limit + 1))).all()
        )
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return LeadPage(
        items=[LeadOut.model_validate(x) for x in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@API.route(
    "POST",
    "/api/leads/{lead_id}/qualify",
    summary="Set a lead's status",
    tag="leads",
    body=QualifyIn,
    response=LeadOut,
)
async def qualify_lead(req: ApiRequest) -> LeadOut:
    body: QualifyIn = req.body
    async with req.sessions() as session, session.begin():
        lead = await open_lead(session, req.path_int("lead_id"))
        lead.status = body.status
    return LeadOut.model_validate(lead)


@API.route(
    "PATCH",
    "/api/leads/{lead_id}",
    summary="Update a lead (name, company, status, owner, custom fields)",
    tag="leads",
    body=LeadPatch,
    response=LeadOut,
)
async def update_lead(req: ApiRequest) -> LeadOut:
    body: LeadPatch = req.body
    async with req.sessions() as session, session.begin():
        lead = await open_lead(session, req.path_int("lead_id"))
        changes = body.model_dump(exclude_unset=True)
        if "status" in changes and changes["status"] is None:
            raise Invalid("status", "a lead always has one")
        if (owner := changes.get("owner_id")) is not None:
            user = await session.get(User, owner)
            if user is None or not user.is_active:
                raise Invalid("owner_id", "no such active user")
        changes = await check_changes(session, "lead", changes, lead.custom_fields)
        for name, value in changes.items():
            setattr(lead, name, value)
    return LeadOut.model_validate(lead)


@API.route(
    "POST",
    "/api/leads/{lead_id}/convert",
    summary="Convert a lead into relation + contact (+ opportunity)",
    tag="leads",
    body=ConvertIn,
    response=ConvertOut,
    status=201,
)
async def convert_lead(req: ApiRequest) -> ConvertOut:
    body: ConvertIn = req.body
    async with req.sessions() as session, session.begin():
        lead = await open_lead(session, req.path_int("lead_id"))
        contact_id, relation_id = await convert(session, lead, body, req.principal.user_id)
        opportunity_id = None
        if body.opportunity is not None:  # fails as a whole: no relation or contact stays
            draft = Draft(
                **body.opportunity.model_dump(),
                owner_id=lead.owner_id or req.principal.user_id,
                relation_id=relation_id,
                contact_id=contact_id,
                lead_id=lead.id,
                source_channel_id=lead.source_channel_id,
            )
            opportunity_id = (await create_opportunity(session, draft, req.principal.user_id)).id
    return ConvertOut(
        lead_id=lead.id,
        contact_id=contact_id,
        relation_id=relation_id,
        opportunity_id=opportunity_id,
    )


async def custom_fields_of(session: AsyncSession, record_type: str, values: Json) -> Json:
    """A new record's custom fields, checked (a required one missing is refused, named as the
    conversion's own field: contact_custom_fields.<key>)."""
    try:
        return await check_record_fields(session, record_type, values)
    except Invalid as exc:
        raise Invalid(f"{record_type}_{exc.field}", exc.message) from None


async def convert(
    session: AsyncSession, lead: Lead, body: ConvertIn, user_id: int
) -> tuple[int, int | None]:
    """Make the lead a contact (at a new or existing relation) and move its history over."""
    relation_id = body.relation_id
    if relation_id is not None and await session.get(Relation, relation_id) is None:
        raise ApiError(422, "invalid", "no such relation")
    name = body.relation_name or lead.company
    makes_relation = relation_id is None and bool(name)
    if body.relation_custom_fields and not makes_relation:
        raise Invalid("relation_custom_fields", "only for a relation the conversion makes")
    contact_fields = await custom_fields_of(session, "contact", body.contact_custom_fields)
    if makes_relation:
        relation = Relation(
            name=name,
            normalized_name=normalizers.company(name or ""),
            status="prospect",
            account_manager_id=lead.owner_id or user_id,
            custom_fields=await custom_fields_of(session, "relation", body.relation_custom_fields),
        )
        session.add(relation)
        await session.flush()
        relation_id = relation.id
    parts = (lead.name or "").split(" ", 1)
    first = body.first_name or (parts[0] if parts[0] else None)
    last = body.last_name or (parts[1] if len(parts) > 1 else None)
    contact = Contact(
        relation_id=relation_id,
        first_name=first,
        last_name=last,
        full_name=" ".join(x for x in (first, last) if x) or lead.name or "?",
        custom_fields=contact_fields,
    )
    session.add(contact)
    await session.flush()
    moved = {"contact_id": contact.id, "relation_id": relation_id}
    await session.execute(
        update(Identity)
        .where(Identity.lead_id == lead.id)
        .values(lead_id=None, contact_id=contact.id)
    )
    for model in (Conversation, Activity, Task):
        await session.execute(update(model).where(model.lead_id == lead.id).values(**moved))
    lead.status, lead.converted_contact_id = "converted", contact.id
    return contact.id, relation_id
