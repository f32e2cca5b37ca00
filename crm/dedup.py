"""Duplicates: likely duplicates on create, duplicate clusters for review, merge and undo.

A new contact is a duplicate candidate when the matcher, given its fields as a sender, finds an
existing contact above the review threshold: the same evidence (names, company, domain, address,
number, city) that links an inbound message. Relations compare their names without legal form
(trigram index on normalized_name), KvK number and company domain.

The periodic job scores blocked contact pairs in the Fellegi–Sunter form (person_pair_score: a
log-odds weight per field and agreement level) with crm/data/dedup_weights.json, or the refit
`switchboard duplicates train` made from people's merges and dismissals (training_pairs).

A merge moves every row that points at the source (identities, conversations, activities, tasks,
leads, reviews; for a relation also its contacts and projects) to the target in a few set-based
UPDATEs, fills the target's empty fields from the source, records the source row and the ids
that moved, and deletes the source. Undo puts the source back with its own id and moves exactly
those rows back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler
from sqlalchemy import Table, delete, insert, select, text, update
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.ext.asyncio import AsyncSession

from crm import normalizers
from crm.matcher import Candidate, MatchConfig, Sender, match_sender
from crm.models import (
    Activity,
    Contact,
    DuplicateCandidate,
    Identity,
    Lead,
    MatchReview,
    Merge,
    Project,
    Relation,
    Task,
)
from crm.weights import Sample, Weights, fit, load, same_person_name

RELATION_THRESHOLD = 0.85


@dataclass
class Duplicate:
    id: int
    title: str
    score: float
    reasons: dict[str, str]


async def contact_duplicates(
    session: AsyncSession,
    *,
    name: str,
    relation_id: int | None = None,
    email: str | None = None,
    phone: str | None = None,
    city: str | None = None,
    config: MatchConfig | None = None,
) -> list[Duplicate]:
    """Existing contacts this new one likely is (best first)."""
    cfg = config or MatchConfig()
    company = None
    if relation_id is not None:
        company = await session.scalar(select(Relation.name).where(Relation.id == relation_id))
    decision = await match_sender(
        session,
        Sender(email=email, phone=phone, name=name, company=company, city=city),
        config=cfg,
    )
    found: list[Candidate] = list(decision.candidates)
    if decision.contact_id is not None and all(c.contact_id != decision.contact_id for c in found):
        found.insert(
            0,
            Candidate(decision.contact_id, decision.relation_id, decision.score, decision.reasons),
        )
    return [
        Duplicate(c.contact_id, c.name or "", round(c.score, 4), c.reasons)
        for c in found
        if c.contact_id is not None and c.score >= cfg.review
    ]


def relation_score(a: str, b: str) -> float:
    """Two company names without legal form, folded: 1.0 the same, lower as they differ."""
    x, y = normalizers.company(a), normalizers.company(b)
    if not x or not y:
        return 0.0
    return max(fuzz.ratio(x, y), fuzz.token_sort_ratio(x, y)) / 100


async def relation_duplicates(
    session: AsyncSession,
    *,
    name: str,
    kvk_number: str | None = None,
    website: str | None = None,
) -> list[Duplicate]:
    """Existing relations this new one likely is: name (trigram index), KvK number or domain."""
    normalized = normalizers.company(name)
    rows = (
        await session.execute(
            text(
                """SELECT id, name, 'name' AS why FROM relations
                   WHERE normalized_name % :name OR normalized_name = :name
                   UNION SELECT id, name, 'kvk' FROM relations
                   WHERE CAST(:kvk AS text) IS NOT NULL AND kvk_number = :kvk
                   UNION SELECT r.id, r.name, 'domain' FROM identities i
                   JOIN relations r ON r.id = i.relation_id
                   WHERE i.kind = 'domain' AND i.value = :domain
                   LIMIT 50"""
            ),
            {"name": normalized, "kvk": kvk_number or None, "domain": domain_of(website)},
        )
    ).all()
    found: dict[int, Duplicate] = {}
    for row in rows:
        if row.why == "name":
            score = relation_score(name, row.name)
            if score < RELATION_THRESHOLD:
                continue
            reason = f"{normalizers.company(row.name)} ≈ {normalized} ({score * 100:.0f})"
        else:
            score, reason = 1.0, f"same {row.why}"
        best = found.get(row.id)
        if best is None or score > best.score:
            found[row.id] = Duplicate(row.id, row.name, round(score, 4), {row.why: reason})
    return sorted(found.values(), key=lambda d: -d.score)


def domain_of(website: str | None) -> str | None:
    if not website:
        return None
    host = website.lower().split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.removeprefix("www.") or None


async def lead_duplicates(
    session: AsyncSession,
    *,
    name: str | None,
    company: str | None,
    email: str | None,
    phone: str | None,
) -> list[dict[str, Any]]:
    """Leads and contacts a new lead likely is: the same address or number, or the matcher's."""
    out: list[dict[str, Any]] = []
    keys = []
    if email and (address := normalizers.email(email)):
        keys.append(("email", normalizers.email_key(address)))
    if phone and (number := normalizers.phone(phone)):
        keys.append(("phone", number))
    for kind, key in keys:
        rows = (
            await session.execute(
                select(Identity.lead_id, Identity.contact_id).where(
                    Identity.kind == kind, Identity.key == key
                )
            )
        ).all()
        for row in rows:
            if row.lead_id:
                out.append(
                    {"kind": "lead", "id": row.lead_id, "score": 1.0, "reasons": {kind: "same"}}
                )
            if row.contact_id:
                out.append(
                    {
                        "kind": "contact",
                        "id": row.contact_id,
                        "score": 1.0,
                        "reasons": {kind: "same"},
                    }
                )
    if name and not out:
        for d in await contact_duplicates(session, name=name, email=email, phone=phone):
            out.append({"kind": "contact", "id": d.id, "score": d.score, "reasons": d.reasons})
        if company and not out:
            for d in await relation_duplicates(session, name=company):
                out.append({"kind": "relation", "id": d.id, "score": d.score, "reasons": d.reasons})
    unique: dict[tuple[str, int], dict[str, Any]] = {}
    for item in out:
        unique.setdefault((item["kind"], item["id"]), item)
    return list(unique.values())


# --- merge and undo ------------------------------------------------------------------------------

# What points at a record of each kind: (model, column). Rows move from source to target.
POINTERS: dict[str, list[tuple[Any, str]]] = {
    "contact": [
        (Identity, "contact_id"),
        (Activity, "contact_id"),
        (Task, "contact_id"),
        (MatchReview, "contact_id"),
        (Lead, "converted_contact_id"),
    ],
    "relation": [
        (Identity, "relation_id"),
        (Contact, "relation_id"),
        (Project, "relation_id"),
        (Activity, "relation_id"),
        (Task, "relation_id"),
    ],
    "lead": [(Identity, "lead_id"), (Activity, "lead_id"), (Task, "lead_id")],
}
MODELS: dict[str, Any] = {"contact": Contact, "relation": Relation, "lead": Lead}
# Fields a merge may fill on the target when it has none (and undo empties again).
FILLABLE = {
    "contact": ("first_name", "last_name", "job_title", "city", "language", "external_id"),
    "relation": ("abc_class", "account_manager_id", "team_id", "region", "branch", "kvk_number", "website", "external_id"),
    "lead": ("name", "company", "owner_id", "source_detail"),
}  # fmt: skip


class MergeError(ValueError):
    pass


# The inbox's conversations point at CRM records too; crm names their table, not the inbox's model.
CONVERSATIONS = sql_table(
    "conversations",
    sql_column("id"),
    sql_column("contact_id"),
    sql_column("relation_id"),
    sql_column("lead_id"),
)


def _pointer_columns(pointer: Any, column: str) -> tuple[str, Any, Any]:
    """(table name, id column, pointer column) of a model or a plain table."""
    if isinstance(pointer, type):
        model: Any = pointer
        return str(model.__tablename__), model.id, getattr(model, column)
    return str(pointer.name), pointer.c.id, pointer.c[column]


def _conversation_pointer(kind: str) -> str:
    return {"contact": "contact_id", "relation": "relation_id", "lead": "lead_id"}[kind]


async def merge(
    session: AsyncSession, kind: str, source_id: int, target_id: int, user_id: int | None
) -> Merge:
    """Merge source into target (see the module doc); the caller commits."""
    if source_id == target_id:
        raise MergeError("a record cannot be merged into itself")
    model = MODELS[kind]
    source = await session.get(model, source_id, with_for_update=True)
    target = await session.get(model, target_id, with_for_update=True)
    if source is None or target is None:
        raise LookupError(kind)
    table: Table = model.__table__
    snapshot = {c.name: _json(getattr(source, c.key)) for c in table.columns}
    moved: dict[str, list[int]] = {}
    for pointer_model, column in [*POINTERS[kind], (CONVERSATIONS, _conversation_pointer(kind))]:
        name, id_column, pointer = _pointer_columns(pointer_model, column)
        ids = list(
            await session.scalars(
                update(pointer_model)
                .where(pointer == source_id)
                .values({column: target_id})
                .returning(id_column)
            )
        )
        if ids:
            moved[f"{name}.{column}"] = ids
    filled = []
    for name in FILLABLE[kind]:
        if getattr(target, name) in (None, "") and getattr(source, name) not in (None, ""):
            value = getattr(source, name)
            if name == "external_id":
                setattr(source, name, None)
                await session.flush()
            setattr(target, name, value)
            filled.append(name)
    await session.execute(delete(model).where(model.id == source_id))
    record = Merge(
        kind=kind,
        source_id=source_id,
        target_id=target_id,
        snapshot=snapshot,
        moved={"rows": moved, "filled": filled},
        user_id=user_id,
    )
    session.add(record)
    await session.execute(
        update(DuplicateCandidate)
        .where(
            DuplicateCandidate.kind == kind,
            DuplicateCandidate.status == "open",
            (DuplicateCandidate.record_id == source_id)
            | (DuplicateCandidate.other_id == source_id),
        )
        .values(status="merged")
    )
    await session.flush()
    return record


async def undo(session: AsyncSession, merge_id: int) -> Merge:
    """Put the source back with its own id and move back exactly what the merge moved."""
    record = await session.get(Merge, merge_id, with_for_update=True)
    if record is None:
        raise LookupError("merge")
    if record.undone_at is not None:
        raise MergeError("this merge was already undone")
    model = MODELS[record.kind]
    table: Table = model.__table__
    target = await session.get(model, record.target_id, with_for_update=True)
    filled = list(record.moved.get("filled", []))
    if target is not None:
        for name in filled:
            setattr(target, name, None)
        await session.flush()
    values = {c.name: _unjson(c, record.snapshot.get(c.name)) for c in table.columns}
    await session.execute(insert(table).values(values))
    pointers = {f"{m.__tablename__}.{c}": (m, c) for m, c in POINTERS[record.kind]}
    pointers[f"conversations.{_conversation_pointer(record.kind)}"] = (
        CONVERSATIONS,
        _conversation_pointer(record.kind),
    )
    for key, ids in record.moved.get("rows", {}).items():
        pointer_model, column = pointers[key]
        _, id_column, _ = _pointer_columns(pointer_model, column)
        await session.execute(
            update(pointer_model).where(id_column.in_(ids)).values({column: record.source_id})
        )
    record.undone_at = datetime.now(UTC)
    await session.flush()
    return record


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _unjson(column: Any, value: Any) -> Any:
    if value is not None and column.type.python_type is datetime:
        return datetime.fromisoformat(value)
    return value


# --- the periodic duplicate job ------------------------------------------------------------------

_CONTACT_PAIRS = text(
    """SELECT a.id AS a, b.id AS b FROM contacts a
       JOIN contacts b ON b.relation_id = a.relation_id AND b.id > a.id
        AND lower(b.last_name) = lower(a.last_name)
        AND left(lower(b.first_name), 1) = left(lower(a.first_name), 1)
       WHERE a.relation_id IS NOT NULL
       UNION
       SELECT least(x.contact_id, y.contact_id), greatest(x.contact_id, y.contact_id)
       FROM identities x JOIN identities y ON y.key = x.key AND y.kind = x.kind AND y.id <> x.id
       WHERE x.contact_id IS NOT NULL AND y.contact_id IS NOT NULL AND x.contact_id <> y.contact_id
       LIMIT 20000"""
)
_RELATION_PAIRS = text(
    """SELECT a.id AS a, b.id AS b FROM relations a
       JOIN relations b ON b.normalized_name = a.normalized_name AND b.id > a.id
       UNION SELECT a.id, b.id FROM relations a
       JOIN relations b ON b.kvk_number = a.kvk_number AND b.id > a.id
       WHERE a.kvk_number IS NOT NULL AND a.kvk_number <> ''
       LIMIT 20000"""
)


DEFAULT_THRESHOLD = 0.5  # for a weights file that sets none


async def find_clusters(session: AsyncSession, weights: Weights | None = None) -> int:
    """Score blocked pairs, store the likely ones with their cluster; returns pairs stored.
    A contact pair is likely when its probability reaches the threshold of `weights` (by
    default the shipped file's)."""
    w = weights or load_weights()
    threshold = threshold_of(w)
    contact_pairs = [(r.a, r.b) for r in (await session.execute(_CONTACT_PAIRS)).all()]
    contacts = await _contact_rows(session, {i for p in contact_pairs for i in p})
    scored: list[tuple[str, int, int, float, dict[str, str]]] = []
    for a, b in contact_pairs:
        if a in contacts and b in contacts:
            score, reasons = contact_pair_score(contacts[a], contacts[b], w)
            if score >= threshold:
                scored.append(("contact", a, b, score, reasons))
    relation_pairs = (await session.execute(_RELATION_PAIRS)).all()
    names = {
        r.id: r.name
        for r in (
            await session.execute(
                select(Relation.id, Relation.name).where(
                    Relation.id.in_({i for p in relation_pairs for i in (p.a, p.b)})
                )
            )
        ).all()
    }
    for p in relation_pairs:
        score = relation_score(names.get(p.a, ""), names.get(p.b, ""))
        scored.append(
            (
                "relation",
                p.a,
                p.b,
                max(score, 0.9),
                {"name": f"{names.get(p.a)} / {names.get(p.b)}"},
            )
        )
    clusters = _components([(kind, a, b) for kind, a, b, _, _ in scored])
    if not scored:
        return 0
    # One statement for every pair (a job run may score thousands).
    result = await session.execute(
        text(
            """INSERT INTO duplicate_candidates
                 (kind, record_id, other_id, cluster, score, reasons, status, created_at)
               SELECT x.kind, x.a, x.b, x.cluster, x.score, CAST(x.reasons AS jsonb), 'open', now()
               FROM unnest(CAST(:kind AS text[]), CAST(:a AS bigint[]), CAST(:b AS bigint[]),
                           CAST(:cluster AS bigint[]), CAST(:score AS float8[]),
                           CAST(:reasons AS text[])) AS x(kind, a, b, cluster, score, reasons)
               ON CONFLICT (kind, record_id, other_id) DO UPDATE SET cluster = excluded.cluster,
                 score = excluded.score, reasons = excluded.reasons
               WHERE duplicate_candidates.status = 'open'"""
        ),
        {
            "kind": [p[0] for p in scored],
            "a": [p[1] for p in scored],
            "b": [p[2] for p in scored],
            "cluster": [clusters[(p[0], p[1])] for p in scored],
            "score": [round(p[3], 4) for p in scored],
            "reasons": [json.dumps(p[4], ensure_ascii=False) for p in scored],
        },
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _components(edges: list[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """Union-find over the pairs: each record's cluster is its smallest connected id."""
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(x: tuple[str, int]) -> tuple[str, int]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for kind, a, b in edges:
        ra, rb = find((kind, a)), find((kind, b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x)[1] for x in list(parent)}


@dataclass
class ContactRow:
    id: int
    first_name: str
    last_name: str
    full_name: str
    relation: str
    city: str
    emails: set[str]
    phones: set[str]


async def _contact_rows(session: AsyncSession, ids: set[int]) -> dict[int, ContactRow]:
    if not ids:
        return {}
    rows = (
        await session.execute(
            select(
                Contact.id,
                Contact.first_name,
                Contact.last_name,
                Contact.full_name,
                Contact.city,
                Relation.name,
            )
            .outerjoin(Relation, Relation.id == Contact.relation_id)
            .where(Contact.id.in_(ids))
        )
    ).all()
    out = {
        r.id: ContactRow(
            r.id,
            r.first_name or "",
            r.last_name or "",
            r.full_name,
            r.name or "",
            r.city or "",
            set(),
            set(),
        )
        for r in rows
    }
    for i in (
        await session.execute(
            select(Identity.contact_id, Identity.kind, Identity.key).where(
                Identity.contact_id.in_(ids)
            )
        )
    ).all():
        if i.contact_id in out and i.key:
            (out[i.contact_id].emails if i.kind == "email" else out[i.contact_id].phones).add(i.key)
    return out


@dataclass
class PersonRecord:
    """What the pair scorer compares; any field may be empty."""

    given: str = ""
    surname: str = ""
    company: str = ""
    city: str = ""
    address: str = ""
    postcode: str = ""
    birth_date: str = ""
    ids: frozenset[str] = frozenset()  # e-mail keys, phone numbers, customer or social numbers


def _surname_in_given(a: PersonRecord, b: PersonRecord) -> PersonRecord:
    """A lone name is often the surname ('Stevenson' beside 'Robert Stevenson'): read it as
    one when it is closer to the other record's surname than to its given name."""
    if a.surname or not a.given or not b.surname:
        return a
    g = normalizers.fold(a.given)
    as_surname = JaroWinkler.normalized_similarity(g, normalizers.fold(b.surname))
    if as_surname > JaroWinkler.normalized_similarity(g, normalizers.fold(b.given)):
        return replace(a, given="", surname=a.given)
    return a


SAME_ID = 0.99  # a shared address, number or id: the same person, whatever the names say
PACKAGED_WEIGHTS = "dedup_weights.json"
# An agreement (0..1) read as a level: the largest step at or below it, in percent.
STEPS = (100, 90, 80, 70, 60, 50, 30)


def load_weights(path: str | None = None) -> Weights:
    """The pair scorer's weights: a refit in `path` (`switchboard duplicates train`) when there
    is one, else the ones shipped in crm/data (fitted by bench/duplicates.py --write-weights)."""
    return load(path, packaged=PACKAGED_WEIGHTS)


def level_of(agreement: float) -> str:
    percent = round(agreement * 100)
    return next((str(step) for step in STEPS if percent >= step), "differ")


def person_pair_levels(a: PersonRecord, b: PersonRecord) -> dict[str, str] | None:
    """The agreement level of each field both records have; None when they share an id."""
    sims = person_pair_agreement(a, b)
    return None if sims is None else {f: level_of(v) for f, v in sims.items()}


def person_pair_score(
    a: PersonRecord, b: PersonRecord, weights: Weights | None = None
) -> tuple[float, dict[str, str]]:
    """The probability that two records are one person (Fellegi–Sunter form: the prior and a
    log-odds weight per field and agreement level, summed), with the agreement per field."""
    sims = person_pair_agreement(a, b)
    if sims is None:
        return SAME_ID, {"id": "same address, number or id"}
    return agreement_score(sims, weights or load_weights()), {
        f: f"{v * 100:.0f}" for f, v in sims.items()
    }


def agreement_score(sims: Mapping[str, float] | None, weights: Weights) -> float:
    """person_pair_score's probability from the agreements person_pair_agreement gave."""
    if sims is None:
        return SAME_ID
    if not sims:
        return 0.0
    return round(weights.probability({f: level_of(v) for f, v in sims.items()}), 4)


def threshold_of(weights: Weights) -> float:
    """The probability at or above which a pair is a likely duplicate."""
    return DEFAULT_THRESHOLD if weights.threshold is None else weights.threshold


def refit(samples: Sequence[Sample], start: Weights, keep: Iterable[str] = ()) -> Weights:
    """The weights refitted on decided pairs (levels, same person or not), from `start`: the
    evidence of a level only grows stronger (see crm.weights.fit), as the decided pairs are
    the ones the job listed, which all agree on the fields it blocks on."""
    matches = sum(match for _, match in samples)
    return fit(
        samples, start=start, fitted_on=f"{len(samples)} pairs, {matches} matches", keep=keep
    )


def person_pair_agreement(a: PersonRecord, b: PersonRecord) -> dict[str, float] | None:
    """How far each field both records have agrees (0..1); None when they share an id."""
    if a.ids & b.ids:
        return None
    a, b = _surname_in_given(a, b), _surname_in_given(b, a)
    sims: dict[str, float] = {}
    x, y = normalizers.fold(a.surname), normalizers.fold(b.surname)
    if x and y:
        jw = JaroWinkler.normalized_similarity(x, y)
        sims["surname"] = (
            1.0
            if x == y
            else 0.7
            if jw >= 0.9 or OSA.distance(x, y) <= 1
            else 0.3
            if jw >= 0.8
            else 0.0
        )
    g, h = normalizers.fold(a.given), normalizers.fold(b.given)
    if g and h:
        if g == h:
            sims["given"] = 1.0
        elif same_person_name(g, h):  # 'tom' and 'thomas', 'kees' and 'cornelis'
            sims["given"] = 0.9
        elif len(g) == 1 or len(h) == 1:
            sims["given"] = 0.8 if g[0] == h[0] else 0.0
        elif g.startswith(h) or h.startswith(g) or JaroWinkler.normalized_similarity(g, h) >= 0.9:
            sims["given"] = 0.8
        elif OSA.distance(g, h) <= 1:
            sims["given"] = 0.7
        else:
            sims["given"] = 0.0
    if a.birth_date and b.birth_date:
        d = OSA.distance(a.birth_date, b.birth_date)
        same_year = a.birth_date[:4] == b.birth_date[:4]
        sims["birth_date"] = 1.0 if d == 0 else 0.6 if d == 1 else 0.3 if same_year else 0.0
    if a.company and b.company:
        sims["company"] = (
            fuzz.token_set_ratio(normalizers.company(a.company), normalizers.company(b.company))
            / 100
        )
    if a.address and b.address:
        sims["address"] = (
            fuzz.token_set_ratio(normalizers.fold(a.address), normalizers.fold(b.address)) / 100
        )
    if a.postcode and b.postcode:
        x, y = a.postcode.replace(" ", ""), b.postcode.replace(" ", "")
        d = OSA.distance(x, y)
        # the same district: a British postcode's outward part (all but its last three), else
        # the first three digits
        district = x[:-3] == y[:-3] if min(len(x), len(y)) > 4 else x[:3] == y[:3]
        sims["postcode"] = 1.0 if d == 0 else 0.5 if d == 1 else 0.3 if district else 0.0
    if a.city and b.city:
        x, y = normalizers.fold(a.city), normalizers.fold(b.city)
        sims["city"] = (
            1.0
            if x == y
            else 0.7
            if fuzz.ratio(x, y) >= 85
            else 0.5  # one names a part of the other ('west devon', 'bristol, city of')
            if fuzz.token_set_ratio(x, y) == 100
            else 0.0
        )
    if a.ids and b.ids:
        sims["id"] = 0.0  # both have numbers or addresses, none shared
    return sims


def contact_pair_score(
    a: ContactRow, b: ContactRow, weights: Weights | None = None
) -> tuple[float, dict[str, str]]:
    """How likely two contacts are one person: names, company, shared address or number, city."""
    return person_pair_score(contact_record(a), contact_record(b), weights)


def contact_record(c: ContactRow) -> PersonRecord:
    """What the pair scorer compares of a contact."""
    name = normalizers.person_name(f"{c.first_name} {c.last_name}".strip() or c.full_name)
    given = name.given[0] if name.given else name.initials[:1]
    surname = f"{name.particles} {name.surname}".strip()
    return PersonRecord(
        given=given,
        surname=surname,
        company=c.relation,
        city=c.city,
        ids=frozenset(c.emails | c.phones),
    )


async def training_pairs(
    session: AsyncSession, weights: Weights
) -> tuple[list[Sample], list[Sample]]:
    """What `switchboard duplicates train` learns from, as levels: the pairs people decided,
    and the pairs the job scores below its threshold that nobody decided (two people: the job
    does not list them and nobody merged them; without them the decided pairs, nearly all
    listed, would read a likely pair as the rule). Pairs sharing an address or number are left
    out: such a pair is decided without weights."""
    decided = await _decided_pairs(session)
    seen = {tuple(sorted((a.id, b.id))) for a, b, _ in decided}
    seen |= {
        (r.record_id, r.other_id)
        for r in (
            await session.execute(
                select(DuplicateCandidate.record_id, DuplicateCandidate.other_id).where(
                    DuplicateCandidate.kind == "contact"
                )
            )
        ).all()
    }
    blocked = [
        (r.a, r.b) for r in (await session.execute(_CONTACT_PAIRS)).all() if (r.a, r.b) not in seen
    ]
    contacts = await _contact_rows(session, {i for p in blocked for i in p})
    threshold = threshold_of(weights)
    unlisted = [
        (contacts[a], contacts[b], False)
        for a, b in blocked
        if a in contacts
        and b in contacts
        and contact_pair_score(contacts[a], contacts[b], weights)[0] < threshold
    ]
    return _levels(decided), _levels(unlisted)


def _levels(pairs: list[tuple[ContactRow, ContactRow, bool]]) -> list[Sample]:
    out: list[Sample] = []
    for a, b, same in pairs:
        levels = person_pair_levels(contact_record(a), contact_record(b))
        if levels is not None:
            out.append((levels, same))
    return out


async def _decided_pairs(session: AsyncSession) -> list[tuple[ContactRow, ContactRow, bool]]:
    """The contact pairs people decided: a merge says one person (until it is undone), an
    undone merge or a dismissed duplicate pair says two. A merged-away contact is read from
    the merge's snapshot and the identities that moved; the target as it was before (without
    the fields the merge filled)."""
    merges = (
        await session.scalars(select(Merge).where(Merge.kind == "contact").order_by(Merge.id))
    ).all()
    dismissed = (
        await session.execute(
            select(DuplicateCandidate.record_id, DuplicateCandidate.other_id).where(
                DuplicateCandidate.kind == "contact", DuplicateCandidate.status == "dismissed"
            )
        )
    ).all()
    live = [m for m in merges if m.undone_at is None]
    rows = await _contact_rows(
        session,
        {m.target_id for m in merges}
        | {m.source_id for m in merges if m.undone_at is not None}
        | {i for pair in dismissed for i in pair},
    )
    moved_ids = {m.id: set(m.moved.get("rows", {}).get("identities.contact_id", [])) for m in live}
    keys = {
        i.id: i
        for i in (
            await session.execute(
                select(Identity.id, Identity.kind, Identity.key).where(
                    Identity.id.in_({i for ids in moved_ids.values() for i in ids})
                )
            )
        ).all()
    }
    relations: dict[int, str] = dict(
        (
            await session.execute(
                select(Relation.id, Relation.name).where(
                    Relation.id.in_({m.snapshot.get("relation_id") for m in live})
                )
            )
        ).all()
    )
    pairs: list[tuple[ContactRow, ContactRow, bool]] = []
    for m in merges:
        if m.undone_at is not None:
            if m.source_id in rows and m.target_id in rows:
                pairs.append((rows[m.source_id], rows[m.target_id], False))
            continue
        if m.target_id not in rows:
            continue  # merged on again: what it was is gone
        moved = [keys[i] for i in moved_ids[m.id] if i in keys]
        emails = {i.key for i in moved if i.kind == "email" and i.key}
        phones = {i.key for i in moved if i.kind != "email" and i.key}
        snap = m.snapshot
        source = ContactRow(
            m.source_id,
            snap.get("first_name") or "",
            snap.get("last_name") or "",
            snap.get("full_name") or "",
            relations.get(snap.get("relation_id") or 0, ""),
            snap.get("city") or "",
            emails,
            phones,
        )
        target = rows[m.target_id]
        filled = set(m.moved.get("filled", []))
        before = replace(
            target,
            first_name="" if "first_name" in filled else target.first_name,
            last_name="" if "last_name" in filled else target.last_name,
            city="" if "city" in filled else target.city,
            emails=target.emails - emails,
            phones=target.phones - phones,
        )
        pairs.append((source, before, True))
    for x, y in dismissed:
        if x in rows and y in rows:
            pairs.append((rows[x], rows[y], False))
    return pairs
