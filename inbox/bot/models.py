"""First-line bot records: the knowledge base, and the chat work the pipeline leaves behind."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from crm.base import Base, JsonList, Timestamped
from crm.models import one_of

LANGUAGES = ("nl", "en")
CHAT_JOB_KINDS = ("bot", "external", "download")
CHAT_JOB_STATUSES = ("pending", "done", "failed")


def new_delivery_id() -> str:
    return uuid.uuid4().hex


class BotFaq(Timestamped, Base):
    """One question of the knowledge base in one language, with the ways people ask it."""

    __tablename__ = "bot_faqs"
    __table_args__ = (
        UniqueConstraint("key", "language"),
        one_of("language", LANGUAGES),
        Index("ix_bot_faqs_position", "position", "id"),
    )

    key: Mapped[str] = mapped_column(String(80))  # the topic; its nl and en rows share it
    language: Mapped[str] = mapped_column(String(2))
    question: Mapped[str] = mapped_column(Text)
    paraphrases: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    # Keyword rule: a message naming one of these words or phrases is about this question.
    keywords: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)
    answer: Mapped[str] = mapped_column(Text)
    # [{"label": "Route", "data": "https://..."}, {"label": "Prijzen", "data": "faq:prices"}]
    buttons: Mapped[JsonList] = mapped_column(default=list)
    channel_id: Mapped[str | None] = mapped_column(  # None: on every channel
        ForeignKey("channels.id", ondelete="CASCADE"), index=True
    )
    in_menu: Mapped[bool] = mapped_column(default=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ChatJob(Base):
    """Work an inbound chat message leaves for after the pipeline commits: the bot's turn, a
    delivery to an external bot, an attachment download. Claimed with SKIP LOCKED, so each runs
    once; a cron job re-queues pending rows whose wake-up got lost."""

    __tablename__ = "chat_jobs"
    __table_args__ = (
        one_of("kind", CHAT_JOB_KINDS),
        one_of("status", CHAT_JOB_STATUSES),
        Index("ix_chat_jobs_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40), default="message.created")
    delivery_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_delivery_id)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    done_at: Mapped[datetime | None]
