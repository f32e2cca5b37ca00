"""Inbox list: every conversation has a last-message time, and an index to read the list by it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE conversations SET last_message_at = created_at WHERE last_message_at IS NULL"
    )
    op.alter_column("conversations", "last_message_at", server_default=sa.text("now()"))
    op.drop_index("ix_conversations_inbox", table_name="conversations")
    op.create_index(
        "ix_conversations_list", "conversations", ["status", "last_message_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_list", table_name="conversations")
    op.create_index(
        "ix_conversations_inbox", "conversations", ["status", "last_message_at"], unique=False
    )
    op.alter_column("conversations", "last_message_at", server_default=None)
