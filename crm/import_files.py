"""Reading an import file: a CSV (encoding and delimiter sniffed) or XLSX file streamed as
(line number, row) pairs, its headers mapped to canonical columns (Dutch and English
spellings) and the other columns kept as custom fields."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from crm import normalizers

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


# --- reading files --------------------------------------------------------------------------------


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


def rows_of(data: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of CSV text (tests and small imports)."""
    reader = csv.reader(io.StringIO(data), csv.Sniffer().sniff(data[:4096], delimiters=";,\t"))
    headers = next(reader)
    yield from _rows(headers, ((reader.line_num, row) for row in reader))
