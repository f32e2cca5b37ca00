"""What adding a chat channel sets up beyond its row: the external bot's secret, and for a
Telegram bot with a public URL the webhook (setWebhook with the channel's secret token)."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from channels.telegram import webhook_url
from inbox.bot.external import new_secret
from inbox.models import Channel
from inbox.settings import get_settings

log = structlog.get_logger(__name__)


async def on_channel_added(session: AsyncSession, channel: Channel) -> None:
    """Called by `add_channel` in its transaction; a refused webhook undoes the channel."""
    config = dict(channel.config)
    if config.get("bot_url") and not config.get("bot_secret"):
        config["bot_secret"] = new_secret()
    if channel.kind == "telegram":
        public = config.get("public_url") or get_settings().public_url
        if public and config.get("mode", "webhook") == "webhook":
            url = webhook_url(config | {"public_url": public}, channel.id)
            if url is not None:
                # (aiogram is imported here, when a Telegram bot is added: the command line's
                # other commands start without its seconds of import.)
                from channels.telegram.sender import BotAPIError, set_webhook

                try:
                    await set_webhook(config, url)
                except BotAPIError as exc:
                    raise ValueError(f"Telegram refused the webhook: {exc.reason}") from None
                config["webhook_url"] = url
                log.info("telegram webhook set", channel_id=channel.id, url=url)
    if config != channel.config:
        channel.config = config
        await session.flush()
