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

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import text

from crm import normalizers
from crm.base import Sessions
from crm.import_batch import ImportReport, RelationIn, RowIn, Touched, write_batch
from crm.lists import CustomField, Invalid, clean_value, fields_of

log = structlog.get_logger(__name__)

# --- normalising one row --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactFields:
    """The contact custom fields an administrator defined: a column named by a field's key or
    label (any case) is that field, typed and checked; other columns stay as they are."""

    by_name: dict[str, CustomField]
    required: tuple[str, ...]

    @classmethod
    def of(cls, fields: list[CustomField]) -> ContactFields:
        by_name = {f.label.strip().lower(): f for f in fields} | {f.key.lower(): f for f in fields}
        return cls(by_name, tuple(f.key for f in fields if f.required))

    def clean(
        self, line: int, raw: str, report: ImportReport
    ) -> tuple[str, tuple[str, ...]] | None:
        """The row's custom fields as JSON and the required ones it lacks; None (the line
        reported) when a value is not what its field takes."""
        try:
            values = json.loads(raw) if raw else {}
        except ValueError:
            values = None
        if not isinstance(values, dict):
            report.error(line, "custom_fields: a JSON object is expected")
            return None
        out: dict[str, Any] = {}
        for name, value in values.items():
            field = self.by_name.get(str(name).strip().lower())
            if field is None:
                out[name] = value
                continue
            if value is None or value == "":  # no value, as an API write clears one
                continue
            try:
                out[field.key] = clean_value(field, value)
            except Invalid as exc:
                report.error(line, f"{name}: {exc.message}")
                return None
        missing = tuple(key for key in self.required if key not in out)
        return (json.dumps(out, ensure_ascii=False) if self.by_name else raw or "{}"), missing


def _normalise(
    line: int, row: dict[str, str], region: str, report: ImportReport, fields: ContactFields
) -> tuple[RowIn | None, RelationIn | None]:
    first, last = row.get("first_name"), row.get("last_name")
    full = " ".join(p for p in (first, last) if p) or row.get("name", "")
    if not first and not last and row.get("name"):
        person = normalizers.person_name(row["name"])
        parts = row["name"].split()
        if person.surname and len(parts) > 1:
            first, last = " ".join(parts[:-1]), parts[-1]
    relation_name = row.get("relation")
    relation: RelationIn | None = None
    if relation_name or row.get("relation_external_id"):
        name = relation_name or row.get("relation_external_id", "")
        normalized = normalizers.company(name)
        rel_ext = row.get("relation_external_id")
        key = f"x:{rel_ext}" if rel_ext else f"n:{normalized}"
        abc = (row.get("abc_class") or "").upper()[:1] or None
        relation = RelationIn(
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
    custom_fields = row.get("custom_fields", "{}")
    missing: tuple[str, ...] = ()
    if full and (fields.by_name or "custom_fields" in row):
        cleaned = fields.clean(line, row.get("custom_fields", ""), report)
        if cleaned is None:
            return None, None
        custom_fields, missing = cleaned
    if not full:
        if relation is None:
            report.error(line, "no name: a row needs a person's name or a relation")
            return None, None
        contact = None
    else:
        contact = RowIn(
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
            custom_fields=custom_fields,
            project=(row.get("project") or "")[:300] or None,
            project_city=(row.get("project_city") or row.get("city") or "")[:100] or None,
            missing=missing,
        )
    if contact is None and relation is not None and (row.get("project") or emails or phones):
        # No person: a company's general address or number is the relation's own.
        contact = RowIn(
            line, None, None, None, "", None, None, None, relation.key, emails, phones, "{}",
            (row.get("project") or "")[:300] or None,
            (row.get("project_city") or row.get("city") or "")[:100] or None,
        )  # fmt: skip
    return contact, relation


# --- the whole import -----------------------------------------------------------------------------


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
    async with sessions() as session:
        fields = ContactFields.of(await fields_of(session, "contact"))
    pending: list[RowIn] = []
    relations: dict[str, RelationIn] = {}
    touched = Touched()
    batches = 0
    writing: asyncio.Task[None] | None = None  # the batch being written while the next is read

    async def write(rows_in: list[RowIn], relations_in: dict[str, RelationIn]) -> None:
        nonlocal batches
        async with sessions() as session, session.begin():
            conn = await session.connection()
            await write_batch(conn, rows_in, relations_in, dedup, report, touched)
        batches += 1
        if batches in (1, 4, 16, 64):  # the tables grew: give the planner fresh statistics
            async with sessions() as session, session.begin():
                await session.execute(text("ANALYZE relations, contacts, identities, projects"))
        if progress is not None:
            progress(len(rows_in))

    async def flush() -> None:
        """Hand the batch to a writer and go on reading: PostgreSQL writes one batch while
        Python normalises the next (one in flight, so they commit in file order)."""
        nonlocal pending, relations, writing
        if not pending and not relations:
            return
        if writing is not None:
            await writing
        writing = asyncio.create_task(write(pending, relations))
        pending, relations = [], {}

    try:
        for number, item in enumerate(rows, start=2):
            line, row = item if isinstance(item, tuple) else (number, item)
            report.rows += 1
            if report.rows % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the writer sends its next statement meanwhile
            contact, relation = _normalise(line, row, region, report, fields)
            if relation is not None:
                relations.setdefault(relation.key, relation)
            if contact is not None:
                pending.append(contact)
            elif relation is None:
                continue
            if len(pending) >= batch or len(relations) >= batch:
                await flush()
        await flush()
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            await asyncio.wait([writing])  # reading failed: the batch in flight still commits
            if not writing.cancelled() and writing.exception() is not None:
                log.warning("import batch failed", error=str(writing.exception()))
        # What the committed batches wrote is searchable even when a later batch failed.
        recount = report.contacts_created + report.relations_created >= RECOUNT_AFTER
        await refresh_documents(sessions, touched, words_later=recount)
    if recount:
        # The typo widening ranks its alternatives by how many documents hold them.
        async with sessions() as session, session.begin():
            await session.execute(text("SELECT sb_count_words()"))
    written = len(touched.relations) + len(touched.projects) + len(touched.contacts)
    if written:
        await analyze_documents(sessions, written)
    return report


async def analyze_documents(sessions: Sessions, written: int) -> None:
    """Fresh statistics for the search documents and words once an import changed enough of
    them, by autovacuum's own rule (50 rows and a tenth of the table): without them the
    matcher's candidate search is planned as a filter over every contact's document instead of
    a lookup in its index. (At a million documents the ANALYZE takes 1.5 s: not for ten rows.)"""
    async with sessions() as session, session.begin():
        documents = await session.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = 'search_documents'::regclass")
        )
        if documents is None or documents < 0 or written > 50 + 0.1 * documents:
            await session.execute(text("ANALYZE search_documents, search_words"))


RECOUNT_AFTER = 10_000  # new records after which an import recounts the indexed words
YIELD_EVERY = 200  # rows read between two turns of the writer
REFRESH_CHUNK = 10_000  # records per statement of the refresh at the end
REFRESH_LANES = 2  # statements of the refresh at once (cores of the database server they use)


async def refresh_documents(sessions: Sessions, touched: Touched, *, words_later: bool) -> None:
    """The search documents of everything the import wrote, each once, set-based: a statement
    per chunk of records (a document per record costs the same in one statement of 20,000
    as in four of 5,000, and a contact whose relation gets projects in a later batch is
    written once instead of once per batch). The contacts of relations that got projects list
    them, those from before the import too. words_later: sb_count_words() follows, so the
    refresh does not also add the new words one by one."""
    async with sessions() as session:
        extra = await session.scalars(
            text("SELECT id FROM contacts WHERE relation_id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": sorted(touched.project_relations)},
        )
        contacts = touched.contacts | set(extra)
    chunks = [
        (kind, ordered[start : start + REFRESH_CHUNK])
        for kind, ids in (
            ("relations", touched.relations),
            ("projects", touched.projects),
            ("contacts", contacts),
        )
        if (ordered := sorted(ids))
        for start in range(0, len(ordered), REFRESH_CHUNK)
    ]
    # A document's words come from the records' tables, not from other documents: the chunks
    # are independent, and PostgreSQL builds them on as many cores as run them. (Only when the
    # words are recounted afterwards: sb_remember_words of two chunks would race on a new word.)
    lanes = asyncio.Semaphore(REFRESH_LANES if words_later else 1)

    async def refresh(kind: str, ids: list[int]) -> None:
        async with lanes, sessions() as session, session.begin():
            if words_later:
                await session.execute(text("SET LOCAL switchboard.words = 'later'"))
            await session.execute(
                text(f"SELECT sb_refresh_{kind}(CAST(:ids AS bigint[]))"), {"ids": ids}
            )

    async with asyncio.TaskGroup() as group:  # a failed chunk cancels the others
        for kind, ids in chunks:
            group.create_task(refresh(kind, ids))
