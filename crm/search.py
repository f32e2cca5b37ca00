"""Search-as-you-type over relations, contacts, projects, leads and conversations.

Every word of the query must match, by prefix, some field of the record or of a linked record
(a contact's relation and that relation's projects, say): 'hamer jan almere' finds Jan Visser at
Hamerslag B.V. on the project in Almere. Case and diacritics are folded on both sides.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

MAX_WORDS = 6
MAX_QUERY = 200
WORD = re.compile(r"[^\W_]+", re.UNICODE)


class BadQuery(ValueError):
    """A query we refuse with a reason rather than run."""


def words(query: str) -> list[str]:
    """The query's words, folded; at most MAX_WORDS, each at least one letter or digit."""
    if len(query) > MAX_QUERY:
        raise BadQuery(f"a query is at most {MAX_QUERY} characters")
    cleaned = "".join(
        c for c in unicodedata.normalize("NFKD", query) if not unicodedata.combining(c)
    )
    found = [w.lower() for w in WORD.findall(cleaned.encode("utf-8", "ignore").decode())]
    return found[:MAX_WORDS]


@dataclass
class Hit:
    type: str
    id: int
    title: str
    subtitle: str
    score: float
    matched: list[str] = field(default_factory=list)


# One document per record: its own fields and those of linked records, each tagged with the path.
DOCUMENTS = {
    "contact": """
        SELECT c.id, c.full_name AS title, coalesce(r.name, '') AS subtitle,
               concat_ws(' | ', 'name:' || c.full_name, 'city:' || c.city, 'relation:' || r.name,
                         'relation.city:' || (r.addresses -> 0 ->> 'city'),
                         'project:' || string_agg(p.name || ' ' || coalesce(p.city, ''), ' ')) AS doc
        FROM contacts c
        LEFT JOIN relations r ON r.id = c.relation_id
        LEFT JOIN projects p ON p.relation_id = r.id
        GROUP BY c.id, r.id""",
    "relation": """
        SELECT r.id, r.name AS title, r.status AS subtitle,
               concat_ws(' | ', 'name:' || r.name, 'city:' || (r.addresses -> 0 ->> 'city'),
                         'kvk:' || r.kvk_number, 'region:' || r.region,
                         'project:' || string_agg(DISTINCT p.name || ' ' || coalesce(p.city, ''), ' '),
                         'contact:' || string_agg(DISTINCT c.full_name, ' ')) AS doc
        FROM relations r
        LEFT JOIN projects p ON p.relation_id = r.id
        LEFT JOIN contacts c ON c.relation_id = r.id
        GROUP BY r.id""",
    "project": """
        SELECT p.id, p.name AS title, coalesce(r.name, '') AS subtitle,
               concat_ws(' | ', 'name:' || p.name, 'city:' || p.city, 'relation:' || r.name) AS doc
        FROM projects p LEFT JOIN relations r ON r.id = p.relation_id""",
    "lead": """
        SELECT l.id, coalesce(l.name, '?') AS title, coalesce(l.company, '') AS subtitle,
               concat_ws(' | ', 'name:' || l.name, 'company:' || l.company, 'city:' || (l.fields ->> 'city')) AS doc
        FROM leads l""",
    "conversation": """
        SELECT v.id, coalesce(v.subject, '') AS title, v.status AS subtitle,
               concat_ws(' | ', 'subject:' || v.subject, 'contact:' || c.full_name, 'relation:' || r.name,
                         'lead:' || l.name) AS doc
        FROM conversations v
        LEFT JOIN contacts c ON c.id = v.contact_id
        LEFT JOIN relations r ON r.id = v.relation_id
        LEFT JOIN leads l ON l.id = v.lead_id
        WHERE {visible}""",
}
WEIGHT = {"contact": 1.0, "relation": 0.95, "project": 0.9, "lead": 0.85, "conversation": 0.8}


async def search(
    session: AsyncSession,
    query: str,
    *,
    limit: int = 10,
    visible_conversations: str = "true",
    params: dict[str, Any] | None = None,
) -> dict[str, list[Hit]]:
    """Hits grouped by type, best first; every query word must match by prefix."""
    terms = words(query)
    if not terms:
        return {}
    bind: dict[str, Any] = dict(params or {})
    exact = []
    fuzzy = []
    for i, term in enumerate(terms):
        bind[f"w{i}"] = term
        # A word boundary, then the term: a prefix of some word in the document. Terms are
        # letters and digits only (see words()), so nothing in them is a regex operator.
        prefix = f"doc ~ ('(^|[^[:alnum:]])' || :w{i})"
        exact.append(prefix)
        # One typo per word still finds it: trigram similarity to some word of the document.
        fuzzy.append(f"({prefix} OR (length(:w{i}) >= 4 AND word_similarity(:w{i}, doc) >= 0.4))")
    out = await _run(session, " AND ".join(exact), bind, limit, visible_conversations, terms)
    if not out:
        out = await _run(session, " AND ".join(fuzzy), bind, limit, visible_conversations, terms)
    return out


async def _run(
    session: AsyncSession,
    where: str,
    bind: dict[str, Any],
    limit: int,
    visible: str,
    terms: list[str],
) -> dict[str, list[Hit]]:
    out: dict[str, list[Hit]] = {}
    for kind, source in DOCUMENTS.items():
        sql = text(
            f"""SELECT id, title, subtitle, doc FROM (
                  SELECT id, title, subtitle, lower(unaccent(doc)) AS doc
                  FROM ({source.format(visible=visible)}) AS records
                ) AS d WHERE {where} LIMIT :limit"""
        )
        rows = (await session.execute(sql, bind | {"limit": limit * 5})).all()
        hits = [rank(kind, row.id, row.title, row.subtitle, row.doc, terms) for row in rows]
        hits.sort(key=lambda h: -h.score)
        if hits:
            out[kind] = hits[:limit]
    return out


def rank(kind: str, id_: int, title: str, subtitle: str, doc: str, terms: list[str]) -> Hit:
    """More of the query in the title, and whole-word matches, rank higher."""
    folded_title = "".join(
        c for c in unicodedata.normalize("NFKD", title.lower()) if not unicodedata.combining(c)
    )
    score = WEIGHT[kind]
    matched = []
    for term in terms:
        if re.search(rf"(^|\W){re.escape(term)}", folded_title):
            score += 1.0
        for part in doc.split(" | "):
            path, _, value = part.partition(":")
            if re.search(rf"(^|\W){re.escape(term)}", value):
                matched.append(f"{path}:{term}")
                if re.search(rf"(^|\W){re.escape(term)}(\W|$)", value):
                    score += 0.2
                break
    return Hit(kind, id_, title, subtitle, round(score, 3), matched)
