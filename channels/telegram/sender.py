"""Talking to the Bot API with aiogram: send replies, download files, set the webhook, poll.

Every function takes the channel's JSON config and, optionally, a `Bots` pool whose HTTP sessions
it reuses; without one it uses the pool given to `share()` (the worker's, for its lifetime), else
it opens a session and closes it again.
The bot token is part of every Bot API URL, so no error text leaves this module unredacted.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from html import escape
from types import TracebackType
from typing import Literal, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)
from aiohttp import ClientError, ClientResponseError, ClientTimeout

from channels.base import Attachment, JsonObject, OutboundMessage, SendResult
from channels.egress import Egress, channels_policy
from channels.telegram import pool
from channels.telegram.config import BotConfig
from channels.telegram.errors import BotAPIError as BotAPIError
from channels.telegram.updates import ALLOWED_UPDATES, message_key

TEXT_LIMIT = 4096  # characters per message, counted in UTF-16 code units
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
BLOCKED = "blocked by the user"
PARSE_MODE = "HTML"
MESSAGE_KEY = re.compile(r"-?[0-9]+:([0-9]+)")


class Bots:
    """aiogram Bots by (api_base, token), each with its own HTTP session; close() them at the end."""

    def __init__(self, *, egress: Egress | None = None) -> None:
        self._bots: dict[tuple[str, str], Bot] = {}
        self._egress = egress  # where its sessions may connect; the process's policy if None
        self._loop: asyncio.AbstractEventLoop | None = None  # the sessions' loop

    def __len__(self) -> int:
        return len(self._bots)

    def usable(self) -> bool:
        return self._loop is None or self._loop is asyncio.get_running_loop()

    def get(self, settings: BotConfig) -> Bot:
        if not self.usable():
            raise RuntimeError("this Bots pool belongs to another event loop")
        self._loop = asyncio.get_running_loop()
        key = (settings.api_base, settings.token)
        bot = self._bots.get(key)
        if bot is None:
            api = TelegramAPIServer.from_base(settings.api_base)
            session = AiohttpSession(api=api)
            # aiogram builds its connector from these keyword arguments (and has no parameter).
            egress = self._egress or channels_policy()
            session._connector_init.update(egress.connector_options())
            bot = self._bots[key] = Bot(settings.token, session=session)
        return bot

    async def close(self) -> None:
        bots, self._bots = list(self._bots.values()), {}
        await asyncio.gather(*(bot.session.close() for bot in bots))

    async def __aenter__(self) -> Bots:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


_shared: Bots | None = None


def share(bots: Bots | None) -> None:
    """Make `bots` the pool for calls that pass none (the worker, for its lifetime); None stops it."""
    global _shared
    _shared = bots


@asynccontextmanager
async def bot_for(config: JsonObject, bots: Bots | None) -> AsyncIterator[tuple[Bot, BotConfig]]:
    """The channel's Bot from the given or shared pool, else a one-off closed on the way out."""
    settings = BotConfig.from_json(config)
    if bots is None and _shared is not None and _shared.usable():
        bots = _shared
    if bots is None:
        made = pool.get(lambda egress: Bots(egress=egress))  # the worker's, made on first use
        if made is not None and made.usable():
            bots = made
    if bots is not None:
        yield bots.get(settings), settings
        return
    async with Bots() as own:
        yield own.get(settings), settings


def redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def api_error(exc: Exception, token: str) -> BotAPIError:
    """Map what aiogram or aiohttp raised to a reason and whether a retry may help."""
    if isinstance(exc, TelegramRetryAfter):
        return BotAPIError(
            redact(exc.message, token), temporary=True, retry_after_s=float(exc.retry_after)
        )
    if isinstance(exc, TelegramMigrateToChat):
        return BotAPIError(f"the group became supergroup {exc.migrate_to_chat_id}")
    if isinstance(exc, TelegramForbiddenError):
        blocked = "blocked" in exc.message.lower()
        return BotAPIError(BLOCKED if blocked else redact(exc.message, token))
    if isinstance(exc, TelegramUnauthorizedError):
        return BotAPIError(f"the bot token was refused: {redact(exc.message, token)}")
    if isinstance(exc, TelegramEntityTooLarge):  # a TelegramNetworkError, but final
        return BotAPIError(f"too large for Telegram: {redact(exc.message, token)}")
    if isinstance(exc, TelegramServerError | TelegramNetworkError):
        return BotAPIError(redact(exc.message, token), temporary=True)
    if isinstance(exc, TelegramAPIError):  # 400 Bad Request, 404, 409: retrying will not help
        return BotAPIError(redact(exc.message, token))
    if isinstance(exc, ClientResponseError):  # file downloads; its text names the URL
        reason = f"file download: HTTP {exc.status} {exc.message}"
        return BotAPIError(redact(reason, token), temporary=exc.status >= 500)
    if isinstance(exc, ClientDecodeError | ClientError | TimeoutError):
        return BotAPIError(redact(f"{type(exc).__name__}: {exc}", token), temporary=True)
    raise exc


CAUGHT = (TelegramAPIError, ClientDecodeError, ClientError, TimeoutError)


def chat_id_of(to: str) -> int | str:
    """The chat an OutboundMessage goes to: a numeric id (also as "tg:<id>") or an @channel."""
    raw = to.strip().removeprefix("tg:")
    if raw.lstrip("-").isdigit():
        return int(raw)
    if raw.startswith("@") and len(raw) > 1:
        return raw
    raise ValueError(f"not a Telegram chat id: {to!r}")


def replied_message_id(external_id: str | None) -> int | None:
    """The Telegram message id in our "<chat_id>:<message_id>" external id (not "callback:...")."""
    match = MESSAGE_KEY.fullmatch(external_id or "")
    return int(match.group(1)) if match else None


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` UTF-16 units, broken at a newline or space where possible."""
    pieces: list[str] = []
    rest = text.strip()
    while utf16_len(rest) > limit:
        cut, units = 0, 0
        while units + utf16_len(rest[cut]) <= limit:
            units += utf16_len(rest[cut])
            cut += 1
        space = max(rest.rfind("\n", 0, cut + 1), rest.rfind(" ", 0, cut + 1))
        if space > cut // 2:
            cut = space
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def keyboard(buttons: tuple[tuple[str, str], ...]) -> InlineKeyboardMarkup | None:
    """Inline buttons: callback data, or a link when the data is an http(s) URL."""
    if not buttons:
        return None
    keys: list[InlineKeyboardButton] = []
    for label, data in buttons:
        if data.startswith(("https://", "http://")):
            keys.append(InlineKeyboardButton(text=label, url=data))
        elif 0 < len(data.encode()) <= CALLBACK_DATA_LIMIT:
            keys.append(InlineKeyboardButton(text=label, callback_data=data))
        else:
            raise ValueError(f"button {label!r}: callback data must be 1-64 bytes")
    # A few short answers ("Ja", "Nee") fit on one row; anything else gets a row per button.
    if len(keys) <= 3 and all(len(key.text) <= 12 for key in keys):
        return InlineKeyboardMarkup(inline_keyboard=[keys])
    return InlineKeyboardMarkup(inline_keyboard=[[key] for key in keys])


def document_of(attachment: Attachment) -> BufferedInputFile | str:
    if attachment.content is not None:
        return BufferedInputFile(attachment.content, filename=attachment.filename)
    if attachment.ref:  # a Telegram file_id, or a URL Telegram fetches itself
        return attachment.ref
    raise ValueError(f"attachment {attachment.filename!r} has neither bytes nor a reference")


Part = tuple[Literal["text"], str] | tuple[Literal["document"], BufferedInputFile | str, str | None]


def parts_of(message: OutboundMessage) -> list[Part]:
    """The Telegram messages one reply becomes: text pieces, then documents (short text as caption)."""
    texts = split_text(message.text)
    documents = list(message.attachments)
    parts: list[Part] = []
    caption = None
    if documents and len(texts) == 1 and utf16_len(texts[0]) <= CAPTION_LIMIT:
        caption = texts.pop()
    parts.extend(("text", text) for text in texts)
    for index, attachment in enumerate(documents):
        parts.append(("document", document_of(attachment), caption if index == 0 else None))
    if not parts:
        raise ValueError("nothing to send: no text and no attachments")
    return parts


async def send_part(
    bot: Bot,
    chat_id: int | str,
    part: Part,
    reply: ReplyParameters | None,
    markup: InlineKeyboardMarkup | None,
) -> Message:
    if part[0] == "text":
        return await bot.send_message(
            chat_id,
            escape(part[1], quote=False),
            parse_mode=PARSE_MODE,
            reply_parameters=reply,
            reply_markup=markup,
        )
    document, caption = part[1], part[2]
    return await bot.send_document(
        chat_id,
        document,
        caption=escape(caption, quote=False) if caption else None,
        parse_mode=PARSE_MODE if caption else None,
        reply_parameters=reply,
        reply_markup=markup,
    )


async def send(
    config: JsonObject, message: OutboundMessage, *, bots: Bots | None = None
) -> SendResult:
    """Send a reply: text as escaped HTML (split when long), documents, inline buttons.

    The reply-to goes on the first Telegram message, the buttons on the last; the external id
    is the first one's "<chat_id>:<message_id>". A failure after the first part retries the whole.
    """
    try:
        BotConfig.from_json(config)
        chat_id = chat_id_of(message.to)
        parts = parts_of(message)
        markup = keyboard(message.buttons)
    except ValueError as exc:
        return SendResult("failed", error=str(exc))
    replied = replied_message_id(message.reply_to_external_id)
    reply = (
        ReplyParameters(message_id=replied, allow_sending_without_reply=True) if replied else None
    )
    first: Message | None = None
    async with bot_for(config, bots) as (bot, settings):
        try:
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                sent = await send_part(
                    bot, chat_id, part, reply if first is None else None, markup if last else None
                )
                first = first or sent
        except CAUGHT as exc:
            error = api_error(exc, settings.token)
            status: Literal["retry", "failed"] = "retry" if error.temporary else "failed"
            return SendResult(status, error=error.reason, retry_after_s=error.retry_after_s)
    assert first is not None
    return SendResult("sent", external_id=message_key(first.chat.id, first.message_id))


async def download(
    config: JsonObject,
    file_id: str,
    *,
    bots: Bots | None = None,
    max_bytes: int = DOWNLOAD_LIMIT,
) -> tuple[bytes, str | None]:
    """A file's bytes by file_id (getFile, then the file URL), and its path on Telegram's side."""
    async with bot_for(config, bots) as (bot, settings):
        try:
            file = await bot.get_file(file_id)
            if not file.file_path:
                raise BotAPIError("Telegram has no download path for this file (over 20 MB?)")
            url = bot.session.api.file_url(bot.token, file.file_path)
            content = bytearray()
            stream = bot.session.stream_content(url, timeout=120, raise_for_status=True)
            async with aclosing(stream):  # also when we stop reading at the size limit
                async for chunk in stream:
                    content += chunk
                    if len(content) > max_bytes:
                        raise BotAPIError(f"file over {max_bytes} bytes")
        except CAUGHT as exc:
            raise api_error(exc, settings.token) from None
    return bytes(content), file.file_path


async def set_webhook(config: JsonObject, url: str, *, bots: Bots | None = None) -> None:
    """Point the bot's Updates at our webhook URL, signed with the channel's secret token."""
    async with bot_for(config, bots) as (bot, settings):
        if settings.webhook_secret is None:
            raise ValueError("webhook_secret is not set; prepare_config generates one")
        try:
            await bot.set_webhook(
                url,
                secret_token=settings.webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
            )
        except CAUGHT as exc:
            raise api_error(exc, settings.token) from None


async def delete_webhook(config: JsonObject, *, bots: Bots | None = None) -> None:
    """Stop webhook delivery, which getUpdates needs (Telegram answers 409 otherwise)."""
    async with bot_for(config, bots) as (bot, settings):
        try:
            await bot.delete_webhook()
        except CAUGHT as exc:
            raise api_error(exc, settings.token) from None


async def answer_callback(
    config: JsonObject,
    callback_query_id: str,
    text: str | None = None,
    *,
    bots: Bots | None = None,
) -> None:
    """Stop the button's spinner, optionally with a short notice; do it within seconds."""
    async with bot_for(config, bots) as (bot, settings):
        try:
            await bot.answer_callback_query(callback_query_id, text=text)
        except CAUGHT as exc:
            raise api_error(exc, settings.token) from None


async def get_bot_username(config: JsonObject, *, bots: Bots | None = None) -> str | None:
    """The bot's @username (getMe), for the channel's bot_username setting."""
    async with bot_for(config, bots) as (bot, settings):
        try:
            return (await bot.get_me()).username
        except CAUGHT as exc:
            raise api_error(exc, settings.token) from None


async def get_updates(
    config: JsonObject,
    offset: int | None,
    timeout: int,  # noqa: ASYNC109 - the long-poll wait Telegram holds the request open for
    *,
    bots: Bots | None = None,
    limit: int = 100,
) -> list[JsonObject]:
    """Long-poll for Updates, returned as the raw JSON objects (journal them like webhook bodies).

    Pass the last update_id + 1 as `offset` to confirm everything before it.
    """
    method = GetUpdates(
        offset=offset, limit=limit, timeout=timeout, allowed_updates=list(ALLOWED_UPDATES)
    )
    async with bot_for(config, bots) as (bot, settings):
        session = cast(AiohttpSession, bot.session)
        try:
            # aiogram would turn the result into Update models; we keep Telegram's own JSON.
            http = await session.create_session()
            url = session.api.api_url(token=bot.token, method="getUpdates")
            form = session.build_form_data(bot, method)
            wait = ClientTimeout(total=timeout + 15)
            async with http.post(url, data=form, timeout=wait) as response:
                status, content = response.status, await response.text()
            answer = json.loads(content)
            if status == 200 and isinstance(answer, dict) and answer.get("ok") is True:
                updates = answer.get("result")
                if not isinstance(updates, list):
                    raise BotAPIError("getUpdates answered without a result list", temporary=True)
                return [update for update in updates if isinstance(update, dict)]
            session.check_response(bot, method, status, content)  # raises the matching error
            raise BotAPIError(f"getUpdates answered HTTP {status}", temporary=True)
        except json.JSONDecodeError:
            reason = "getUpdates answered something other than JSON"
            raise BotAPIError(reason, temporary=True) from None
        except CAUGHT as exc:
            raise api_error(exc, settings.token) from None
