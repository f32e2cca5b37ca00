"""The bulk import's set-based batch writer: a batch of normalised rows is written with a handful
of unnest statements (one round trip per table, never a query per row) and counted into the
import's report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from crm import normalizers

# --- what a batch holds, and the report -----------------------------------------------------------


@dataclass
class ImportReport:
    rows: int = 0
    relations_created: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    identities_added: int = 0
    domains_added: int = 0
    projects_created: int = 0
    duplicates: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line", "error"} (first 1,000)
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # identities owned elsewhere

    def error(self, line: int, message: str) -> None:
        self.skipped += 1
        if len(self.errors) < 1000:
            self.errors.append({"line": line, "error": message})

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "relations_created": self.relations_created,
            "contacts_created": self.contacts_created,
            "contacts_updated": self.contacts_updated,
            "identities_added": self.identities_added,
            "domains_added": self.domains_added,
            "projects_created": self.projects_created,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "errors": self.errors,
            "conflicts": self.conflicts[:1000],
        }


@dataclass
class RowIn:
    line: int
    external_id: str | None
    first_name: str | None
    last_name: str | None
    full_name: str
    job_title: str | None
    city: str | None
    language: str | None
    relation_key: str | None  # 'x:<external id>' or 'n:<name without legal form>'
    emails: list[tuple[str, str]]  # (normalised, raw)
    phones: list[tuple[str, str]]
    custom_fields: str
    project: str | None
    project_city: str | None
    missing: tuple[str, ...] = ()  # required custom fields the row does not give


@dataclass
class RelationIn:
    key: str
    name: str
    normalized: str
    external_id: str | None
    city: str | None
    kvk: str | None
    website: str | None
    status: str | None
    abc_class: str | None
    account_manager: str | None
    region: str | None
    branch: str | None


# --- writing one batch ----------------------------------------------------------------------------


# The names are joined, not `= ANY(:names)`: with thousands of names PostgreSQL would take the
# trigram index over normalized_name for that (seen: 36 s for a batch of 5,000 rows).
_FIND_RELATIONS = text(
    """SELECT id, external_id, normalized_name FROM relations WHERE external_id = ANY(:ext)
       UNION
       SELECT r.id, r.external_id, r.normalized_name
       FROM relations r JOIN unnest(CAST(:names AS text[])) AS n(name) ON r.normalized_name = n.name"""
)


_INSERT_RELATIONS = text(
    """INSERT INTO relations (name, normalized_name, external_id, status, abc_class, addresses,
                              custom_fields, kvk_number, website, region, branch,
                              account_manager_id, created_at)
       SELECT x.name, x.normalized, x.ext,
              coalesce((SELECT code FROM relation_statuses WHERE code = x.status), 'prospect'),
              x.abc, CASE WHEN x.city IS NULL THEN '[]'::jsonb
                          ELSE jsonb_build_array(jsonb_build_object('kind', 'visit', 'city', x.city)) END,
              '{}'::jsonb, x.kvk, x.website, x.region, x.branch,
              (SELECT id FROM users WHERE email = x.manager), now()
       FROM unnest(CAST(:name AS text[]), CAST(:normalized AS text[]), CAST(:ext AS text[]),
                   CAST(:status AS text[]), CAST(:abc AS text[]), CAST(:city AS text[]),
                   CAST(:kvk AS text[]), CAST(:website AS text[]), CAST(:region AS text[]),
                   CAST(:branch AS text[]), CAST(:manager AS text[]))
            AS x(name, normalized, ext, status, abc, city, kvk, website, region, branch, manager)
       RETURNING id, external_id, normalized_name"""
)


_UPSERT_CONTACTS = text(
    """INSERT INTO contacts (relation_id, first_name, last_name, full_name, job_title, city,
                             language, custom_fields, external_id, created_at)
       SELECT x.relation_id, x.first_name, x.last_name, x.full_name, x.job_title, x.city,
              x.language, CAST(x.custom_fields AS jsonb), x.ext, now()
       FROM unnest(CAST(:relation_id AS bigint[]), CAST(:first_name AS text[]),
                   CAST(:last_name AS text[]), CAST(:full_name AS text[]),
                   CAST(:job_title AS text[]), CAST(:city AS text[]), CAST(:language AS text[]),
                   CAST(:custom_fields AS text[]), CAST(:ext AS text[]))
            AS x(relation_id, first_name, last_name, full_name, job_title, city, language,
                 custom_fields, ext)
       ON CONFLICT (external_id) DO UPDATE SET
         relation_id = coalesce(excluded.relation_id, contacts.relation_id),
         first_name = excluded.first_name, last_name = excluded.last_name,
         full_name = excluded.full_name,
         job_title = coalesce(excluded.job_title, contacts.job_title),
         city = coalesce(excluded.city, contacts.city),
         language = coalesce(excluded.language, contacts.language),
         custom_fields = contacts.custom_fields || excluded.custom_fields
       WHERE (contacts.relation_id, contacts.first_name, contacts.last_name, contacts.full_name,
              contacts.job_title, contacts.city, contacts.language, contacts.custom_fields)
         IS DISTINCT FROM
             (coalesce(excluded.relation_id, contacts.relation_id), excluded.first_name,
              excluded.last_name, excluded.full_name,
              coalesce(excluded.job_title, contacts.job_title),
              coalesce(excluded.city, contacts.city),
              coalesce(excluded.language, contacts.language),
              contacts.custom_fields || excluded.custom_fields)
       RETURNING id, external_id, (xmax = 0) AS created"""
)


_INSERT_IDENTITIES = text(
    """INSERT INTO identities (kind, value, key, shared, raw, contact_id, relation_id, created_at)
       SELECT x.kind, x.value, x.key, x.shared, x.raw, x.contact_id, x.relation_id, now()
       FROM unnest(CAST(:kind AS text[]), CAST(:value AS text[]), CAST(:key AS text[]),
                   CAST(:shared AS boolean[]), CAST(:raw AS text[]), CAST(:contact_id AS bigint[]),
                   CAST(:relation_id AS bigint[]))
            AS x(kind, value, key, shared, raw, contact_id, relation_id)
       ON CONFLICT (kind, value) DO NOTHING
       RETURNING kind, value"""
)


_OWNERS = text(
    """SELECT i.kind, i.value, i.contact_id, i.relation_id, i.lead_id FROM identities i
       JOIN unnest(CAST(:kind AS text[]), CAST(:value AS text[])) AS x(kind, value)
         ON x.kind = i.kind AND x.value = i.value"""
)


_INSERT_PROJECTS = text(
    """INSERT INTO projects (name, relation_id, city, status, confidential, created_at)
       SELECT DISTINCT ON (x.relation_id, x.name) x.name, x.relation_id, x.city, 'open', false, now()
       FROM unnest(CAST(:name AS text[]), CAST(:relation_id AS bigint[]), CAST(:city AS text[]))
            AS x(name, relation_id, city)
       WHERE NOT EXISTS (SELECT 1 FROM projects p
                         WHERE p.relation_id IS NOT DISTINCT FROM x.relation_id AND p.name = x.name)
       RETURNING id"""
)


_DUPLICATES = text(
    """SELECT DISTINCT ON (x.n) x.n, c.id FROM
         unnest(CAST(:n AS int[]), CAST(:email_key AS text[]), CAST(:phone AS text[]),
                CAST(:name AS text[]), CAST(:relation_id AS bigint[]))
           AS x(n, email_key, phone, name, relation_id)
       JOIN contacts c ON
            c.id IN (SELECT i.contact_id FROM identities i
                     WHERE (i.kind = 'email' AND i.key = x.email_key)
                        OR (i.kind = 'phone' AND i.value = x.phone))
         OR (x.relation_id IS NOT NULL AND c.relation_id = x.relation_id
             AND lower(c.full_name) = x.name)
       ORDER BY x.n, c.id"""
)


# For this transaction: the index triggers stand aside (the import refreshes the documents of
# what it wrote once, at its end: crm.importer); every statement is planned for its own arrays
# (asyncpg prepares them, and from the sixth batch on PostgreSQL's generic plan of
# _FIND_RELATIONS, blind to the arrays' sizes, took 10-16 s a batch instead of 3 ms); the
# commit does not wait for the WAL flush (a lost batch is imported again by rerunning the
# file: the contacts are upserted on external_id).
_BULK_SETTINGS = text(
    """SELECT set_config('switchboard.bulk', 'on', true),
              set_config('plan_cache_mode', 'force_custom_plan', true),
              set_config('synchronous_commit', 'off', true)"""
)


async def _relations(
    conn: AsyncConnection, wanted: dict[str, RelationIn], report: ImportReport
) -> dict[str, int]:
    """relation key → id: existing ones found, missing ones created (one statement each)."""
    if not wanted:
        return {}
    ext = [r.external_id for r in wanted.values() if r.external_id]
    names = [r.normalized for r in wanted.values() if not r.external_id]
    found: dict[str, int] = {}
    for row in (await conn.execute(_FIND_RELATIONS, {"ext": ext, "names": names})).all():
        if row.external_id:
            found.setdefault(f"x:{row.external_id}", row.id)
        found.setdefault(f"n:{row.normalized_name}", row.id)
    missing = [r for k, r in wanted.items() if k not in found]
    if missing:
        columns = {
            "name": [r.name for r in missing],
            "normalized": [r.normalized for r in missing],
            "ext": [r.external_id for r in missing],
            "status": [r.status for r in missing],
            "abc": [r.abc_class for r in missing],
            "city": [r.city for r in missing],
            "kvk": [r.kvk for r in missing],
            "website": [r.website for r in missing],
            "region": [r.region for r in missing],
            "branch": [r.branch for r in missing],
            "manager": [r.account_manager for r in missing],
        }
        created = (await conn.execute(_INSERT_RELATIONS, columns)).all()
        report.relations_created += len(created)
        for row in created:
            found[f"x:{row.external_id}" if row.external_id else f"n:{row.normalized_name}"] = (
                row.id
            )
    return found


@dataclass
class Touched:
    """What the import wrote, for its one pass over the search documents at the end: the
    records, and the relations that got new projects (their contacts' documents list them,
    contacts written by earlier batches or before the import included)."""

    relations: set[int] = field(default_factory=set)
    contacts: set[int] = field(default_factory=set)
    projects: set[int] = field(default_factory=set)
    project_relations: set[int] = field(default_factory=set)


async def write_batch(
    conn: AsyncConnection,
    rows: list[RowIn],
    relations_in: dict[str, RelationIn],
    dedup: bool,
    report: ImportReport,
    touched: Touched,
) -> None:
    await conn.execute(_BULK_SETTINGS)
    relation_ids = await _relations(conn, relations_in, report)
    people = [r for r in rows if r.full_name]
    # One row per external id in a batch: the last one wins, as it would row by row.
    by_ext: dict[str, RowIn] = {}
    plain: list[RowIn] = []
    for r in people:
        if r.external_id:
            by_ext[r.external_id] = r
        else:
            plain.append(r)
    people = [*by_ext.values(), *plain]
    if any(r.missing for r in people):
        people, rows = await _with_required_fields(conn, people, rows, report)
    if dedup and people:
        people = await _without_duplicates(conn, people, relation_ids, report)
    contact_ids: dict[int, int] = {}  # line → contact id
    if people:
        result = (
            await conn.execute(
                _UPSERT_CONTACTS,
                {
                    "relation_id": [relation_ids.get(r.relation_key or "") for r in people],
                    "first_name": [r.first_name for r in people],
                    "last_name": [r.last_name for r in people],
                    "full_name": [r.full_name for r in people],
                    "job_title": [r.job_title for r in people],
                    "city": [r.city for r in people],
                    "language": [r.language for r in people],
                    "custom_fields": [r.custom_fields for r in people],
                    "ext": [r.external_id for r in people],
                },
            )
        ).all()
        created = sum(1 for row in result if row.created)
        report.contacts_created += created
        report.contacts_updated += len(result) - created
        by_external = {row.external_id: row.id for row in result if row.external_id}
        plain_ids = iter(row.id for row in result if not row.external_id)
        for r in people:
            if r.external_id:
                if r.external_id in by_external:
                    contact_ids[r.line] = by_external[r.external_id]
            else:
                contact_ids[r.line] = next(plain_ids)
        missing_ext = [
            r.external_id for r in people if r.external_id and r.external_id not in by_external
        ]
        if missing_ext:  # unchanged on re-import: still their identities may be new
            found = await conn.execute(
                text("SELECT id, external_id FROM contacts WHERE external_id = ANY(:ext)"),
                {"ext": missing_ext},
            )
            known = {row.external_id: row.id for row in found}
            for r in people:
                if r.external_id in known:
                    contact_ids[r.line] = known[r.external_id]
    await _identities(conn, rows, contact_ids, relation_ids, report)
    projects = await _projects(conn, rows, relation_ids, report)
    touched.relations |= set(relation_ids.values())
    touched.contacts |= set(contact_ids.values())
    touched.projects |= set(projects)
    if projects:
        touched.project_relations |= set(relation_ids.values())


async def _with_required_fields(
    conn: AsyncConnection, people: list[RowIn], rows: list[RowIn], report: ImportReport
) -> tuple[list[RowIn], list[RowIn]]:
    """A row that makes a new contact without a required custom field is refused with its
    line (an update of a known contact keeps the values it has)."""
    ext = [r.external_id for r in people if r.missing and r.external_id]
    known = set(
        (
            await conn.execute(
                text("SELECT external_id FROM contacts WHERE external_id = ANY(:ext)"),
                {"ext": ext},
            )
        ).scalars()
        if ext
        else ()
    )
    refused = {r.line for r in people if r.missing and r.external_id not in known}
    for r in people:
        if r.line in refused:
            names = ", ".join(r.missing)
            report.error(
                r.line, f"a new contact needs the custom field{'s' * (len(r.missing) > 1)} {names}"
            )
    return (
        [r for r in people if r.line not in refused],
        [r for r in rows if r.line not in refused],
    )


async def _without_duplicates(
    conn: AsyncConnection, people: list[RowIn], relation_ids: dict[str, int], report: ImportReport
) -> list[RowIn]:
    """--dedup: a new contact whose address, number or name at the relation is already known."""
    new = [r for r in people if not r.external_id]
    if people and any(r.external_id for r in people):
        existing = set(
            await conn.scalars(
                text("SELECT external_id FROM contacts WHERE external_id = ANY(:ext)"),
                {"ext": [r.external_id for r in people if r.external_id]},
            )
        )
        new += [r for r in people if r.external_id and r.external_id not in existing]
    if not new:
        return people
    rows = (
        await conn.execute(
            _DUPLICATES,
            {
                "n": list(range(len(new))),
                "email_key": [
                    normalizers.email_key(r.emails[0][0]) if r.emails else None for r in new
                ],
                "phone": [r.phones[0][0] if r.phones else None for r in new],
                "name": [r.full_name.lower() for r in new],
                "relation_id": [relation_ids.get(r.relation_key or "") for r in new],
            },
        )
    ).all()
    duplicate_lines = {new[row.n].line: row.id for row in rows}
    for line, contact_id in duplicate_lines.items():
        report.duplicates += 1
        if len(report.conflicts) < 1000:
            report.conflicts.append({"line": line, "duplicate_of_contact": contact_id})
    return [r for r in people if r.line not in duplicate_lines]


async def _identities(
    conn: AsyncConnection,
    rows: list[RowIn],
    contact_ids: dict[int, int],
    relation_ids: dict[str, int],
    report: ImportReport,
) -> None:
    kind: list[str] = []
    value: list[str] = []
    key: list[str] = []
    shared: list[bool] = []
    raw: list[str] = []
    contact: list[int | None] = []
    relation: list[int | None] = []
    lines: list[int] = []
    seen: set[tuple[str, str]] = set()
    domains: dict[str, set[int]] = {}

    def add(k: str, v: str, r: str, c: int | None, rel: int | None, line: int) -> None:
        if (k, v) in seen:
            return
        seen.add((k, v))
        kind.append(k)
        value.append(v)
        key.append(normalizers.email_key(v) if k == "email" else v)
        shared.append(k == "email" and normalizers.is_shared_mailbox(v))
        raw.append(r[:320])
        contact.append(c)
        relation.append(rel)
        lines.append(line)

    for r in rows:
        owner = contact_ids.get(r.line)
        rel = relation_ids.get(r.relation_key or "")
        if owner is None and not r.full_name and rel is not None:
            for v, raw_value in r.emails:
                add("email", v, raw_value, None, rel, r.line)
            for v, raw_value in r.phones:
                add("phone", v, raw_value, None, rel, r.line)
            continue
        if owner is None:
            continue
        for v, raw_value in r.emails:
            add("email", v, raw_value, owner, None, r.line)
            domain = normalizers.email_domain(v)
            if rel is not None and not normalizers.is_free_mail(domain):
                domains.setdefault(domain, set()).add(rel)
        for v, raw_value in r.phones:
            add("phone", v, raw_value, owner, None, r.line)
    if kind:
        inserted = {
            (row.kind, row.value)
            for row in await conn.execute(
                _INSERT_IDENTITIES,
                {
                    "kind": kind,
                    "value": value,
                    "key": key,
                    "shared": shared,
                    "raw": raw,
                    "contact_id": contact,
                    "relation_id": relation,
                },
            )
        }
        report.identities_added += len(inserted)
        taken = [
            (k, v, c, line)
            for k, v, c, line in zip(kind, value, contact, lines, strict=True)
            if (k, v) not in inserted
        ]
        if taken:
            owners = {
                (row.kind, row.value): row
                for row in await conn.execute(
                    _OWNERS, {"kind": [t[0] for t in taken], "value": [t[1] for t in taken]}
                )
            }
            for k, v, c, line in taken:
                row = owners.get((k, v))
                if row is not None and row.contact_id != c and len(report.conflicts) < 1000:
                    report.conflicts.append(
                        {"line": line, k: v, "owned_by": {
                            "contact_id": row.contact_id, "relation_id": row.relation_id, "lead_id": row.lead_id,
                        }}
                    )  # fmt: skip
    unambiguous = {d: next(iter(rels)) for d, rels in domains.items() if len(rels) == 1}
    if unambiguous:
        result = await conn.execute(
            _INSERT_IDENTITIES,
            {
                "kind": ["domain"] * len(unambiguous),
                "value": list(unambiguous),
                "key": list(unambiguous),
                "shared": [False] * len(unambiguous),
                "raw": list(unambiguous),
                "contact_id": [None] * len(unambiguous),
                "relation_id": list(unambiguous.values()),
            },
        )
        report.domains_added += len(result.all())


async def _projects(
    conn: AsyncConnection, rows: list[RowIn], relation_ids: dict[str, int], report: ImportReport
) -> list[int]:
    wanted: dict[tuple[int | None, str], str | None] = {}
    for r in rows:
        if r.project:
            wanted.setdefault((relation_ids.get(r.relation_key or ""), r.project), r.project_city)
    if not wanted:
        return []
    result = await conn.execute(
        _INSERT_PROJECTS,
        {
            "name": [name for _, name in wanted],
            "relation_id": [rel for rel, _ in wanted],
            "city": list(wanted.values()),
        },
    )
    created = [row.id for row in result.all()]
    report.projects_created += len(created)
    return created
