"""Contacts, relations and leads over the API: read, create with a duplicate check, update,
merge and undo, and the duplicate clusters the periodic job found."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, or_, select

from crm import dedup, normalizers
from crm.lists import check_changes, check_record_fields, require_value
from crm.matcher import add_identities, identity_keys
from crm.models import (
    AccessGrant,
    Contact,
    DuplicateCandidate,
    Lead,
    Merge,
    Project,
    Relation,
    Team,
    User,
)
from inbox.access import grantees, visible_projects
from inbox.api.conversations import load_conversation
from inbox.api.router import API, ApiError, ApiRequest, decode_cursor, encode_cursor, not_found
from inbox.schemas import LeadOut
from inbox.state import SETTINGS

STAFF = ("admin", "manager")
NAME = Field(max_length=300)


class ContactIn(BaseModel):
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=150)
    relation_id: int | None = None
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    city: str | None = Field(default=None, max_length=100)
    job_title: str | None = Field(default=None, max_length=150)
    language: str | None = Field(default=None, max_length=5)
    external_id: str | None = Field(default=None, max_length=100)
    force: bool = False  # create even when likely duplicates exist
    custom_fields: dict[str, Any] | None = None  # checked against the contact's custom fields


class ContactPatch(BaseModel):
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=150)
    relation_id: int | None = None
    city: str | None = Field(default=None, max_length=100)
    job_title: str | None = Field(default=None, max_length=150)
    language: str | None = Field(default=None, max_length=5)
    external_id: str | None = Field(default=None, max_length=100)
    custom_fields: dict[str, Any] | None = None


class ContactOut(BaseModel):
    id: int
    first_name: str | None
    last_name: str | None
    full_name: str
    relation_id: int | None
    city: str | None
    job_title: str | None
    language: str | None
    external_id: str | None
    created_at: datetime
    custom_fields: dict[str, Any]

    model_config = {"from_attributes": True}


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class RelationIn(BaseModel):
    name: str = NAME
    status: str | None = Field(default=None, max_length=40)
    abc_class: str | None = Field(default=None, pattern="^[A-Z]$")  # in the abc_classes list
    account_manager_id: int | None = None
    team_id: int | None = None
    region: str | None = Field(default=None, max_length=100)
    branch: str | None = Field(default=None, max_length=100)
    kvk_number: str | None = Field(default=None, max_length=20)
    website: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=100)
    external_id: str | None = Field(default=None, max_length=100)
    force: bool = False
    custom_fields: dict[str, Any] | None = None  # checked against the relation's custom fields


class RelationPatch(BaseModel):
    name: str | None = Field(default=None, max_length=300)
    status: str | None = Field(default=None, max_length=40)
    abc_class: str | None = Field(default=None, pattern="^[A-Z]$")  # in the abc_classes list
    account_manager_id: int | None = None
    team_id: int | None = None
    region: str | None = Field(default=None, max_length=100)
    branch: str | None = Field(default=None, max_length=100)
    kvk_number: str | None = Field(default=None, max_length=20)
    website: str | None = Field(default=None, max_length=300)
    external_id: str | None = Field(default=None, max_length=100)
    custom_fields: dict[str, Any] | None = None


class RelationOut(BaseModel):
    id: int
    name: str
    status: str
    abc_class: str | None
    account_manager_id: int | None
    team_id: int | None
    region: str | None
    branch: str | None
    kvk_number: str | None
    website: str | None
    addresses: list[dict[str, Any]]
    external_id: str | None
    created_at: datetime
    custom_fields: dict[str, Any]

    model_config = {"from_attributes": True}


class RelationPage(BaseModel):
    items: list[RelationOut]
    next_cursor: str | None


class LeadIn(BaseModel):
    name: str | None = Field(default=None, max_length=300)
    company: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    city: str | None = Field(default=None, max_length=100)
    custom_fields: dict[str, Any] | None = None  # checked against the lead's custom fields
    force: bool = False


class MergeIn(BaseModel):
    into: int


class MergeOut(BaseModel):
    id: int
    kind: str
    source_id: int
    target_id: int
    moved: dict[str, Any]
    user_id: int | None
    undone_at: datetime | None
    created_at: datetime

    model_config = {"from_attributes": True}


class DuplicateOut(BaseModel):
    id: int
    kind: str
    record_id: int
    other_id: int
    cluster: int
    score: float
    reasons: dict[str, Any]
    status: str

    model_config = {"from_attributes": True}


def conflict(candidates: list[Any]) -> ApiError:
    return ApiError(
        409,
        "likely_duplicate",
        "likely duplicates exist: merge, or send force=true to create anyway",
        {"candidates": candidates},
    )


def page_query(req: ApiRequest, query: Any, model: Any) -> Any:
    if (cursor := decode_cursor(req.request.query.get("cursor"))) is not None:
        try:
            query = query.where(model.id < int(cursor[0]))
        except (TypeError, ValueError, IndexError):
            raise ApiError(400, "bad_cursor", "the cursor is not one we gave out") from None
    return query.order_by(model.id.desc()).limit(51)


# --- contacts ----------------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/contacts",
    summary="Contacts (relation_id, q by name)",
    tag="crm",
    response=ContactPage,
)
async def list_contacts(req: ApiRequest) -> ContactPage:
    query = select(Contact)
    if relation := req.request.query.get("relation_id"):
        if not relation.isdigit():
            raise ApiError(400, "bad_request", "relation_id is a number")
        query = query.where(Contact.relation_id == int(relation))
    if q := req.request.query.get("q", "").strip()[:100]:
        query = query.where(Contact.full_name.ilike(f"{escape_like(q)}%", escape="\\"))
    async with req.sessions() as session:
        rows = (await session.scalars(page_query(req, query, Contact))).all()
    items = [ContactOut.model_validate(c) for c in rows[:50]]
    return ContactPage(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > 50 else None
    )


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@API.route("GET", "/api/contacts/{contact_id}", summary="A contact", tag="crm", response=ContactOut)
async def get_contact(req: ApiRequest) -> ContactOut:
    async with req.sessions() as session:
        contact = await session.get(Contact, req.path_int("contact_id"))
    if contact is None:
        raise not_found("contact")
    return ContactOut.model_validate(contact)


@API.route(
    "POST",
    "/api/contacts",
    summary="Create a contact; 409 with the likely duplicates unless force=true",
    tag="crm",
    body=ContactIn,
    response=ContactOut,
    status=201,
)
async def create_contact(req: ApiRequest) -> ContactOut:
    body: ContactIn = req.body
    full = " ".join(p for p in (body.first_name, body.last_name) if p).strip()
    if not full:
        raise ApiError(422, "invalid", "a contact needs a first or last name")
    settings = req.request.app[SETTINGS]
    keys = identity_keys(
        [body.email] if body.email else [],
        [body.phone] if body.phone else [],
        region=settings.default_region,
    )
    if body.email and not any(k.kind == "email" for k in keys):
        raise ApiError(422, "invalid", "not an e-mail address")
    if body.phone and not any(k.kind == "phone" for k in keys):
        raise ApiError(422, "invalid", "not a phone number")
    async with req.sessions() as session, session.begin():
        if body.relation_id is not None and await session.get(Relation, body.relation_id) is None:
            raise ApiError(422, "invalid", "no such relation")
        if not body.force:
            found = await dedup.contact_duplicates(
                session,
                name=full,
                relation_id=body.relation_id,
                email=body.email,
                phone=body.phone,
                city=body.city,
                config=settings.match_config(),
            )
            if found:
                raise conflict([d.__dict__ for d in found])
        contact = Contact(
            first_name=body.first_name,
            last_name=body.last_name,
            full_name=full,
            relation_id=body.relation_id,
            city=body.city,
            job_title=body.job_title,
            language=body.language,
            external_id=body.external_id,
            custom_fields=await check_record_fields(session, "contact", body.custom_fields or {}),
        )
        session.add(contact)
        await session.flush()
        await add_identities(session, keys, contact_id=contact.id)
    return ContactOut.model_validate(contact)


@API.route(
    "PATCH",
    "/api/contacts/{contact_id}",
    summary="Update a contact",
    tag="crm",
    body=ContactPatch,
    response=ContactOut,
)
async def update_contact(req: ApiRequest) -> ContactOut:
    body: ContactPatch = req.body
    async with req.sessions() as session, session.begin():
        contact = await session.get(Contact, req.path_int("contact_id"), with_for_update=True)
        if contact is None:
            raise not_found("contact")
        changes = body.model_dump(exclude_unset=True)
        changes = await check_changes(session, "contact", changes, contact.custom_fields)
        for name, value in changes.items():
            setattr(contact, name, value)
        contact.full_name = (
            " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.full_name
        )
    return ContactOut.model_validate(contact)


# --- relations ---------------------------------------------------------------------------------


@API.route(
    "GET", "/api/relations", summary="Relations (q by name)", tag="crm", response=RelationPage
)
async def list_relations(req: ApiRequest) -> RelationPage:
    query = select(Relation)
    if q := req.request.query.get("q", "").strip()[:100]:
        query = query.where(
            or_(
                Relation.name.ilike(f"{escape_like(q)}%", escape="\\"),
                Relation.normalized_name.startswith(normalizers.company(q), autoescape=True),
            )
        )
    async with req.sessions() as session:
        rows = (await session.scalars(page_query(req, query, Relation))).all()
    items = [RelationOut.model_validate(r) for r in rows[:50]]
    return RelationPage(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > 50 else None
    )


@API.route(
    "GET", "/api/relations/{relation_id}", summary="A relation", tag="crm", response=RelationOut
)
async def get_relation(req: ApiRequest) -> RelationOut:
    async with req.sessions() as session:
        relation = await session.get(Relation, req.path_int("relation_id"))
    if relation is None:
        raise not_found("relation")
    return RelationOut.model_validate(relation)


@API.route(
    "POST",
    "/api/relations",
    summary="Create a relation; 409 with the likely duplicates unless force=true",
    tag="crm",
    body=RelationIn,
    response=RelationOut,
    status=201,
)
async def create_relation(req: ApiRequest) -> RelationOut:
    body: RelationIn = req.body
    if not body.name.strip():
        raise ApiError(422, "invalid", "a relation needs a name")
    async with req.sessions() as session, session.begin():
        await require_value(session, "abc_classes", body.abc_class, "abc_class")
        if not body.force:
            found = await dedup.relation_duplicates(
                session, name=body.name, kvk_number=body.kvk_number, website=body.website
            )
            if found:
                raise conflict([d.__dict__ for d in found])
        values = body.model_dump(exclude={"force", "city", "status"}, exclude_none=True)
        values["custom_fields"] = await check_record_fields(
            session, "relation", body.custom_fields or {}
        )
        relation = Relation(
            **values,
            normalized_name=normalizers.company(body.name)[:300],
            addresses=[{"kind": "visit", "city": body.city}] if body.city else [],
        )
        if body.status:
            relation.status = body.status
        session.add(relation)
        try:
            await session.flush()
        except Exception as exc:  # an unknown status or a taken external id
            raise ApiError(
                422, "invalid", "unknown status, user, team or a taken external_id"
            ) from exc
    return RelationOut.model_validate(relation)


@API.route(
    "PATCH",
    "/api/relations/{relation_id}",
    summary="Update a relation",
    tag="crm",
    body=RelationPatch,
    response=RelationOut,
)
async def update_relation(req: ApiRequest) -> RelationOut:
    body: RelationPatch = req.body
    async with req.sessions() as session, session.begin():
        relation = await session.get(Relation, req.path_int("relation_id"), with_for_update=True)
        if relation is None:
            raise not_found("relation")
        await require_value(session, "abc_classes", body.abc_class, "abc_class")
        changes = body.model_dump(exclude_unset=True)
        changes = await check_changes(session, "relation", changes, relation.custom_fields)
        for name, value in changes.items():
            setattr(relation, name, value)
        if body.name:
            relation.normalized_name = normalizers.company(body.name)[:300]
        try:
            await session.flush()
        except Exception as exc:
            raise ApiError(
                422, "invalid", "unknown status, user, team or a taken external_id"
            ) from exc
    return RelationOut.model_validate(relation)


# --- leads -------------------------------------------------------------------------------------


@API.route(
    "POST",
    "/api/leads",
    summary="Create a lead; 409 with the likely duplicates (leads, contacts) unless force=true",
    tag="leads",
    body=LeadIn,
    response=LeadOut,
    status=201,
)
async def create_lead(req: ApiRequest) -> LeadOut:
    body: LeadIn = req.body
    if not (body.name or body.company or body.email or body.phone):
        raise ApiError(422, "invalid", "a lead needs a name, company, e-mail or phone")
    region = req.request.app[SETTINGS].default_region
    keys = identity_keys(
        [body.email] if body.email else [], [body.phone] if body.phone else [], region=region
    )
    async with req.sessions() as session, session.begin():
        custom = await check_record_fields(session, "lead", body.custom_fields or {})
        if not body.force:
            found = await dedup.lead_duplicates(
                session, name=body.name, company=body.company, email=body.email, phone=body.phone
            )
            if found:
                raise conflict(found)
        lead = Lead(
            name=body.name,
            company=body.company,
            owner_id=req.principal.user_id,
            fields={"city": body.city} if body.city else {},
            custom_fields=custom,
        )
        session.add(lead)
        await session.flush()
        await add_identities(session, keys, lead_id=lead.id)
    return LeadOut.model_validate(lead)


# --- merge and undo ----------------------------------------------------------------------------


def merge_route(kind: str, plural: str, tag: str, moves: str) -> None:
    """POST /api/{plural}/{id}/merge {"into": id}: managers and admins."""
    key = f"{kind}_id"

    async def merge_record(req: ApiRequest) -> MergeOut:
        body: MergeIn = req.body
        async with req.sessions() as session, session.begin():
            try:
                record = await dedup.merge(
                    session, kind, req.path_int(key), body.into, req.principal.user_id
                )
            except LookupError:
                raise not_found(kind) from None
            except dedup.MergeError as exc:
                raise ApiError(422, "invalid", str(exc)) from None
        return MergeOut.model_validate(record)

    merge_record.__name__ = f"merge_{kind}"
    API.route(
        "POST",
        f"/api/{plural}/{{{key}}}/merge",
        summary=f"Merge this {kind} into another ({moves} move)",
        tag=tag,
        roles=STAFF,
        body=MergeIn,
        response=MergeOut,
    )(merge_record)


merge_route("contact", "contacts", "crm", "identities, conversations, activities, tasks")
merge_route("relation", "relations", "crm", "contacts, projects, identities, history")
merge_route("lead", "leads", "leads", "identities, conversations, activities, tasks")


@API.route("GET", "/api/merges", summary="Merges, newest first", tag="crm", roles=STAFF)
async def list_merges(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        rows = (await session.scalars(select(Merge).order_by(Merge.id.desc()).limit(100))).all()
    return [MergeOut.model_validate(m).model_dump(mode="json") for m in rows]


@API.route(
    "POST",
    "/api/merges/{merge_id}/undo",
    summary="Undo a merge: the merged record comes back with exactly what moved",
    tag="crm",
    roles=STAFF,
    response=MergeOut,
)
async def undo_merge(req: ApiRequest) -> MergeOut:
    async with req.sessions() as session, session.begin():
        try:
            record = await dedup.undo(session, req.path_int("merge_id"))
        except LookupError:
            raise not_found("merge") from None
        except dedup.MergeError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
    return MergeOut.model_validate(record)


# --- duplicate clusters ------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/duplicates",
    summary="Open duplicate pairs by cluster (kind=contact|relation)",
    tag="crm",
    roles=STAFF,
)
async def list_duplicates(req: ApiRequest) -> list[dict[str, Any]]:
    query = select(DuplicateCandidate).where(DuplicateCandidate.status == "open")
    if kind := req.request.query.get("kind"):
        query = query.where(DuplicateCandidate.kind == kind)
    async with req.sessions() as session:
        rows = (
            await session.scalars(
                query.order_by(
                    DuplicateCandidate.kind, DuplicateCandidate.cluster, DuplicateCandidate.id
                ).limit(500)
            )
        ).all()
    return [DuplicateOut.model_validate(d).model_dump(mode="json") for d in rows]


@API.route(
    "POST",
    "/api/duplicates/{duplicate_id}/dismiss",
    summary="Not duplicates: the pair leaves the list for good",
    tag="crm",
    roles=STAFF,
    response=DuplicateOut,
)
async def dismiss_duplicate(req: ApiRequest) -> DuplicateOut:
    async with req.sessions() as session, session.begin():
        pair = await session.get(
            DuplicateCandidate, req.path_int("duplicate_id"), with_for_update=True
        )
        if pair is None:
            raise not_found("duplicate")
        pair.status = "dismissed"
    return DuplicateOut.model_validate(pair)


# --- confidential: who else may see a conversation or project ----------------------------------


class AccessIn(BaseModel):
    confidential: bool | None = None
    user_ids: list[int] = Field(default_factory=list, max_length=200)
    team_ids: list[int] = Field(default_factory=list, max_length=200)


class AccessOut(BaseModel):
    confidential: bool
    user_ids: list[int]
    team_ids: list[int]


async def set_access(session: Any, subject: Any, column: str, body: AccessIn) -> AccessOut:
    """Replace the grants of a conversation or project (and optionally its confidential flag)."""
    if body.confidential is not None:
        subject.confidential = body.confidential
    known_users = set(await session.scalars(select(User.id).where(User.id.in_(body.user_ids))))
    known_teams = set(await session.scalars(select(Team.id).where(Team.id.in_(body.team_ids))))
    if known_users != set(body.user_ids) or known_teams != set(body.team_ids):
        raise ApiError(422, "invalid", "unknown user or team")
    await session.execute(delete(AccessGrant).where(getattr(AccessGrant, column) == subject.id))
    session.add_all(
        [AccessGrant(**{column: subject.id, "user_id": u}) for u in sorted(known_users)]
        + [AccessGrant(**{column: subject.id, "team_id": t}) for t in sorted(known_teams)]
    )
    await session.flush()
    return AccessOut(
        confidential=subject.confidential,
        user_ids=sorted(known_users),
        team_ids=sorted(known_teams),
    )


async def load_project(req: ApiRequest, session: Any, lock: bool = False) -> Project:
    query = select(Project).where(
        Project.id == req.path_int("project_id"), visible_projects(req.principal)
    )
    project: Project | None = (
        await session.scalars(query.with_for_update() if lock else query)
    ).first()
    if project is None:
        raise not_found("project")
    return project


async def load_conversation_for(req: ApiRequest, session: Any, lock: bool = False) -> Any:
    return await load_conversation(session, req, lock=lock)


def access_routes(
    path: str, noun: str, tag: str, column: str, load: Callable[..., Awaitable[Any]]
) -> None:
    """GET and PUT {path}/access for a kind of subject (conversations, projects)."""

    async def put_access(req: ApiRequest) -> AccessOut:
        async with req.sessions() as session, session.begin():
            subject = await load(req, session, True)
            return await set_access(session, subject, column, req.body)

    async def get_access(req: ApiRequest) -> AccessOut:
        async with req.sessions() as session:
            subject = await load(req, session)
            users, teams = await grantees(session, getattr(AccessGrant, column), subject.id)
        return AccessOut(confidential=subject.confidential, user_ids=users, team_ids=teams)

    put_access.__name__ = f"set_{noun}_access"
    get_access.__name__ = f"get_{noun}_access"
    API.route(
        "PUT",
        f"{path}/access",
        summary=f"Mark a {noun} confidential and link the users or teams who may see it",
        tag=tag,
        roles=STAFF,
        body=AccessIn,
        response=AccessOut,
    )(put_access)
    API.route(
        "GET",
        f"{path}/access",
        summary=f"Who may see a confidential {noun}",
        tag=tag,
        roles=STAFF,
        response=AccessOut,
    )(get_access)


access_routes(
    "/api/conversations/{conversation_id}",
    "conversation",
    "conversations",
    "conversation_id",
    load_conversation_for,
)
access_routes("/api/projects/{project_id}", "project", "crm", "project_id", load_project)
