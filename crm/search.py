"""Search-as-you-type over relations, contacts, projects, leads and conversations.

Every word of the query must match, by prefix, some field of the record or of a linked record
(a contact's relation and that relation's projects, say): 'hamer jan almere' finds Jan Visser at
Hamerslag B.V. on the project in Almere. The documents live in search_documents, kept current by
triggers (migration 0008); each query word is one exact lookup in the index of the words'
prefixes (migration 0017), ranked by how many query words the record's own fields hold, then
newest first, then by where the words matched. One typo per word: when nothing matches, a word
that starts no indexed word is widened to the prefixes one edit away (search_words' trigram
index, checked with rapidfuzz), the most frequent first.
"""

from __future__ import annotations

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
POOL = 100  # matching documents ranked per query (each one a heap fetch): twice five groups of ten


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


# The documents that hold every query word: one exact lookup per word in the index of word
# prefixes (sb_prefixes, migration 0017; GIN walks the rarest word's list and skips through the
# others), the full words checked on those documents only (a word longer than PREFIX, a typo
# group). At most POOL are ranked: by how many query words the record's own fields hold (weights
# A and B: its name and its company; and its city), then the newest first (the highest id).
_QUERY = """
SELECT kind, record_id, title, subtitle, fields, external_id, relation_id, own FROM (
  SELECT d.kind, d.record_id, d.title, d.subtitle, d.fields, d.external_id, d.relation_id,
         {own} AS own
  FROM search_documents d
  WHERE sb_prefixes(d.doc) @@ CAST(:prefixes AS tsquery) {check} {where}
  LIMIT :pool
) hits ORDER BY own DESC, record_id DESC LIMIT :ranked
"""
RANKED = 50
PREFIX = 6  # the longest prefix in the index (migration 0017)


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
    bind = dict(params or {}) | {"pool": POOL, "ranked": max(RANKED, limit * 5)}
    groups = [[t] for t in terms]
    rows = await _matches(session, groups, where, bind)
    if not rows:
        widened = await close_words(session, terms)
        if widened != groups:
            rows = await _matches(session, widened, where, bind)
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


async def _matches(
    session: AsyncSession, groups: list[list[str]], where: list[str], bind: dict[str, Any]
) -> list[Any]:
    """The documents with a word starting with some word of each group, ranked (_QUERY)."""
    own = " + ".join(
        f"(d.doc @@ CAST(:own{i} AS tsquery) OR lower(coalesce(d.fields ->> 'city', '')) ~ :city{i})::int"
        for i in range(len(groups))
    )
    long = any(len(w) > PREFIX for group in groups for w in group)
    check = "AND ts_match_vq(d.doc, CAST(:full AS tsquery))" if long else ""
    sql = text(_QUERY.format(own=own, check=check, where=" ".join(where)))
    values = bind | {
        "prefixes": " & ".join(
            "(" + " | ".join(sorted({w[:PREFIX] for w in group})) + ")" for group in groups
        ),
        "full": tsquery_of(groups),
    }
    for i, group in enumerate(groups):
        values[f"own{i}"] = " | ".join(f"{w}:*AB" for w in group)
        values[f"city{i}"] = f"(^|[^a-z0-9])({'|'.join(group)})"
    return list((await session.execute(sql, values)).all())


def tsquery(terms: list[str]) -> str:
    return tsquery_of([[t] for t in terms])


def tsquery_of(alternatives: list[list[str]]) -> str:
    """Every group must match, any word of a group by prefix: '(hamer:* | hammer:*) & jan:*'."""
    return " & ".join("(" + " | ".join(f"{w}:*" for w in group) + ")" for group in alternatives)


_WORDS = text("SELECT DISTINCT word FROM search_words")
VOCABULARY_TTL = 60.0  # seconds a process keeps the word list (the matcher's typo search)
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


# Words that share trigrams with the typed word (the trigram index over search_words, not a
# scan of the list), most similar first; the one-edit check is done on them in Python.
_SIMILAR = text(
    """SELECT q.term, w.word, w.docs
       FROM unnest(CAST(:terms AS text[])) AS q(term)
       CROSS JOIN LATERAL (
         SELECT word, max(docs) AS docs FROM search_words
         WHERE word %> q.term AND left(word, 1) = left(q.term, 1)
         GROUP BY word ORDER BY min(word <->> q.term) LIMIT :candidates) w"""
)
SIMILARITY = 0.2  # pg_trgm's word similarity a candidate needs (one edit in a short word is a lot)
CANDIDATES = 100
# The query words that start no indexed word: the ones to widen (all of them when every word
# does and only their combination finds nothing).
_UNKNOWN = text(
    """SELECT q.term FROM unnest(CAST(:terms AS text[])) AS q(term)
       WHERE NOT EXISTS (SELECT 1 FROM search_words
                         WHERE word >= q.term AND word < q.term || '~')"""
)
WIDENED = 8  # alternatives per word, the most frequent first


async def close_words(session: AsyncSession, terms: list[str]) -> list[list[str]]:
    """Each term with the prefixes of indexed words that are one edit (a swap counts as one)
    away from it, the most frequent first: 'hamre' -> ['hamre', 'hamer'].

    Words of four letters or more only, and a typo in the first letter is not caught.
    """
    typed = [t for t in terms if len(t) >= 4]
    if typed:
        unknown = list(await session.scalars(_UNKNOWN, {"terms": typed}))
        typed = unknown or typed
    found: dict[str, dict[str, int]] = {}
    if typed:
        await session.execute(
            text("SELECT set_config('pg_trgm.word_similarity_threshold', :v, true)"),
            {"v": str(SIMILARITY)},
        )
        rows = await session.execute(_SIMILAR, {"terms": typed, "candidates": CANDIDATES})
        for term, word, docs in rows:
            n = len(term)
            for k in (n, n - 1, n + 1):
                if k <= len(word) and word[:k] != term and OSA.distance(term, word[:k]) <= 1:
                    prefixes = found.setdefault(term, {})
                    prefixes[word[:k]] = prefixes.get(word[:k], 0) + docs
                    break
    out: list[list[str]] = []
    for term in terms:
        close = sorted(found.get(term, {}).items(), key=lambda item: (-item[1], item[0]))
        out.append([term, *(w for w, _ in close[:WIDENED])])
    return out


def rank(row: Any, patterns: list[tuple[str, re.Pattern[str], re.Pattern[str]]]) -> Hit:
    """Query words in the record's own fields first, then in the title, then whole words."""
    title = row.title or ""
    folded_title = fold(title)
    score = WEIGHT[row.kind] + 3.0 * row.own
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
