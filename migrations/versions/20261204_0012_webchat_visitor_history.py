"""A web chat visitor's history spans resolved conversations too: index every thread key

Revision ID: 0012
Revises: 0015
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_conversations_thread",
        "conversations",
        ["channel_id", "thread_key"],
        postgresql_where=sa.text("thread_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_thread", table_name="conversations")
