"""Search: an index of word prefixes, and the indexed words with their frequency

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-04 14:30:00

A prefix query (`willem:*`) makes the GIN index over the documents gather the posting lists of
every word with that prefix into a bitmap before it can intersect anything: 20-40 ms for three
common prefixes at a million documents, while the same words looked up exactly take 0.1 ms
(GIN skips through the other posting lists from the rarest one). sb_prefixes(doc) lists each
word's prefixes of 2 to 6 letters as words of their own, so every query word is an exact lookup
in an expression index (longer query words are looked up by their first six letters and checked
in full on the few documents that match).

search_words gets each word's document count (a recount: sb_count_words(), run after an import
and by the hourly job; words new since then count the documents that brought them) and a
trigram index, which the one-typo widening reads instead of scanning the word list.
The trigram index over `names` was never read: it goes.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0017"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = 6  # crm.search.PREFIX

FUNCTIONS = [
    f"""CREATE FUNCTION sb_prefixes(doc tsvector) RETURNS tsvector
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_to_tsvector(array_agg(DISTINCT left(w, n))), ''::tsvector)
  FROM unnest(tsvector_to_array(doc)) AS w, generate_series(2, least(length(w), {PREFIX})) AS n
$$""",
    """CREATE OR REPLACE FUNCTION sb_remember_words(kinds text, ids bigint[]) RETURNS void
  LANGUAGE sql AS $$
  INSERT INTO search_words (word, docs)
  SELECT w, count(*) FROM unnest(ids) AS u(id)
  JOIN search_documents d ON d.kind = kinds AND d.record_id = u.id,
  unnest(tsvector_to_array(d.doc)) AS w
  WHERE length(w) BETWEEN 3 AND 40
    AND w ~ '^[a-z]+$'
    AND NOT EXISTS (SELECT 1 FROM search_words s WHERE s.word = w)
  GROUP BY w
$$""",
    """CREATE FUNCTION sb_count_words() RETURNS void LANGUAGE sql AS $$
  DELETE FROM search_words;
  INSERT INTO search_words (word, docs)
  SELECT word, ndoc FROM ts_stat('SELECT doc FROM search_documents')
  WHERE length(word) BETWEEN 3 AND 40 AND word ~ '^[a-z]+$';
$$""",
]


def _remember_words_of_0008() -> str:
    """sb_remember_words as migration 0008 defined it (for the downgrade)."""
    path = Path(__file__).with_name("20261122_0008_search_index.py")
    spec = importlib.util.spec_from_file_location("migration_0008", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for statement in module.statements(module.FUNCTIONS, "$$;"):
        if statement.startswith("CREATE FUNCTION sb_remember_words"):
            return str(statement.removesuffix(";").replace("CREATE", "CREATE OR REPLACE", 1))
    raise LookupError("sb_remember_words is not in migration 0008")


def upgrade() -> None:
    op.execute("ALTER TABLE search_words ADD COLUMN docs bigint NOT NULL DEFAULT 0")
    for statement in FUNCTIONS:
        op.execute(statement)
    op.execute("SELECT sb_count_words()")
    op.execute(
        "CREATE INDEX ix_search_words_word_trgm ON search_words USING gin (word gin_trgm_ops)"
    )
    op.execute("DROP INDEX IF EXISTS ix_search_documents_names_trgm")
    op.execute(
        "CREATE INDEX ix_search_documents_prefixes ON search_documents "
        "USING gin (sb_prefixes(doc)) WITH (gin_pending_list_limit = 256)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_search_documents_prefixes")
    op.execute(
        "CREATE INDEX ix_search_documents_names_trgm ON search_documents "
        "USING gin (names gin_trgm_ops) WITH (gin_pending_list_limit = 256)"
    )
    op.execute("DROP INDEX IF EXISTS ix_search_words_word_trgm")
    op.execute("DROP FUNCTION IF EXISTS sb_count_words()")
    op.execute(_remember_words_of_0008())
    op.execute("DROP FUNCTION IF EXISTS sb_prefixes(tsvector)")
    op.execute("ALTER TABLE search_words DROP COLUMN docs")
