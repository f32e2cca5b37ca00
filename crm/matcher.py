"""Who a sender is: exact identity matching (e-mail, E.164 phone, messenger id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm import normalizers
from crm.models import Contact, Identity


@dataclass(frozen=True)
class Key:
    kind: str
    value: str
    raw: str


@dataclass(frozen=True)
class Match:
    identity_id: int | None = None
    contact_id: int | None = None
    relation_id: int | None = None
    lead_id: int | None = None

    @property
    def known(self) -> bool:
        return self.contact_id is not None or self.relation_id is not None

    @property
    def found(self) -> bool:
        return self.identity_id is not None


def identity_keys(
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    telegram_id: str | None = None,
    region: str = "NL",
) -> list[Key]:
    """The normalised identity keys of a sender, strongest first, without duplicates."""
    keys: list[Key] = []
    for raw in emails:
        if value := normalizers.email(raw):
            keys.append(Key("email", value, raw))
    for raw in phones:
        if value := normalizers.phone(raw, region):
            keys.append(Key("phone", value, raw))
    if telegram_id:
        keys.append(Key("telegram", str(telegram_id), str(telegram_id)))
    unique: dict[tuple[str, str], Key] = {}
    for key in keys:
        unique.setdefault((key.kind, key.value), key)
    return list(unique.values())


async def match_exact(session: AsyncSession, keys: Sequence[Key]) -> Match:
    """The best owner of any of the keys: a contact beats a relation beats a lead."""
    if not keys:
        return Match()
    rows = (
        await session.execute(
            select(
                Identity.id,
                Identity.kind,
                Identity.value,
                Identity.contact_id,
                Identity.relation_id,
                Identity.lead_id,
                Contact.relation_id.label("contact_relation_id"),
            )
            .outerjoin(Contact, Contact.id == Identity.contact_id)
            .where(tuple_(Identity.kind, Identity.value).in_([(k.kind, k.value) for k in keys]))
        )
    ).all()
    if not rows:
        return Match()
    order = {(k.kind, k.value): i for i, k in enumerate(keys)}

    best = min(
        rows,
        key=lambda r: (0 if r.contact_id else 1 if r.relation_id else 2, order[(r.kind, r.value)]),
    )
    return Match(
        identity_id=best.id,
        contact_id=best.contact_id,
        relation_id=best.relation_id or best.contact_relation_id,
        lead_id=best.lead_id,
    )


async def add_identities(
    session: AsyncSession,
    keys: Sequence[Key],
    *,
    contact_id: int | None = None,
    relation_id: int | None = None,
    lead_id: int | None = None,
) -> None:
    """Give the owner these identities; ones already owned by someone else stay theirs."""
    if not keys:
        return
    await session.execute(
        insert(Identity)
        .values(
            [
                {
                    "kind": k.kind,
                    "value": k.value,
                    "raw": k.raw,
                    "contact_id": contact_id,
                    "relation_id": relation_id,
                    "lead_id": lead_id,
                }
                for k in keys
            ]
        )
        .on_conflict_do_nothing(index_elements=["kind", "value"])
    )
