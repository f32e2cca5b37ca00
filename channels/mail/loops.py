"""Mail no person wrote: auto-replies, bounces, lists. Stored, but never answered automatically."""

from __future__ import annotations

import re
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from typing import Any

from channels.mail.charsets import decode_bytes
from channels.mail.headers import (
    addresses,
    decode_header_text,
    header_text,
    header_values,
    param,
)
from channels.mail.headers import message_ids as parse_ids

MACHINE_SENDERS = {"mailer-daemon", "postmaster"}
BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
RETURNED_PARTS = {
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
}
STATUS_PARTS = {"message/delivery-status", "message/global-delivery-status"}
MESSAGE_ID_LINE = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
NOT_FAILED = {"delayed", "delivered", "relayed", "expanded"}


def classify(message: EmailMessage) -> str | None:
    """Why a message is automated (bounce, auto-reply, list mail), or None if a person wrote it."""
    report = report_type(message)
    if report == "delivery-status":
        return "delivery status notification"
    if report == "disposition-notification":
        return "read receipt"
    if header_values(message, "X-Failed-Recipients"):
        return "delivery status notification"
    for name in ("From", "Sender", "Return-Path"):
        for _, address in addresses(header_values(message, name)):
            if address.rpartition("@")[0].lower() in MACHINE_SENDERS:
                return f"sent by {address.rpartition('@')[0].lower()}"
    auto_submitted = (header_text(message, "Auto-Submitted") or "").lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"auto-submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if header_values(message, name):
            return name.lower()
    for name in ("Precedence", "X-Precedence"):
        precedence = (header_text(message, name) or "").lower()
        if precedence in BULK_PRECEDENCE:
            return f"precedence: {precedence}"
    for name in ("List-Id", "List-Unsubscribe"):
        if header_values(message, name):
            return name.lower()
    if any(v.strip() in ("<>", "") for v in header_values(message, "Return-Path")):
        return "null return-path"
    return None


def report_type(message: Message[Any, Any]) -> str | None:
    if message.get_content_type() != "multipart/report":
        return None
    value = param(message, "report-type")
    return value.strip().lower() if value else None


def bounced_message_id(message: EmailMessage) -> str | None:
    """The Message-ID (no brackets) of the message a bounce returns, if delivery failed.

    None for delay and success notifications, read receipts and anything that is no bounce.
    """
    if not is_bounce(message):
        return None
    statuses = status_blocks(message)
    actions = {(block.get("Action") or "").strip().lower() for block in statuses[1:]}
    actions.discard("")
    if actions and actions <= NOT_FAILED:
        return None
    for block in statuses:
        for name in ("Original-Message-ID", "X-Original-Message-ID"):
            ids = parse_ids([str(block.get(name) or "")])
            if ids:
                return ids[0]
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            returned = part.get_payload(0)
            if isinstance(returned, Message):
                ids = parse_ids(header_values(returned, "Message-ID"))
                if ids:
                    return ids[0]
        elif ctype in RETURNED_PARTS:
            ids = parse_ids(header_values(headers_of(part), "Message-ID"))
            if ids:
                return ids[0]
    for part in message.walk():  # a bounce without structure quotes the message in its text
        if part.get_content_maintype() == "text" and not part.is_multipart():
            found = MESSAGE_ID_LINE.search(part_text(part))
            if found:
                return parse_ids([found.group(1)])[0]
    return None


def bounce_reason(message: EmailMessage) -> str | None:
    """What a delivery report says went wrong: recipient, status code and diagnostic."""
    if not is_bounce(message):
        return None
    for block in status_blocks(message)[1:]:
        action = (block.get("Action") or "").strip().lower()
        if action in NOT_FAILED:
            continue
        recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        recipient = recipient.split(";", 1)[-1].strip()
        status = str(block.get("Status") or "").strip()
        diagnostic = str(block.get("Diagnostic-Code") or "").split(";", 1)[-1].strip()
        reason = decode_header_text(diagnostic or status)
        if recipient or reason:
            return f"{recipient}: {reason}" if recipient and reason else recipient or reason
    failed = header_text(message, "X-Failed-Recipients")
    if failed:
        return f"{failed}: delivery failed"
    return None


def is_bounce(message: EmailMessage) -> bool:
    reason = classify(message)
    return reason in ("delivery status notification", "sent by mailer-daemon", "sent by postmaster")


def status_blocks(message: Message[Any, Any]) -> list[Message[Any, Any]]:
    """The per-message block, then one block per recipient, of a delivery-status part."""
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype not in STATUS_PARTS:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):  # the parser splits message/delivery-status into blocks
            return [block for block in payload if isinstance(block, Message)]
        text = part_text(part).replace("\r\n", "\n")
        return [HeaderParser().parsestr(block) for block in re.split(r"\n\s*\n", text) if block]
    return []


def headers_of(part: Message[Any, Any]) -> Message[Any, Any]:
    """A text/rfc822-headers part (the returned message's header only) as a message."""
    return HeaderParser().parsestr(part_text(part))


def part_text(part: Message[Any, Any]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, param(part, "charset"))
