"""REST routes of the configurable lists (the dropdowns of the web inbox) and of the custom
fields per record type; everyone reads them, managers and admins change them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from crm.lists import (
    LIST_NAMES,
    CustomField,
    Invalid,
    list_values,
    replace_list,
)
from crm.opportunities import StageSpec, replace_stages
from inbox.api.opportunities import stages_of
from inbox.api.router import API, ApiRequest, not_found
from inbox.schemas import Out

STAFF = ("admin", "manager")
RecordType = Literal["relation", "contact", "lead", "opportunity", "project"]
FieldType = Literal["text", "number", "date", "choice"]


class ListItemOut(BaseModel):
    code: str
    label: str
    # opportunity_stages only
    id: int | None = None
    probability: int | None = None
    outcome: str | None = None


class ListOut(BaseModel):
    name: str
    pipeline_id: int | None = None  # opportunity_stages: whose stages
    items: list[ListItemOut]


class ListItemIn(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    label: str = Field(min_length=1, max_length=100)
    id: int | None = None
    probability: int | None = Field(default=None, ge=0, le=100)
    outcome: Literal["open", "won", "lost"] = "open"


class ListIn(BaseModel):
    items: list[ListItemIn] = Field(max_length=200)


class ListQuery(BaseModel):
    pipeline_id: int | None = None


class CustomFieldIn(BaseModel):
    record_type: RecordType
    key: str = Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1, max_length=100)
    type: FieldType
    choices: list[str] = Field(default_factory=list, max_length=100)
    required: bool = False
    position: int = 0


class CustomFieldPatch(BaseModel):
    label: str | None = Field(default=None, min_length=1, max_length=100)
    choices: list[str] | None = Field(default=None, max_length=100)
    required: bool | None = None
    position: int | None = None


class CustomFieldOut(Out):
    id: int
    record_type: str
    key: str
    label: str
    type: str
    choices: list[str]
    required: bool
    position: int


class CustomFieldList(BaseModel):
    items: list[CustomFieldOut]


def list_name(req: ApiRequest) -> str:
    name = req.request.match_info["name"]
    if name not in LIST_NAMES:
        raise not_found("list")
    return name


async def read_list(req: ApiRequest, session: Any, name: str, pipeline_id: int | None) -> ListOut:
    if name == "opportunity_stages":
        pipeline = await stages_of(session, pipeline_id)
        return ListOut(
            name=name,
            pipeline_id=pipeline.id,
            items=[
                ListItemOut(
                    code=s.code, label=s.name, id=s.id, probability=s.probability, outcome=s.outcome
                )
                for s in pipeline.stages
            ],
        )
    return ListOut(
        name=name,
        items=[ListItemOut(code=c, label=label) for c, label in await list_values(session, name)],
    )


@API.route(
    "GET",
    "/api/settings/lists",
    summary="Every configurable list with its values (the default pipeline's stages)",
    tag="settings",
)
async def all_lists(req: ApiRequest) -> dict[str, Any]:
    async with req.sessions() as session, session.begin():
        lists = [await read_list(req, session, name, None) for name in LIST_NAMES]
    return {"items": [x.model_dump() for x in lists]}


@API.route(
    "GET",
    "/api/settings/lists/{name}",
    summary="The values of a configurable list (opportunity_stages: ?pipeline_id)",
    tag="settings",
    query=ListQuery,
    response=ListOut,
)
async def get_list(req: ApiRequest) -> ListOut:
    name = list_name(req)
    async with req.sessions() as session, session.begin():
        return await read_list(req, session, name, req.query.pipeline_id)


@API.route(
    "PUT",
    "/api/settings/lists/{name}",
    summary="Replace a list's values in order; a value still in use cannot be removed",
    tag="settings",
    roles=STAFF,
    query=ListQuery,
    body=ListIn,
    response=ListOut,
)
async def put_list(req: ApiRequest) -> ListOut:
    name = list_name(req)
    body: ListIn = req.body
    async with req.sessions() as session, session.begin():
        if name == "opportunity_stages":
            pipeline = await stages_of(session, req.query.pipeline_id)
            try:
                await replace_stages(session, pipeline, stage_specs(body.items))
            except Invalid as exc:  # the body's field here is items, not stages
                raise Invalid(exc.field.replace("stages", "items", 1), exc.message) from None
            return await read_list(req, session, name, pipeline.id)
        await replace_list(session, name, [(i.code.strip(), i.label.strip()) for i in body.items])
        return await read_list(req, session, name, None)


def stage_specs(items: list[ListItemIn]) -> list[StageSpec]:
    for i, item in enumerate(items):
        if item.probability is None:
            raise Invalid(f"items.{i}.probability", "a stage needs a probability")
    return [
        StageSpec(
            name=item.label,
            probability=item.probability or 0,
            outcome=item.outcome,
            code=item.code,
            id=item.id,
        )
        for item in items
    ]


# --- custom fields -----------------------------------------------------------------------------


@API.route(
    "GET",
    "/api/settings/custom-fields",
    summary="Custom fields (?record_type)",
    tag="settings",
    response=CustomFieldList,
)
async def list_custom_fields(req: ApiRequest) -> CustomFieldList:
    query = select(CustomField).order_by(
        CustomField.record_type, CustomField.position, CustomField.id
    )
    if record_type := req.request.query.get("record_type"):
        query = query.where(CustomField.record_type == record_type)
    async with req.sessions() as session:
        rows = (await session.scalars(query)).all()
    return CustomFieldList(items=[CustomFieldOut.model_validate(f) for f in rows])


def check_choices(kind: str, choices: list[str]) -> list[str]:
    cleaned = [c.strip() for c in choices if c.strip()]
    if kind == "choice" and not cleaned:
        raise Invalid("choices", "a choice field needs its choices")
    if kind != "choice" and cleaned:
        raise Invalid("choices", "only a choice field has choices")
    if len(set(cleaned)) != len(cleaned) or any(len(c) > 100 for c in cleaned):
        raise Invalid("choices", "choices are unique and at most 100 characters")
    return cleaned


@API.route(
    "POST",
    "/api/settings/custom-fields",
    summary="Add a custom field to a record type",
    tag="settings",
    roles=STAFF,
    body=CustomFieldIn,
    response=CustomFieldOut,
    status=201,
)
async def add_custom_field(req: ApiRequest) -> CustomFieldOut:
    body: CustomFieldIn = req.body
    field = CustomField(**body.model_dump())
    field.choices = check_choices(body.type, body.choices)
    async with req.sessions() as session, session.begin():
        taken = await session.scalar(
            select(CustomField.id).where(
                CustomField.record_type == body.record_type, CustomField.key == body.key
            )
        )
        if taken:
            raise Invalid("key", "this record type has a field with this key")
        session.add(field)
        await session.flush()
        return CustomFieldOut.model_validate(field)


@API.route(
    "PATCH",
    "/api/settings/custom-fields/{field_id}",
    summary="Change a custom field's label, choices, requiredness or position",
    tag="settings",
    roles=STAFF,
    body=CustomFieldPatch,
    response=CustomFieldOut,
)
async def edit_custom_field(req: ApiRequest) -> CustomFieldOut:
    body: CustomFieldPatch = req.body
    async with req.sessions() as session, session.begin():
        field = await session.get(CustomField, req.path_int("field_id"), with_for_update=True)
        if field is None:
            raise not_found("custom field")
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "choices" in changes:
            changes["choices"] = check_choices(field.type, changes["choices"])
        for name, value in changes.items():
            setattr(field, name, value)
        await session.flush()
        return CustomFieldOut.model_validate(field)


@API.route(
    "DELETE",
    "/api/settings/custom-fields/{field_id}",
    summary="Remove a custom field (values already stored on records stay)",
    tag="settings",
    roles=STAFF,
)
async def delete_custom_field(req: ApiRequest) -> dict[str, Any]:
    async with req.sessions() as session, session.begin():
        field = await session.get(CustomField, req.path_int("field_id"))
        if field is None:
            raise not_found("custom field")
        await session.delete(field)
    return {"deleted": True}
