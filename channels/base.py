"""The contract between channel adapters and the service: pure data, no I/O, no database."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]


class AdapterError(Exception):
    """Base class for what an adapter refuses; `status` is the HTTP answer."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unauthorized(AdapterError):
    """Missing or wrong secret, token or signature: answered 401 and never journaled."""

    status = 401


class Forbidden(AdapterError):
    """A webhook handshake with the wrong verify token: answered 403."""

    status = 403


class ParseError(AdapterError):
    """Authenticated but malformed (broken JSON, unknown dialect): journaled as failed."""

    status = 400


class Unprocessable(ParseError):
    """Well-formed but missing what we need (a required field): journaled as failed."""

    status = 422


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery as received: raw bytes plus what authenticating it needs."""

    body: bytes
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    url: str  # the public URL the sender signed (scheme, host, path and query)
    method: str = "POST"
    remote: str | None = None
    received_at: datetime | None = None  # when we journaled it: the time of a message without one

    def arrival(self) -> datetime:
        return self.received_at or datetime.now(UTC)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def body_hash(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


@dataclass(frozen=True)
class Sender:
    """Who a message comes from, as the channel gives it (raw, not yet normalised)."""

    name: str | None = None
    company: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    telegram_id: str | None = None
    username: str | None = None
    city: str | None = None


CallStatus = Literal["answered", "missed", "busy", "failed"]


@dataclass(frozen=True)
class CallInfo:
    """A finished (or still running) call from a telephone system's log."""

    status: CallStatus | None  # None while the call is still in progress
    direction: Literal["inbound", "outbound"]
    number: str  # the customer's number as the system gave it
    our_number: str | None = None
    agent: str | None = None
    duration_s: int | None = None
    started_at: datetime | None = None
    recording_url: str | None = None
    sequence: int | None = None  # provider ordering of callbacks for one call


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    ref: str | None = None  # where the bytes are (a URL or a provider file id)
    content: bytes | None = field(default=None, repr=False)  # the bytes, when the payload has them
    inline: bool = False  # an inline image (Content-ID) rather than an attachment
    content_id: str | None = None
    refused: str | None = None  # why the bytes were not kept (over the size cap...)


@dataclass(frozen=True)
class InboundMessage:
    """What an adapter makes of a delivery; the ingest pipeline takes it from here."""

    kind: Literal["message", "form", "call", "receipt"]  # receipt: delivery status of ours
    external_id: str  # the message's own id (stable across callbacks of one call)
    occurred_at: datetime
    sender: Sender
    text: str = ""
    subject: str | None = None
    html: str | None = None
    direction: Literal["inbound", "outbound"] = "inbound"
    thread_key: str | None = None  # same key + channel → same open conversation
    call: CallInfo | None = None
    fields: Mapping[str, str] = field(default_factory=dict)  # extra form fields, kept
    attachments: tuple[Attachment, ...] = ()
    automated: bool = False  # auto-reply, bounce, list: stored, but no lead/task/answer
    source_detail: str | None = None  # e.g. a form id or a deep-link payload
    # Threading by reference: ids of earlier messages this one answers (In-Reply-To, References).
    in_reply_to: tuple[str, ...] = ()
    reply_token: str | None = None  # our own token found in the address or references
    recipients: tuple[str, ...] = ()  # To/Cc addresses (which mailbox it was sent to)
    full_text: str | None = None  # the whole body when `text` is stripped of quotes/signature
    bounce_of: str | None = None  # the Message-ID of our outbound message that bounced
    edited: bool = False  # an edit of an earlier message with the same external_id
    meta: Mapping[str, JsonValue] = field(default_factory=dict)  # channel specifics worth keeping


@dataclass(frozen=True)
class OutboundMessage:
    """A reply to send on the customer's channel."""

    to: str  # e-mail address, chat id, phone number
    text: str
    subject: str | None = None
    html: str | None = None
    message_id: str | None = None  # ours, set before sending so retries keep it
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    buttons: tuple[tuple[str, str], ...] = ()  # (label, callback data) for chat channels
    reply_to_external_id: str | None = None
    quote: str | None = None  # the customer's last message, for channels that quote history
    quote_attribution: str | None = None  # e.g. "Jan Visser <jan@example.nl> wrote on …:"
    template: Mapping[str, JsonValue] | None = None  # a pre-approved template (WhatsApp)


@dataclass(frozen=True)
class SendResult:
    """What the channel said when we sent: its id for the message, or why it failed."""

    status: Literal["sent", "failed", "retry"]
    external_id: str | None = None
    error: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Accepted:
    """How the HTTP layer should answer an authenticated delivery."""

    external_id: str  # the journal's dedupe key for this delivery
    redirect_to: str | None = None  # plain HTML forms get a redirect to a thank-you page
    drop: bool = False  # honeypot hit: answer as if accepted, keep nothing
    # Who sent it (an address, a number, a chat), when cheap to tell before processing: events of
    # one sender are processed in order and by one worker at a time.
    sender_key: str | None = field(default=None, compare=False)


def json_object(body: bytes, what: str) -> JsonObject:
    """A body that must be one JSON object; ParseError naming `what` when it is not."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise ParseError("body is not JSON we read: nested too deeply") from None
    if not isinstance(data, dict):
        raise ParseError(f"body is not a JSON object ({what})")
    return data


def phone_key(number: str | None) -> str | None:
    """A number's last nine digits: the same line whatever prefix or format it came with."""
    digits = "".join(ch for ch in number or "" if ch.isdigit())
    return f"tel:{digits[-9:]}" if digits else None


class Adapter(Protocol):
    """A channel kind. `config` is the channel instance's settings, secrets included."""

    kind: str

    def prepare_config(self, config: JsonObject) -> JsonObject:
        """Validate a new channel's settings, filling in generated secrets."""
        ...

    def secret_names(self) -> tuple[str, ...]:
        """Config keys that are secrets: shown once by the CLI, never logged."""
        ...

    def authenticate(self, config: JsonObject, delivery: Delivery) -> None:
        """Raise Unauthorized unless the delivery carries the channel's secret or signature."""
        ...

    def limited_per_address(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        """Whether this post counts against the per-address rate limit (public web pages)."""
        ...

    def accept(self, config: JsonObject, delivery: Delivery) -> Accepted:
        """Check the delivery parses and name its journal key; raise ParseError if not."""
        ...

    def normalize(self, config: JsonObject, delivery: Delivery) -> InboundMessage | None:
        """Turn a journaled delivery into a message; None when it carries nothing to store."""
        ...


_PATH_PART = re.compile(r"^.*[/\\]")


def bare_filename(raw: str) -> str:
    """A sender's file name without any folder part (no ../ climbing), at most 255 characters."""
    return _PATH_PART.sub("", " ".join(raw.splitlines())).strip(" .")[:255]


@runtime_checkable
class Handshake(Protocol):
    """A kind whose provider verifies the webhook URL by GET before it delivers (Meta)."""

    def verify(self, config: JsonObject, query: Mapping[str, str]) -> str:
        """The text to echo, or Forbidden."""
        ...


@runtime_checkable
class Batched(Protocol):
    """A kind whose provider puts several messages in one delivery (Meta batches them)."""

    def normalize_all(self, config: JsonObject, delivery: Delivery) -> list[InboundMessage]:
        """Every message of a journaled delivery, in order; each keeps its own external id."""
        ...


def messages_of(adapter: Adapter, config: JsonObject, delivery: Delivery) -> list[InboundMessage]:
    """What a journaled delivery carries: nothing, one message, or a provider's batch."""
    if isinstance(adapter, Batched):
        return adapter.normalize_all(config, delivery)
    msg = adapter.normalize(config, delivery)
    return [] if msg is None else [msg]
