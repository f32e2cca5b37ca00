"""Search-as-you-type over relations, contacts, projects, leads and conversations.

Every word of the query must match, by prefix, some field of the record or of a linked record
(a contact's relation and that relation's projects, say): 'hamer jan almere' finds Jan Visser at
Hamerslag B.V. on the project in Almere. The documents live in search_documents, kept current by
triggers (migration 0008); each query word is one exact lookup in the index of the words'
prefixes (migration 0017), ranked by how many query words the record's own fields hold, then
by its latest activity (migration 0022), then newest first, then by where the words matched.
One typo per word: when nothing matches, a word that starts no indexed word is widened to the
indexed prefixes one edit away (every string one edit away, looked up at once in the index of
words), the most frequent first.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from crm import normalizers

log = structlog.get_logger(__name__)

MAX_WORDS = 6
MAX_QUERY = 200
MAX_WORD = 40
WORD = re.compile(r"[a-z0-9]+")
KINDS = ("contact", "relation", "project", "lead", "conversation")
WEIGHT = {"contact": 1.0, "relation": 0.95, "project": 0.9, "lead": 0.85, "conversation": 0.8}
POOL = 100  # matching documents ranked per query (each one a heap fetch): twice five groups of ten


class BadQuery(ValueError):
    """A query we refuse with a reason rather than run."""


@functools.lru_cache(maxsize=65_536)
def fold(value: str) -> str:
    """Folded as the documents are (crm.normalizers.fold), unpaired surrogates dropped.
    (Remembered: ranking folds the same names, companies and cities over and over.)"""
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


# The documents that hold every query word, in one of two forms (the first POOL found are
# ranked: by how many query words the record's own fields hold (weights A and B: its name and
# its company; and its city), then by latest activity, then the newest first):
# - through an index: one exact lookup per word in the index of word prefixes (sb_prefixes,
#   migration 0017; GIN walks the rarest word's list and skips through the others), the
#   words longer than PREFIX checked on the documents found; or, when the rarest word is a
#   long one few documents hold (a typo, a new word, digits), its entries in the index of
#   whole words (a word that starts none ends the query at once), the others checked;
# - by reading the table in order (SCAN): when every word is common, the first POOL documents
#   that hold them all come within a few thousand rows, sooner than a bitmap of all of them
#   (tens of thousands) is built. ts_match_vq is the @@ no index answers: the plan is that scan.
_QUERY = """
SELECT kind, record_id, title, subtitle, fields, external_id, relation_id, own, {widened} AS widened
FROM (
  SELECT d.kind, d.record_id, d.title, d.subtitle, d.fields, d.external_id, d.relation_id,
         d.active_at, {own} AS own
  FROM search_documents d
  WHERE {match} {where}
  LIMIT :pool
) hits ORDER BY own DESC, active_at DESC NULLS LAST, record_id DESC LIMIT :ranked
"""
# The query as typed and, only when it finds nothing, the widened one: one round trip (the
# second branch is cut off by a one-time check of the first's result).
_OR_WIDENED = """
WITH typed AS ({typed})
SELECT * FROM typed
UNION ALL
SELECT * FROM ({widened}) w WHERE NOT EXISTS (SELECT 1 FROM typed)
"""
SCAN = "ts_match_vq(d.doc, CAST(:full{n} AS tsquery))"
SCAN_DOCS = 20_000  # documents expected to hold every word, from which the table is read
RARE_LONG = 2_000  # documents holding a long word, below which its own index entries lead
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
    # (Every kind is no condition: a plan would read the primary key to check it.)
    wanted = [k for k in KINDS if k in kinds]
    where = [] if len(wanted) == len(KINDS) else [f"AND d.kind IN ({', '.join(map(repr, wanted))})"]
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
    counts = await word_counts(session)
    # A word that starts no indexed word (as of the counts, a minute old at most) is a typo,
    # most likely: the widened query rides along, run only when the query as typed finds
    # nothing (a word new since the counts still finds its own records first).
    predicted = any(not counts.docs(g) for g in groups)
    widened = await close_words(session, terms) if predicted else groups
    rows = await _matches(session, groups, where, bind, widened if widened != groups else None)
    used = bool(rows) and rows[0].widened
    if not rows and not predicted:
        # Every word starts some indexed word, and only their combination finds nothing.
        widened = await close_words(session, terms)
        if widened != groups:
            rows, used = await _matches(session, widened, where, bind), True
    if used:
        terms = [w for alternatives in widened for w in alternatives]
    out: dict[str, list[Hit]] = {}
    for kind, found in within_reach(rows, limit, len(terms)).items():
        out[kind] = [rank(row, terms) for row in found]
    return {
        kind: sorted(hits, key=lambda h: -h.score)[:limit]
        for kind in KINDS
        if (hits := out.get(kind))
    }


async def _matches(
    session: AsyncSession,
    groups: list[list[str]],
    where: list[str],
    bind: dict[str, Any],
    widened: list[list[str]] | None = None,
) -> list[Any]:
    """The documents with a word starting with some word of each group, ranked (_QUERY); with
    `widened`, those of the widened groups when there are none (the rows' `widened` says)."""
    counts = await word_counts(session)
    values = dict(bind)
    sql = _select(groups, where, counts, values, "")
    if widened is not None:
        sql = _OR_WIDENED.format(typed=sql, widened=_select(widened, where, counts, values, "w"))
    return list((await session.execute(text(sql), values)).all())


def _select(
    groups: list[list[str]], where: list[str], counts: WordCounts, values: dict[str, Any], n: str
) -> str:
    """_QUERY for these groups in the plan their words' counts call for; its parameters (named
    with the suffix n) go into values."""
    own = " + ".join(
        f"(d.doc @@ CAST(:own{n}{i} AS tsquery) "
        f"OR lower(coalesce(d.fields ->> 'city', '')) ~ :city{n}{i})::int"
        for i in range(len(groups))
    )
    scan = SCAN.format(n=n)
    values[f"full{n}"] = tsquery_of(groups)
    if counts.together(groups) >= SCAN_DOCS:
        match = scan
    else:
        rarest = min(groups, key=counts.docs)
        long = any(len(w) > PREFIX for g in groups for w in g)
        if any(len(w) > PREFIX for w in rarest) and counts.docs(rarest) < RARE_LONG:
            # A long word few documents hold (a new one, a typo, digits): its few entries in
            # the index of whole words, the other words checked on what they find.
            values[f"long{n}"] = tsquery_of([rarest])
            match = f"d.doc @@ CAST(:long{n} AS tsquery) AND {scan}"
        else:
            values[f"prefixes{n}"] = " & ".join(
                "(" + " | ".join(sorted({w[:PREFIX] for w in g})) + ")" for g in groups
            )
            match = f"sb_prefixes(d.doc) @@ CAST(:prefixes{n} AS tsquery)" + (
                f" AND {scan}" if long else ""
            )
    for i, group in enumerate(groups):
        values[f"own{n}{i}"] = " | ".join(f"{w}:*AB" for w in group)
        values[f"city{n}{i}"] = f"(^|[^a-z0-9])({'|'.join(group)})"
    return _QUERY.format(
        own=own, match=match, where=" ".join(where), widened="true" if n else "false"
    )


def tsquery_of(alternatives: list[list[str]]) -> str:
    """Every group must match, any word of a group by prefix: '(hamer:* | hammer:*) & jan:*'."""
    return " & ".join("(" + " | ".join(f"{w}:*" for w in group) + ")" for group in alternatives)


# The words in C order with their documents, as two arrays: one row, decoded in C by asyncpg
# (tens of thousands of rows through the ORM would cost several times the query).
_WORDS = text(
    """SELECT coalesce(array_agg(w ORDER BY w), '{}'), coalesce(array_agg(n ORDER BY w), '{}'),
              (SELECT reltuples FROM pg_class WHERE oid = 'search_documents'::regclass)
       FROM (SELECT word COLLATE "C" AS w, max(docs) AS n FROM search_words GROUP BY 1) s"""
)
VOCABULARY_TTL = 60.0  # seconds a process keeps the word list (typo search, query plans)


@dataclass
class WordCounts:
    """The index's words (sorted) with how many documents hold each: what a query's words
    will cost, answered in the process (a minute old at most; only plans depend on it)."""

    words: list[str]
    cumulative: list[int]  # documents of the words before each one, summed
    documents: int  # in the index, as PostgreSQL last estimated

    @classmethod
    def of(cls, words: list[str], docs: list[int], documents: float) -> WordCounts:
        return cls(words, list(itertools.accumulate(docs, initial=0)), max(int(documents), 1))

    def docs(self, group: list[str], cap: int | None = None) -> int:
        """Documents holding a word that starts with a word of the group (an upper bound: a
        document with two such words counts twice), over the first `cap` such words of each
        when given. Digits and new words count as rare."""
        return sum(self.prefix_docs(prefix, cap) for prefix in group)

    def prefix_docs(self, prefix: str, cap: int | None = None) -> int:
        """docs() of one prefix."""
        lo = bisect.bisect_left(self.words, prefix)
        hi = bisect.bisect_left(self.words, prefix + "{", lo)
        if cap is not None:
            hi = min(hi, lo + cap)
        return self.cumulative[hi] - self.cumulative[lo]

    def together(self, groups: list[list[str]]) -> float:
        """Documents expected to hold a word of every group, the groups taken as independent."""
        expected = float(self.documents)
        for group in groups:
            expected *= min(1.0, self.docs(group) / self.documents)
        return expected


_counts: dict[str, tuple[float, WordCounts]] = {}
_refreshing: dict[str, asyncio.Task[None]] = {}


async def _load_counts(conn: AsyncSession | AsyncConnection) -> WordCounts:
    words, docs, documents = (await conn.execute(_WORDS)).one()
    return WordCounts.of(list(words), [int(n) for n in docs], documents or 0.0)


async def word_counts(session: AsyncSession) -> WordCounts:
    """The index's words and their documents, loaded once a minute per database: the first
    time in the query that needs them, later in the background while the old ones serve."""
    bind = session.bind
    key = str(bind.url) if isinstance(bind, AsyncEngine) else str(id(bind))
    now = time.monotonic()
    cached = _counts.get(key)
    if cached is not None and now - cached[0] <= VOCABULARY_TTL:
        return cached[1]
    if cached is None or VOCABULARY_TTL <= 0 or not isinstance(bind, AsyncEngine):
        _counts[key] = (now, await _load_counts(session))
        return _counts[key][1]
    running = _refreshing.get(key)
    if running is None or running.done() or running.get_loop() is not asyncio.get_running_loop():
        _refreshing[key] = asyncio.create_task(_refresh(bind, key))
    return cached[1]


async def _refresh(engine: AsyncEngine, key: str) -> None:
    try:
        async with engine.connect() as conn:
            _counts[key] = (time.monotonic(), await _load_counts(conn))
    except Exception:  # the old counts serve until the next try: they only steer plans
        log.warning("search word counts not refreshed", exc_info=True)
    finally:
        _refreshing.pop(key, None)


LETTERS = "abcdefghijklmnopqrstuvwxyz"
WIDENED = 8  # alternatives per word, the most frequent first
PREFIX_WORDS = 200  # words per prefix counted (a short prefix covers thousands)


def one_edit(term: str) -> set[str]:
    """Every string one edit (a letter dropped, added, replaced, or two swapped) from term that
    keeps its first letter: the prefixes a typo of term may have been meant as."""
    out: set[str] = set()
    for i in range(1, len(term) + 1):
        head, tail = term[:i], term[i:]
        if tail:
            out.add(head + tail[1:])  # dropped
            out.update(head + c + tail[1:] for c in LETTERS)  # replaced
        if len(tail) > 1:
            out.add(head + tail[1] + tail[0] + tail[2:])  # swapped
        out.update(head + c + tail for c in LETTERS)  # added
    out.discard(term)
    return out


async def close_words(session: AsyncSession, terms: list[str]) -> list[list[str]]:
    """Each term with the prefixes of indexed words that are one edit (a swap counts as one)
    away from it, the most frequent first: 'hamre' -> ['hamre', 'hamer'].

    The terms that start no indexed word are widened (all of them when each starts some word
    and only their combination finds nothing). Words of four letters or more only, and a typo
    in the first letter is not caught. The term and all its one-edit variants (a few hundred)
    are looked up in the process's sorted list of the index's words (word_counts), each a
    binary search: no round trip to the database on a keystroke.
    """
    counts = await word_counts(session)
    typed = [t for t in terms if len(t) >= 4]
    found: dict[str, dict[str, int]] = {}
    unknown = {t for t in typed if not counts.prefix_docs(t, PREFIX_WORDS)}
    widen = [t for t in typed if not unknown or t in unknown]
    for term in widen:
        for prefix in one_edit(term):
            if docs := counts.prefix_docs(prefix, PREFIX_WORDS):
                found.setdefault(term, {})[prefix] = docs
    out: list[list[str]] = []
    for term in terms:
        close: dict[str, int] = {}
        if term in widen:
            # A prefix covers the longer ones it starts ('stalo' covers 'staloa', 'stalob'...):
            # those go, so the cap keeps different words rather than one word's variants.
            for prefix in sorted(found.get(term, {}), key=len):
                if prefix != term and not any(prefix.startswith(p) for p in close):
                    close[prefix] = found[term][prefix]
        ranked = sorted(close.items(), key=lambda item: (-item[1], item[0]))
        out.append([term, *(w for w, _ in ranked[:WIDENED])])
    return out


OWN, TITLE, WHOLE = 3.0, 1.0, 0.2  # a query word in the record's own fields, title, as a word


def within_reach(rows: list[Any], limit: int, patterns: int) -> dict[str, list[Any]]:
    """The rows of each kind that can still be among its `limit` best: a row whose own-field
    hits are so far below the limit-th best's that the title and whole-word points of every
    pattern cannot make up the difference is left unranked (the answer is the same)."""
    by_kind: dict[str, list[Any]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
    reach = (TITLE + WHOLE) * patterns / OWN
    for kind, found in by_kind.items():
        if len(found) > limit:
            floor = sorted((row.own for row in found), reverse=True)[limit - 1] - reach
            by_kind[kind] = [row for row in found if row.own >= floor]
    return by_kind


ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def word_at(text: str, term: str) -> int:
    """2 when term is a whole word of the (folded) text, 1 when it only starts one, else 0.
    (A word starts after a character other than a-z and 0-9, as in the documents.)"""
    found = 0
    at = text.find(term)
    while at >= 0:
        if at == 0 or text[at - 1] not in ALNUM:
            end = at + len(term)
            if end == len(text) or text[end] not in ALNUM:
                return 2
            found = 1
        at = text.find(term, at + 1)
    return found


def rank(row: Any, terms: list[str]) -> Hit:
    """Query words in the record's own fields first, then in the title, then whole words."""
    title = row.title or ""
    folded_title = fold(title)
    score = WEIGHT[row.kind] + OWN * row.own
    matched: list[str] = []
    fields = list((row.fields or {}).items())
    folded_fields: list[str | None] = [None] * len(fields)  # folded when a term gets that far
    for term in terms:
        if word_at(folded_title, term):
            score += TITLE
        for i, (path, value) in enumerate(fields):
            folded = folded_fields[i]
            if folded is None:
                folded = folded_fields[i] = fold(str(value))
            if at := word_at(folded, term):
                matched.append(f"{path}:{term}")
                if at == 2:
                    score += WHOLE
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
