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

import bisect
import re
import time
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import OSA
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from crm import normalizers

MAX_WORDS = 6
MAX_QUERY = 200
MAX_WORD = 40
WORD = re.compile(r"[a-z0-9]+")
KINDS = ("contact", "relation", "project", "lead", "conversation")
WEIGHT = {"contact": 1.0, "relation": 0.95, "project": 0.9, "lead": 0.85, "conversation": 0.8}
POOL = 200  # matching documents ranked per query: enough for five groups of ten


class BadQuery(ValueError):
    """A query we refuse with a reason rather than run."""


def fold(value: str) -> str:
    """Folded as the documents are (crm.normalizers.fold), unpaired surrogates dropped."""
    return normalizers.fold(value.encode("utf-8", "ignore").decode())


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


# The GIN lookup, capped at POOL matches; PostgreSQL ranks those and hands the best RANKED on for
# the finer ranking in Python (title hits, whole words, the path that matched).
_QUERY = """
SELECT kind, record_id, title, subtitle, fields, external_id, relation_id, rank FROM (
  SELECT d.kind, d.record_id, d.title, d.subtitle, d.fields, d.external_id, d.relation_id,
         ts_rank_cd(d.doc, q) AS rank
  FROM search_documents d, to_tsquery('simple', :tsquery) q
  WHERE d.doc @@ q {where}
  LIMIT :pool
) hits ORDER BY rank DESC LIMIT :ranked
"""
RANKED = 50


async def search(
    session: AsyncSession,
    query: str,
    *,
    limit: int = 10,
    visible_conversations: str = "true",
    params: dict[str, Any] | None = None,
    confidential: bool = True,
    granted_projects: str | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, list[Hit]]:
    """Hits grouped by type, best first; every query word must match by prefix.

    visible_conversations: an SQL condition on `v` (conversations) with its params, which the
    API derives from the caller's rights; confidential=False hides confidential projects except
    those the granted_projects condition (on `d`) lets through.
    """
    # A lone letter is no search (it would expand to every word with that letter): it is left
    # out when longer words are there, and a query of lone letters finds nothing.
    terms = [t for t in words(query) if len(t) >= 2]
    if not terms:
        return {}
    where = [f"AND d.kind IN ({', '.join(repr(k) for k in kinds if k in KINDS)})"]
    if visible_conversations != "true":
        where.append(
            "AND (d.kind <> 'conversation' OR EXISTS (SELECT 1 FROM conversations v "
            f"WHERE v.id = d.record_id AND ({visible_conversations})))"
        )
    if not confidential:
        # Confidential projects only where granted (granted_projects: SQL on d, with params).
        where.append(
            "AND NOT (d.kind = 'project' AND d.confidential"
            + (f" AND NOT {granted_projects})" if granted_projects else ")")
        )
    sql = text(_QUERY.format(where=" ".join(where)))
    bind = dict(params or {}) | {"pool": POOL, "ranked": max(RANKED, limit * 5)}
    rows = (await session.execute(sql, bind | {"tsquery": tsquery(terms)})).all()
    if not rows:
        widened = await close_words(session, terms)
        if widened != [[t] for t in terms]:
            rows = (await session.execute(sql, bind | {"tsquery": tsquery_of(widened)})).all()
            terms = [w for alternatives in widened for w in alternatives]
    out: dict[str, list[Hit]] = {}
    patterns = [
        (
            term,
            re.compile(rf"(^|[^a-z0-9]){re.escape(term)}"),
            re.compile(rf"(^|[^a-z0-9]){re.escape(term)}([^a-z0-9]|$)"),
        )
        for term in terms
    ]
    for row in rows:
        out.setdefault(row.kind, []).append(rank(row, patterns))
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


_WORDS = text("SELECT DISTINCT word FROM search_words")
VOCABULARY_TTL = 60.0  # seconds a process keeps the word list for the typo fallback
_vocabulary: dict[str, tuple[float, list[str]]] = {}


async def vocabulary(session: AsyncSession) -> list[str]:
    """The index's words, sorted; loaded once a minute per database, not per keystroke."""
    bind = session.bind
    key = str(bind.url) if isinstance(bind, AsyncEngine) else str(id(bind))
    now = time.monotonic()
    cached = _vocabulary.get(key)
    if cached is None or now - cached[0] > VOCABULARY_TTL:
        words = sorted(await session.scalars(_WORDS))
        cached = _vocabulary[key] = (now, words)
    return cached[1]


async def close_words(session: AsyncSession, terms: list[str]) -> list[list[str]]:
    """Each term with the index's words it could be a one-typo prefix of.

    Words that start like the term (a typo in the first letter is not caught) and are within
    one edit (a swap counts as one) of it, or of their own start of about its length.
    """
    known = await vocabulary(session)
    out: list[list[str]] = []
    for term in terms:
        if len(term) < 4:
            out.append([term])
            continue
        n = len(term)
        low = bisect.bisect_left(known, term[0])
        high = bisect.bisect_left(known, chr(ord(term[0]) + 1))
        close = [
            w
            for w in known[low:high]
            if len(w) >= n - 1
            and w != term
            and min(OSA.distance(term, w[:k], score_cutoff=1) for k in (n - 1, n, n + 1)) <= 1
        ]
        out.append([term, *close[:12]])
    return out


def rank(row: Any, patterns: list[tuple[str, re.Pattern[str], re.Pattern[str]]]) -> Hit:
    """PostgreSQL's rank, plus: more of the query in the title, and whole-word matches."""
    title = row.title or ""
    folded_title = fold(title)
    score = WEIGHT[row.kind] + float(row.rank)
    matched: list[str] = []
    fields = [(path, fold(str(value))) for path, value in (row.fields or {}).items()]
    for term, prefix, whole in patterns:
        if prefix.search(folded_title):
            score += 1.0
        for path, folded in fields:
            if prefix.search(folded):
                matched.append(f"{path}:{term}")
                if whole.search(folded):
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
