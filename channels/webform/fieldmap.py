"""Which of a form's fields hold the sender's name, company, e-mail, phone and message."""

from __future__ import annotations

import re
from collections.abc import Mapping

from channels.webform.forms import Submission

OUR_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "message",
    "subject",
    "city",
)

# Dutch and English names seen on real contact forms, plus Contact Form 7's "your-…" defaults.
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "name": ("name", "naam", "full_name", "volledige_naam", "your_name", "contact_name"),
    "first_name": ("first_name", "firstname", "voornaam", "given_name"),
    "last_name": ("last_name", "lastname", "achternaam", "surname", "family_name"),
    "company": (
        "company",
        "bedrijf",
        "organisation",
        "organization",
        "organisatie",
        "company_name",
        "bedrijfsnaam",
    ),
    "email": (
        "email",
        "e_mail",
        "mail",
        "email_address",
        "emailadres",
        "e_mailadres",
        "your_email",
    ),
    "phone": (
        "phone",
        "telefoon",
        "tel",
        "phone_number",
        "telefoonnummer",
        "mobile",
        "mobiel",
        "your_phone",
    ),
    "message": (
        "message",
        "bericht",
        "vraag",
        "comments",
        "comment",
        "opmerking",
        "opmerkingen",
        "question",
        "your_message",
    ),
    "subject": ("subject", "onderwerp", "your_subject"),
    "city": ("city", "plaats", "woonplaats", "stad", "town"),
}

# Typeform tells us each question's type, which finds these whatever the question says.
TYPE_HINTS = {"email": "email", "phone": "phone_number", "message": "long_text"}


def key(name: str) -> str:
    """A field name compared without case or separators: "E-mail" and "e_mail" are one."""
    return re.sub(r"[\s._-]+", "_", name.strip().casefold()).strip("_")


def lookup(sub: Submission) -> dict[str, str]:
    """Each key() a field answers to → its name; the first field with a key wins."""
    index: dict[str, str] = {}
    for alias, name in [*((name, name) for name in sub.values), *sub.aliases.items()]:
        index.setdefault(key(alias), name)
    return index


def find(sub: Submission, names: tuple[str, ...]) -> str | None:
    """The submission's own name for the first of `names` it has."""
    index = lookup(sub)
    return next((index[key(n)] for n in names if key(n) in index), None)


def map_fields(sub: Submission, field_map: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Our field → the submission's field name holding it, for each one found."""
    index = lookup(sub)
    found: dict[str, str] = {}
    for ours in OUR_FIELDS:
        names = field_map.get(ours) or DEFAULT_NAMES[ours]
        hits = (index.get(key(n)) for n in names)
        hit = next((h for h in hits if h is not None and h not in found.values()), None)
        if hit is None and ours in TYPE_HINTS and ours not in field_map:
            hint = TYPE_HINTS[ours]
            typed = (n for n, t in sub.types.items() if t == hint and n not in found.values())
            hit = next(typed, None)
        if hit is not None:
            found[ours] = hit
    return found
