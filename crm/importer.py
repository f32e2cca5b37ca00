"""Bulk import of relations, contacts and projects from CSV or XLSX (`switchboard import FILE`).

Built for a million rows: the file is streamed, rows are normalised in Python in batches, and each
batch is written with a handful of set-based statements (unnest arrays: one round trip per table,
never a query per row). The search-index triggers run once per statement, not per row.

A contact with an external_id is upserted on it, so importing the same file twice changes nothing
and an edited file updates what changed. A relation is found by its relation_external_id, else by
its name without legal form. An e-mail address or phone number already owned by another record
stays theirs and is reported. A company address at a non-free-mail domain makes the domain a
'domain' identity of the relation (when only that relation uses it), so mail from a colleague at
the same domain is recognised as that company.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from crm import normalizers
from crm.base import Sessions

# Canonical column → the header spellings we accept (case, spaces, dashes and dots ignored).
COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id", "externalid", "id", "contact_id", "klantnummer", "contactnummer"),
    "relation": ("relation", "company", "organisation", "organization", "bedrijf", "bedrijfsnaam", "organisatie", "relatie"),
    "relation_external_id": ("relation_external_id", "company_id", "relatienummer", "debiteurnummer"),
    "first_name": ("first_name", "firstname", "given_name", "voornaam", "roepnaam"),
    "last_name": ("last_name", "lastname", "surname", "family_name", "achternaam"),
    "name": ("name", "full_name", "naam", "contactpersoon"),
    "email": ("email", "e_mail", "mail", "emailadres", "e_mailadres"),
    "phone": ("phone", "telephone", "tel", "telefoon", "telefoonnummer"),
    "mobile": ("mobile", "mobiel", "gsm", "mobile_phone"),
    "job_title": ("job_title", "title", "functie", "role"),
    "city": ("city", "plaats", "woonplaats", "town"),
    "relation_city": ("relation_city", "company_city", "vestigingsplaats", "bedrijfsplaats"),
    "project": ("project", "project_name", "projectnaam"),
    "project_city": ("project_city", "projectplaats", "project_plaats"),
    "kvk": ("kvk", "kvk_number", "kvk_nummer", "coc", "chamber_of_commerce"),
    "website": ("website", "url", "site", "web"),
    "status": ("status", "relation_status", "relatiestatus"),
    "abc_class": ("abc_class", "abc", "class", "klasse"),
    "account_manager": ("account_manager", "accountmanager", "owner"),
    "language": ("language", "taal", "lang"),
    "region": ("region", "regio"),
    "branch": ("branch", "branche", "industry", "sector"),
}  # fmt: skip


def _header_key(header: str) -> str:
    return "_".join(normalizers.fold(header).split())


ALIASES = {alias: column for column, names in COLUMNS.items() for alias in names}


def map_header(headers: list[str]) -> list[str | None]:
    """Each header's canonical column, or None for one that goes to custom fields."""
    return [ALIASES.get(_header_key(h)) for h in headers]


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


# --- reading files -----------------------------------------------------------------------------


def read_file(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for every data row of a CSV or XLSX file, streamed."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        yield from _read_xlsx(path)
    else:
        yield from _read_csv(path)


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    raw = path.read_bytes()[:65536]
    encoding = "utf-8-sig"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 4:  # not just a character cut in half by the sample
            encoding = "cp1252"
    sample = raw.decode(encoding, errors="ignore")
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=";,\t|")
    except csv.Error:
        dialect = csv.excel
    with path.open(newline="", encoding=encoding, errors="replace") as handle:
        reader = csv.reader(handle, dialect)
        headers = next(reader, None)
        if headers is None:
            return
        yield from _rows(headers, ((reader.line_num, row) for row in reader))


def _read_xlsx(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        first = next(values, None)
        if first is None:
            return
        headers = ["" if v is None else str(v) for v in first]
        numbered = (
            (number, ["" if v is None else _cell(v) for v in row])
            for number, row in enumerate(values, start=2)
        )
        yield from _rows(headers, numbered)
    finally:
        book.close()


def _cell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 612345678.0 is a phone number, not a float
    return str(value)


def _rows(
    headers: list[str], numbered: Iterable[tuple[int, list[str]]]
) -> Iterator[tuple[int, dict[str, str]]]:
    columns = map_header(headers)
    for number, values in numbered:
        if not any(v.strip() for v in values):
            continue
        row: dict[str, str] = {}
        extra: dict[str, str] = {}
        for header, column, value in zip(headers, columns, values, strict=False):
            value = value.strip()
            if not value:
                continue
            if column is None:
                extra[header.strip() or f"column_{len(extra) + 1}"] = value
            else:
                row.setdefault(column, value)
        if extra:
            row["custom_fields"] = json.dumps(extra, ensure_ascii=False)
        yield number, row


# --- normalising one batch ---------------------------------------------------------------------


@dataclass
class _Row:
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


@dataclass
class _RelationIn:
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


def _normalise(
    line: int, row: dict[str, str], region: str, report: ImportReport
) -> tuple[_Row | None, _RelationIn | None]:
    first, last = row.get("first_name"), row.get("last_name")
    full = " ".join(p for p in (first, last) if p) or row.get("name", "")
    if not first and not last and row.get("name"):
        person = normalizers.person_name(row["name"])
        parts = row["name"].split()
        if person.surname and len(parts) > 1:
            first, last = " ".join(parts[:-1]), parts[-1]
    relation_name = row.get("relation")
    relation: _RelationIn | None = None
    if relation_name or row.get("relation_external_id"):
        name = relation_name or row.get("relation_external_id", "")
        normalized = normalizers.company(name)
        rel_ext = row.get("relation_external_id")
        key = f"x:{rel_ext}" if rel_ext else f"n:{normalized}"
        abc = (row.get("abc_class") or "").upper()[:1] or None
        relation = _RelationIn(
            key=key,
            name=name[:300],
            normalized=normalized[:300],
            external_id=rel_ext[:100] if rel_ext else None,
            city=row.get("relation_city") or (row.get("city") if not full else None),
            kvk=(row.get("kvk") or "")[:20] or None,
            website=(row.get("website") or "")[:300] or None,
            status=(row.get("status") or "").lower()[:40] or None,
            abc_class=abc if abc in ("A", "B", "C") else None,
            account_manager=(row.get("account_manager") or "").lower() or None,
            region=(row.get("region") or "")[:100] or None,
            branch=(row.get("branch") or "")[:100] or None,
        )
    emails: list[tuple[str, str]] = []
    if raw := row.get("email"):
        for part in raw.replace(";", ",").split(","):
            if not part.strip():
                continue
            value = normalizers.email(part)
            if value is None:
                report.error(line, f"not an e-mail address: {part.strip()[:80]}")
                return None, None
            emails.append((value, part.strip()))
    phones: list[tuple[str, str]] = []
    for column in ("phone", "mobile"):
        if raw := row.get(column):
            value = normalizers.phone(raw, region)
            if value is None:
                report.error(line, f"not a phone number: {raw[:40]}")
                return None, None
            phones.append((value, raw))
    if not full:
        if relation is None:
            report.error(line, "no name: a row needs a person's name or a relation")
            return None, None
        contact = None
    else:
        contact = _Row(
            line=line,
            external_id=(row.get("external_id") or "")[:100] or None,
            first_name=(first or "")[:100] or None,
            last_name=(last or "")[:150] or None,
            full_name=full[:300],
            job_title=(row.get("job_title") or "")[:150] or None,
            city=(row.get("city") or "")[:100] or None,
            language=(row.get("language") or "").lower()[:5] or None,
            relation_key=relation.key if relation else None,
            emails=emails,
            phones=phones,
            custom_fields=row.get("custom_fields", "{}"),
            project=(row.get("project") or "")[:300] or None,
            project_city=(row.get("project_city") or row.get("city") or "")[:100] or None,
        )
    if contact is None and relation is not None and (row.get("project") or emails or phones):
        # No person: a company's general address or number is the relation's own.
        contact = _Row(
            line, None, None, None, "", None, None, None, relation.key, emails, phones, "{}",
            (row.get("project") or "")[:300] or None,
            (row.get("project_city") or row.get("city") or "")[:100] or None,
        )  # fmt: skip
    return contact, relation


# --- writing one batch -------------------------------------------------------------------------

_FIND_RELATIONS = text(
    """SELECT id, external_id, normalized_name FROM relations
       WHERE external_id = ANY(:ext) OR normalized_name = ANY(:names)"""
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


async def _relations(
    conn: AsyncConnection, wanted: dict[str, _RelationIn], report: ImportReport
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
class _Touched:
    """Relations that got new projects: their contacts' documents list the projects, so the
    import refreshes those once at the end (earlier batches' contacts included)."""

    project_relations: set[int] = field(default_factory=set)


_REFRESH = text(
    """SELECT sb_refresh_relations(CAST(:relations AS bigint[])),
              sb_refresh_contacts(CAST(:contacts AS bigint[])),
              sb_refresh_projects(CAST(:projects AS bigint[]))"""
)


async def _write_batch(
    conn: AsyncConnection,
    rows: list[_Row],
    relations_in: dict[str, _RelationIn],
    dedup: bool,
    report: ImportReport,
    touched: _Touched,
) -> None:
    # The index triggers stand aside for this transaction; the batch refreshes what it wrote.
    await conn.execute(text("SET LOCAL switchboard.bulk = 'on'"))
    relation_ids = await _relations(conn, relations_in, report)
    people = [r for r in rows if r.full_name]
    # One row per external id in a batch: the last one wins, as it would row by row.
    by_ext: dict[str, _Row] = {}
    plain: list[_Row] = []
    for r in people:
        if r.external_id:
            by_ext[r.external_id] = r
        else:
            plain.append(r)
    people = [*by_ext.values(), *plain]
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
    batch_relations = set(relation_ids.values())
    await conn.execute(
        _REFRESH,
        {
            "relations": sorted(batch_relations),
            "contacts": sorted(set(contact_ids.values())),
            "projects": sorted(projects),
        },
    )
    if projects:
        touched.project_relations |= set(relation_ids.values())


async def _without_duplicates(
    conn: AsyncConnection, people: list[_Row], relation_ids: dict[str, int], report: ImportReport
) -> list[_Row]:
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
    rows: list[_Row],
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
    conn: AsyncConnection, rows: list[_Row], relation_ids: dict[str, int], report: ImportReport
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


# --- the whole import ----------------------------------------------------------------------------


async def import_rows(
    sessions: Sessions,
    rows: Iterable[tuple[int, dict[str, str]]] | Iterable[dict[str, str]],
    *,
    dedup: bool = False,
    region: str = "NL",
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import rows (dicts by column name, or (line, dict) pairs); one transaction per batch."""
    report = ImportReport()
    pending: list[_Row] = []
    relations: dict[str, _RelationIn] = {}
    touched = _Touched()
    batches = 0

    async def flush() -> None:
        nonlocal batches
        if not pending and not relations:
            return
        async with sessions() as session, session.begin():
            conn = await session.connection()
            await _write_batch(conn, pending, relations, dedup, report, touched)
        batches += 1
        if batches in (1, 4, 16, 64):  # the tables grew: give the planner fresh statistics
            async with sessions() as session, session.begin():
                await session.execute(text("ANALYZE relations, contacts, identities, projects"))
        if progress is not None:
            progress(len(pending))
        pending.clear()
        relations.clear()

    for number, item in enumerate(rows, start=2):
        line, row = item if isinstance(item, tuple) else (number, item)
        report.rows += 1
        contact, relation = _normalise(line, row, region, report)
        if relation is not None:
            relations.setdefault(relation.key, relation)
        if contact is not None:
            pending.append(contact)
        elif relation is None:
            continue
        if len(pending) >= batch or len(relations) >= batch:
            await flush()
    await flush()
    await _refresh_project_relations(sessions, touched)
    return report


async def _refresh_project_relations(sessions: Sessions, touched: _Touched) -> None:
    """Contacts of relations that got new projects list them in their documents: once, at the
    end, for contacts written by earlier batches too (a few thousand relations per statement)."""
    relation_ids = sorted(touched.project_relations)
    for start in range(0, len(relation_ids), 2000):
        chunk = relation_ids[start : start + 2000]
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    """SELECT sb_refresh_contacts(ARRAY(
                         SELECT id FROM contacts WHERE relation_id = ANY(CAST(:ids AS bigint[]))))"""
                ),
                {"ids": chunk},
            )


def rows_of(data: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of CSV text (tests and small imports)."""
    reader = csv.reader(io.StringIO(data), csv.Sniffer().sniff(data[:4096], delimiters=";,\t"))
    headers = next(reader)
    yield from _rows(headers, ((reader.line_num, row) for row in reader))
