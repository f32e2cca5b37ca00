"""Matching, duplicates and search: identity keys, external ids, review queue, merges, search index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 18:20:25.662154
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "canned_replies",
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("shortcut", sa.String(length=40), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "num_nonnulls(owner_id, team_id) <= 1", name=op.f("ck_canned_replies_one_scope")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_canned_replies_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_canned_replies_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_canned_replies_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
    )
    op.create_index(
        op.f("ix_canned_replies_owner_id"), "canned_replies", ["owner_id"], unique=False
    )
    op.create_index(op.f("ix_canned_replies_team_id"), "canned_replies", ["team_id"], unique=False)
    op.create_table(
        "duplicate_candidates",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("other_id", sa.BigInteger(), nullable=False),
        sa.Column("cluster", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('relation', 'contact', 'lead')",
            name=op.f("ck_duplicate_candidates_kind_valid"),
        ),
        sa.CheckConstraint(
            "record_id < other_id", name=op.f("ck_duplicate_candidates_ordered_pair")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_candidates")),
        sa.UniqueConstraint(
            "kind",
            "record_id",
            "other_id",
            name=op.f("uq_duplicate_candidates_kind_record_id_other_id"),
        ),
    )
    op.create_index(
        "ix_duplicate_candidates_open",
        "duplicate_candidates",
        ["kind", "cluster"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "search_documents",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("subtitle", sa.String(length=500), nullable=False),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("doc", postgresql.TSVECTOR(), nullable=False),
        sa.Column("names", sa.Text(), nullable=False),
        sa.Column("relation_id", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "record_id", name=op.f("pk_search_documents")),
    )
    op.create_index(
        "ix_search_documents_doc", "search_documents", ["doc"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "ix_search_documents_names_trgm",
        "search_documents",
        ["names"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"names": "gin_trgm_ops"},
    )
    op.create_table(
        "search_words",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_words")),
    )
    op.create_index(op.f("ix_search_words_word"), "search_words", ["word"], unique=False)
    op.create_table(
        "merges",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("moved", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('relation', 'contact', 'lead')", name=op.f("ck_merges_kind_valid")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_merges_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merges")),
    )
    op.create_index(op.f("ix_merges_target_id"), "merges", ["target_id"], unique=False)
    op.create_table(
        "match_reviews",
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("sender", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("candidates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('open', 'confirmed', 'rejected')",
            name=op.f("ck_match_reviews_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_match_reviews_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_match_reviews_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_match_reviews_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_match_reviews_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_reviews")),
    )
    op.create_index(
        op.f("ix_match_reviews_conversation_id"), "match_reviews", ["conversation_id"], unique=False
    )
    op.create_index(
        op.f("ix_match_reviews_message_id"), "match_reviews", ["message_id"], unique=False
    )
    op.create_index(
        "ix_match_reviews_open",
        "match_reviews",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.add_column("contacts", sa.Column("external_id", sa.String(length=100), nullable=True))
    op.create_unique_constraint(op.f("uq_contacts_external_id"), "contacts", ["external_id"])
    op.add_column("identities", sa.Column("key", sa.String(length=320), nullable=True))
    op.add_column(
        "identities",
        sa.Column("shared", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.execute("UPDATE identities SET key = value")
    op.drop_constraint(op.f("ck_identities_kind_valid"), "identities", type_="check")
    op.create_check_constraint(
        "kind_valid",
        "identities",
        "kind IN ('email', 'phone', 'telegram', 'whatsapp', 'web', 'domain')",
    )
    op.create_index(op.f("ix_identities_key"), "identities", ["key"], unique=False)
    op.add_column("relations", sa.Column("external_id", sa.String(length=100), nullable=True))
    op.create_unique_constraint(op.f("uq_relations_external_id"), "relations", ["external_id"])


def downgrade() -> None:
    op.drop_table("canned_replies")
    op.drop_constraint(op.f("uq_relations_external_id"), "relations", type_="unique")
    op.drop_column("relations", "external_id")
    op.drop_index(op.f("ix_identities_key"), table_name="identities")
    op.drop_column("identities", "shared")
    op.execute("DELETE FROM identities WHERE kind = 'domain'")
    op.drop_constraint(op.f("ck_identities_kind_valid"), "identities", type_="check")
    op.create_check_constraint(
        "kind_valid", "identities", "kind IN ('email', 'phone', 'telegram', 'whatsapp', 'web')"
    )
    op.drop_column("identities", "key")
    op.drop_constraint(op.f("uq_contacts_external_id"), "contacts", type_="unique")
    op.drop_column("contacts", "external_id")
    op.drop_index(
        "ix_match_reviews_open",
        table_name="match_reviews",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_index(op.f("ix_match_reviews_message_id"), table_name="match_reviews")
    op.drop_index(op.f("ix_match_reviews_conversation_id"), table_name="match_reviews")
    op.drop_table("match_reviews")
    op.drop_index(op.f("ix_merges_target_id"), table_name="merges")
    op.drop_table("merges")
    op.drop_index(op.f("ix_search_words_word"), table_name="search_words")
    op.drop_table("search_words")
    op.drop_index(
        "ix_search_documents_names_trgm",
        table_name="search_documents",
        postgresql_using="gin",
        postgresql_ops={"names": "gin_trgm_ops"},
    )
    op.drop_index("ix_search_documents_doc", table_name="search_documents", postgresql_using="gin")
    op.drop_table("search_documents")
    op.drop_index(
        "ix_duplicate_candidates_open",
        table_name="duplicate_candidates",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_table("duplicate_candidates")
