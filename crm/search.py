"""Search-as-you-type over relations, contacts, projects, leads and conversations.

Every word of the query must match, by prefix, some field of the record or of a linked record
(a contact's relation and that relation's projects, say): 'hamer jan almere' finds Jan Visser at
Hamerslag B.V. on the project in Almere. The documents live in search_documents, kept current by
triggers (migration 0008); the query is one GIN lookup of `hamer:* & jan:* & almere:*` (the
approach of Twenty's tsvector search, measured at a few ms over a million rows), ranked in
PostgreSQL and then by where the words matched. One typo per word: when nothing matches, each word
is widened to the index's words within one edit of it (search_words, a trigram index and rapidfuzz).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import OSA
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

MAX_WORDS = 6
MAX_QUERY = 200
MAX_WORD = 40
WORD = re.compile(r"[a-z0-9]+")
KINDS = ("contact", "relation", "project", "lead", "conversation")
WEIGHT = {"contact": 1.0, "relation": 0.95, "project": 0.9, "lead": 0.85, "conversation": 0.8}
POOL = 400  # matching documents ranked per query: enough for five groups of ten


class BadQuery(ValueError):
    """A query we refuse with a reason rather than run."""


def fold(value: str) -> str:
    """Lowercase ASCII, as the documents are folded (unaccent + lower in PostgreSQL)."""
    from anyascii import anyascii

    cleaned = "".join(c for c in value if unicodedata.category(c)[0] != "C" or c in " \t")
    return anyascii(cleaned.encode("utf-8", "ignore").decode()).lower()


def words(query: str) -> list[str]:
    """The query's words, folded; at most MAX_WORDS, each letters and digits only."""
    if len(query) > MAX_QUERY:
        raise BadQuery(f"a query is at most {MAX_QUERY} characters")
    found = [w[:MAX_WORD] for w in WORD.findall(fold(query))]
    return list(dict.fromkeys(found))[:MAX_WORDS]


@dataclass
class Hit:
    type: str
    id: int
    title: str
    subtitle: str
    score: float
    matched: list[str] = field(default_factory=list)
    external_id: str | None = None
    relation_id: int | None = None


_QUERY = """
SELECT kind, record_id, title, subtitle, fields, external_id, relation_id, rank FROM (
  SELECT d.kind, d.record_id, d.title, d.subtitle, d.fields, d.external_id, d.relation_id,
         ts_rank_cd(d.doc, q) AS rank
  FROM search_documents d, to_tsquery('simple', :tsquery) q
  WHERE d.doc @@ q {where}
  LIMIT :pool
) hits ORDER BY rank DESC
"""


async def search(
    session: AsyncSession,
    query: str,
    *,
    limit: int = 10,
    visible_conversations: str = "true",
    params: dict[str, Any] | None = None,
    confidential: bool = True,
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, list[Hit]]:
    """Hits grouped by type, best first; every query word must match by prefix.

    visible_conversations: an SQL condition on `v` (conversations) with its params, which the
    API derives from the caller's rights; confidential=False hides confidential projects.
    """
    terms = words(query)
    if not terms:
        return {}
    where = [f"AND d.kind IN ({', '.join(repr(k) for k in kinds if k in KINDS)})"]
    if visible_conversations != "true":
        where.append(
            "AND (d.kind <> 'conversation' OR EXISTS (SELECT 1 FROM conversations v "
            f"WHERE v.id = d.record_id AND ({visible_conversations})))"
        )
    if not confidential:
        where.append("AND NOT (d.kind IN ('project', 'conversation') AND d.confidential)")
    sql = text(_QUERY.format(where=" ".join(where)))
    bind = dict(params or {}) | {"pool": POOL}
    rows = (await session.execute(sql, bind | {"tsquery": tsquery(terms)})).all()
    if not rows:
        widened = await close_words(session, terms)
        if widened != [[t] for t in terms]:
            rows = (await session.execute(sql, bind | {"tsquery": tsquery_of(widened)})).all()
            terms = [w for alternatives in widened for w in alternatives]
    out: dict[str, list[Hit]] = {}
    for row in rows:
        out.setdefault(row.kind, []).append(rank(row, terms))
    return {
        kind: sorted(hits, key=lambda h: -h.score)[:limit]
        for kind in KINDS
        if (hits := out.get(kind))
    }


def tsquery(terms: list[str]) -> str:
    return tsquery_of([[t] for t in terms])


def tsquery_of(alternatives: list[list[str]]) -> str:
    """Every group must match, any word of a group by prefix: '(hamer:* | hammer:*) & jan:*'."""
    return " & ".join("(" + " | ".join(f"{w}:*" for w in group) + ")" for group in alternatives)


_PREFIX_WORDS = text(
    """SELECT word FROM search_words WHERE word >= :low AND word < :high
       AND length(word) >= :shortest LIMIT 50000"""
)


async def close_words(session: AsyncSession, terms: list[str]) -> list[list[str]]:
    """Each term with the index's words it could be a one-typo prefix of."""
    out: list[list[str]] = []
    for term in terms:
        if len(term) < 4:
            out.append([term])
            continue
        # Words that start like the term (a typo in the first letter is not caught) and
        # could hold it as a prefix; the PK's btree serves the range.
        head = term[0]
        bound = {"low": head, "high": chr(ord(head) + 1), "shortest": len(term) - 1}
        found = set(await session.scalars(_PREFIX_WORDS, bound))
        close = sorted(
            w
            for w in found
            if min(OSA.distance(term, w[:n]) for n in (len(term) - 1, len(term), len(term) + 1))
            <= 1
        )
        out.append([term, *[w for w in close if w != term][:12]])
    return out


def rank(row: Any, terms: list[str]) -> Hit:
    """PostgreSQL's rank, plus: more of the query in the title, and whole-word matches."""
    title = row.title or ""
    folded_title = fold(title)
    score = WEIGHT[row.kind] + float(row.rank)
    matched: list[str] = []
    fields: dict[str, Any] = row.fields or {}
    for term in terms:
        pattern = re.compile(rf"(^|[^a-z0-9]){re.escape(term)}")
        if pattern.search(folded_title):
            score += 1.0
        for path, value in fields.items():
            folded = fold(str(value))
            if pattern.search(folded):
                matched.append(f"{path}:{term}")
                if re.search(rf"(^|[^a-z0-9]){re.escape(term)}([^a-z0-9]|$)", folded):
                    score += 0.2
                break
    return Hit(
        row.kind,
        row.record_id,
        title,
        row.subtitle or "",
        round(score, 3),
        matched,
        row.external_id,
        row.relation_id,
    )
