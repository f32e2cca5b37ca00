"""Routing and SLA records: rules, business-hour calendars, SLA policies and their clocks,
people's skills and absences, the team queue and notifications."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from crm.base import Base, Json, JsonList, Timestamped
from crm.models import one_of

RULE_EVENTS = ("conversation.created", "message.inbound", "conversation.reopened", "bot.handover")
STRATEGIES = ("round_robin", "least_loaded")


def new_conversation_events() -> list[str]:
    return ["conversation.created"]


class RoutingRule(Timestamped, Base):
    """Conditions and actions, evaluated in `position` order on the events it lists."""

    __tablename__ = "routing_rules"
    __table_args__ = (
        one_of("match", ("all", "any")),
        Index("ix_routing_rules_position", "position", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=new_conversation_events)
    match: Mapped[str] = mapped_column(String(3), default="all")  # all or any condition
    # [{"field": "text", "op": "contains_any", "value": ["klacht", "complaint"]}]
    conditions: Mapped[JsonList] = mapped_column(default=list)
    # [{"type": "set_team", "team_id": 3}, {"type": "set_priority", "priority": "high"}]
    actions: Mapped[JsonList] = mapped_column(default=list)


class BusinessCalendar(Timestamped, Base):
    """Opening hours in a time zone, plus holidays: the clock business-hours SLAs run on."""

    __tablename__ = "business_calendars"
    __table_args__ = (
        Index(
            "ix_business_calendars_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    # {"mon": [["08:30", "17:00"]], "tue": [...], ...}; a day left out is closed
    hours: Mapped[Json] = mapped_column(default=dict)
    is_default: Mapped[bool] = mapped_column(default=False)


class Holiday(Base):
    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("calendar_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(
        ForeignKey("business_calendars.id", ondelete="CASCADE")
    )
    day: Mapped[date]
    name: Mapped[str] = mapped_column(String(200), default="")


class SlaPolicy(Timestamped, Base):
    """First-response and resolution targets per priority, in business or calendar minutes."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        Index(
            "ix_sla_policies_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200), unique=True)
    business_hours: Mapped[bool] = mapped_column(default=True)
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("business_calendars.id", ondelete="SET NULL")
    )
    # {"high": {"first_response": 60, "resolution": 480}, "normal": {...}}: minutes
    targets: Mapped[Json] = mapped_column(default=dict)
    remind_before_minutes: Mapped[int] = mapped_column(default=30)
    is_default: Mapped[bool] = mapped_column(default=False)


class TeamRouting(Base):
    """How a team hands out work; a team without a row uses round-robin."""

    __tablename__ = "team_routing"
    __table_args__ = (one_of("strategy", STRATEGIES),)

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    strategy: Mapped[str] = mapped_column(String(20), default="round_robin")


class AgentProfile(Base):
    """What a person can take (skills, languages) and how they want to hear of new work."""

    __tablename__ = "agent_profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list)
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(5)), default=list)
    # {"email": "x@y.nl", "telegram_chat_id": "123", "kinds": ["assigned", "breach"]}
    notify: Mapped[Json] = mapped_column(default=dict)


class Absence(Timestamped, Base):
    """A holiday or leave: the person gets no new work between the two times."""

    __tablename__ = "absences"
    __table_args__ = (Index("ix_absences_user_period", "user_id", "ends_at"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(200), default="")


class QueueEntry(Base):
    """A conversation waiting in its team's queue; the id is the arrival order."""

    __tablename__ = "team_queue"
    __table_args__ = (Index("ix_team_queue_team", "team_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    relation_id: Mapped[int | None] = mapped_column(ForeignKey("relations.id", ondelete="SET NULL"))
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list)
    language: Mapped[str | None] = mapped_column(String(5))
    queued_at: Mapped[datetime]


class ConversationSla(Base):
    """The SLA a conversation runs under and its due times: for the sweep and for reports."""

    __tablename__ = "conversation_slas"
    __table_args__ = (
        Index(
            "ix_conversation_slas_resolution_open",
            "resolution_due_at",
            postgresql_where=text("resolution_breached_at IS NULL AND resolved_at IS NULL"),
        ),
    )

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL")
    )
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    started_at: Mapped[datetime]  # the clock's start: arrival, or opening time after hours
    first_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    resolution_breached_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]  # recorded by the sweep once the due time has passed


class TaskSla(Base):
    """A task's SLA clock; `next_check_at` is when the sweep must look again (None: never)."""

    __tablename__ = "task_slas"
    __table_args__ = (
        Index(
            "ix_task_slas_next_check",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
    )

    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime]
    remind_at: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]


class Notification(Timestamped, Base):
    """Something a person should know: a new assignment, a reminder, a breach."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user", "user_id", "id"),
        Index("ix_notifications_undelivered", "id", postgresql_where=text("delivered_at IS NULL")),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))  # assigned, reminder, breach, queued
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    data: Mapped[Json] = mapped_column(default=dict)
    read_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]  # realtime published and, if wanted, e-mail/Telegram


class Acknowledgement(Base):
    """The automatic acknowledgement a conversation got (at most one), until its send is queued."""

    __tablename__ = "acknowledgements"
    __table_args__ = (
        Index(
            "ix_acknowledgements_unsent", "message_id", postgresql_where=text("enqueued_at IS NULL")
        ),
    )

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    enqueued_at: Mapped[datetime | None]
