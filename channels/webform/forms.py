"""Plain form posts read from raw bytes: URL-encoded, multipart/form-data and flat JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Literal
from urllib.parse import parse_qsl

from channels.base import Attachment, JsonValue, ParseError, bare_filename

Format = Literal["urlencoded", "multipart", "json", "typeform"]


@dataclass(frozen=True)
class Submission:
    """A form post flattened to named text values, whatever format it came in."""

    format: Format
    values: dict[str, str]  # field name → value, in form order, blanks left out
    attachments: tuple[Attachment, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)  # another key → a field name
    types: dict[str, str] = field(default_factory=dict)  # field name → Typeform field type
    form_id: str | None = None
    form_title: str | None = None
    provider_id: str | None = None  # the sender's own id for this delivery
    submitted_at: datetime | None = None
    complete: bool = True  # False for a Typeform event other than a finished response


def clean(value: str) -> str:
    # Browsers send textarea line breaks as CRLF in every encoding.
    return value.replace("\r\n", "\n").strip()


def add(values: dict[str, str], name: str, value: str) -> None:
    """Keep a non-blank value; repeated names (checkbox groups) are joined."""
    value = clean(value)
    if not value:
        return
    values[name] = f"{values[name]}, {value}" if name in values else value


def decode(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset)
    except LookupError:
        raise ParseError(f"unknown charset {charset!r}") from None
    except UnicodeDecodeError:
        raise ParseError(f"body is not valid {charset}") from None


def charset_of(content_type: str) -> str:
    header = EmailMessage()
    header["content-type"] = content_type
    return header.get_content_charset() or "utf-8"


def parse_urlencoded(body: bytes, content_type: str) -> Submission:
    charset = charset_of(content_type)
    text = decode(body, charset)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"bad form encoding: {exc}") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        add(values, name, value)
    return Submission("urlencoded", values)


def parse_multipart(content_type: str, body: bytes) -> Submission:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart() or message.defects:
        problems = ", ".join(type(d).__name__ for d in message.defects) or "no parts"
        raise ParseError(f"broken multipart/form-data body ({problems})")
    values: dict[str, str] = {}
    attachments: list[Attachment] = []
    for part in message.iter_parts():
        params = dict(part["content-disposition"].params) if "content-disposition" in part else {}
        name = params.get("name")
        if not isinstance(name, str) or not name:
            raise ParseError("a multipart/form-data part has no field name")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = params.get("filename")
        if isinstance(filename, str):
            # An empty file input still sends a part, with no file name and no bytes.
            if filename or data:
                kind = part.get_content_type()
                shown = bare_filename(filename) or f"upload-{len(attachments) + 1}"
                attachments.append(Attachment(shown, kind, len(data), content=data))
            continue
        add(values, name, decode(data, part.get_content_charset() or "utf-8"))
    return Submission("multipart", values, tuple(attachments))


def load_json(body: bytes) -> JsonValue:
    try:
        data: JsonValue = json.loads(body)
    except UnicodeDecodeError:
        raise ParseError("JSON body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"broken JSON: {exc}") from None
    except RecursionError:
        raise ParseError("JSON nested too deeply") from None
    return data


def scalar(value: JsonValue) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def parse_flat_json(data: JsonValue) -> Submission:
    if not isinstance(data, dict):
        raise ParseError("JSON body is not an object")
    values: dict[str, str] = {}
    for name, value in data.items():
        items = value if isinstance(value, list) else [value]
        texts = [scalar(item) for item in items]
        if any(t is None and item is not None for t, item in zip(texts, items, strict=True)):
            raise ParseError(f"field {name!r} is nested JSON; post a flat object of fields")
        for text in texts:
            if text is not None:
                add(values, name, text)
    return Submission("json", values)
