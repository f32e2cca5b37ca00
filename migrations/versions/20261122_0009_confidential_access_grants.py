"""Confidential conversations and projects: access granted to linked users or teams

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 19:42:33.088527
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_grants",
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "num_nonnulls(conversation_id, project_id) = 1",
            name=op.f("ck_access_grants_one_subject"),
        ),
        sa.CheckConstraint(
            "num_nonnulls(user_id, team_id) = 1", name=op.f("ck_access_grants_one_grantee")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_access_grants_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_access_grants_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_access_grants_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_access_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
    )
    op.create_index(
        op.f("ix_access_grants_conversation_id"), "access_grants", ["conversation_id"], unique=False
    )
    op.create_index(
        op.f("ix_access_grants_project_id"), "access_grants", ["project_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_access_grants_project_id"), table_name="access_grants")
    op.drop_index(op.f("ix_access_grants_conversation_id"), table_name="access_grants")
    op.drop_table("access_grants")
