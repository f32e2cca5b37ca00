"""Telegram Update JSON, read into InboundMessage: pure functions over the journaled bytes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from channels.base import (
    Attachment,
    InboundMessage,
    JsonObject,
    JsonValue,
    Sender,
    Unprocessable,
    bare_filename,
    json_object,
)

# Update kinds we store as messages, and whether the kind is an edit.
MESSAGE_KINDS = {
    "message": False,
    "edited_message": True,
    "channel_post": False,
    "edited_channel_post": True,
}
STORED_KINDS = (*MESSAGE_KINDS, "callback_query")
# What setWebhook/getUpdates ask for; my_chat_member tells when a user blocks the bot.
ALLOWED_UPDATES = (*STORED_KINDS, "my_chat_member")
GROUP_TYPES = frozenset({"group", "supergroup"})
COMMAND = re.compile(r"/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?", re.DOTALL)


def load_update(body: bytes) -> JsonObject:
    """The Update object in a body; ParseError if it is not one."""
    data = json_object(body, "a Telegram Update")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise Unprocessable("update_id missing or not an integer")
    return data


def update_kind(update: JsonObject) -> str | None:
    """Which of an Update's optional fields it carries (message, callback_query, ...)."""
    return next((key for key in update if key != "update_id"), None)


def child(parent: JsonObject, name: str) -> JsonObject | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Unprocessable(f"{name} is not an object")
    return value


def required_child(parent: JsonObject, name: str, where: str) -> JsonObject:
    value = child(parent, name)
    if value is None:
        raise Unprocessable(f"{where}.{name} missing")
    return value


def integer(parent: JsonObject, name: str, where: str) -> int:
    value = parent.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Unprocessable(f"{where}.{name} missing or not an integer")
    return value


def text_of(parent: JsonObject, name: str) -> str | None:
    value = parent.get(name)
    return value if isinstance(value, str) and value else None


def number(parent: JsonObject, name: str) -> int | float | None:
    value = parent.get(name)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def full_name(person: JsonObject) -> str | None:
    parts = (text_of(person, "first_name"), text_of(person, "last_name"))
    return " ".join(p for p in parts if p) or None


def message_key(chat_id: int, message_id: int) -> str:
    """A message's id in our store: message ids are only unique within a chat."""
    return f"{chat_id}:{message_id}"


def sender_of(message: JsonObject, chat: JsonObject) -> Sender:
    # Channel posts and anonymous group admins speak as a chat, not as a user.
    speaker = child(message, "sender_chat") or (chat if chat.get("type") == "channel" else None)
    user = child(message, "from")
    if speaker is not None or user is None:
        speaker = speaker or chat
        return Sender(name=text_of(speaker, "title"), username=text_of(speaker, "username"))
    return Sender(
        name=full_name(user),
        telegram_id=str(integer(user, "id", "from")),
        username=text_of(user, "username"),
    )


def file_attachment(
    media: JsonObject, where: str, default_name: str, default_type: str
) -> Attachment:
    file_id = text_of(media, "file_id")
    if file_id is None:
        raise Unprocessable(f"{where}.file_id missing")
    unique = text_of(media, "file_unique_id") or file_id[-12:]
    size = number(media, "file_size")
    return Attachment(
        filename=bare_filename(text_of(media, "file_name") or "")
        or default_name.format(unique=unique),
        content_type=text_of(media, "mime_type") or default_type,
        size=int(size or 0),
        ref=file_id,
    )


def sticker_attachment(sticker: JsonObject) -> Attachment:
    if sticker.get("is_animated") is True:
        return file_attachment(
            sticker, "sticker", "sticker-{unique}.tgs", "application/x-tgsticker"
        )
    if sticker.get("is_video") is True:
        return file_attachment(sticker, "sticker", "sticker-{unique}.webm", "video/webm")
    return file_attachment(sticker, "sticker", "sticker-{unique}.webp", "image/webp")


# Media fields of a Message: (default file name, default content type). An animation also
# arrives as a document, so the document field covers it.
MEDIA = {
    "document": ("document-{unique}", "application/octet-stream"),
    "voice": ("voice-{unique}.ogg", "audio/ogg"),
    "video_note": ("video-note-{unique}.mp4", "video/mp4"),
    "video": ("video-{unique}.mp4", "video/mp4"),
    "audio": ("audio-{unique}.mp3", "audio/mpeg"),
}


def attachments_of(message: JsonObject) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    photo = message.get("photo")
    if isinstance(photo, list) and photo:
        sizes = [size for size in photo if isinstance(size, dict)]
        # Telegram lists the sizes smallest first; pick by area in case it ever does not.
        largest = max(sizes, key=lambda s: (number(s, "width") or 0) * (number(s, "height") or 0))
        found.append(file_attachment(largest, "photo", "photo-{unique}.jpg", "image/jpeg"))
    for name, (default_name, default_type) in MEDIA.items():
        if (media := child(message, name)) is not None:
            found.append(file_attachment(media, name, default_name, default_type))
    if (sticker := child(message, "sticker")) is not None:
        found.append(sticker_attachment(sticker))
    return tuple(found)


def mentions(text: str, username: str) -> bool:
    """Whether text names @username (a mention or a /command@username)."""
    return re.search(rf"(?<![\w@])@{re.escape(username)}(?!\w)", text, re.IGNORECASE) is not None


def addressed(
    message: JsonObject, chat_type: str, text: str, bot_id: str, bot_username: str | None
) -> bool:
    """Whether the bot is spoken to: always in a private chat, in a group only when named."""
    if chat_type == "private":
        return True
    if chat_type not in GROUP_TYPES:
        return False
    replied = child(message, "reply_to_message")
    replied_from = child(replied, "from") if replied is not None else None
    if replied_from is not None and str(replied_from.get("id")) == bot_id:
        return True
    if bot_username is None:
        return False
    command = COMMAND.fullmatch(text.strip())
    target = command.group(2) if command else None
    return mentions(text, bot_username) or (target or "").lower() == bot_username.lower()


def command_of(text: str, bot_username: str | None) -> tuple[str, str | None] | None:
    """A leading bot command meant for us: (name, payload)."""
    match = COMMAND.fullmatch(text.strip())
    if match is None:
        return None
    name, target, payload = match.groups()
    if target is not None and (bot_username is None or target.lower() != bot_username.lower()):
        return None  # a command for another bot in the group
    return name.lower(), (payload.strip() or None) if payload else None


def contact_meta(contact: JsonObject) -> JsonObject:
    keys = ("phone_number", "first_name", "last_name", "user_id", "vcard")
    return {key: contact[key] for key in keys if key in contact}


def location_meta(location: JsonObject) -> JsonObject:
    keys = ("latitude", "longitude", "horizontal_accuracy", "live_period", "heading")
    return {key: location[key] for key in keys if key in location}


def read_message(
    message: JsonObject,
    *,
    edited: bool,
    bot_id: str,
    bot_username: str | None,
) -> InboundMessage | None:
    chat = required_child(message, "chat", "message")
    chat_id = integer(chat, "id", "chat")
    message_id = integer(message, "message_id", "message")
    chat_type = text_of(chat, "type") or "private"
    sender = sender_of(message, chat)
    user = child(message, "from")
    text = text_of(message, "text") or text_of(message, "caption") or ""
    attachments = attachments_of(message)
    meta: JsonObject = {
        "chat_id": chat_id,
        "chat_type": chat_type,
        "message_id": message_id,
        "language_code": text_of(user, "language_code") if user else None,
        "addressed": addressed(message, chat_type, text, bot_id, bot_username),
    }
    if chat_type != "private" and (title := text_of(chat, "title")):
        meta["chat_title"] = title
    if media_group := text_of(message, "media_group_id"):
        meta["media_group_id"] = media_group

    if (contact := child(message, "contact")) is not None:
        phone = text_of(contact, "phone_number")
        if phone is None:
            raise Unprocessable("contact.phone_number missing")
        meta["contact"] = contact_meta(contact)
        # Only a user's own contact (the "share my number" button) tells us the sender's phone;
        # any other card from their address book is about someone else.
        own = sender.telegram_id is not None and str(contact.get("user_id")) == sender.telegram_id
        if own:
            # A Telegram account's number is international, but often comes without the "+".
            number_e164 = f"+{phone}" if phone.isdigit() else phone
            sender = Sender(
                name=sender.name,
                telegram_id=sender.telegram_id,
                username=sender.username,
                phones=(number_e164,),
            )
        text = text or " ".join(p for p in ("📇", full_name(contact), phone) if p)
    if (location := child(message, "location")) is not None:
        lat, lon = number(location, "latitude"), number(location, "longitude")
        if lat is None or lon is None:
            raise Unprocessable("location.latitude/longitude missing")
        meta["location"] = location_meta(location)
        text = text or f"📍 {lat},{lon}"
        if (venue := child(message, "venue")) is not None:
            meta["venue"] = {k: venue[k] for k in ("title", "address") if k in venue}
            place = ", ".join(p for p in (text_of(venue, "title"), text_of(venue, "address")) if p)
            text = f"📍 {place} ({lat},{lon})" if place else text
    if not text and (sticker := child(message, "sticker")) is not None:
        text = text_of(sticker, "emoji") or ""

    if not text and not attachments:
        return None  # service messages (members joined, chat photo changed, ...) and polls
    source_detail = None
    if text_of(message, "text") and (command := command_of(text, bot_username)):
        meta["command"] = command[0]
        if command[0] == "start":
            source_detail = command[1]
    replied = child(message, "reply_to_message")
    in_reply_to: tuple[str, ...] = ()
    if replied is not None:
        replied_id = integer(replied, "message_id", "reply_to_message")
        in_reply_to = (message_key(chat_id, replied_id),)
        meta["reply_to_message_id"] = replied_id

    when = integer(message, "edit_date" if edited else "date", "message")
    return InboundMessage(
        kind="message",
        external_id=message_key(chat_id, message_id),
        occurred_at=timestamp(when),
        sender=sender,
        text=text,
        thread_key=f"tg:{chat_id}",
        attachments=attachments,
        automated=user is not None and user.get("is_bot") is True,
        source_detail=source_detail,
        in_reply_to=in_reply_to,
        edited=edited,
        meta=meta,
    )


def button_text(message: JsonObject, data: str) -> str | None:
    """The label of the inline button that carries `data` on the bot's message."""
    markup = child(message, "reply_markup")
    rows: JsonValue = markup.get("inline_keyboard") if markup else None
    for row in rows if isinstance(rows, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == data:
                return text_of(button, "text")
    return None


def read_callback(query: JsonObject, arrival: datetime) -> InboundMessage | None:
    """A pressed inline button, as a message whose text is the button's data."""
    query_id = text_of(query, "id")
    if query_id is None:
        raise Unprocessable("callback_query.id missing")
    user = required_child(query, "from", "callback_query")
    message = child(query, "message")
    if message is None:
        return None  # a button on an inline-mode message: no chat to hold a conversation
    chat = required_child(message, "chat", "callback_query.message")
    chat_id = integer(chat, "id", "callback_query.message.chat")
    message_id = integer(message, "message_id", "callback_query.message")
    data = text_of(query, "data") or ""
    meta: JsonObject = {
        "chat_id": chat_id,
        "chat_type": text_of(chat, "type") or "private",
        "message_id": message_id,
        "language_code": text_of(user, "language_code"),
        "addressed": True,  # only our own buttons reach us
        "callback_query_id": query_id,
    }
    if label := button_text(message, data):
        meta["button_text"] = label
    return InboundMessage(
        kind="message",
        external_id=f"callback:{query_id}",
        occurred_at=arrival,  # a callback query carries no date of its own
        sender=Sender(
            name=full_name(user),
            telegram_id=str(integer(user, "id", "callback_query.from")),
            username=text_of(user, "username"),
        ),
        text=data,
        thread_key=f"tg:{chat_id}",
        in_reply_to=(message_key(chat_id, message_id),),
        meta=meta,
    )


def read_update(
    update: JsonObject, *, bot_id: str, bot_username: str | None, arrival: datetime
) -> InboundMessage | None:
    """The message an Update carries; None for kinds we do not store (my_chat_member, polls...)."""
    kind = update_kind(update)
    if kind in MESSAGE_KINDS:
        message = required_child(update, kind, "update")
        return read_message(
            message, edited=MESSAGE_KINDS[kind], bot_id=bot_id, bot_username=bot_username
        )
    if kind == "callback_query":
        return read_callback(required_child(update, kind, "update"), arrival)
    return None
