"""Configurable lists (A/B/C classes, lead sources, activity outcomes...) and custom fields per
record type: what an administrator may change, and the checks every write of a record passes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import String, UniqueConstraint, delete, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm.base import Base, Json, Timestamped
from crm.models import Category, Relation, RelationStatus, one_of

RECORD_TYPES = ("relation", "contact", "lead", "opportunity", "project")
FIELD_TYPES = ("text", "number", "date", "choice")
# The lists kept in list_items, with the values they have until an administrator stores others.
DEFAULTS: dict[str, tuple[tuple[str, str], ...]] = {
    "abc_classes": (("A", "A-klant"), ("B", "B-klant"), ("C", "C-klant")),
    "lead_sources": (
        ("website", "Website"),
        ("email", "E-mail"),
        ("phone", "Telefoon"),
        ("chat", "Chat"),
        ("fair", "Beurs"),
        ("referral", "Doorverwijzing"),
        ("campaign", "Campagne"),
    ),
    "activity_outcomes": (
        ("answered", "Beantwoord"),
        ("missed", "Gemist"),
        ("busy", "In gesprek"),
        ("failed", "Mislukt"),
        ("voicemail", "Voicemail"),
        ("appointment", "Afspraak gemaakt"),
        ("callback", "Terugbellen"),
        ("no_interest", "Geen interesse"),
    ),
}


class Invalid(ValueError):
    """A value a record cannot take; field names it for the 422 answer."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class ListItem(Base):
    """One value of a configurable list; a list without rows has its DEFAULTS."""

    __tablename__ = "list_items"

    list_name: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(default=0)


class CustomField(Timestamped, Base):
    """A field an administrator added to a record type, stored in the record's custom_fields."""

    __tablename__ = "custom_fields"
    __table_args__ = (
        UniqueConstraint("record_type", "key"),
        one_of("record_type", RECORD_TYPES),
        one_of("type", FIELD_TYPES),
    )

    record_type: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(10))
    choices: Mapped[list[str]] = mapped_column(JSONB, default=list)
    required: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)


# Lists kept in tables of their own: relation statuses (relations refer to their code) and
# categories (relations link to them by id; the code is the name).
TABLE_LISTS = ("relation_statuses", "categories")
LIST_NAMES = (*TABLE_LISTS, *DEFAULTS, "opportunity_stages")
# A value records still carry cannot be removed from these lists (sources and outcomes are
# history: a removed one stays on the records that have it).
IN_USE = {"abc_classes": Relation.abc_class}


async def list_values(session: AsyncSession, name: str) -> list[tuple[str, str]]:
    """(code, label) of a list in its order."""
    if name == "relation_statuses":
        rows = await session.execute(
            select(RelationStatus.code, RelationStatus.label).order_by(
                RelationStatus.position, RelationStatus.code
            )
        )
        return [(r.code, r.label) for r in rows]
    if name == "categories":
        names = await session.scalars(select(Category.name).order_by(Category.name))
        return [(n, n) for n in names]
    stored = await session.execute(
        select(ListItem.code, ListItem.label)
        .where(ListItem.list_name == name)
        .order_by(ListItem.position, ListItem.code)
    )
    return [(r.code, r.label) for r in stored] or list(DEFAULTS[name])


async def require_value(session: AsyncSession, name: str, code: str | None, field: str) -> None:
    """A value written to a record must be one of its list's codes (empty is allowed)."""
    if code is None:
        return
    if code not in {c for c, _ in await list_values(session, name)}:
        raise Invalid(field, f"{code!r} is not in the list {name}")


def check_items(items: list[tuple[str, str]]) -> None:
    if not items:
        raise Invalid("items", "a list needs at least one value")
    codes = [code for code, _ in items]
    for i, (code, label) in enumerate(items):
        if not code.strip() or not label.strip():
            raise Invalid(f"items.{i}", "every value needs a code and a label")
    if len(set(codes)) != len(codes):
        raise Invalid("items", "codes must be unique within a list")


async def replace_list(session: AsyncSession, name: str, items: list[tuple[str, str]]) -> None:
    """Store a list as given, in its order; a value still used by a record cannot go."""
    check_items(items)
    if name == "abc_classes" and any(len(code) != 1 for code, _ in items):
        raise Invalid("items", "an A/B/C class code is one letter")
    if name == "relation_statuses":
        await replace_statuses(session, items)
    elif name == "categories":
        await replace_categories(session, [code for code, _ in items])
    else:
        await replace_items(session, name, items)


async def replace_items(session: AsyncSession, name: str, items: list[tuple[str, str]]) -> None:
    column = IN_USE.get(name)
    if column is not None:
        gone = {c for c, _ in await list_values(session, name)} - {c for c, _ in items}
        used = (
            await session.scalar(select(column).where(column.in_(gone)).limit(1)) if gone else None
        )
        if used is not None:
            raise Invalid("items", f"{used!r} is still used and cannot be removed")
    await session.execute(delete(ListItem).where(ListItem.list_name == name))
    session.add_all(
        ListItem(list_name=name, code=code, label=label, position=i)
        for i, (code, label) in enumerate(items)
    )
    await session.flush()


async def replace_statuses(session: AsyncSession, items: list[tuple[str, str]]) -> None:
    codes = [code for code, _ in items]
    used = await session.scalar(
        select(Relation.status).where(Relation.status.not_in(codes)).limit(1)
    )
    if used is not None:
        raise Invalid("items", f"{used!r} is still used and cannot be removed")
    await session.execute(delete(RelationStatus).where(RelationStatus.code.not_in(codes)))
    rows = insert(RelationStatus).values(
        [{"code": c, "label": label, "position": i} for i, (c, label) in enumerate(items)]
    )
    await session.execute(
        rows.on_conflict_do_update(
            index_elements=[RelationStatus.code],
            set_={"label": rows.excluded.label, "position": rows.excluded.position},
        )
    )


async def replace_categories(session: AsyncSession, names: list[str]) -> None:
    """Categories are linked by id: renaming is not possible here, removing unlinks them."""
    await session.execute(delete(Category).where(Category.name.not_in(names)))
    await session.execute(
        insert(Category).values([{"name": n} for n in names]).on_conflict_do_nothing()
    )


# --- custom fields -----------------------------------------------------------------------------


async def fields_of(session: AsyncSession, record_type: str) -> list[CustomField]:
    return list(
        (
            await session.scalars(
                select(CustomField)
                .where(CustomField.record_type == record_type)
                .order_by(CustomField.position, CustomField.id)
            )
        ).all()
    )


def check_custom_fields(
    fields: list[CustomField], values: Json, *, current: Json | None = None
) -> Json:
    """The record's custom fields after a write of values: each known, of its type, the
    required ones present. Returns the cleaned values (numbers as numbers, dates ISO)."""
    by_key = {f.key: f for f in fields}
    merged = dict(current or {})
    for key, value in values.items():
        field = by_key.get(key)
        if field is None:
            raise Invalid(f"custom_fields.{key}", "no such custom field")
        if value is None or value == "":
            merged.pop(key, None)
            continue
        merged[key] = clean_value(field, value)
    for field in fields:
        if field.required and field.key not in merged:
            raise Invalid(f"custom_fields.{field.key}", "this field is required")
    return merged


def clean_value(field: CustomField, value: Any) -> Any:
    where = f"custom_fields.{field.key}"
    if field.type == "number":
        if isinstance(value, bool):
            raise Invalid(where, "a number is expected")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise Invalid(where, "a number is expected") from None
        if not number.is_finite():
            raise Invalid(where, "a number is expected")
        return int(number) if number == number.to_integral_value() else float(number)
    if not isinstance(value, str):
        raise Invalid(where, "text is expected")
    if field.type == "date":
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise Invalid(where, "a date (YYYY-MM-DD) is expected") from None
    if field.type == "choice" and value not in field.choices:
        raise Invalid(where, f"{value!r} is not one of the choices")
    if len(value) > 1000:
        raise Invalid(where, "at most 1000 characters")
    return value


async def check_record_fields(
    session: AsyncSession, record_type: str, values: Json, current: Json | None = None
) -> Json:
    return check_custom_fields(await fields_of(session, record_type), values, current=current)


async def check_changes(
    session: AsyncSession, record_type: str, changes: Json, current: Json | None
) -> Json:
    """An update's changes with its custom_fields (when given) checked and merged into current."""
    if "custom_fields" in changes:
        changes["custom_fields"] = await check_record_fields(
            session, record_type, changes["custom_fields"] or {}, current
        )
    return changes
