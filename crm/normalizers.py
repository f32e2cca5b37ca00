"""Small pure functions that turn what people type into the values we match on.

Each keeps to one rule set: the stored value stays as written (raw), these give the keys that
matching and search compare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from anyascii import anyascii
from cleanco import basename

_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")
_NON_WORD = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=65536)  # names and cities recur: every candidate scored folds its fields
def fold(text: str) -> str:
    """Lowercase ASCII with single spaces: 'Café  Ämsterdam' → 'cafe amsterdam', 'Ĳssel' → 'ijssel'."""
    return " ".join(_NON_WORD.sub(" ", anyascii(text).lower()).split())


# --- e-mail ------------------------------------------------------------------------------------


def email(value: str) -> str | None:
    """An e-mail address lowercased and trimmed, or None when it is not one."""
    cleaned = value.strip().strip("<>").strip().lower()
    if cleaned.startswith("mailto:"):
        cleaned = cleaned[len("mailto:") :]
    return cleaned if _EMAIL.match(cleaned) else None


# Providers whose mailboxes ignore a +tag; Gmail also ignores dots (only on its own domains:
# a Google Workspace domain keeps them). The same rules as email-normalize's providers.
_GMAIL = {"gmail.com", "googlemail.com"}
_PLUS_TAGS = _GMAIL | {
    "outlook.com", "hotmail.com", "hotmail.nl", "live.com", "live.nl", "msn.com",
    "icloud.com", "me.com", "mac.com",
    "proton.me", "protonmail.com", "protonmail.ch", "pm.me",
    "fastmail.com", "fastmail.fm",
    "yandex.com", "yandex.ru",
    "zoho.com", "zohomail.com",
}  # fmt: skip


def email_domain(address: str) -> str:
    """The part after the @, lowercased ('' when there is none)."""
    return address.rpartition("@")[2].strip().lower()


def email_key(address: str) -> str:
    """The provider-aware secondary key: 'Jan.Visser+offerte@googlemail.com' → 'janvisser@gmail.com'.

    Only a second key to look up by; the address as written is what we store and send to.
    """
    local, _, domain = address.strip().lower().rpartition("@")
    if not local:
        return address.strip().lower()
    if domain in _PLUS_TAGS:
        local = local.split("+", 1)[0] or local
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


FREE_MAIL = frozenset(
    {
        # international
        "gmail.com", "googlemail.com", "hotmail.com", "outlook.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "gmx.com",
        "gmx.net", "gmx.de", "web.de", "mail.com", "proton.me", "protonmail.com", "pm.me",
        "fastmail.com", "zoho.com", "yandex.com", "hey.com", "tutanota.com",
        # Dutch and Belgian providers and their old brands
        "hotmail.nl", "live.nl", "outlook.nl", "yahoo.nl", "ziggo.nl", "kpnmail.nl",
        "kpnplanet.nl", "planet.nl", "hetnet.nl", "home.nl", "xs4all.nl", "casema.nl",
        "chello.nl", "quicknet.nl", "upcmail.nl", "tele2.nl", "online.nl", "zeelandnet.nl",
        "solcon.nl", "telfort.nl", "freeler.nl", "wxs.nl", "hotmail.be", "live.be",
        "telenet.be", "skynet.be", "hotmail.de", "t-online.de",
    }
)  # fmt: skip


def is_free_mail(domain: str) -> bool:
    """A mailbox anyone can have: it says nothing about the company."""
    return domain.strip().lower() in FREE_MAIL


# Local parts of mailboxes a team shares: they say which company, never which person.
SHARED_MAILBOXES = frozenset(
    {
        "info", "sales", "verkoop", "inkoop", "purchase", "purchasing", "admin", "administratie",
        "administration", "office", "kantoor", "support", "service", "klantenservice",
        "customerservice", "contact", "receptie", "reception", "planning", "facturen",
        "facturatie", "invoice", "invoices", "billing", "boekhouding", "accounting", "finance",
        "financien", "hr", "personeelszaken", "jobs", "vacatures", "werken", "marketing",
        "secretariaat", "helpdesk", "orders", "order", "bestellingen", "offerte", "offertes",
        "projecten", "team", "hello", "hallo", "mail", "post", "algemeen", "noreply",
        "no-reply", "donotreply", "do-not-reply", "postmaster", "webmaster", "bounce", "mailer-daemon",
    }
)  # fmt: skip


def is_shared_mailbox(address: str) -> bool:
    """info@, sales@, verkoop@ …: a team's mailbox, not one person's."""
    local = address.strip().lower().rpartition("@")[0].split("+", 1)[0]
    return local in SHARED_MAILBOXES


# --- phone -------------------------------------------------------------------------------------


# A Dutch number written nationally, ten digits from the trunk 0 (spaces and dashes allowed):
# '06-12345678', '020 123 4567'. Most numbers an import reads are this, and phonenumbers takes
# 100 µs to say '+31' + the rest (a fifth of a large import's Python time); the test compares.
_NL_NATIONAL = re.compile(r"0[1-9][0-9]{8}")


def phone(value: str, region: str = "NL") -> str | None:
    """A phone number in E.164 (+31612345678), or None when it cannot be one."""
    raw = value.strip()
    if not raw:
        return None
    if region == "NL":
        digits = raw.replace(" ", "").replace("-", "")
        if _NL_NATIONAL.fullmatch(digits):
            return "+31" + digits[1:]
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- company names -----------------------------------------------------------------------------

# Legal forms and words that say what kind of entity, not which: cleanco knows the international
# ones (B.V., N.V., GmbH, Ltd, Inc …); these are the Dutch ones it leaves, on folded text.
_LEGAL_WORDS = (
    r"b ?v|n ?v|v ?o ?f|c ?v|bv|nv|vof|cv|i ?o|io|in oprichting|u ?a|w ?a|b ?a|"
    r"stichting|holding|vereniging|cooperatie|cooperatieve|maatschap|"
    r"gmbh|ag|ltd|limited|inc|llc|plc|sa|sarl|bvba|cvba|nv sa|co"
)
_LEGAL_EDGE = re.compile(rf"^(?:(?:{_LEGAL_WORDS}) )+|(?: (?:{_LEGAL_WORDS}))+$")


@lru_cache(maxsize=65536)
def company(name: str) -> str:
    """A company name folded and without legal forms: 'Hamerslag B.V.' → 'hamerslag'.

    'Stichting De Brug' → 'de brug', 'Visser Holding B.V.' → 'visser'. A name that is nothing
    but a legal form keeps its folded self rather than becoming empty.
    """
    cleaned = fold(basename(name.replace("&", " en ")))
    stripped = _LEGAL_EDGE.sub("", cleaned).strip()
    while stripped != cleaned and stripped:
        cleaned, stripped = stripped, _LEGAL_EDGE.sub("", stripped).strip()
    return stripped or fold(name)


# --- person names ------------------------------------------------------------------------------

PARTICLES = frozenset(
    {"van", "de", "der", "den", "het", "ter", "ten", "te", "op", "in", "t", "s", "d", "la",
     "le", "du", "von", "zu", "vom", "al", "el", "di", "da", "del", "dos", "uit", "aan", "bij",
     "onder", "over", "voor", "tot"}
)  # fmt: skip
# Particles that can open a name on their own ('de Vries', 'van Dijk'); 'al', 'la', 'di' … can
# also be given names, so they start a surname only after a given part.
_LEADING_PARTICLES = frozenset(
    {"van", "de", "der", "den", "het", "ter", "ten", "te", "op", "in", "t"}
)
_DE_HEER = re.compile(r"^\s*de\s+heer\b\.?", re.IGNORECASE)
_TITLES = frozenset(
    {"dhr", "mevr", "mw", "mr", "mrs", "ms", "miss", "dr", "drs", "ir", "ing", "prof", "heer",
     "mevrouw", "fam", "familie", "sir", "madam", "bc", "msc", "bsc", "ma", "ba",
     "jr", "sr"}
)  # fmt: skip


@dataclass(frozen=True)
class PersonName:
    """A person's name split the Dutch way: 'J.P. van der Berg' → initials 'jp', 'van der', 'berg'."""

    given: tuple[str, ...] = ()  # folded given names ('jan', 'peter')
    initials: str = ""  # one letter per given name or initial ('jp')
    particles: str = ""  # 'van der'
    surname: str = ""  # folded, without particles; a double name stays whole ('de vries jansen')

    @property
    def full(self) -> str:
        return " ".join(p for p in (*self.given, self.particles, self.surname) if p)


@lru_cache(maxsize=65536)
def person_name(text: str) -> PersonName:
    """Split a name as people write it: 'Jan Visser', 'Visser, J.', 'Mevr. A. de Vries-Jansen'."""
    text = _DE_HEER.sub("", text.strip().strip("\"'"))
    if "<" in text:  # 'Jan Visser <jan@…>': the display part
        text = text.split("<", 1)[0].strip().strip("\"'")
    if "," in text:  # 'Visser, Jan' / 'Berg, J.P. van der': surname first
        surname, _, first = text.partition(",")
        text = f"{first} {surname}"
    # 'J.P.' and 'J. P.' are initials: split them into one letter each before folding.
    spaced = re.sub(r"\b([A-Za-z])\.", r" \1. ", text)
    tokens = [t for t in re.split(r"\s+", spaced) if t]
    words: list[tuple[str, bool]] = []  # (folded word, written as an initial)
    for token in tokens:
        initial = token.endswith(".") and len(token.rstrip(".")) == 1
        for word in fold(token).split():
            words.append((word, initial))
    words = [(w, i) for w, i in words if w not in _TITLES]
    if not words:
        return PersonName()
    # The surname: from the first particle after the given part, or the last word.
    given: list[str] = []
    initials: list[str] = []
    rest_at = len(words) - 1
    for index, (word, initial) in enumerate(words):
        # ('T. Hart' is an initial, not the particle of "'t Hart".)
        if index == len(words) - 1 or (
            not initial and (word in PARTICLES if index > 0 else word in _LEADING_PARTICLES)
        ):
            rest_at = index
            break
        if initial or len(word) == 1:
            initials.append(word)
        else:
            given.append(word)
    rest = [w for w, _ in words[rest_at:]]
    particles: list[str] = []
    while len(rest) > 1 and rest[0] in PARTICLES:
        particles.append(rest.pop(0))
    # 'VISSER J' (surname first, initial last): the lone letter is the initial.
    if len(rest) == 1 and len(rest[0]) == 1 and not initials and len(given) == 1:
        rest, initials, given = given, [rest[0]], []
    return PersonName(
        given=tuple(given),
        initials="".join(w[0] for w in given)
        if not initials
        else "".join(initials + [w[0] for w in given]),
        particles=" ".join(particles),
        surname=" ".join(rest),
    )
