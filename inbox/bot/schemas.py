"""Wire types of the bot's REST API: knowledge base, bot settings, hand-over and attributes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inbox.bot.dialog import BotSettings
from inbox.schemas import Out


class Button(BaseModel):
    label: str = Field(min_length=1, max_length=64)
    data: str = Field(min_length=1, max_length=500)  # callback data (1-64 bytes) or an http(s) URL


class FaqIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9_.-]+$")
    language: Literal["nl", "en"]
    question: str = Field(min_length=1, max_length=2000)
    paraphrases: list[str] = Field(default_factory=list, max_length=200)
    keywords: list[str] = Field(default_factory=list, max_length=100)
    answer: str = Field(min_length=1, max_length=4000)
    buttons: list[Button] = Field(default_factory=list, max_length=8)
    channel_id: str | None = None
    in_menu: bool = True
    is_active: bool = True
    position: int = 0


class FaqOut(Out):
    id: int
    key: str
    language: str
    question: str
    paraphrases: list[str]
    keywords: list[str]
    answer: str
    buttons: list[dict[str, Any]]
    channel_id: str | None
    in_menu: bool
    is_active: bool
    position: int


class FaqQuery(BaseModel):
    channel_id: str | None = None
    language: Literal["nl", "en"] | None = None


class MatchIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    language: Literal["nl", "en"] | None = None
    channel_id: str | None = None


class MatchOut(BaseModel):
    answers: bool  # whether the bot would answer (score at or above the threshold)
    threshold: float
    score: float | None = None
    via: str | None = None
    key: str | None = None
    language: str | None = None
    question: str | None = None
    answer: str | None = None


class BotConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    settings: BotSettings = Field(default_factory=BotSettings)
    bot_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://")
    rotate_secret: bool = False


class BotConfigOut(BaseModel):
    channel_id: str
    settings: BotSettings
    bot_url: str | None
    bot_secret: str | None


class HandoverIn(BaseModel):
    reason: str = Field(default="asked", max_length=200)
    # What the customer is told: omitted for our standard text, "" to say nothing.
    text: str | None = Field(default=None, max_length=4000)


class AttributesIn(BaseModel):
    """Free attributes kept on the conversation, plus details that feed the matcher."""

    model_config = ConfigDict(extra="forbid")

    attributes: dict[str, Any] = Field(default_factory=dict, max_length=100)
    name: str | None = Field(default=None, max_length=300)
    company: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    language: Literal["nl", "en"] | None = None


class AttributesOut(BaseModel):
    conversation_id: int
    attributes: dict[str, Any]
    linked_to: str | None  # contact or lead, when details were given
    contact_id: int | None
    lead_id: int | None
