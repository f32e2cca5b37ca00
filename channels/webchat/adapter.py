"""The web chat channel: a visitor's message as the widget posts it, from raw bytes only.

The HTTP layer has checked the origin, the visitor token and the rate limit; it passes on the
verified visitor id (`X-Webchat-Visitor`) and whether we were offline (`X-Webchat-Offline`)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

from channels.base import (
    Accepted,
    Attachment,
    Delivery,
    InboundMessage,
    JsonObject,
    JsonValue,
    ParseError,
    Sender,
    Unauthorized,
    Unprocessable,
)
from channels.signatures import new_secret
from channels.webchat.config import ChatConfig
from channels.webchat.tokens import visitor_of

VISITOR_HEADER = "x-webchat-visitor"
OFFLINE_HEADER = "x-webchat-offline"
MAX_TEXT = 10_000
MAX_FILES = 5
EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")


class TooLarge(ParseError):
    """A file over the channel's size limit: journaled as failed, answered 413."""

    status = 413


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def string(data: JsonObject, name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Unprocessable(f"{name} must be a string")
    if len(value) > limit:
        raise Unprocessable(f"{name} is over {limit} characters")
    return value.strip() or None


def load(body: bytes) -> JsonObject:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"broken JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError("the body must be a JSON object")
    return data


def files_of(data: JsonObject, limit: int) -> tuple[Attachment, ...]:
    raw: JsonValue = data.get("files") or []
    if not isinstance(raw, list) or len(raw) > MAX_FILES:
        raise Unprocessable(f"files must be a list of at most {MAX_FILES}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("data"), str):
            raise Unprocessable("each file needs name, type and base64 data")
        encoded = str(item["data"])
        if len(encoded) * 3 // 4 > limit + 3:
            raise TooLarge(f"file over the {limit} byte limit")
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise Unprocessable("file data is not base64") from None
        if len(content) > limit:
            raise TooLarge(f"file over the {limit} byte limit")
        name = string(item, "name", 200) or "file"
        ctype = string(item, "type", 200) or "application/octet-stream"
        out.append(
            Attachment(filename=name, content_type=ctype, size=len(content), content=content)
        )
    return tuple(out)


class Visit:
    """One posted message, read and checked; accept() and normalize() share it."""

    def __init__(self, config: ChatConfig, delivery: Delivery) -> None:
        visitor = delivery.headers.get(VISITOR_HEADER, "")
        if not visitor:
            raise Unauthorized("no visitor")
        data = load(delivery.body)
        client_id = string(data, "id", 100)
        if client_id is None:
            raise Unprocessable("id (the widget's message id) is required")
        self.visitor = visitor
        self.external_id = f"{visitor}:{client_id}"
        self.offline = delivery.headers.get(OFFLINE_HEADER) == "1"
        self.text = string(data, "text", MAX_TEXT) or ""
        self.name = string(data, "name", 200)
        self.email = string(data, "email", 300)
        self.button_text = string(data, "button_text", 200)
        self.page = string(data, "page", 1000)
        self.files = files_of(data, config.max_file_bytes)
        if not self.text and not self.files:
            raise Unprocessable("an empty message: send text or a file")
        if self.email and not EMAIL.match(self.email):
            raise Unprocessable("email is not an e-mail address")
        wanted = [f for f, mode in config.prechat.items() if mode == "required"]
        if self.offline:
            wanted.append("email")  # the answer goes by e-mail
        if missing := [f for f in wanted if not getattr(self, f)]:
            raise Unprocessable(f"missing required field(s): {', '.join(sorted(set(missing)))}")

    def message(self, arrival_delivery: Delivery) -> InboundMessage:
        meta: JsonObject = {
            "visitor_id": self.visitor,
            "origin": arrival_delivery.headers.get("origin"),
        }
        if self.offline:
            meta["reply_by"] = "email"  # outside business hours: answered by e-mail
        else:
            meta["reply_address"] = self.visitor
        if self.page:
            meta["page"] = self.page
        if self.button_text:
            meta["button_text"] = self.button_text
        return InboundMessage(
            kind="message",
            external_id=self.external_id,
            occurred_at=arrival_delivery.arrival(),
            sender=Sender(name=self.name, emails=(self.email,) if self.email else ()),
            text=self.text,
            subject="Web chat (offline)" if self.offline else None,
            thread_key=f"webchat:{self.visitor}",
            attachments=self.files,
            meta=meta,
        )


class WebchatAdapter:
    """The website chat widget: visitors identified by a signed token, one thread per visitor."""

    kind = "webchat"

    def prepare_config(self, config: JsonObject) -> JsonObject:
        prepared = dict(config)
        if not prepared.get("visitor_secret"):
            prepared["visitor_secret"] = new_secret(32)
        ChatConfig.from_json(prepared)
        return prepared

    def secret_names(self) -> tuple[str, ...]:
        return ("visitor_secret",)

    def limited_per_address(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return True  # posted by browsers (the widget's own route also limits per visitor)

    def authenticate(self, config: JsonObject, delivery: Delivery) -> None:
        settings = ChatConfig.from_json(config)
        if settings.visitor_secret is None:
            raise ValueError("visitor_secret is not set; prepare_config generates one")
        if not settings.allows(delivery.headers.get("origin")):
            raise Unauthorized("this site is not among the channel's allowed_origins")
        visitor = visitor_of(settings.visitor_secret, bearer(delivery.headers))
        if visitor is None:
            raise Unauthorized("missing or wrong visitor token")
        if delivery.headers.get(VISITOR_HEADER) != visitor:
            raise Unauthorized("X-Webchat-Visitor does not match the visitor token")

    def accept(self, config: JsonObject, delivery: Delivery) -> Accepted:
        visit = Visit(ChatConfig.from_json(config), delivery)
        return Accepted(visit.external_id, sender_key=f"webchat:{visit.visitor}")

    def normalize(self, config: JsonObject, delivery: Delivery) -> InboundMessage | None:
        return Visit(ChatConfig.from_json(config), delivery).message(delivery)
