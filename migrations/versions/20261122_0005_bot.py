"""First-line bot: knowledge base (questions, paraphrases, keywords, answers, buttons) and
the chat jobs the pipeline leaves for after its commit

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 14:54:10.387502
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_faqs",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("paraphrases", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("keywords", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("buttons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("in_menu", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("language IN ('nl', 'en')", name=op.f("ck_bot_faqs_language_valid")),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_bot_faqs_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_faqs")),
        sa.UniqueConstraint("key", "language", name=op.f("uq_bot_faqs_key_language")),
    )
    op.create_index(op.f("ix_bot_faqs_channel_id"), "bot_faqs", ["channel_id"], unique=False)
    op.create_index("ix_bot_faqs_position", "bot_faqs", ["position", "id"], unique=False)
    op.create_table(
        "chat_jobs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('bot', 'external', 'download')", name=op.f("ck_chat_jobs_kind_valid")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'failed')", name=op.f("ck_chat_jobs_status_valid")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_chat_jobs_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_chat_jobs_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_jobs")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_chat_jobs_delivery_id")),
    )
    op.create_index(
        op.f("ix_chat_jobs_conversation_id"), "chat_jobs", ["conversation_id"], unique=False
    )
    op.create_index(
        "ix_chat_jobs_pending",
        "chat_jobs",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_chat_jobs_pending",
        table_name="chat_jobs",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(op.f("ix_chat_jobs_conversation_id"), table_name="chat_jobs")
    op.drop_table("chat_jobs")
    op.drop_index("ix_bot_faqs_position", table_name="bot_faqs")
    op.drop_index(op.f("ix_bot_faqs_channel_id"), table_name="bot_faqs")
    op.drop_table("bot_faqs")
