"""The matcher's blocking key on a number's last seven digits

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-04 14:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_identities_phone_tail ON identities (right(value, 7)) WHERE kind = 'phone'"
    )


def downgrade() -> None:
    op.drop_index("ix_identities_phone_tail", table_name="identities")
