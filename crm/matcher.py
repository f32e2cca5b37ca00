"""Who a sender is.

Two layers. Exact identity (an e-mail address, an E.164 number, a messenger id owned by one
record) is what the pipeline looks up first, for every message. When that finds no person, the
staged matcher takes over (`match_sender`):

1. exact identity, also on the provider-aware e-mail key (jan.visser+offerte@gmail.com is
   janvisser@gmail.com); a shared mailbox (info@, sales@) only says which relation it is;
2. company domain: a non-free-mail domain owned by a relation names the company;
3. candidates from PostgreSQL through indexes (the search documents' tsvector on the surname,
   the relation's contacts, the indexed words one edit from a surname with a typo), never a
   scan in Python;
4. rapidfuzz comparisons per field, each giving a level ('surname': 'joined', 'given':
   'initial_conflict', ...) whose weight is read from crm/data/match_weights.json (fitted by
   crm.weights, refitted by `switchboard match train`), summed as log-odds into a score in 0..1.

The decision: link above the link threshold when no rival is close, review in between (the
candidates are kept for a person to confirm), otherwise unknown (the caller makes a lead).
Every decision carries its reasons per field, stored on the message for the inbox to show.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm import normalizers
from crm.models import Contact, Identity, MatchReview
from crm.search import one_edit
from crm.weights import Weights, forms_of, same_person_name
from crm.weights import load as load_weights


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


def secondary_key(kind: str, value: str) -> str:
    """What an identity is looked up by besides its value: the provider-aware e-mail key."""
    return normalizers.email_key(value) if kind == "email" else value


async def match_exact(session: AsyncSession, keys: Sequence[Key]) -> Match:
    """The best owner of any of the keys: a contact beats a relation beats a lead.

    A shared mailbox (info@, sales@) names its relation, never one person.
    """
    return (await match_exact_many(session, [keys]))[0]


async def match_exact_many(session: AsyncSession, senders: Sequence[Sequence[Key]]) -> list[Match]:
    """`match_exact` for many senders in one query."""
    wanted = {(k.kind, k.value) for keys in senders for k in keys}
    if not wanted:
        return [Match() for _ in senders]
    rows = (
        await session.execute(
            select(
                Identity.id,
                Identity.kind,
                Identity.value,
                Identity.shared,
                Identity.contact_id,
                Identity.relation_id,
                Identity.lead_id,
                Contact.relation_id.label("contact_relation_id"),
            )
            .outerjoin(Contact, Contact.id == Identity.contact_id)
            # Two ANY lists the unique index answers (a list of pairs may be planned as a scan).
            .where(
                Identity.value.in_(sorted({v for _, v in wanted})),
                Identity.kind.in_(sorted({k for k, _ in wanted})),
            )
        )
    ).all()
    by_key = {(r.kind, r.value): r for r in rows if (r.kind, r.value) in wanted}
    return [
        _best([by_key[(k.kind, k.value)] for k in keys if (k.kind, k.value) in by_key], keys)
        for keys in senders
    ]


def _best(rows: Sequence[Any], keys: Sequence[Key]) -> Match:
    if not rows:
        return Match()
    order = {(k.kind, k.value): i for i, k in enumerate(keys)}

    def person(r: Any) -> int | None:
        return None if r.shared else r.contact_id

    best = min(
        rows,
        key=lambda r: (0 if person(r) else 1 if r.relation_id else 2, order[(r.kind, r.value)]),
    )
    return Match(
        identity_id=best.id,
        contact_id=person(best),
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
    owner = {"contact_id": contact_id, "relation_id": relation_id, "lead_id": lead_id}
    await add_identities_many(session, [(keys, owner)])


async def add_identities_many(
    session: AsyncSession, owned: Sequence[tuple[Sequence[Key], dict[str, int | None]]]
) -> dict[tuple[str, str], int]:
    """`add_identities` for many owners in one statement; the first owner of a key wins.
    Returns the ids of the identities this statement created, by (kind, value)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for keys, owner in owned:
        for k in keys:
            rows.setdefault(
                (k.kind, k.value),
                {
                    "kind": k.kind,
                    "value": k.value,
                    "key": secondary_key(k.kind, k.value),
                    "shared": k.kind == "email" and normalizers.is_shared_mailbox(k.value),
                    "raw": k.raw,
                    "contact_id": owner.get("contact_id"),
                    "relation_id": owner.get("relation_id"),
                    "lead_id": owner.get("lead_id"),
                },
            )
    if not rows:
        return {}
    # One order for every writer, so two transactions adding overlapping keys never deadlock.
    ordered = [rows[key] for key in sorted(rows)]
    created = await session.execute(
        _ADD_IDENTITIES, {column: [r[column] for r in ordered] for column in _IDENTITY_COLUMNS}
    )
    return {(r.kind, r.value): r.id for r in created}


_IDENTITY_COLUMNS = {
    "kind": "text",
    "value": "text",
    "key": "text",
    "shared": "boolean",
    "raw": "text",
    "contact_id": "bigint",
    "relation_id": "bigint",
    "lead_id": "bigint",
}
# One prepared statement for any number of rows (a multi-row VALUES is compiled anew per size).
_ADD_IDENTITIES = text(
    f"""INSERT INTO identities ({", ".join(_IDENTITY_COLUMNS)})
        SELECT * FROM unnest({", ".join(f"CAST(:{c} AS {t}[])" for c, t in _IDENTITY_COLUMNS.items())})
        ON CONFLICT (kind, value) DO NOTHING
        RETURNING id, kind, value"""
)


# --- the staged matcher ------------------------------------------------------------------------

Verdict = Literal["linked", "review", "unknown"]


@dataclass
class Sender:
    """A sender as a message, a form or a file gives it; any field may be missing."""

    email: str | None = None
    phone: str | None = None
    telegram_id: str | None = None
    name: str | None = None
    company: str | None = None
    city: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sender:
        def text_of(name: str) -> str | None:
            value = data.get(name)
            return str(value) if value not in (None, "") else None

        known = {"email", "phone", "telegram_id", "name", "company", "city"}
        return cls(
            **{k: text_of(k) for k in known},
            fields={k: v for k, v in data.items() if k not in known},
        )


@dataclass
class Candidate:
    contact_id: int | None
    relation_id: int | None
    score: float
    reasons: dict[str, str]
    external_id: str | None = None
    name: str | None = None
    relation: str | None = None
    levels: dict[str, str] = field(default_factory=dict)  # the evidence per field, for a refit


@dataclass
class Decision:
    decision: Verdict
    score: float = 0.0
    contact_id: int | None = None
    relation_id: int | None = None
    lead_id: int | None = None
    external_id: str | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)

    def as_meta(self) -> dict[str, Any]:
        """What the message keeps (meta["match"]) so the inbox can explain and suggest."""
        # (By hand: dataclasses.asdict's deep copy was a visible share of a worker's time.)
        out = self.__dict__ | {"score": round(self.score, 4), "reasons": dict(self.reasons)}
        out["candidates"] = [
            {k: v for k, v in c.__dict__.items() if k != "levels"}
            | {"score": round(c.score, 4), "reasons": dict(c.reasons)}
            for c in self.candidates
        ]
        return out


@dataclass(frozen=True)
class MatchConfig:
    link: float = 0.90  # at or above: linked automatically (chosen on the bench's dev half)
    review: float = 0.50  # at or above (and below link): a person confirms
    margin: float = 0.10  # a rival this close to the best sends it to review instead
    region: str = "NL"
    limit: int = 60  # candidates scored per sender
    weights_file: str | None = None  # a refit (`switchboard match train`); else the shipped one

    @property
    def weights(self) -> Weights:
        return load_weights(self.weights_file)


DEFAULT = MatchConfig()
_LOCAL_SPLIT = re.compile(r"[._\-+]+")


@dataclass
class _Facts:
    """The sender, normalised once."""

    email: str | None
    email_key: str | None
    domain: str | None
    company_domain: str | None
    shared: bool
    phone: str | None
    person: normalizers.PersonName | None
    company: str
    city: str
    local: str  # the letters of the address's own part ('jvisser' of j.visser77@gmail.com)
    domain_name: str  # the company a company domain reads as ('hamerslag' of hamerslag2.nl)
    history: set[int] = field(default_factory=set)  # contacts earlier messages were linked to


def _facts(sender: Sender, region: str) -> _Facts:
    address = normalizers.email(sender.email) if sender.email else None
    domain = normalizers.email_domain(address) if address else None
    shared = bool(address and normalizers.is_shared_mailbox(address))
    name = (sender.name or "").strip()
    local = address.split("@", 1)[0].split("+", 1)[0] if address and not shared else ""
    if not name and local:
        parts = [p for p in _LOCAL_SPLIT.split(local) if p and not p.isdigit()]
        name = " ".join(parts) if len(parts) >= 2 else ""
    person = normalizers.person_name(name) if name else None
    if person is not None and not person.surname:
        person = None
    return _Facts(
        email=address,
        email_key=normalizers.email_key(address) if address else None,
        domain=domain,
        company_domain=domain if domain and not normalizers.is_free_mail(domain) else None,
        shared=shared,
        phone=normalizers.phone(sender.phone, region) if sender.phone else None,
        person=person,
        company=normalizers.company(sender.company) if sender.company else "",
        city=normalizers.fold(sender.city) if sender.city else "",
        local="".join(c for c in normalizers.fold(local) if c.isalpha()),
        domain_name=_domain_name(domain) if domain and not normalizers.is_free_mail(domain) else "",
    )


def _domain_name(domain: str) -> str:
    """The company name a domain spells: 'hamerslag-bouw2.nl' → 'hamerslagbouw'."""
    label = domain.rsplit(".", 1)[0].rsplit(".", 1)[-1]
    name = "".join(c for c in label if c.isalpha())
    return name if len(name) >= 4 else ""


@dataclass
class _Record:
    """A candidate contact with what scoring needs."""

    contact_id: int
    relation_id: int | None
    first_name: str
    last_name: str
    full_name: str
    city: str
    relation: str
    relation_city: str
    external_id: str | None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)


async def match_sender(
    session: AsyncSession, sender: Sender, *, config: MatchConfig | None = None
) -> Decision:
    """The best contact and relation for a sender, with a score and the reasons per field."""
    return (await match_senders(session, [sender], config=config))[0]


async def match_senders(
    session: AsyncSession, senders: Sequence[Sender], *, config: MatchConfig | None = None
) -> list[Decision]:
    """`match_sender` for many senders at once: each stage is one query for all of them (about
    a dozen statements per batch, however large), the scoring in between is per sender."""
    decisions, _ = await _match(session, senders, config or DEFAULT)
    return decisions


async def ranked_candidates(
    session: AsyncSession, senders: Sequence[Sender], *, config: MatchConfig | None = None
) -> list[list[Candidate]]:
    """Every candidate each sender was scored against, best first, past the exact stage: the
    pairs a refit of the weights learns from."""
    _, ranked = await _match(session, senders, config or DEFAULT, exact=False)
    return [ranked.get(i, []) for i in range(len(senders))]


Label = tuple[Literal["contact_id", "external_id"], int | str | None]  # who the sender is


async def review_labels(session: AsyncSession) -> list[tuple[Sender, Label]]:
    """The review queue's decided senders: a confirmed one is its contact, a rejected one is
    none of its candidates."""
    rows = await session.execute(
        select(MatchReview.sender, MatchReview.status, MatchReview.contact_id)
        .where(MatchReview.status.in_(("confirmed", "rejected")))
        .order_by(MatchReview.id)
    )
    return [
        (Sender.from_dict(sender), ("contact_id", contact_id if status == "confirmed" else None))
        for sender, status, contact_id in rows
    ]


async def labelled_pairs(
    session: AsyncSession,
    labelled: Sequence[tuple[Sender, Label]],
    *,
    config: MatchConfig | None = None,
) -> list[tuple[dict[str, str], bool]]:
    """The evidence levels of every candidate of each labelled sender, and whether it is the
    one: what `crm.weights.fit` learns from. Matched 500 senders a query round."""
    pairs: list[tuple[dict[str, str], bool]] = []
    for start in range(0, len(labelled), 500):
        chunk = labelled[start : start + 500]
        ranked = await ranked_candidates(session, [s for s, _ in chunk], config=config)
        for (_, (by, who)), candidates in zip(chunk, ranked, strict=True):
            pairs += [
                (c.levels, who is not None and getattr(c, by) == who)
                for c in candidates
                if c.levels
            ]
    return pairs


async def _match(
    session: AsyncSession, senders: Sequence[Sender], cfg: MatchConfig, *, exact: bool = True
) -> tuple[list[Decision], dict[int, list[Candidate]]]:
    weights = cfg.weights
    facts = [_facts(s, cfg.region) for s in senders]
    keys = [
        identity_keys(
            [f.email] if f.email else [], [f.phone] if f.phone else [], s.telegram_id, cfg.region
        )
        for s, f in zip(senders, facts, strict=True)
    ]
    decided: list[Decision | None] = (
        await _exact_owners(session, keys, facts) if exact else [None for _ in facts]
    )
    todo = [i for i, d in enumerate(decided) if d is None]
    if not todo:
        return [d for d in decided if d is not None], {}

    by_domain = await _domain_relations(session, {facts[i].company_domain for i in todo})
    domain_ids = {i: by_domain.get(facts[i].company_domain or "", []) for i in todo}
    # A company the sender names, else the one their company domain spells when no relation
    # owns the domain yet (a new address at a company whose people wrote from free mail).
    named = {i: f.company or f.domain_name for i in todo if not domain_ids[i] and (f := facts[i])}
    by_company = await _company_relations(
        session, {name for name in named.values() if len(name) >= 3}
    )
    by_mailbox = await _shared_mailbox_relations(
        session, {f.email for i in todo if (f := facts[i]).email and f.shared}
    )
    relation_ids: dict[int, list[int]] = {}
    known: dict[int, list[int]] = {}
    for i in todo:
        relation_ids[i] = list(domain_ids[i])
        company_ids = [] if relation_ids[i] else by_company.get(named.get(i, ""), [])
        shared = by_mailbox.get(facts[i].email or "") if facts[i].shared else None
        if shared is not None:
            relation_ids[i] = [shared, *[r for r in relation_ids[i] if r != shared]]
        known[i] = relation_ids[i] + company_ids

    # The company is known: its own contacts first, with the contacts the sender's earlier
    # messages were linked to and those whose number ends in the same seven digits. A clear
    # winner there needs no search through every contact (the common case: a new address at a
    # known company domain).
    scored: dict[int, list[Candidate]] = {i: [] for i in todo}
    first = await _relation_contacts(session, {i: known[i] for i in todo if known[i]}, cfg.limit)
    for i, ids in (await _history(session, {i: facts[i] for i in todo})).items():
        facts[i].history = set(ids)
        first[i] = ids + [c for c in first.get(i, []) if c not in ids]
    tails = {i: f.phone[-7:] for i in todo if (f := facts[i]).phone and len(f.phone) >= 9}
    for i, ids in (await _phone_tails(session, tails, cfg.limit)).items():
        first[i] = first.get(i, []) + [c for c in ids if c not in first.get(i, [])]
    records = await _load(session, {c for ids in first.values() for c in ids})
    searching = []
    for i in todo:
        scored[i] = _scored(facts[i], first.get(i, []), records, relation_ids[i], weights)
        if scored[i] and _clear(scored[i], cfg):
            decided[i] = _decide(scored[i], cfg, relation_ids[i], facts[i])
        else:
            searching.append(i)

    found = await _candidate_ids(session, {i: facts[i] for i in searching}, cfg.limit)
    records.update(
        await _load(session, {c for ids in found.values() for c in ids if c not in records})
    )
    for i in searching:
        seen = {c.contact_id for c in scored[i]}
        ids = [c for c in found.get(i, []) if c not in seen]
        scored[i] = scored[i] + _scored(facts[i], ids, records, relation_ids[i], weights)
        scored[i].sort(key=lambda c: -c.score)
        decided[i] = (
            _decide(scored[i], cfg, relation_ids[i], facts[i])
            if scored[i]
            else _relation_only(relation_ids[i], facts[i])
        )
    return [d for d in decided if d is not None], scored


_HISTORY = text(
    """SELECT q.i, h.contact_id
       FROM unnest(CAST(:i AS int[]), CAST(:email AS text[])) AS q(i, email)
       CROSS JOIN LATERAL (
           SELECT coalesce(l.converted_contact_id, i.contact_id) AS contact_id
           FROM identities AS i LEFT JOIN leads AS l ON l.id = i.lead_id
           WHERE i.kind = 'email' AND i.key = q.email AND NOT i.shared
             AND coalesce(l.converted_contact_id, i.contact_id) IS NOT NULL
           LIMIT 3) AS h"""
)


async def _history(session: AsyncSession, senders: dict[int, _Facts]) -> dict[int, list[int]]:
    """The contacts a person linked this address's earlier messages to: its lead was converted
    into them (the address stayed the lead's), for all senders in one query."""
    wanted = {i: f.email_key for i, f in senders.items() if f.email_key and not f.shared}
    if not wanted:
        return {}
    out: dict[int, list[int]] = {}
    rows = await session.execute(_HISTORY, {"i": list(wanted), "email": list(wanted.values())})
    for i, contact_id in rows:
        out.setdefault(i, []).append(contact_id)
    return out


_PHONE_TAILS = text(
    """SELECT q.i, p.contact_id
       FROM unnest(CAST(:i AS int[]), CAST(:tail AS text[])) AS q(i, tail)
       CROSS JOIN LATERAL (
           SELECT contact_id FROM identities
           WHERE kind = 'phone' AND right(value, 7) = q.tail AND contact_id IS NOT NULL
           LIMIT :limit) AS p"""
)


async def _phone_tails(
    session: AsyncSession, tails: dict[int, str], limit: int
) -> dict[int, list[int]]:
    """The contacts whose number ends in the same seven digits as each sender's (a number
    written with another country or area code), through the index on the tail."""
    if not tails:
        return {}
    out: dict[int, list[int]] = {}
    rows = await session.execute(
        _PHONE_TAILS, {"i": list(tails), "tail": list(tails.values()), "limit": limit}
    )
    for i, contact_id in rows:
        out.setdefault(i, []).append(contact_id)
    return out


def _scored(
    facts: _Facts,
    ids: list[int],
    records: dict[int, _Record],
    relation_ids: list[int],
    weights: Weights,
) -> list[Candidate]:
    scored = [_score(facts, records[i], relation_ids, weights) for i in ids if i in records]
    scored.sort(key=lambda c: -c.score)
    return scored


def _clear(scored: list[Candidate], cfg: MatchConfig) -> bool:
    rival = scored[1].score if len(scored) > 1 else 0.0
    return scored[0].score >= cfg.link and scored[0].score - rival >= cfg.margin


_RELATION_CONTACTS = text(
    """SELECT s.i, c.id
       FROM (SELECT w.i, array_agg(w.r) AS rs
             FROM unnest(CAST(:i AS int[]), CAST(:r AS bigint[])) AS w(i, r) GROUP BY w.i) AS s
       CROSS JOIN LATERAL (
           SELECT id FROM contacts WHERE relation_id = ANY(s.rs) LIMIT :limit) AS c"""
)


async def _relation_contacts(
    session: AsyncSession, relations: dict[int, list[int]], limit: int
) -> dict[int, list[int]]:
    """Up to `limit` contacts of each sender's relations, for all senders in one query."""
    if not relations:
        return {}
    pairs = [(i, r) for i, rs in relations.items() for r in rs]
    rows = await session.execute(
        _RELATION_CONTACTS,
        {"i": [i for i, _ in pairs], "r": [r for _, r in pairs], "limit": limit},
    )
    out: dict[int, list[int]] = {}
    for i, contact_id in rows:
        out.setdefault(i, []).append(contact_id)
    return out


# Stage 1 for all senders: owners of the identity values, and e-mail identities by the
# provider-aware key. (Text with arrays, like the statements below: one prepared statement for
# any number of senders, no IN list compiled per call.)
_EXACT_OWNERS = text(
    """SELECT i.kind, i.value, i.key, i.shared, i.contact_id, i.relation_id, i.lead_id,
              c.relation_id AS contact_relation_id, c.external_id, l.converted_contact_id
       FROM identities AS i
       LEFT JOIN contacts AS c ON c.id = i.contact_id
       LEFT JOIN leads AS l ON l.id = i.lead_id
       WHERE (i.value = ANY(CAST(:values AS text[])) AND i.kind = ANY(CAST(:kinds AS text[])))
          OR (i.kind = 'email' AND i.key = ANY(CAST(:keys AS text[])))"""
)


async def _exact_owners(
    session: AsyncSession, keys: list[list[Key]], facts: list[_Facts]
) -> list[Decision | None]:
    """Stage 1: an identity (value or provider-aware key) owned by one contact."""
    values = {(k.kind, k.value) for ks in keys for k in ks}
    email_keys = {f.email_key for f in facts if f.email_key}
    if not values and not email_keys:
        return [None for _ in facts]
    rows = (
        await session.execute(
            _EXACT_OWNERS,
            {
                "values": sorted({v for _, v in values}),
                "kinds": sorted({k for k, _ in values}),
                "keys": sorted(email_keys),
            },
        )
    ).all()
    return [_exact_owner(rows, ks, f) for ks, f in zip(keys, facts, strict=True)]


def _exact_owner(rows: Sequence[Any], keys: list[Key], facts: _Facts) -> Decision | None:
    exact = {(k.kind, k.value) for k in keys}
    mine = [
        r
        for r in rows
        if (r.kind, r.value) in exact
        or (facts.email_key and r.kind == "email" and r.key == facts.email_key)
    ]
    for row in sorted(mine, key=lambda r: ("email", "phone", "telegram").index(r.kind)):
        if not row.contact_id or row.shared or (facts.shared and row.kind == "email"):
            continue
        how = "exact" if (row.kind, row.value) in exact else "same address (provider key)"
        return Decision(
            "linked",
            1.0 if how == "exact" else 0.99,
            contact_id=row.contact_id,
            relation_id=row.contact_relation_id,
            external_id=row.external_id,
            reasons={row.kind: how},
        )
    for row in mine:
        # A lead a person has since converted: the contact is evidence, not yet a link.
        if row.lead_id and not row.converted_contact_id:
            return Decision("unknown", 0.0, lead_id=row.lead_id, reasons={row.kind: "a lead's"})
    return None


_DOMAIN_RELATIONS = text(
    """SELECT value, relation_id FROM identities
       WHERE kind = 'domain' AND value = ANY(CAST(:domains AS text[]))
         AND relation_id IS NOT NULL"""
)


async def _domain_relations(
    session: AsyncSession, domains: set[str | None]
) -> dict[str, list[int]]:
    """Stage 2: the relations whose company domain each sender writes from."""
    wanted = sorted(d for d in domains if d)
    if not wanted:
        return {}
    rows = await session.execute(_DOMAIN_RELATIONS, {"domains": wanted})
    out: dict[str, list[int]] = {}
    for value, relation_id in rows:
        if relation_id is not None:
            out.setdefault(value, []).append(relation_id)
    return out


_COMPANIES = text(
    """SELECT q.name, r.id
       FROM unnest(CAST(:names AS text[])) AS q(name)
       CROSS JOIN LATERAL (
           SELECT id FROM relations
           WHERE normalized_name = q.name OR normalized_name % q.name
           ORDER BY normalized_name = q.name DESC, similarity(normalized_name, q.name) DESC
           LIMIT 5) AS r"""
)


async def _company_relations(session: AsyncSession, names: set[str]) -> dict[str, list[int]]:
    """The relations whose name (without legal form) is, or is close to, each company."""
    if not names:
        return {}
    out: dict[str, list[int]] = {}
    for name, relation_id in await session.execute(_COMPANIES, {"names": sorted(names)}):
        out.setdefault(name, []).append(relation_id)
    return out


_SHARED_MAILBOXES = text(
    """SELECT i.value, i.relation_id, c.relation_id AS contact_relation_id
       FROM identities AS i LEFT JOIN contacts AS c ON c.id = i.contact_id
       WHERE i.kind = 'email' AND i.value = ANY(CAST(:addresses AS text[]))"""
)


async def _shared_mailbox_relations(
    session: AsyncSession, addresses: set[str]
) -> dict[str, int | None]:
    """The relation of each shared mailbox someone registered (on a relation or its contact)."""
    if not addresses:
        return {}
    rows = await session.execute(_SHARED_MAILBOXES, {"addresses": sorted(addresses)})
    out: dict[str, int | None] = {}
    for row in rows:
        out.setdefault(row.value, row.relation_id or row.contact_relation_id)
    return out


# The tsquery is parsed once per sender (a function in FROM), never once per document: when
# the planner filters the contacts' documents instead of asking the index (statistics from
# before an import), a parse per row cost 20 ms for 4,000 contacts.
_CANDIDATES = text(
    """SELECT q.i, d.record_id
       FROM unnest(CAST(:i AS int[]), CAST(:query AS text[])) WITH ORDINALITY AS q(i, query, n)
       CROSS JOIN LATERAL to_tsquery('simple', q.query) AS t(query)
       CROSS JOIN LATERAL (
           SELECT record_id FROM search_documents
           WHERE kind = 'contact' AND doc @@ t.query
           LIMIT :limit) AS d
       ORDER BY q.n"""
)


def _lexemes(value: str) -> list[str]:
    """Words safe to put in a tsquery: folded letters and digits only."""
    return [w for w in normalizers.fold(value).split() if w.isalnum()]


async def _candidate_ids(
    session: AsyncSession, senders: dict[int, _Facts], limit: int
) -> dict[int, list[int]]:
    """Stage 3: candidate contacts of each sender, found through indexes only: one search for
    all senders, and one more for the surnames with a typo."""
    queries: dict[int, tuple[list[str], list[str]]] = {}  # sender -> (surname anchors, narrowing)
    for i, facts in senders.items():
        person = facts.person
        surname = _lexemes(person.surname) if person is not None else []
        if person is None or not surname:
            continue
        # The longest word of the surname ('vries' of 'de vries-jansen') must be there; a given
        # name, an initial, the company or the city narrows a common one.
        # (A lone initial is no narrowing: 'j:*' expands to every word starting with j.)
        given = [g for g in person.given[:2] if g.isalnum() and len(g) >= 2]
        narrow = given + [f for g in given[:1] for f in forms_of(g)[:6] if f.isalnum()]
        narrow += [f"{w}:*" for w in _lexemes(facts.company)[:3] if len(w) >= 4]
        narrow += _lexemes(facts.city)[:2]
        queries[i] = (_anchors(person, max(surname, key=len)), narrow)
    found = await _search(
        session, {i: _tsquery(heads, narrow) for i, (heads, narrow) in queries.items()}, limit
    )
    # A typo in the surname: the index's words within one edit of it.
    anchors = {
        i: anchor
        for i, ([anchor, *_], _) in queries.items()
        if not found.get(i) and len(anchor) >= 4
    }
    close = await _close_words(session, anchors)
    typos = {i: _tsquery(close[i], queries[i][1]) for i in anchors if close.get(i)}
    found.update(await _search(session, typos, limit))
    return {i: list(dict.fromkeys(ids))[: limit * 2] for i, ids in found.items()}


# The indexed words among the strings one edit from each anchor (a few hundred exact lookups in
# the index of words, one statement for all senders: LATERAL keeps them lookups, where a semi
# join hashed the whole table, 5 ms for 5,000 words), instead of a scan of the sorted list of
# every word: that list was reloaded every minute (a long statement at a million records, landing
# on one message), and the scan of its words with the anchor's first letter grew with it.
_CLOSE_WORDS = text(
    """SELECT q.i, q.word
       FROM unnest(CAST(:i AS int[]), CAST(:word AS text[])) AS q(i, word)
       CROSS JOIN LATERAL (SELECT FROM search_words AS w WHERE w.word = q.word LIMIT 1) AS w"""
)
ALTERNATIVES = 8  # words tried for a surname with a typo, the first in C order


async def _close_words(session: AsyncSession, anchors: dict[int, str]) -> dict[int, list[str]]:
    """Per sender, the indexed words one edit (a swap counts as one) from its anchor that keep
    its first letter."""
    if not anchors:
        return {}
    pairs = [(i, variant) for i, anchor in anchors.items() for variant in sorted(one_edit(anchor))]
    rows = await session.execute(
        _CLOSE_WORDS, {"i": [i for i, _ in pairs], "word": [v for _, v in pairs]}
    )
    out: dict[int, set[str]] = {}
    for i, word in rows:
        out.setdefault(i, set()).add(word)
    return {i: sorted(words)[:ALTERNATIVES] for i, words in out.items()}


_JOINED_PARTICLES = ("vander", "vanden", "vande", "van", "ter", "ten", "den", "der", "de", "te")


def _anchors(person: normalizers.PersonName, anchor: str) -> list[str]:
    """The surname's longest word, and how it may be written joined or split: 'vanderberg' for
    'van der Berg' and 'berg' for 'Vanderberg'; 'blake' for 'bl ake' (a stray space)."""
    heads = [anchor]
    joined = _joined(person)
    if joined != anchor and joined.isalnum():
        heads.append(joined)
    for particle in _JOINED_PARTICLES:
        if anchor.startswith(particle) and len(anchor) - len(particle) >= 3:
            heads.append(anchor[len(particle) :])
            break
    if (stray := _stray(person)).isalnum():
        heads.append(stray)
    return list(dict.fromkeys(heads))


def _tsquery(heads: list[str], narrow: list[str]) -> str:
    head = heads[0] if len(heads) == 1 else "(" + " | ".join(heads) + ")"
    return head if not narrow else f"{head} & ({' | '.join(narrow)})"


async def _search(
    session: AsyncSession, queries: dict[int, str], limit: int
) -> dict[int, list[int]]:
    if not queries:
        return {}
    out: dict[int, list[int]] = {}
    rows = await session.execute(
        _CANDIDATES, {"i": list(queries), "query": list(queries.values()), "limit": limit}
    )
    for i, record_id in rows:
        out.setdefault(i, []).append(record_id)
    return out


# The candidates with their relation and identities, in one round trip. (One statement text
# for any number of ids: an IN list is compiled, and prepared by the server, anew per length.)
_RECORDS = text(
    """SELECT c.id, c.relation_id, c.first_name, c.last_name, c.full_name, c.city,
              c.external_id, r.name AS relation, r.addresses -> 0 ->> 'city' AS relation_city,
              own.emails, own.others, d.domains
       FROM contacts AS c
       LEFT JOIN relations AS r ON r.id = c.relation_id
       CROSS JOIN LATERAL (
           SELECT array_agg(i.value ORDER BY i.id) FILTER (WHERE i.kind = 'email') AS emails,
                  array_agg(i.value ORDER BY i.id) FILTER (WHERE i.kind <> 'email') AS others
           FROM identities AS i WHERE i.contact_id = c.id) AS own
       CROSS JOIN LATERAL (
           SELECT array_agg(i.value ORDER BY i.id) AS domains
           FROM identities AS i WHERE i.relation_id = c.relation_id AND i.kind = 'domain') AS d
       WHERE c.id = ANY(CAST(:ids AS bigint[]))"""
)


async def _load(session: AsyncSession, ids: set[int]) -> dict[int, _Record]:
    """The candidates with their relation and identities: one query for all of them."""
    if not ids:
        return {}
    records: dict[int, _Record] = {}
    for r in await session.execute(_RECORDS, {"ids": sorted(ids)}):
        emails = list(r.emails or [])
        records[r.id] = _Record(
            contact_id=r.id,
            relation_id=r.relation_id,
            first_name=r.first_name or "",
            last_name=r.last_name or "",
            full_name=r.full_name or "",
            city=normalizers.fold(r.city or ""),
            relation=r.relation or "",
            relation_city=normalizers.fold(r.relation_city or ""),
            external_id=r.external_id,
            emails=emails,
            phones=list(r.others or []),
            domains=list(r.domains or []) + [e.split("@", 1)[1] for e in emails if "@" in e],
        )
    return records


def _score(facts: _Facts, rec: _Record, relation_ids: list[int], weights: Weights) -> Candidate:
    """The evidence per field, as levels; their fitted weights summed with the prior (log-odds)
    and turned into a score between 0 and 1."""
    levels: dict[str, str] = {}
    reasons: dict[str, str] = {}

    def note(name: str, level: str, why: str) -> None:
        levels[name] = level
        reasons[name] = why

    person = facts.person
    theirs = normalizers.person_name(f"{rec.first_name} {rec.last_name}".strip() or rec.full_name)
    if facts.company or rec.relation:
        _score_company(facts, rec, relation_ids, note)
    if facts.email and rec.emails and not facts.shared:  # a shared mailbox is nobody's own
        if facts.email_key and facts.email_key in {normalizers.email_key(e) for e in rec.emails}:
            note("email", "same", "same address")
        elif facts.domain and facts.domain in {e.split("@", 1)[1] for e in rec.emails}:
            if facts.company_domain:
                note("email", "same_domain", f"another address at {facts.domain}")
        else:
            note("email", "new", "a new address")
    if facts.local and levels.get("email") != "same" and theirs.surname:
        _score_local(facts.local, theirs, note)
    if person is not None:
        at_domain = rec.relation_id in relation_ids and facts.company_domain is not None
        _score_name(person, theirs, at_domain, levels.get("local") == "name", note)
    if facts.city:
        cities = {rec.city, rec.relation_city} - {""}
        if facts.city in cities:
            note("city", "same", f"{facts.city} matches")
        elif cities:
            note("city", "differ", f"{facts.city} ≠ {', '.join(sorted(cities))}")
    if facts.phone and rec.phones:
        if facts.phone in rec.phones:
            note("phone", "same", "same number")
        elif facts.phone[-7:] in {p[-7:] for p in rec.phones}:
            note("phone", "last7", f"same last 7 digits as {rec.phones[0]}")
        else:
            note("phone", "differ", "another number")
    if rec.contact_id in facts.history:
        note("history", "linked", "earlier messages from this address were linked to them")
    weight = weights.prior + sum(weights.of(name, level) for name, level in levels.items())
    if _NOT_THE_NAME & levels.items():
        # The company, its domain and the city never name the person by themselves: a name
        # that disagrees leaves at most a suggestion to review, never a rival to the right one.
        weight = min(weight, _NAME_DISAGREES)
    return Candidate(
        contact_id=rec.contact_id,
        relation_id=rec.relation_id,
        score=1.0 / (1.0 + math.exp(-weight)),
        reasons=reasons,
        external_id=rec.external_id,
        name=rec.full_name,
        relation=rec.relation or None,
        levels=levels,
    )


_NOT_THE_NAME = {
    ("surname", "differ"),
    ("given", "differ"),
    ("given", "initial_conflict"),
    ("given", "second_initial_conflict"),
}
_NAME_DISAGREES = math.log(0.8 / 0.2)  # a score of 0.8 at most


def _score_local(local: str, theirs: normalizers.PersonName, note: Any) -> None:
    """Whether the address spells the candidate's name ('jvisser', 'jan.visser', 'visser.j')."""
    if len(local) < 3:
        return
    surname, given = _joined(theirs), theirs.given[0] if theirs.given else ""
    initial = theirs.initials[:1]
    forms = {surname, given + surname, initial + surname, surname + given, surname + initial}
    forms = {f for f in forms if len(f) >= 3} | ({given} if len(given) >= 3 else set())
    if local in forms:
        note("local", "name", f"the address spells {theirs.full}")
    elif any(
        len(f) >= 5 and f[0] == local[0] and OSA.distance(local, f, score_cutoff=2) <= 2
        for f in forms
    ):
        note("local", "close", f"the address nearly spells {theirs.full}")
    else:
        note("local", "differ", f"the address is not {theirs.full}'s name")


def _stray(name: normalizers.PersonName) -> str:
    """The surname with a stray space taken out: 'chabrel' for 'L. Chab Rel' and 'blake' for
    'Deakyn Bl Ake' (the last given word after another given name or an initial)."""
    if not name.given or len(name.initials) < 2:
        return ""
    return name.given[-1] + name.surname.replace(" ", "")


def _joined(name: normalizers.PersonName) -> str:
    """The surname with its particles and without spaces: 'van der berg' is 'vanderberg'."""
    return f"{name.particles}{name.surname}".replace(" ", "")


def _swapped(mine: normalizers.PersonName, theirs: normalizers.PersonName) -> bool:
    """'Visser, Jan' read the wrong way round: my surname is their given name and vice versa."""
    if not theirs.given:
        return False
    if not mine.given:  # 'M. Hannah' for Hannah Mihal: the initial is the surname's
        return bool(mine.initials) and (
            _close(mine.surname, theirs.given[0]) and mine.initials[0] == theirs.surname[:1]
        )
    return _close(mine.surname, theirs.given[0]) and _close(mine.given[0], theirs.surname)


def _close(a: str, b: str) -> bool:
    return a == b or (min(len(a), len(b)) >= 4 and OSA.distance(a, b, score_cutoff=1) <= 1)


def _score_name(
    mine: normalizers.PersonName,
    theirs: normalizers.PersonName,
    at_domain: bool,
    spelled: bool,
    note: Any,
) -> None:
    """Surname (with particles, joined or split), then given names, short forms or initials.
    A surname two edits off is a slip at their company domain, or when the sender's address
    spells their name (a typo in a form's name field, not in the address it filled in)."""
    stray = _stray(mine)
    split = bool(stray) and stray == _joined(theirs) != _joined(mine)
    if split:  # the rest of the name without the surname's stray start
        mine = dataclasses.replace(
            mine, given=mine.given[:-1], initials=mine.initials[:-1], surname=stray
        )
    my_surname = f"{mine.particles} {mine.surname}".strip()
    their_surname = f"{theirs.particles} {theirs.surname}".strip()
    if mine.surname != theirs.surname and _swapped(mine, theirs):
        note("surname", "swapped", f"{theirs.surname} matches (written as given name)")
        note("given", "swapped", f"{theirs.given[0]} matches (written as surname)")
        return
    exact = not split and (mine.surname == theirs.surname or my_surname == their_surname)
    similarity = fuzz.ratio(mine.surname, theirs.surname)
    edits = OSA.distance(mine.surname, theirs.surname, score_cutoff=3)
    shortest = min(len(mine.surname), len(theirs.surname))
    if exact:
        note("surname", "exact", f"{theirs.surname} matches")
    elif split or _joined(mine) == _joined(theirs):
        note("surname", "joined", f"{my_surname} is {their_surname} (joined or split)")
    elif (shortest >= 4 and edits <= 1) or similarity >= 85:
        note("surname", "one_edit", f"{mine.surname} ≈ {theirs.surname} ({similarity:.0f})")
    elif at_domain and shortest >= 4 and edits <= 2:
        note("surname", "two_edits_domain", f"{mine.surname} ≈ {theirs.surname} at their domain")
    elif spelled and shortest >= 4 and edits <= 2:
        note("surname", "two_edits_address", f"{mine.surname} ≈ {theirs.surname} (the address)")
    elif {mine.surname} & set(their_surname.split()) or {theirs.surname} & set(my_surname.split()):
        note("surname", "part", f"{mine.surname} is part of {their_surname}")
    elif similarity >= 75:
        note("surname", "fuzzy", f"{mine.surname} ~ {theirs.surname} ({similarity:.0f})")
    else:
        note("surname", "differ", f"{mine.surname} ≠ {theirs.surname}")
        return
    if mine.given and theirs.given:
        a, b = mine.given[0], theirs.given[0]
        if a == b:
            note("given", "exact", f"{a} matches")
        elif same_person_name(a, b):
            note("given", "nickname", f"{a} is a form of {b}")
        elif min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)):
            note("given", "shortened", f"{a} ≈ {b} (shortened)")
        elif fuzz.ratio(a, b) >= 80 or a.startswith(b) or b.startswith(a) or _close(a, b):
            note("given", "fuzzy", f"{a} ≈ {b}")
        else:
            note("given", "differ", f"{a} ≠ {b}")
    elif mine.initials and theirs.initials:
        # An initial against a written name counts too: 'J. Visser' is not 'Piet Visser', and
        # 'J.P. Visser' is not 'J.K. Visser'.
        a, b = mine.initials, theirs.initials
        if a[0] != b[0]:
            note("given", "initial_conflict", f"initial {a[0]} ≠ {b[0]}")
        elif len(a) > 1 and len(b) > 1 and a[1] != b[1]:
            note("given", "second_initial_conflict", f"initials {a} ≠ {b}")
        else:
            note("given", "initial", f"initial {a[0]} matches")


def _score_company(facts: _Facts, rec: _Record, relation_ids: list[int], note: Any) -> None:
    if rec.relation_id is not None and rec.relation_id in relation_ids and facts.company_domain:
        note("domain", "relation", f"{facts.company_domain} is the relation's domain")
    elif facts.shared and rec.relation_id in relation_ids:
        note("mailbox", "relation", f"{facts.email} is the relation's shared mailbox")
    elif facts.domain_name and facts.domain_name == normalizers.company(rec.relation).replace(
        " ", ""
    ):
        note("domain", "named", f"{facts.domain} spells {rec.relation}")
    if facts.company and rec.relation:
        theirs = normalizers.company(rec.relation)
        similarity = fuzz.token_set_ratio(facts.company, theirs)
        if similarity >= 95:
            note("company", "same", f"{rec.relation} matches")
        elif similarity >= 85 or _prefix(facts.company, theirs):
            note("company", "close", f"{facts.company} ≈ {theirs} ({similarity:.0f})")
        elif similarity < 60:
            note("company", "differ", f"{facts.company} ≠ {theirs}")


def _prefix(a: str, b: str) -> bool:
    """'hamerslag' for 'hamerslag bouw': one name starts the other at a word boundary."""
    return (
        len(a) >= 4
        and len(b) >= 4
        and ((b + " ").startswith(a + " ") or (a + " ").startswith(b + " "))
    )


def _decide(
    scored: list[Candidate], cfg: MatchConfig, relation_ids: list[int], facts: _Facts
) -> Decision:
    best = scored[0]
    rival = scored[1].score if len(scored) > 1 else 0.0
    top = [c for c in scored if c.score >= cfg.review][:5]
    if best.score >= cfg.link and best.score - rival >= cfg.margin:
        verdict: Verdict = "linked"
    elif best.score >= cfg.review:
        verdict = "review"
    else:
        relation_only = _relation_only(relation_ids, facts)
        relation_only.candidates = scored[:3] if scored[0].score >= 0.2 else []
        return relation_only
    return Decision(
        verdict,
        best.score,
        contact_id=best.contact_id if verdict == "linked" else None,
        relation_id=best.relation_id if verdict == "linked" else None,
        external_id=best.external_id if verdict == "linked" else None,
        reasons=best.reasons,
        candidates=top,
    )


def _relation_only(relation_ids: list[int], facts: _Facts) -> Decision:
    """No person found: a single company domain or shared mailbox still names the relation."""
    if len(relation_ids) == 1:
        why = "the relation's shared mailbox" if facts.shared else "the relation's domain"
        return Decision("unknown", 0.0, relation_id=relation_ids[0], reasons={"domain": why})
    return Decision("unknown", 0.0)
