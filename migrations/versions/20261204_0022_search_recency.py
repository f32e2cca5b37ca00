"""Search: each document knows when its record last had activity

Revision ID: 0022
Revises: 0011
Create Date: 2026-12-04 16:40:00

Search ranks the records whose own fields hold the most query words first; among those, the
one with the latest activity (a call, a message, a note) comes first, so 'hamer jan almere'
puts the Jan you spoke to last week above the three other Jans at Hamer companies with work in
Almere. search_documents.active_at holds the latest activities.occurred_at of the record (NULL:
none yet; the newest record first among those). A statement-level trigger on activities keeps
it: one UPDATE per statement for every record the new activities name, whatever their number.
The document's row gets room for that update in its own page (fillfactor 90: a HOT update, no
new entries in the GIN indexes).

The typo widening looks up every string one edit from the typed word (a few hundred) as a
prefix of the indexed words: a range scan each in an index of the words in byte order (C
collation, whatever the database's), with their document counts in the index. The trigram
index it used before (dropped: nothing else reads it) ranked its candidates by similarity and kept a hundred, which lost the
word meant when many words share its first letters ('staloh' for 'stalhout' among the 'stal…').

`switchboard import` refreshes the documents of what it wrote once, at its end, and then
recounts the indexed words (sb_count_words) when it wrote many: with switchboard.words set to
'later' for its transaction, sb_remember_words leaves the new words to that recount.
"""

import runpy
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (kind, activities column) pairs: the records an activity is about.
LINKS = (
    ("contact", "contact_id"),
    ("relation", "relation_id"),
    ("lead", "lead_id"),
    ("project", "project_id"),
    ("conversation", "conversation_id"),
)


def latest(source: str) -> str:
    """(kind, record_id, at): the latest occurred_at per record named by the rows of source."""
    parts = " UNION ALL ".join(
        f"SELECT '{kind}'::text AS kind, {column} AS record_id, occurred_at AS at "
        f"FROM {source} WHERE {column} IS NOT NULL"
        for kind, column in LINKS
    )
    return f"SELECT kind, record_id, max(at) AS at FROM ({parts}) a GROUP BY kind, record_id"


def touch(source: str) -> str:
    return f"""UPDATE search_documents d SET active_at = x.at FROM ({latest(source)}) x
    WHERE d.kind = x.kind AND d.record_id = x.record_id
      AND (d.active_at IS NULL OR d.active_at < x.at)"""


FUNCTION = f"""CREATE FUNCTION sb_activities_touched() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {touch("new_rows")};
  RETURN NULL;
END $$"""


WORDS_LATER = "current_setting('switchboard.words', true) IS DISTINCT FROM 'later'"


def remember_words_of_0017() -> str:
    """sb_remember_words as migration 0017 defined it."""
    path = Path(__file__).with_name("20261204_0017_search_prefix_index.py")
    functions: list[str] = runpy.run_path(str(path))["FUNCTIONS"]
    return next(f for f in functions if "FUNCTION sb_remember_words" in f)


def remember_words() -> str:
    """0017's sb_remember_words, doing nothing while switchboard.words is 'later'."""
    old = remember_words_of_0017()
    new = old.replace("  GROUP BY w", f"    AND {WORDS_LATER}\n  GROUP BY w")
    if new == old:
        raise LookupError("sb_remember_words of 0017 has no GROUP BY w")
    return new


def upgrade() -> None:
    op.execute("ALTER TABLE search_documents ADD COLUMN active_at timestamptz")
    op.execute("ALTER TABLE search_documents SET (fillfactor = 90)")
    op.execute(FUNCTION)
    for event in ("insert", "update"):
        op.execute(
            f"CREATE TRIGGER sb_activities_{event} AFTER {event.upper()} ON activities "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION sb_activities_touched()"
        )
    op.execute(touch("activities"))
    op.execute(
        'CREATE INDEX ix_search_words_word_c ON search_words (word COLLATE "C") INCLUDE (docs)'
    )
    op.execute("DROP INDEX IF EXISTS ix_search_words_word_trgm")
    op.execute(remember_words())


def downgrade() -> None:
    op.execute(remember_words_of_0017())
    op.execute(
        "CREATE INDEX ix_search_words_word_trgm ON search_words USING gin (word gin_trgm_ops)"
    )
    op.execute("DROP INDEX IF EXISTS ix_search_words_word_c")
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS sb_activities_{event} ON activities")
    op.execute("DROP FUNCTION IF EXISTS sb_activities_touched()")
    op.execute("ALTER TABLE search_documents RESET (fillfactor)")
    op.execute("ALTER TABLE search_documents DROP COLUMN active_at")
