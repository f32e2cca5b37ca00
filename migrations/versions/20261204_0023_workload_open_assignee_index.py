"""The workload report reads the open conversations per agent from an index

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_conversations_open_assignee",
        "conversations",
        ["assignee_id"],
        postgresql_include=["team_id", "channel_id"],
        postgresql_where=sa.text("status IN ('open', 'pending', 'snoozed')"),
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_open_assignee", table_name="conversations")
