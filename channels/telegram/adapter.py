"""The Telegram channel: check the webhook secret token, journal by update_id, normalise Updates."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from channels.base import Accepted, Delivery, InboundMessage, JsonObject, Unauthorized
from channels.signatures import new_secret, same
from channels.telegram.config import BotConfig
from channels.telegram.updates import load_update, read_update

SECRET_HEADER = "x-telegram-bot-api-secret-token"
WEBHOOK_PATH = "/webhooks/telegram/{channel_id}"
POLLED_URL = "telegram:getUpdates"


def webhook_url(config: JsonObject, channel_id: str) -> str | None:
    """The URL to give setWebhook, when the channel has a public URL; None in polling mode."""
    settings = BotConfig.from_json(config)
    if settings.mode != "webhook" or settings.public_url is None:
        return None
    path = WEBHOOK_PATH.format(channel_id=channel_id)
    return settings.public_url if settings.public_url.endswith(path) else settings.public_url + path


def polled_delivery(update: JsonObject, received_at: datetime | None = None) -> Delivery:
    """An Update fetched with getUpdates, as the Delivery a webhook would have brought."""
    body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()
    return Delivery(
        body=body,
        headers={"content-type": "application/json"},
        query={},
        url=POLLED_URL,
        received_at=received_at or datetime.now(UTC),
    )


class TelegramAdapter:
    """A Telegram bot: Updates by webhook (or long polling), one conversation per chat."""

    kind = "telegram"

    def prepare_config(self, config: JsonObject) -> JsonObject:
        prepared = dict(config)
        if not prepared.get("webhook_secret"):
            prepared["webhook_secret"] = new_secret()
        settings = BotConfig.from_json(prepared)
        if settings.bot_username is not None:
            prepared["bot_username"] = settings.bot_username
        return prepared

    def secret_names(self) -> tuple[str, ...]:
        return ("token", "webhook_secret")

    def limited_per_address(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return False  # posted by a provider's servers, never by a browser

    def authenticate(self, config: JsonObject, delivery: Delivery) -> None:
        secret = BotConfig.from_json(config).webhook_secret
        if secret is None:
            raise ValueError("webhook_secret is not set; prepare_config generates one")
        if not same(delivery.headers.get(SECRET_HEADER), secret):
            raise Unauthorized("missing or wrong X-Telegram-Bot-Api-Secret-Token")

    def accept(self, config: JsonObject, delivery: Delivery) -> Accepted:
        update = load_update(delivery.body)
        return Accepted(str(update["update_id"]), sender_key=chat_key(update))

    def normalize(self, config: JsonObject, delivery: Delivery) -> InboundMessage | None:
        settings = BotConfig.from_json(config)
        return read_update(
            load_update(delivery.body),
            bot_id=settings.bot_id,
            bot_username=settings.bot_username,
            arrival=delivery.arrival(),
        )


def chat_key(update: JsonObject) -> str | None:
    """The chat an update belongs to (or its sender), without reading the whole update."""
    for value in update.values():
        if not isinstance(value, dict):
            continue
        inner = value.get("message")
        chat = value.get("chat") or (inner.get("chat") if isinstance(inner, dict) else None)
        if isinstance(chat, dict) and "id" in chat:
            return f"tg:{chat['id']}"
        sender = value.get("from")
        if isinstance(sender, dict) and "id" in sender:
            return f"tg:{sender['id']}"
    return None
