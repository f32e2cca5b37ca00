"""The Telegram channel: Updates in by webhook or long polling, replies out through aiogram."""

from __future__ import annotations

from channels.telegram.adapter import TelegramAdapter, polled_delivery, webhook_url
from channels.telegram.config import BotConfig

__all__ = ["BotConfig", "TelegramAdapter", "polled_delivery", "webhook_url"]
