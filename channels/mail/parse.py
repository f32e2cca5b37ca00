"""A raw RFC 5322 message as an InboundMessage: bodies, attachments, identities, threading."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import MessageError
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import parseaddr
from io import BytesIO
from typing import Any, cast

from channels.base import (
    Attachment,
    InboundMessage,
    JsonValue,
    ParseError,
    Sender,
    Unprocessable,
    bare_filename,
)
from channels.mail.charsets import clean, decode_bytes
from channels.mail.headers import (
    addresses,
    decode_header_text,
    header_text,
    header_values,
    message_ids,
    param,
    parse_date,
    raw_to_text,
)
from channels.mail.html_text import html_to_text
from channels.mail.loops import bounce_reason, bounced_message_id, classify
from channels.mail.quotes import strip_reply
from channels.mail.tokens import find_reply_token

DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 2**20
MAX_ID = 300  # the journal key and the database column hold this much of a Message-ID
MAX_DEPTH = 40  # MIME nesting deeper than any client makes: the rest is not looked at
NO_REPLY = re.compile(r"^(?:no-?reply|no_reply|do-?not-?reply|do_not_reply)(?:[+._-].*)?$", re.I)
FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|fw|doorst|wg|tr|rv)\s*:", re.IGNORECASE)
EXTENSIONS = {
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "text/rfc822-headers": ".txt",
    "message/global-headers": ".txt",
}
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
HEADER_END = re.compile(rb"\r?\n\r?\n")


class RawHeaders(Compat32):
    """Header values come back exactly as received; channels.mail.headers decodes them."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


RAW_HEADERS = RawHeaders(linesep="\r\n")


def read_message(raw: bytes) -> EmailMessage:
    """The MIME tree of a raw message; header values stay raw (see channels.mail.headers)."""
    end = HEADER_END.search(raw)
    head, body = (raw[: end.end()], raw[end.end() :]) if end else (raw, b"")
    parser = BytesParser(EmailMessage, policy=RAW_HEADERS)
    return cast(EmailMessage, parser.parsebytes(head.replace(b"\x00", b"") + body))


@dataclass
class Bodies:
    """What a walk over the MIME tree finds."""

    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    flowed: bool = False
    delsp: bool = False
    attachments: list[Attachment] = field(default_factory=list)


def parse_message(
    raw: bytes,
    *,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    reply_domain: str | None = None,
    received_at: datetime | None = None,
) -> InboundMessage:
    """Parse one raw e-mail; ParseError (with a reason) only when it is no e-mail at all.

    `reply_domain` is the domain of our reply+<token>@ addresses; `received_at` (when the
    mailbox got it) dates a message whose Date header is missing or unreadable.
    """
    if not raw.strip():
        raise ParseError("empty message: no bytes")
    try:
        message = read_message(raw)
        return build(message, raw, max_attachment_bytes, reply_domain, received_at)
    except (ValueError, TypeError, LookupError, IndexError, AttributeError, MessageError) as exc:
        # A MIME tree the standard library chokes on: fail the event with the reason, keep going.
        raise ParseError(f"unreadable MIME structure: {type(exc).__name__}: {exc}") from exc
    except RecursionError as exc:
        raise ParseError("MIME parts nested too deeply") from exc


def build(
    message: EmailMessage,
    raw: bytes,
    cap: int,
    reply_domain: str | None,
    received_at: datetime | None,
) -> InboundMessage:
    if not message.keys():
        raise ParseError("no header fields: not an RFC 5322 message")
    senders = [addresses(header_values(message, name)) for name in ("From", "Sender")]
    reply_to = addresses(header_values(message, "Reply-To"))
    has_origin = any(n in message for n in ("From", "Sender", "Reply-To", "Return-Path"))
    if not has_origin:
        raise Unprocessable("no From, Sender or Reply-To header: nobody to attribute it to")
    origin = senders[0] or senders[1] or addresses(header_values(message, "Return-Path"))
    sender = make_sender(origin, reply_to, display_name(message) if not origin else None)

    own_ids = message_ids(header_values(message, "Message-ID"))
    message_id = own_ids[0][:MAX_ID] if own_ids else None
    external_id = message_id or f"sha256:{hashlib.sha256(raw).hexdigest()}"
    to = addresses(header_values(message, "To"))
    cc = addresses(header_values(message, "Cc"))
    recipients = tuple(address for _, address in to + cc)
    delivered = addresses(
        header_values(message, "Delivered-To") + header_values(message, "X-Original-To")
    )
    references = thread_references(message)
    token = find_reply_token(
        [*recipients, *(a for _, a in delivered)], references, reply_domain=reply_domain
    )

    found = Bodies()
    collect(message, found, cap, 0)
    html = "\n".join(found.html) if found.html else None
    full_text = "\n".join(found.text).strip()
    if found.flowed and len(found.text) == 1:
        full_text = unflow(found.text[0], found.delsp).strip()
    if not full_text and html:
        full_text = html_to_text(html)
    subject = header_text(message, "Subject") or None
    forwarded = bool(subject and FORWARD_SUBJECT.match(subject))
    text = strip_reply(full_text, forwarded=forwarded) or full_text

    auto = classify(message)
    bounce_of = bounced_message_id(message) if auto else None
    meta: dict[str, JsonValue] = {}
    if message_id:
        meta["message_id"] = message_id
    if origin:
        meta["from"] = origin[0][1]
    meta["to"] = [address for _, address in to]
    if cc:
        meta["cc"] = [address for _, address in cc]
    if reply_to:
        meta["reply_to"] = [address for _, address in reply_to]
    reply_target = (reply_to or origin or [(None, "")])[0][1]
    if reply_target:
        meta["reply_address"] = reply_target
    if delivered:
        meta["delivered_to"] = [address for _, address in delivered]
    list_id = header_text(message, "List-Id")
    if list_id:
        meta["list_id"] = list_id
    if auto:
        meta["auto"] = auto
        reason = (
            bounce_reason(message)
            if bounce_of or auto.startswith(("delivery", "sent by"))
            else None
        )
        if reason:
            meta["bounce"] = reason
    defects = sorted({type(d).__name__ for part in message.walk() for d in part.defects})
    if defects:
        meta["defects"] = list(defects)

    return InboundMessage(
        kind="message",
        external_id=external_id,
        occurred_at=occurred_at(message, received_at),
        sender=sender,
        text=text,
        subject=subject,
        html=html,
        attachments=tuple(found.attachments),
        automated=auto is not None,
        in_reply_to=tuple(references),
        reply_token=token,
        recipients=recipients,
        full_text=full_text,
        bounce_of=bounce_of,
        meta=meta,
    )


def make_sender(
    origin: list[tuple[str | None, str]],
    reply_to: list[tuple[str | None, str]],
    fallback_name: str | None,
) -> Sender:
    """The From address first, then Reply-To; a no-reply From gives way to its Reply-To."""
    name = origin[0][0] if origin else fallback_name
    emails = [address for _, address in origin[:1]]
    if emails and reply_to and NO_REPLY.match(emails[0].rpartition("@")[0]):
        # A web form relaying a visitor's message: the visitor is in Reply-To.
        emails = []
        name = reply_to[0][0] or name
    for _, address in reply_to:
        if address.lower() not in (e.lower() for e in emails):
            emails.append(address)
    return Sender(name=name, emails=tuple(emails))


def display_name(message: Message[Any, Any]) -> str | None:
    """The From name when From has no usable address ("MAILER DAEMON <>")."""
    values = header_values(message, "From")
    if not values:
        return None
    name, _ = parseaddr(raw_to_text(values[0]))
    return decode_header_text(name or values[0]).strip("<>\"' ") or None


def thread_references(message: Message[Any, Any]) -> list[str]:
    """In-Reply-To, then References newest first: the messages this one answers."""
    ids: list[str] = []
    for i in [
        *message_ids(header_values(message, "In-Reply-To")),
        *reversed(message_ids(header_values(message, "References"))),
    ]:
        if i[:MAX_ID] not in ids:
            ids.append(i[:MAX_ID])
    return ids


def occurred_at(message: Message[Any, Any], received_at: datetime | None) -> datetime:
    """The Date header; else when our server received it (the top Received line); else now."""
    when = parse_date(header_text(message, "Date"))
    if when is None:
        received = header_values(message, "Received")
        if received:
            when = parse_date(received[0].rpartition(";")[2])
    return when or received_at or datetime.now(UTC)


def collect(part: Message[Any, Any], found: Bodies, cap: int, depth: int) -> None:
    """Sort the leaves of the MIME tree into text bodies, HTML bodies and attachments."""
    if depth > MAX_DEPTH:
        return
    ctype = part.get_content_type()
    if part.is_multipart():
        if part.get_content_maintype() == "message":  # an attached or returned message
            found.attachments.append(attachment(part, found, cap, message_bytes(part)))
            return
        for sub in part.get_payload():
            if isinstance(sub, Message):
                collect(sub, found, cap, depth + 1)
        return
    disposition = part.get_content_disposition()
    filename = part_filename(part)
    payload = payload_bytes(part)
    body_type = ctype in ("text/plain", "text/html") or part.get_content_maintype() == "multipart"
    if body_type and disposition != "attachment" and not filename:
        text = decode_bytes(payload, param(part, "charset"))
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if ctype == "text/html":
            found.html.append(text)
        else:
            found.text.append(text)
            if (param(part, "format") or "").lower() == "flowed":
                found.flowed = True
                found.delsp = (param(part, "delsp") or "").lower() == "yes"
        return
    found.attachments.append(attachment(part, found, cap, payload))


def content_type(part: Message[Any, Any]) -> str:
    """The part's media type, or application/octet-stream when the header is junk."""
    ctype = part.get_content_type()
    return ctype if MEDIA_TYPE.match(ctype) else "application/octet-stream"


def attachment(part: Message[Any, Any], found: Bodies, cap: int, payload: bytes) -> Attachment:
    ctype = content_type(part)
    disposition = part.get_content_disposition()
    content_id = (header_text(part, "Content-ID") or "").strip().strip("<>") or None
    inline = part.get_content_maintype() == "image" and disposition != "attachment"
    inline = inline and (content_id is not None or disposition == "inline")
    filename = part_filename(part) or fallback_filename(ctype, len(found.attachments) + 1)
    size = len(payload)
    over = size > cap
    return Attachment(
        filename=filename,
        content_type=ctype,
        size=size,
        content=None if over else payload,
        inline=inline,
        content_id=content_id,
        refused=f"over the size cap of {cap} bytes" if over else None,
    )


def part_filename(part: Message[Any, Any]) -> str | None:
    """The part's file name, decoded (also Outlook's RFC 2047 words) and without any path."""
    raw = param(part, "filename", "content-disposition") or param(part, "name")
    if not raw:
        return None
    return bare_filename(decode_header_text(raw)) or None


def fallback_filename(ctype: str, number: int) -> str:
    extension = EXTENSIONS.get(ctype) or mimetypes.guess_extension(ctype, strict=False) or ".bin"
    return f"part-{number}{extension}"


def payload_bytes(part: Message[Any, Any]) -> bytes:
    """The decoded body of a leaf part: base64 and quoted-printable undone, leniently."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def message_bytes(part: Message[Any, Any]) -> bytes:
    """An attached message (or a delivery report's blocks) serialised back to bytes."""
    blocks = [p for p in part.get_payload() if isinstance(p, Message)]
    out = BytesIO()
    try:
        for block in blocks:  # each comes out with its closing empty line
            BytesGenerator(out, mangle_from_=False, policy=RAW_HEADERS).flatten(block)
    except (UnicodeError, MessageError):  # headers the generator will not fold: write them as is
        return b"\r\n".join(dump(block) for block in blocks)
    return out.getvalue()


def dump(message: Message[Any, Any]) -> bytes:
    """A plain rendering of a part and its subparts, for what the generator refuses."""
    head = "".join(f"{name}: {value}\r\n" for name, value in message.items())
    payload = message.get_payload()
    if isinstance(payload, list):
        boundary = f"--{message.get_boundary() or 'part'}".encode("utf-8", "surrogateescape")
        inner = b"".join(boundary + b"\r\n" + dump(p) for p in payload if isinstance(p, Message))
        body = inner + boundary + b"--\r\n"
    else:
        body = str(payload).encode("utf-8", "surrogateescape")
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + body


def unflow(text: str, delsp: bool = False) -> str:
    """Join format=flowed soft line breaks (RFC 3676) back into paragraphs."""
    out: list[list[str]] = []  # each line as its pieces, joined once at the end
    out_depth = 0
    joining = False
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        joined = joining and depth == out_depth
        joining = content.endswith(" ") and content != "-- "
        if joining and delsp:
            content = content[:-1]
        if joined:
            out[-1].append(content)
        else:
            out.append([">" * depth + (" " if depth and content else "") + content])
            out_depth = depth
    return clean("\n".join("".join(pieces) for pieces in out))
