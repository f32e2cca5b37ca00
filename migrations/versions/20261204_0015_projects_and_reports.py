"""Projects gather conversations, activities and tasks; indexes for the relation dashboard and
the reports

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("description", sa.Text(), nullable=True))
    op.add_column("projects", sa.Column("owner_id", sa.BigInteger(), nullable=True))
    op.add_column("projects", sa.Column("team_id", sa.BigInteger(), nullable=True))
    op.add_column("projects", sa.Column("starts_on", sa.Date(), nullable=True))
    op.add_column("projects", sa.Column("ends_on", sa.Date(), nullable=True))
    op.create_foreign_key(
        op.f("fk_projects_owner_id_users"),
        "projects",
        "users",
        ["owner_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        op.f("fk_projects_team_id_teams"),
        "projects",
        "teams",
        ["team_id"],
        ["id"],
        ondelete="SET NULL",
    )
    for table in ("conversations", "tasks"):
        op.add_column(table, sa.Column("project_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            op.f(f"fk_{table}_project_id_projects"),
            table,
            "projects",
            ["project_id"],
            ["id"],
            ondelete="SET NULL",
        )
    for table in ("conversations", "tasks", "activities"):
        op.create_index(op.f(f"ix_{table}_project_id"), table, ["project_id"])
    op.create_index("ix_activities_relation_time", "activities", ["relation_id", "occurred_at"])
    op.create_index("ix_conversations_created_at", "conversations", ["created_at"])
    op.create_index("ix_leads_created_at", "leads", ["created_at"])
    op.create_index(
        "ix_messages_replies_sent",
        "messages",
        ["sent_at", "author_id"],
        postgresql_where=sa.text("direction = 'outbound' AND author_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_replies_sent", table_name="messages")
    op.drop_index("ix_leads_created_at", table_name="leads")
    op.drop_index("ix_conversations_created_at", table_name="conversations")
    op.drop_index("ix_activities_relation_time", table_name="activities")
    for table in ("conversations", "tasks", "activities"):
        op.drop_index(op.f(f"ix_{table}_project_id"), table_name=table)
    for table in ("conversations", "tasks"):
        op.drop_constraint(op.f(f"fk_{table}_project_id_projects"), table, type_="foreignkey")
        op.drop_column(table, "project_id")
    op.drop_constraint(op.f("fk_projects_team_id_teams"), "projects", type_="foreignkey")
    op.drop_constraint(op.f("fk_projects_owner_id_users"), "projects", type_="foreignkey")
    for column in ("ends_on", "starts_on", "team_id", "owner_id", "description"):
        op.drop_column("projects", column)
