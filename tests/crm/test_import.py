"""`switchboard import`: CSV and XLSX of relations, contacts and projects, idempotent, set-based."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from conftest import EngineUrls
from openpyxl import Workbook
from sqlalchemy import func, select, text
from support import FIXTURES

from crm.import_files import read_file, rows_of
from crm.importer import import_rows
from crm.lists import CustomField
from crm.matcher import Sender, match_sender
from crm.models import Contact, Identity, Project, Relation
from crm.search import search
from inbox.db import Sessions

CSV = FIXTURES / "import" / "contacts.csv"


async def count(sessions: Sessions, model: type[Any]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_csv_import_creates_relations_contacts_identities_and_projects(
    sessions: Sessions,
) -> None:
    report = await import_rows(sessions, read_file(CSV))
    assert report.rows == 7
    assert (report.contacts_created, report.contacts_updated) == (4, 0)
    # 'Hamerslag B.V.' and 'Hamerslag BV' are one relation; C-6's bad address and C-7 without a
    # name are reported with their line numbers and skipped.
    assert report.relations_created == 3
    assert [e["line"] for e in report.errors] == [7, 8]
    assert "not an e-mail address" in report.errors[0]["error"]
    async with sessions() as session:
        jan = (await session.scalars(select(Contact).where(Contact.external_id == "C-1"))).one()
        hamerslag = await session.get(Relation, jan.relation_id)
        identities = {(i.kind, i.value): i for i in (await session.scalars(select(Identity))).all()}
        projects = (await session.scalars(select(Project))).all()
    assert hamerslag is not None and hamerslag.name == "Hamerslag B.V."
    assert hamerslag.addresses == [] or hamerslag.addresses[0]["city"] == "Almere"
    assert (jan.first_name, jan.last_name, jan.city, jan.job_title) == (
        "Jan",
        "Visser",
        "Almere",
        "Inkoper",
    )
    assert jan.custom_fields == {"Klantsegment": "Bouw"}
    assert identities[("phone", "+31612345678")].contact_id == jan.id
    assert identities[("phone", "+31201234567")].raw == "0031201234567"
    # Company domains point at their relation; a free-mail domain does not.
    assert identities[("domain", "hamerslag.nl")].relation_id == hamerslag.id
    assert ("domain", "debrug.nl") in identities
    assert ("domain", "gmail.com") not in identities
    # The shared mailbox belongs to the relation, marked as shared.
    info = identities[("email", "info@hamerslag.nl")]
    assert (info.relation_id, info.contact_id, info.shared) == (hamerslag.id, None, True)
    assert sorted((p.name, p.city) for p in projects) == [
        ("Nieuwbouw De Werf", "Almere"),
        ("Renovatie Brugstraat", "Zwolle"),
    ]


async def test_importing_twice_changes_nothing_and_an_edit_updates(
    sessions: Sessions, tmp_path: Path
) -> None:
    await import_rows(sessions, read_file(CSV))
    before = (await count(sessions, Contact), await count(sessions, Identity))
    again = await import_rows(sessions, read_file(CSV))
    assert (again.contacts_created, again.contacts_updated, again.relations_created) == (0, 0, 0)
    assert (again.identities_added, again.projects_created) == (0, 0)
    assert (await count(sessions, Contact), await count(sessions, Identity)) == before
    edited = tmp_path / "edited.csv"
    edited.write_text(
        "external_id,relation,first_name,last_name,email,city\n"
        "C-1,Hamerslag B.V.,Jan,Visser-Bakker,jan@hamerslag.nl,Lelystad\n",
        encoding="utf-8",
    )
    update = await import_rows(sessions, read_file(edited))
    assert (update.contacts_created, update.contacts_updated, update.identities_added) == (0, 1, 1)
    async with sessions() as session:
        jan = (await session.scalars(select(Contact).where(Contact.external_id == "C-1"))).one()
    assert (jan.last_name, jan.city, jan.job_title) == ("Visser-Bakker", "Lelystad", "Inkoper")


async def test_xlsx_with_dutch_headers(sessions: Sessions, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(
        ["Klantnummer", "Bedrijf", "Voornaam", "Achternaam", "E-mail", "Telefoon", "Plaats"]
    )
    sheet.append(
        ["X-1", "Bakker & Zn V.O.F.", "Ria", "Bakker", "ria@bakkerzn.nl", 612345678, "Ede"]
    )
    sheet.append(["X-2", "Bakker en Zn", "Kees", "Bakker", None, None, "Ede"])
    path = tmp_path / "relaties.xlsx"
    book.save(path)
    report = await import_rows(sessions, read_file(path))
    assert (report.contacts_created, report.relations_created, report.errors) == (2, 1, [])
    async with sessions() as session:
        phone = await session.scalar(select(Identity.value).where(Identity.kind == "phone"))
    assert phone == "+31612345678"  # a number cell, not 612345678.0


async def test_dedup_skips_contacts_already_known_by_address_or_name(
    sessions: Sessions, tmp_path: Path
) -> None:
    await import_rows(sessions, read_file(CSV))
    second = tmp_path / "second.csv"
    second.write_text(
        "relation,first_name,last_name,email\n"
        "Hamerslag B.V.,J.,Visser,Jan.Visser@hamerslag.nl\n"
        "Hamerslag B.V.,Piet,Smit,\n"
        "Hamerslag B.V.,Els,Nieuw,els@hamerslag.nl\n",
        encoding="utf-8",
    )
    report = await import_rows(sessions, read_file(second), dedup=True)
    assert (report.duplicates, report.contacts_created) == (2, 1)
    assert {c["line"] for c in report.conflicts} == {2, 3}
    without = await import_rows(sessions, read_file(second))
    assert without.contacts_created == 3  # without --dedup they are created again


async def test_imported_records_are_matched_and_found_with_their_external_id(
    sessions: Sessions,
) -> None:
    await import_rows(sessions, read_file(CSV))
    async with sessions() as session:
        decision = await match_sender(
            session, Sender(email="j.visser@hamerslag.nl", name="J. Visser", company="Hamerslag")
        )
        hits = await search(session, "hamer jan almere")
    assert (decision.decision, decision.external_id) == ("linked", "C-1")
    assert decision.reasons["domain"]
    assert hits["contact"][0].external_id == "C-1"


async def test_the_search_documents_have_statistics_after_an_import(sessions: Sessions) -> None:
    # The matcher's candidate search is planned from them (an index lookup, not a filter over
    # every contact's document); the tables were emptied (TRUNCATE: no statistics) before.
    await import_rows(sessions, read_file(CSV))
    async with sessions() as session:
        documents = await session.scalar(text("SELECT count(*) FROM search_documents"))
        estimate = await session.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = 'search_documents'")
        )
    assert documents and estimate == documents
    # A few rows more are no reason to sample the table again (1.5 s at a million documents).
    await import_rows(sessions, [{"external_id": "X-9", "first_name": "Els", "last_name": "Bos"}])
    async with sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM search_documents")) == documents + 1
        assert (
            await session.scalar(
                text("SELECT reltuples FROM pg_class WHERE relname = 'search_documents'")
            )
            == documents
        )


async def test_the_cli_prints_a_json_summary(
    engine_urls: EngineUrls, sessions: Sessions, tmp_path: Path
) -> None:
    env = os.environ | {
        "DATABASE_URL": engine_urls.database_url,
        "REDIS_URL": engine_urls.redis_url,
    }
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "inbox.service.cli", "--data-dir", str(tmp_path)],
        *["import", str(CSV), "--json"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    assert (summary["rows"], summary["contacts_created"]) == (7, 4)
    assert [e["line"] for e in summary["errors"]] == [7, 8]
    assert "importing" in stderr.decode()  # the progress bar
    assert await count(sessions, Contact) == 4


async def test_a_batch_that_fails_leaves_the_committed_batches_searchable(
    sessions: Sessions,
) -> None:
    class Broken(Exception):
        pass

    def rows() -> Any:
        yield {"external_id": "X-1", "relation": "Hamerslag B.V.", "first_name": "Jan",
               "last_name": "Visser", "project": "Nieuwbouw Almere", "city": "Almere"}  # fmt: skip
        yield {"external_id": "X-2", "relation": "Kustbouw", "first_name": "Piet",
               "last_name": "Smit", "email": "piet@kustbouw.nl"}  # fmt: skip
        raise Broken("the file ends in the middle of a row")

    try:
        await import_rows(sessions, rows(), batch=1)
    except Broken:
        pass
    else:
        raise AssertionError("the import should have failed")
    async with sessions() as session:
        jan = await search(session, "hamer jan almere")
        piet = await search(session, "kust piet")
    # Both batches were committed before the failure; their documents were written after it.
    assert [h.external_id for h in jan["contact"]] == ["X-1"]
    assert [h.external_id for h in piet["contact"]] == ["X-2"]


async def test_a_big_import_refreshes_its_documents_in_parallel_chunks_and_counts_words(
    sessions: Sessions, monkeypatch: Any
) -> None:
    """An import past RECOUNT_AFTER writes its batches while reading the next, refreshes the
    documents in chunks on two connections at once, then recounts the words: every record is
    found, with its company and project, and the typo widening knows the new words."""
    from crm import importer

    monkeypatch.setattr(importer, "RECOUNT_AFTER", 1)
    monkeypatch.setattr(importer, "REFRESH_CHUNK", 3)
    monkeypatch.setattr(importer, "YIELD_EVERY", 2)
    cities = ["Almere", "Zwolle", "Breda"]
    rows = [
        {
            "external_id": f"P-{i}",
            "relation": f"Bouwbedrijf {name}",
            "first_name": first,
            "last_name": name,
            "city": cities[i % 3],
            "project": f"Renovatie {cities[(i + 1) % 3]}" if i % 2 else "",
        }
        for i, (first, name) in enumerate(
            (f, n) for f in ("Jan", "Piet", "Kees") for n in ("Visser", "Smit", "Dekker", "Bos")
        )
    ]
    report = await import_rows(sessions, rows, batch=4)
    assert (report.contacts_created, report.relations_created) == (12, 4)
    async with sessions() as session:
        for row in rows:
            found = await search(session, f"{row['first_name']} {row['last_name']} bouwbedrijf")
            assert [h.external_id for h in found["contact"]] == [row["external_id"]], row
            if row["project"]:
                hits = await search(session, f"{row['first_name']} {row['project']}")
                assert row["external_id"] in [h.external_id for h in hits["contact"]], row
        counted = await session.scalar(text("SELECT docs FROM search_words WHERE word = 'dekker'"))
    assert counted == 4  # the three Dekkers and their company


async def test_columns_named_after_contact_custom_fields_are_typed_checked_and_required(
    sessions: Sessions,
) -> None:
    async with sessions() as session, session.begin():
        session.add_all(
            [
                CustomField(record_type="contact", key="segment", label="Klantsegment",
                            type="choice", choices=["Bouw", "Zorg"], required=True),
                CustomField(record_type="contact", key="m2", label="Oppervlakte", type="number"),
            ]
        )  # fmt: skip
    async with sessions() as session, session.begin():
        session.add(Contact(first_name="Oud", full_name="Oud", external_id="C-9"))
    data = (
        "external_id;first_name;last_name;klantsegment;Oppervlakte;Notitie\n"
        "C-1;Jan;Visser;Bouw;120.0;bellen\n"  # typed, the free column kept as it is
        "C-2;Piet;Smit;Handel;;\n"  # not one of the choices
        "C-3;Kees;Bos;Zorg;veel;\n"  # not a number
        "C-4;Anna;Jong;;;\n"  # a new contact without the required field
        "C-9;Oud;Contact;;80;\n"  # a known contact: an update keeps what it has
        ";Els;Vos;;;\n"  # no external id: always a new contact
    )
    report = await import_rows(sessions, rows_of(data))
    errors = {e["line"]: e["error"] for e in report.errors}
    assert sorted(errors) == [3, 4, 5, 7], errors
    assert "klantsegment" in errors[3] and "choices" in errors[3]  # the column as headed
    assert "Oppervlakte" in errors[4] and "number" in errors[4]
    assert "segment" in errors[5] and "segment" in errors[7]
    async with sessions() as session:
        stored = {
            c.external_id: c.custom_fields for c in (await session.scalars(select(Contact))).all()
        }
    assert stored == {
        "C-1": {"segment": "Bouw", "m2": 120, "Notitie": "bellen"},
        "C-9": {"m2": 80},
    }


async def test_a_custom_fields_value_that_is_not_a_json_object_is_a_line_error(
    sessions: Sessions,
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            CustomField(record_type="contact", key="m2", label="Oppervlakte", type="number")
        )
    rows = [
        {"external_id": "C-1", "first_name": "Jan", "custom_fields": "{not json"},
        {"external_id": "C-2", "first_name": "Piet", "custom_fields": "[1, 2]"},
        {"external_id": "C-3", "first_name": "Kees", "custom_fields": '{"kleur": "blauw"}'},
        # An empty value of a defined field is no value, as in an API write.
        {"external_id": "C-4", "first_name": "Anna", "custom_fields": '{"m2": "", "M2 ": null}'},
    ]
    report = await import_rows(sessions, rows)
    assert [e["line"] for e in report.errors] == [2, 3]
    assert report.contacts_created == 2
    async with sessions() as session:
        stored = {
            c.external_id: c.custom_fields for c in (await session.scalars(select(Contact))).all()
        }
    assert stored == {"C-3": {"kleur": "blauw"}, "C-4": {}}


async def test_a_batch_is_planned_for_its_own_arrays_and_commits_without_waiting_for_the_wal(
    sessions: Sessions,
) -> None:
    """A batch's transaction: the index triggers stand aside, every statement gets a plan for
    the arrays it is given (a generic plan of the relation lookup once took 10-16 s a batch)
    and the commit does not wait for the WAL flush (a rerun imports a lost batch again)."""
    from crm.import_batch import ImportReport, Touched, write_batch

    async with sessions() as session, session.begin():
        conn = await session.connection()
        await write_batch(conn, [], {}, False, ImportReport(), Touched())
        settings = await conn.execute(
            text(
                "SELECT current_setting('switchboard.bulk'), current_setting('plan_cache_mode'),"
                " current_setting('synchronous_commit')"
            )
        )
        assert tuple(settings.one()) == ("on", "force_custom_plan", "off")
    async with sessions() as session:
        after = await session.scalar(text("SELECT current_setting('plan_cache_mode')"))
    assert after == "auto"  # for the batch's transaction only
