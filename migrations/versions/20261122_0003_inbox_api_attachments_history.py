"""Inbox API: sessions, API tokens, history, attachments; conversation and message fields

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 14:06:40.535104
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailbox_checkpoints",
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("folder", sa.String(length=300), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_mailbox_checkpoints_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "folder", name=op.f("pk_mailbox_checkpoints")),
    )
    op.create_table(
        "user_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_user_sessions")),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_api_tokens_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "conversation_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_conversation_history_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_history_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_history")),
    )
    op.create_index(
        op.f("ix_conversation_history_conversation_id"),
        "conversation_history",
        ["conversation_id"],
        unique=False,
    )
    op.create_table(
        "attachments",
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.Column("content_id", sa.String(length=300), nullable=True),
        sa.Column("ref", sa.String(length=1000), nullable=True),
        sa.Column("refused", sa.String(length=300), nullable=True),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_attachments_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index(op.f("ix_attachments_message_id"), "attachments", ["message_id"], unique=False)
    op.add_column(
        "conversations",
        sa.Column(
            "labels", postgresql.ARRAY(sa.String(length=60)), server_default="{}", nullable=False
        ),
    )
    op.add_column(
        "conversations",
        sa.Column(
            "reply_token",
            sa.String(length=40),
            server_default=sa.text("substr(md5(random()::text || clock_timestamp()::text), 1, 20)"),
            nullable=False,
        ),
    )
    op.add_column(
        "conversations",
        sa.Column("handled_by", sa.String(length=10), server_default="human", nullable=False),
    )
    op.add_column(
        "conversations",
        sa.Column(
            "bot_state",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
    )
    op.add_column(
        "conversations",
        sa.Column("confidential", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column("conversations", sa.Column("needs_review", sa.String(length=200), nullable=True))
    op.add_column(
        "conversations", sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "conversations", sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "conversations", sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_unique_constraint(
        op.f("uq_conversations_reply_token"), "conversations", ["reply_token"]
    )
    op.add_column("messages", sa.Column("author_id", sa.BigInteger(), nullable=True))
    op.add_column("messages", sa.Column("error", sa.Text(), nullable=True))
    op.add_column(
        "messages", sa.Column("attempts", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column(
        "messages",
        sa.Column(
            "in_reply_to",
            postgresql.ARRAY(sa.String(length=300)),
            server_default="{}",
            nullable=False,
        ),
    )
    op.create_foreign_key(
        op.f("fk_messages_author_id_users"),
        "messages",
        "users",
        ["author_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_table("mailbox_checkpoints")
    op.drop_constraint(op.f("fk_messages_author_id_users"), "messages", type_="foreignkey")
    op.drop_column("messages", "in_reply_to")
    op.drop_column("messages", "attempts")
    op.drop_column("messages", "error")
    op.drop_column("messages", "author_id")
    op.drop_constraint(op.f("uq_conversations_reply_token"), "conversations", type_="unique")
    op.drop_column("conversations", "resolved_at")
    op.drop_column("conversations", "first_response_at")
    op.drop_column("conversations", "last_inbound_at")
    op.drop_column("conversations", "needs_review")
    op.drop_column("conversations", "confidential")
    op.drop_column("conversations", "bot_state")
    op.drop_column("conversations", "handled_by")
    op.drop_column("conversations", "reply_token")
    op.drop_column("conversations", "labels")
    op.drop_index(op.f("ix_attachments_message_id"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_index(
        op.f("ix_conversation_history_conversation_id"), table_name="conversation_history"
    )
    op.drop_table("conversation_history")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
