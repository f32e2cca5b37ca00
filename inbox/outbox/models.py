"""The tables of outbound webhooks: who subscribes to what, and every delivery (the outbox)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from crm.base import Base, Json, Timestamped
from crm.models import one_of

EventType = Literal[
    "conversation.created",
    "message.created",
    "conversation.assigned",
    "conversation.resolved",
    "lead.created",
    "task.created",
    "task.overdue",
    "call.logged",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookSubscription(Timestamped, Base):
    """An integrator's URL and the event types it wants, signed with its own secret."""

    __tablename__ = "webhook_subscriptions"

    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    description: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    failing_since: Mapped[datetime | None]  # first failure since the last success
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))


class WebhookDelivery(Base):
    """One event for one subscription: written in the transaction of the change it reports,
    sent by the worker in order per conversation, retried with back-off, kept as the log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        one_of("status", DELIVERY_STATUSES),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # Order per conversation: the earlier pending delivery of the same stream.
        Index(
            "ix_webhook_deliveries_stream",
            "subscription_id",
            "conversation_id",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), unique=True, server_default=func.gen_random_uuid()
    )
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)  # the ordering stream
    payload: Mapped[Json]
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    leased_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    status_code: Mapped[int | None]
    latency_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    redelivery_of: Mapped[int | None] = mapped_column(BigInteger)
