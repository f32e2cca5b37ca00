"""Wire types of the REST API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1000)


class Me(Out):
    id: int
    name: str
    role: str
    team_ids: list[int]
    csrf_token: str | None = None


class ConversationQuery(BaseModel):
    mine: bool = False
    unassigned: bool = False
    team: int | None = None
    channel: str | None = None
    status: Literal["open", "pending", "snoozed", "resolved", "all"] = "open"
    label: str | None = None
    q: str | None = Field(default=None, max_length=200)
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


class ConversationOut(Out):
    id: int
    channel_id: str
    channel_kind: str | None = None
    subject: str | None
    status: str
    priority: str
    contact_id: int | None
    relation_id: int | None
    lead_id: int | None
    assignee_id: int | None
    team_id: int | None
    labels: list[str]
    handled_by: str
    needs_review: str | None
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    first_response_at: datetime | None
    snoozed_until: datetime | None
    created_at: datetime
    due_at: datetime | None = None  # the earliest due time of its open tasks (the SLA clock)
    project_id: int | None = None


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class AttachmentOut(Out):
    id: int
    filename: str
    content_type: str
    size: int
    inline: bool
    refused: str | None


class MessageOut(Out):
    id: int
    conversation_id: int
    direction: str
    kind: str
    status: str
    subject: str | None
    text: str
    html: str | None
    sender_name: str | None
    author_id: int | None
    error: str | None
    meta: dict[str, Any]
    sent_at: datetime
    attachments: list[AttachmentOut] = []


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class TemplateIn(BaseModel):
    """A pre-approved WhatsApp message template: the only reply outside the 24-hour window."""

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(default="en", min_length=2, max_length=15)
    components: list[dict[str, Any]] = Field(default_factory=list, max_length=20)


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=1_000_000)
    subject: str | None = Field(default=None, max_length=500)
    template: TemplateIn | None = None  # WhatsApp only; `text` is what the inbox shows of it


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=100_000)


class AssignIn(BaseModel):
    assignee_id: int | None = None
    team_id: int | None = None


class StatusIn(BaseModel):
    status: Literal["open", "pending", "snoozed", "resolved"]
    snoozed_until: datetime | None = None


class LabelsIn(BaseModel):
    add: list[str] = Field(default_factory=list, max_length=50)
    remove: list[str] = Field(default_factory=list, max_length=50)


class PriorityIn(BaseModel):
    priority: Literal["low", "normal", "high", "urgent"]


class HistoryOut(Out):
    id: int
    actor_id: int | None
    action: str
    data: dict[str, Any]
    created_at: datetime


class TaskQuery(BaseModel):
    scope: Literal["mine", "team", "all"] = "mine"
    status: Literal["open", "done", "cancelled"] = "open"
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


class TaskOut(Out):
    id: int
    kind: str
    title: str
    assignee_id: int | None
    team_id: int | None
    due_at: datetime | None
    priority: str
    status: str
    relation_id: int | None
    contact_id: int | None
    lead_id: int | None
    conversation_id: int | None
    created_at: datetime


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class LeadQuery(BaseModel):
    status: str | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=200)


class LeadOut(Out):
    id: int
    name: str | None
    company: str | None
    status: str
    source_channel_id: str | None
    source_detail: str | None
    owner_id: int | None
    fields: dict[str, Any]
    custom_fields: dict[str, Any]
    converted_contact_id: int | None
    created_at: datetime


class LeadPage(BaseModel):
    items: list[LeadOut]
    next_cursor: str | None


class QualifyIn(BaseModel):
    status: Literal["new", "contacted", "qualified", "disqualified"]


class LeadPatch(BaseModel):
    """What may change on a lead that is not converted yet (only the fields sent)."""

    name: str | None = Field(default=None, max_length=300)
    company: str | None = Field(default=None, max_length=300)
    status: Literal["new", "contacted", "qualified", "disqualified"] | None = None
    owner_id: int | None = None
    source_detail: str | None = Field(default=None, max_length=300)
    custom_fields: dict[str, Any] | None = None  # checked against the leads' custom fields


class OpportunityFromLead(BaseModel):
    name: str = Field(min_length=1, max_length=300)
    amount: Decimal = Field(default=Decimal(0), ge=0, max_digits=14, decimal_places=2)
    pipeline_id: int | None = None  # the default pipeline when empty
    stage_id: int | None = None  # the pipeline's first stage when empty
    expected_close_date: date | None = None


class ConvertIn(BaseModel):
    relation_id: int | None = None
    relation_name: str | None = Field(default=None, max_length=300)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=150)
    # Custom fields of the relation (when one is made) and of the contact the lead becomes:
    # checked like any other write of them, the required ones included.
    relation_custom_fields: dict[str, Any] = Field(default_factory=dict)
    contact_custom_fields: dict[str, Any] = Field(default_factory=dict)
    opportunity: OpportunityFromLead | None = None  # created in the same transaction


class ConvertOut(BaseModel):
    lead_id: int
    contact_id: int
    relation_id: int | None
    opportunity_id: int | None = None


class ChannelIn(BaseModel):
    kind: str
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)
    team: str | None = None


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scope: Literal["api", "bot"] = "api"
    channel_id: str | None = None
    user_id: int | None = None


class TokenOut(BaseModel):
    token: str
    scope: str
    user_id: int
