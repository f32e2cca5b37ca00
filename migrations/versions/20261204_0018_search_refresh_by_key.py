"""The search index stays fast to read while the ingest path writes it

Revision ID: 0018
Revises: 0010
Create Date: 2026-12-04 14:00:00

Each sb_refresh_<table>(ids) first removes the documents of records that no longer exist. It
joined the ids to search_documents, which PostgreSQL may plan as a walk over every document of
the kind with the ids as a filter (seen: 18 ms per call while a worker stored conversations, most
of the time PostgreSQL spent in the ingest path). `record_id = ANY(ids)` makes it an index lookup
on the primary key (kind, record_id), whatever the statistics say.

The GIN indexes over the documents keep new entries in a pending list that every search reads
through until it is merged (by default up to 4 MB, merged only then or by vacuum). While
conversations and leads arrive by the thousand that list made each matcher search cost 1-3 ms
instead of 0.1 ms; a 256 kB list keeps the writes batched and the reads short.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = {
    "contacts": "contact",
    "relations": "relation",
    "projects": "project",
    "leads": "lead",
    "conversations": "conversation",
}
JOINED = "DELETE FROM search_documents d USING unnest(ids) AS u(id)\n    WHERE d.kind = ''{kind}'' AND d.record_id = u.id"
BY_KEY = "DELETE FROM search_documents d\n    WHERE d.kind = ''{kind}'' AND d.record_id = ANY(ids)"


def rewrite(table: str, old: str, new: str) -> str:
    """Redefine the function from its own source with one statement replaced (and fail loudly
    should the source not hold it)."""
    kind = KINDS[table]
    return f"""
DO $$
DECLARE src text; changed text;
BEGIN
  src := pg_get_functiondef('sb_refresh_{table}(bigint[])'::regprocedure);
  changed := replace(src, '{old.format(kind=kind)}', '{new.format(kind=kind)}');
  IF changed = src THEN
    RAISE EXCEPTION 'sb_refresh_{table}: the statement to replace was not found';
  END IF;
  EXECUTE changed;
END $$;
"""


GIN_INDEXES = ("ix_search_documents_doc", "ix_search_documents_names_trgm")


def upgrade() -> None:
    for table in KINDS:
        op.execute(rewrite(table, JOINED, BY_KEY))
    for index in GIN_INDEXES:
        op.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = 256)")


def downgrade() -> None:
    for index in GIN_INDEXES:
        op.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")
    for table in KINDS:
        op.execute(rewrite(table, BY_KEY, JOINED))
