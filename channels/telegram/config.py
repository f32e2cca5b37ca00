"""A Telegram channel's settings, read and checked from its JSON config."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from channels.base import JsonObject

DEFAULT_API_BASE = "https://api.telegram.org"
TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
# What Telegram accepts as a webhook secret token.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
BOT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
MODES = ("webhook", "polling")


def optional_str(config: JsonObject, name: str) -> str | None:
    value = config.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"{name} must be a string")


def http_url(config: JsonObject, name: str) -> str | None:
    value = optional_str(config, name)
    if value is not None and not value.startswith(("https://", "http://")):
        raise ValueError(f"{name} must be an absolute http(s) URL")
    return value.rstrip("/") if value else None


@dataclass(frozen=True)
class BotConfig:
    token: str = ""
    webhook_secret: str | None = None
    api_base: str = DEFAULT_API_BASE
    mode: Literal["webhook", "polling"] = "webhook"
    public_url: str | None = None
    bot_username: str | None = None  # without "@"; how group members address the bot

    def __repr__(self) -> str:  # the token never reaches a log line through a repr
        return f"BotConfig(bot_id={self.bot_id}, api_base={self.api_base!r}, mode={self.mode!r})"

    @property
    def bot_id(self) -> str:
        return self.token.split(":", 1)[0]

    @classmethod
    def from_json(cls, config: JsonObject) -> BotConfig:
        """Read the settings; ValueError names the first bad one (never showing the token)."""
        token = config.get("token")
        if not token:
            raise ValueError("token is required: the bot token from @BotFather")
        if not isinstance(token, str) or not TOKEN.fullmatch(token):
            raise ValueError("token does not look like a bot token (digits:secret)")
        secret = optional_str(config, "webhook_secret")
        if secret is not None and not WEBHOOK_SECRET.fullmatch(secret):
            raise ValueError("webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        mode = config.get("mode") or "webhook"
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        username = optional_str(config, "bot_username")
        username = username.removeprefix("@") if username else None
        if username is not None and not BOT_USERNAME.fullmatch(username):
            raise ValueError("bot_username must be a Telegram username such as HelpdeskBot")
        return cls(
            token=token,
            webhook_secret=secret,
            api_base=http_url(config, "api_base") or DEFAULT_API_BASE,
            mode="polling" if mode == "polling" else "webhook",
            public_url=http_url(config, "public_url"),
            bot_username=username,
        )
