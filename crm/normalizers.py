"""Small pure functions that turn what people type into the values we match on."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")


def email(value: str) -> str | None:
    """An e-mail address lowercased and trimmed, or None when it is not one."""
    cleaned = value.strip().strip("<>").strip().lower()
    if cleaned.startswith("mailto:"):
        cleaned = cleaned[len("mailto:") :]
    return cleaned if _EMAIL.match(cleaned) else None


def phone(value: str, region: str = "NL") -> str | None:
    """A phone number in E.164 (+31612345678), or None when it cannot be one."""
    raw = value.strip()
    if not raw:
        return None
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def fold(text: str) -> str:
    """Lowercase without diacritics and with single spaces: 'Café  Ämsterdam' → 'cafe amsterdam'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", stripped.lower()).split())


def company(name: str) -> str:
    """A company name folded for matching and search (legal forms stay until matching lands)."""
    return fold(name)
