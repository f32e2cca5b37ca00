"""Outbound messages found by the provider's id, for WhatsApp delivery receipts

Revision ID: 0011
Revises: 0019
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_provider_id",
        "messages",
        ["channel_id", sa.text("(meta ->> 'provider_id')")],
        postgresql_where=sa.text("direction = 'outbound'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_provider_id", table_name="messages")
