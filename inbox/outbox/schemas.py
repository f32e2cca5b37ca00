"""Wire types of the outbound webhook API: subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inbox.outbox.models import EventType
from inbox.schemas import Out


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000)
    events: list[EventType] = Field(min_length=1, max_length=8)
    description: str | None = Field(default=None, max_length=500)
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2000)
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=8)
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = None
    rotate_secret: bool = False


class SubscriptionOut(Out):
    id: int
    url: str
    events: list[str]
    description: str | None
    active: bool
    owner_id: int | None
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    secret: str | None = None  # shown when created or rotated only


class DeliveryQuery(BaseModel):
    status: Literal["pending", "delivered", "failed"] | None = None
    before: int | None = None  # a delivery id: the page after it, newest first
    limit: int = Field(default=50, ge=1, le=200)


class DeliveryOut(Out):
    id: int
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    conversation_id: int | None
    status: str
    attempts: int
    status_code: int | None
    latency_ms: float | None
    error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    next_attempt_at: datetime
    redelivery_of: int | None
    payload: dict[str, Any]
