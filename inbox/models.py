"""Inbox records: channel instances, the event journal, conversations and messages."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from crm.base import Base, Json, Timestamped
from crm.models import one_of

EVENT_STATUSES = ("pending", "processed", "failed", "ignored")
CONVERSATION_STATUSES = ("open", "pending", "snoozed", "resolved")


def new_channel_id() -> str:
    return uuid.uuid4().hex


def new_token() -> str:
    return secrets.token_hex(10)


class Channel(Base):
    """A configured channel instance: a web form, a telephone system, a mailbox, a bot."""

    __tablename__ = "channels"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_channel_id)
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[Json] = mapped_column(default=dict)  # the adapter's settings, secrets included
    default_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Event(Base):
    """One raw delivery, journaled before anything else happens to it."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        one_of("status", EVENT_STATUSES),
        Index(
            "ix_events_unfinished",
            "status",
            "id",
            postgresql_where=text("status IN ('pending', 'failed')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(300))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[Json] = mapped_column(default=dict)  # delivery metadata: headers, query, url
    status: Mapped[str] = mapped_column(String(20), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]
    # A hash of the sender (or of the channel): one partition is processed by one worker at a time.
    partition_key: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class Conversation(Timestamped, Base):
    """A thread with one customer on one channel."""

    __tablename__ = "conversations"
    __table_args__ = (
        one_of("status", CONVERSATION_STATUSES),
        Index(
            "ix_conversations_open_thread",
            "channel_id",
            "thread_key",
            postgresql_where=text("status <> 'resolved' AND thread_key IS NOT NULL"),
        ),
        # The inbox list: newest first within a status, read backwards, with id as tie-breaker.
        Index("ix_conversations_list", "status", "last_message_at", "id"),
        # Reports read conversations by when they arrived.
        Index("ix_conversations_created_at", "created_at"),
        # The workload report's open conversations per agent: an index-only read of the open ones.
        Index(
            "ix_conversations_open_assignee",
            "assignee_id",
            postgresql_include=["team_id", "channel_id"],
            postgresql_where=text("status IN ('open', 'pending', 'snoozed')"),
        ),
        # A web chat visitor's whole history, resolved conversations included.
        Index(
            "ix_conversations_thread",
            "channel_id",
            "thread_key",
            postgresql_where=text("thread_key IS NOT NULL"),
        ),
    )

    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    thread_key: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="open")
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    relation_id: Mapped[int | None] = mapped_column(
        ForeignKey("relations.id", ondelete="SET NULL"), index=True
    )
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    last_message_at: Mapped[datetime | None] = mapped_column(
        default=lambda: datetime.now(UTC), server_default=func.now()
    )
    snoozed_until: Mapped[datetime | None]
    labels: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list)
    # Replies to our outbound e-mail carry this token (plus-address or Message-ID).
    reply_token: Mapped[str] = mapped_column(String(40), unique=True, default=new_token)
    handled_by: Mapped[str] = mapped_column(String(10), default="human")  # bot or human
    bot_state: Mapped[Json] = mapped_column(default=dict)  # the first-line bot's dialogue state
    confidential: Mapped[bool] = mapped_column(default=False)
    needs_review: Mapped[str | None] = mapped_column(String(200))  # why a person should check it
    last_inbound_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )


class Message(Timestamped, Base):
    """One message in a conversation: an e-mail, a chat message, a form submission, a call log."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        one_of("direction", ("inbound", "outbound", "internal")),
        # The workload report: replies people sent in a period.
        Index(
            "ix_messages_replies_sent",
            "sent_at",
            "author_id",
            postgresql_where=text("direction = 'outbound' AND author_id IS NOT NULL"),
        ),
        # Delivery receipts (WhatsApp statuses, bounces) find our message by the provider's id.
        Index(
            "ix_messages_provider_id",
            "channel_id",
            text("(meta ->> 'provider_id')"),
            postgresql_where=text("direction = 'outbound'"),
        ),
    )

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    external_id: Mapped[str] = mapped_column(String(300))
    direction: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(20))  # message, form, call
    subject: Mapped[str | None] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    sender_identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    sender_name: Mapped[str | None] = mapped_column(String(300))
    meta: Mapped[Json] = mapped_column(default=dict)  # form fields, call details, attachments
    sent_at: Mapped[datetime]
    # received (inbound); queued, sent, failed (outbound); note (internal)
    status: Mapped[str] = mapped_column(String(20), default="received")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    in_reply_to: Mapped[list[str]] = mapped_column(ARRAY(String(300)), default=list)


class Attachment(Timestamped, Base):
    """A file that came with (or went out with) a message; the bytes live in the file store."""

    __tablename__ = "attachments"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int]
    sha256: Mapped[str | None] = mapped_column(String(64))  # None: bytes not kept (see refused)
    inline: Mapped[bool] = mapped_column(default=False)
    content_id: Mapped[str | None] = mapped_column(String(300))
    ref: Mapped[str | None] = mapped_column(String(1000))  # provider's id (Telegram file_id)
    refused: Mapped[str | None] = mapped_column(String(300))


class HistoryEntry(Base):
    """What happened to a conversation, by whom and when: assignments, status changes, routing."""

    __tablename__ = "conversation_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40))
    data: Mapped[Json] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UserSession(Base):
    """A logged-in browser; the cookie holds the token, we keep only its hash."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]


class ApiToken(Timestamped, Base):
    """A bearer token for an integration or an external bot, acting as its user."""

    __tablename__ = "api_tokens"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(20), default="api")  # api or bot
    channel_id: Mapped[str | None] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class MailboxCheckpoint(Base):
    """How far a mailbox folder is imported: UIDs above last_uid are new while UIDVALIDITY holds."""

    __tablename__ = "mailbox_checkpoints"

    channel_id: Mapped[str] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    folder: Mapped[str] = mapped_column(String(300), primary_key=True)
    uidvalidity: Mapped[int]
    last_uid: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
