"""Cloud API webhook bodies, read into InboundMessage: pure functions over the journaled bytes."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.base import (
    Attachment,
    InboundMessage,
    JsonObject,
    JsonValue,
    Sender,
    Unprocessable,
    json_object,
)

MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
RECEIPT_STATUSES = ("sent", "delivered", "read", "failed")
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "video/mp4": ".mp4",
    "application/pdf": ".pdf",
}


def load_payload(body: bytes) -> JsonObject:
    """The first change's `value` of a webhook body; ParseError if it is not one."""
    data = json_object(body, "a Cloud API notification")
    if data.get("object") != "whatsapp_business_account":
        raise Unprocessable("object is not whatsapp_business_account")
    entries = data.get("entry")
    entry = entries[0] if isinstance(entries, list) and entries else None
    changes = entry.get("changes") if isinstance(entry, dict) else None
    change = changes[0] if isinstance(changes, list) and changes else None
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        raise Unprocessable("entry[0].changes[0].value missing")
    return value


def items(value: JsonObject, name: str) -> list[JsonObject]:
    found = value.get(name)
    if found is None:
        return []
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise Unprocessable(f"{name} is not a list of objects")
    return [item for item in found if isinstance(item, dict)]


def text_of(parent: JsonValue, name: str) -> str | None:
    value = parent.get(name) if isinstance(parent, dict) else None
    return value if isinstance(value, str) and value else None


def required(parent: JsonObject, name: str, where: str) -> str:
    value = text_of(parent, name)
    if value is None:
        raise Unprocessable(f"{where}.{name} missing")
    return value


def journal_key(value: JsonObject) -> str:
    """The delivery's dedupe key: the message's wamid, or the first receipt's id and status."""
    if messages := items(value, "messages"):
        return required(messages[0], "id", "messages[0]")
    if statuses := items(value, "statuses"):
        first = statuses[0]
        return f"status:{required(first, 'id', 'statuses[0]')}:{required(first, 'status', 'statuses[0]')}"
    raise Unprocessable("neither messages nor statuses in the notification")


def sender_key(value: JsonObject) -> str | None:
    """The customer's wa_id (a phone number): one sender's events are processed in order."""
    for message in items(value, "messages"):
        if number := text_of(message, "from"):
            return f"wa:{number}"
    for status in items(value, "statuses"):
        if number := text_of(status, "recipient_id"):
            return f"wa:{number}"
    return None


def timestamp(parent: JsonObject, arrival: datetime) -> datetime:
    raw = text_of(parent, "timestamp")
    if raw is None or not raw.isdigit():
        return arrival
    return datetime.fromtimestamp(int(raw), UTC)


def profile_name(value: JsonObject, wa_id: str) -> str | None:
    for contact in items(value, "contacts"):
        if contact.get("wa_id") == wa_id:
            return text_of(contact.get("profile"), "name")
    return None


def media_attachment(kind: str, media: JsonObject) -> Attachment:
    media_id = required(media, "id", kind)
    content_type = (text_of(media, "mime_type") or "application/octet-stream").split(";")[0].strip()
    filename = text_of(media, "filename") or f"{kind}-{media_id}{EXTENSIONS.get(content_type, '')}"
    return Attachment(filename=filename, content_type=content_type, size=0, ref=media_id)


def contact_card(card: JsonObject) -> tuple[str, JsonObject]:
    name = text_of(card.get("name"), "formatted_name") or ""
    phones = [p for p in (text_of(p, "phone") for p in items(card, "phones")) if p]
    emails = [e for e in (text_of(e, "email") for e in items(card, "emails")) if e]
    line = " ".join(part for part in ("📇", name, *phones, *emails) if part)
    return line, {"name": name, "phones": list(phones), "emails": list(emails)}


def read_content(kind: str, message: JsonObject) -> tuple[str, tuple[Attachment, ...], JsonObject]:
    """Text, attachments and channel details of one message by its type."""
    body = message.get(kind)
    part: JsonObject = body if isinstance(body, dict) else {}
    if kind == "text":
        return required(part, "body", "text"), (), {}
    if kind in MEDIA_TYPES:
        meta: JsonObject = {"voice": True} if part.get("voice") is True else {}
        return text_of(part, "caption") or "", (media_attachment(kind, part),), meta
    if kind == "interactive":
        reply = part.get(str(part.get("type")))
        if not isinstance(reply, dict):
            raise Unprocessable("interactive reply without button_reply or list_reply")
        data = required(reply, "id", "interactive reply")
        title = text_of(reply, "title") or data
        return title, (), {"button_data": data, "button_title": title}
    if kind == "button":  # a quick-reply button of a template message
        title = required(part, "text", "button")
        return title, (), {"button_data": text_of(part, "payload") or title, "button_title": title}
    if kind == "location":
        lat, lon = part.get("latitude"), part.get("longitude")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            raise Unprocessable("location.latitude/longitude missing")
        place = ", ".join(p for p in (text_of(part, "name"), text_of(part, "address")) if p)
        location: JsonObject = {"latitude": lat, "longitude": lon}
        if place:
            location["place"] = place
        text = f"📍 {place} ({lat},{lon})" if place else f"📍 {lat},{lon}"
        return text, (), {"location": location}
    if kind == "contacts":
        cards = [contact_card(card) for card in items(message, "contacts")]
        if not cards:
            raise Unprocessable("contacts message without a contact")
        return "\n".join(line for line, _ in cards), (), {"contacts": [c for _, c in cards]}
    # Reactions, orders, unknown types: kept with the raw payload for a person to look at.
    return f"[unsupported WhatsApp message: {kind}]", (), {"unsupported": True, "raw": message}


def read_message(value: JsonObject, message: JsonObject, arrival: datetime) -> InboundMessage:
    wa_id = required(message, "from", "messages[0]")
    wamid = required(message, "id", "messages[0]")
    kind = text_of(message, "type") or "unsupported"
    text, attachments, meta = read_content(kind, message)
    meta = {"type": kind, "wa_id": wa_id, "reply_address": wa_id, **meta}
    metadata = value.get("metadata")
    if number_id := text_of(metadata, "phone_number_id"):
        meta["phone_number_id"] = number_id
    context = message.get("context")
    replied = text_of(context, "id")
    return InboundMessage(
        kind="message",
        external_id=wamid,
        occurred_at=timestamp(message, arrival),
        sender=Sender(name=profile_name(value, wa_id), phones=(f"+{wa_id.lstrip('+')}",)),
        text=text,
        thread_key=f"wa:{wa_id}",
        attachments=attachments,
        source_detail=text_of(message.get("referral"), "source_url"),
        in_reply_to=(replied,) if replied else (),
        meta=meta,
    )


def receipt_of(status: JsonObject) -> JsonObject:
    state = required(status, "status", "statuses[]")
    if state not in RECEIPT_STATUSES:
        raise Unprocessable(f"status {state!r} is none of {', '.join(RECEIPT_STATUSES)}")
    receipt: JsonObject = {"of": required(status, "id", "statuses[]"), "status": state}
    errors = items(status, "errors")
    if errors:
        first = errors[0]
        detail = text_of(first.get("error_data"), "details") or text_of(first, "message")
        title = text_of(first, "title") or "failed"
        receipt["error"] = f"{first.get('code')}: {title}" + (f" ({detail})" if detail else "")
    return receipt


def read_payload(value: JsonObject, arrival: datetime) -> InboundMessage:
    """The message of a notification, or its receipts (status updates) as a `receipt`."""
    if messages := items(value, "messages"):
        return read_message(value, messages[0], arrival)
    statuses = items(value, "statuses")
    receipts: list[JsonValue] = [receipt_of(status) for status in statuses]
    first = statuses[0] if statuses else {}
    return InboundMessage(
        kind="receipt",
        external_id=journal_key(value),
        occurred_at=timestamp(first, arrival),
        sender=Sender(),
        automated=True,
        meta={"receipts": receipts},
    )
