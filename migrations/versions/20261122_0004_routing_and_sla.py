"""Routing and SLAs: rules, business-hour calendars and holidays, SLA policies, conversation and
task SLA clocks, skills/languages and absences, team queue, notifications, acknowledgements

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:24:25.727106
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "business_calendars",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("hours", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_calendars")),
        sa.UniqueConstraint("name", name=op.f("uq_business_calendars_name")),
    )
    op.create_index(
        "ix_business_calendars_default",
        "business_calendars",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "routing_rules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("match", sa.String(length=3), nullable=False),
        sa.Column("conditions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("actions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("match IN ('all', 'any')", name=op.f("ck_routing_rules_match_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_index("ix_routing_rules_position", "routing_rules", ["position", "id"], unique=False)
    op.create_table(
        "absences",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_absences_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_absences")),
    )
    op.create_index("ix_absences_user_period", "absences", ["user_id", "ends_at"], unique=False)
    op.create_table(
        "agent_profiles",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("skills", postgresql.ARRAY(sa.String(length=60)), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.String(length=5)), nullable=False),
        sa.Column("notify", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_profiles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_profiles")),
    )
    op.create_table(
        "holidays",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("calendar_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["business_calendars.id"],
            name=op.f("fk_holidays_calendar_id_business_calendars"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holidays")),
        sa.UniqueConstraint("calendar_id", "day", name=op.f("uq_holidays_calendar_id_day")),
    )
    op.create_table(
        "sla_policies",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("calendar_id", sa.BigInteger(), nullable=True),
        sa.Column("targets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("remind_before_minutes", sa.BigInteger(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["business_calendars.id"],
            name=op.f("fk_sla_policies_calendar_id_business_calendars"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policies_name")),
    )
    op.create_index(
        "ix_sla_policies_default",
        "sla_policies",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "team_routing",
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.CheckConstraint(
            "strategy IN ('round_robin', 'least_loaded')",
            name=op.f("ck_team_routing_strategy_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_routing_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_team_routing")),
    )
    op.create_table(
        "conversation_slas",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("policy_id", sa.BigInteger(), nullable=True),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_slas_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["sla_policies.id"],
            name=op.f("fk_conversation_slas_policy_id_sla_policies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_slas")),
    )
    op.create_index(
        "ix_conversation_slas_resolution_open",
        "conversation_slas",
        ["resolution_due_at"],
        unique=False,
        postgresql_where=sa.text("resolution_breached_at IS NULL AND resolved_at IS NULL"),
    )
    op.create_table(
        "team_queue",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("relation_id", sa.BigInteger(), nullable=True),
        sa.Column("skills", postgresql.ARRAY(sa.String(length=60)), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_team_queue_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["relation_id"],
            ["relations.id"],
            name=op.f("fk_team_queue_relation_id_relations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_queue_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_queue")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_team_queue_conversation_id")),
    )
    op.create_index("ix_team_queue_team", "team_queue", ["team_id", "id"], unique=False)
    op.create_table(
        "acknowledgements",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_acknowledgements_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_acknowledgements_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_acknowledgements")),
    )
    op.create_index(
        "ix_acknowledgements_unsent",
        "acknowledgements",
        ["message_id"],
        unique=False,
        postgresql_where=sa.text("enqueued_at IS NULL"),
    )
    op.create_table(
        "notifications",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_notifications_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_notifications_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "ix_notifications_undelivered",
        "notifications",
        ["id"],
        unique=False,
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_index("ix_notifications_user", "notifications", ["user_id", "id"], unique=False)
    op.create_table(
        "task_slas",
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("policy_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["sla_policies.id"],
            name=op.f("fk_task_slas_policy_id_sla_policies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_slas_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_slas")),
    )
    op.create_index(
        "ix_task_slas_next_check",
        "task_slas",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_task_slas_next_check",
        table_name="task_slas",
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.drop_table("task_slas")
    op.drop_index("ix_notifications_user", table_name="notifications")
    op.drop_index(
        "ix_notifications_undelivered",
        table_name="notifications",
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.drop_table("notifications")
    op.drop_index(
        "ix_acknowledgements_unsent",
        table_name="acknowledgements",
        postgresql_where=sa.text("enqueued_at IS NULL"),
    )
    op.drop_table("acknowledgements")
    op.drop_index("ix_team_queue_team", table_name="team_queue")
    op.drop_table("team_queue")
    op.drop_index(
        "ix_conversation_slas_resolution_open",
        table_name="conversation_slas",
        postgresql_where=sa.text("resolution_breached_at IS NULL AND resolved_at IS NULL"),
    )
    op.drop_table("conversation_slas")
    op.drop_table("team_routing")
    op.drop_index(
        "ix_sla_policies_default", table_name="sla_policies", postgresql_where=sa.text("is_default")
    )
    op.drop_table("sla_policies")
    op.drop_table("holidays")
    op.drop_table("agent_profiles")
    op.drop_index("ix_absences_user_period", table_name="absences")
    op.drop_table("absences")
    op.drop_index("ix_routing_rules_position", table_name="routing_rules")
    op.drop_table("routing_rules")
    op.drop_index(
        "ix_business_calendars_default",
        table_name="business_calendars",
        postgresql_where=sa.text("is_default"),
    )
    op.drop_table("business_calendars")
