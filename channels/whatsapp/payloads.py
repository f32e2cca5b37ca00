"""Cloud API webhook bodies, read into InboundMessage: pure functions over the journaled bytes."""

from __future__ import annotations

import hashlib
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


def load_values(body: bytes) -> list[JsonObject]:
    """Every change's `value` of a webhook body, in order (Meta batches several entries and
    changes into one delivery); ParseError if there is none."""
    data = json_object(body, "a Cloud API notification")
    if data.get("object") != "whatsapp_business_account":
        raise Unprocessable("object is not whatsapp_business_account")
    values: list[JsonObject] = []
    for entry in items(data, "entry"):
        for change in items(entry, "changes"):
            value = change.get("value")
            if not isinstance(value, dict):
                raise Unprocessable("entry[].changes[].value missing")
            values.append(value)
    if not values:
        raise Unprocessable("entry[0].changes[0].value missing")
    return values


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


def item_keys(values: list[JsonObject]) -> list[str]:
    """The dedupe key of every message (its wamid) and status (id and status) of a delivery."""
    keys: list[str] = []
    for value in values:
        keys += [
            required(m, "id", f"messages[{i}]") for i, m in enumerate(items(value, "messages"))
        ]
        for i, status in enumerate(items(value, "statuses")):
            where = f"statuses[{i}]"
            keys.append(
                f"status:{required(status, 'id', where)}:{required(status, 'status', where)}"
            )
    return keys


def journal_key(values: list[JsonObject]) -> str:
    """The delivery's dedupe key: the wamid of its one message (or id and status of its one
    receipt); for a batch, a digest of every item's key, so a redelivery is the same event."""
    keys = item_keys(values)
    if not keys:
        raise Unprocessable("neither messages nor statuses in the notification")
    if len(keys) == 1:
        return keys[0]
    return "batch:" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


def sender_key(values: list[JsonObject]) -> str | None:
    """The customer's wa_id (a phone number): one sender's events are processed in order. A
    batch from several customers goes with the channel's own events."""
    numbers = {
        number
        for value in values
        for item in (*items(value, "messages"), *items(value, "statuses"))
        if (number := text_of(item, "from") or text_of(item, "recipient_id"))
    }
    return f"wa:{numbers.pop()}" if len(numbers) == 1 else None


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


def read_message(
    value: JsonObject, message: JsonObject, arrival: datetime, where: str
) -> InboundMessage:
    wa_id = required(message, "from", where)
    wamid = required(message, "id", where)
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


def read_payload(values: list[JsonObject], arrival: datetime) -> list[InboundMessage]:
    """Every message of a notification in order, then its status updates as one `receipt`."""
    found = [
        read_message(value, message, arrival, f"messages[{i}]")
        for value in values
        for i, message in enumerate(items(value, "messages"))
    ]
    statuses = [status for value in values for status in items(value, "statuses")]
    if statuses:
        receipts: list[JsonValue] = [receipt_of(status) for status in statuses]
        found.append(
            InboundMessage(
                kind="receipt",
                external_id=journal_key([{"statuses": list(statuses)}]),
                occurred_at=timestamp(statuses[0], arrival),
                sender=Sender(),
                automated=True,
                meta={"receipts": receipts},
            )
        )
    return found
