"""Replies out over SMTP with aiosmtplib, threaded with In-Reply-To and References."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from typing import Any

import aiosmtplib
import structlog

from channels.base import JsonObject, OutboundMessage, SendResult
from channels.mail import imap
from channels.mail.tokens import reply_address

log = structlog.get_logger(__name__)

TIMEOUT_S = 30.0


def domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def one_line(value: str) -> str:
    """A header value on one line: a CR or LF from a customer or a form must not start a header."""
    return " ".join(value.splitlines())


def single_address(value: str) -> str | None:
    """The one address a reply goes to, or None: a line break or a list must not add recipients."""
    flat = one_line(value)
    found = getaddresses([flat])
    if len(found) != 1 or "@" not in found[0][1]:
        return None
    return formataddr(found[0])


def build_email(config: JsonObject, out: OutboundMessage) -> EmailMessage:
    """The RFC 5322 message for a reply; our Message-ID carries the conversation's token."""
    smtp: dict[str, Any] = dict(config.get("smtp") or {})  # type: ignore[arg-type]
    out = replace(
        out,
        to=single_address(out.to) or "",
        subject=one_line(out.subject) if out.subject else out.subject,
        message_id=one_line(out.message_id).replace(" ", "") if out.message_id else None,
        in_reply_to=one_line(out.in_reply_to).replace(" ", "") if out.in_reply_to else None,
        references=tuple(one_line(r).replace(" ", "") for r in out.references),
        attachments=tuple(replace(a, filename=one_line(a.filename)) for a in out.attachments),
    )
    if smtp.get("from_name"):
        smtp["from_name"] = one_line(str(smtp["from_name"]))
    sender = one_line(str(smtp.get("from") or smtp.get("username") or ""))
    domain = domain_of(sender)
    message = EmailMessage()
    message["From"] = (
        formataddr((str(smtp["from_name"]), sender)) if smtp.get("from_name") else sender
    )
    message["To"] = out.to
    subject = out.subject or ""
    if out.in_reply_to and subject and not subject.lower().startswith(("re:", "antw:", "aw:")):
        subject = f"Re: {subject}"
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    local = out.message_id or ""
    message["Message-ID"] = f"<{local if '@' in local else f'{local}@{domain}'}>"
    if out.in_reply_to:
        message["In-Reply-To"] = f"<{out.in_reply_to}>"
    if out.references:
        message["References"] = " ".join(f"<{r}>" for r in out.references[-20:])
    token = local.split(".")[1] if local.startswith("sb.") and local.count(".") >= 1 else None
    if config.get("reply_domain") and token:
        message["Reply-To"] = reply_address(token, str(config["reply_domain"]))
    message["Auto-Submitted"] = "no"
    text = out.text
    if out.quote and smtp.get("quote_history"):
        quoted = "\n".join(f"> {line}" if line else ">" for line in out.quote.splitlines())
        text = f"{text}\n\n{out.quote_attribution or ''}\n{quoted}\n"
    message.set_content(text)
    if out.html:
        message.add_alternative(out.html, subtype="html")
    for attachment in out.attachments:
        if attachment.content is None:
            continue
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return message


async def send(config: JsonObject, out: OutboundMessage) -> SendResult:
    """Send one reply; 4xx and connection trouble are retried, 5xx refusals fail with the reason."""
    smtp: dict[str, Any] = dict(config.get("smtp") or {})  # type: ignore[arg-type]
    if not smtp.get("host"):
        return SendResult("failed", error="this mailbox has no SMTP server configured")
    if single_address(out.to) is None:
        return SendResult("failed", error=f"not one e-mail address: {out.to!r}")
    message = build_email(config, out)
    security = smtp.get("security", "tls")
    try:
        await aiosmtplib.send(
            message,
            hostname=str(smtp["host"]),
            port=int(smtp.get("port", 465)),
            username=smtp.get("username") or None,
            password=smtp.get("password") or None,
            use_tls=security == "tls",
            start_tls=True if security == "starttls" else False,
            tls_context=ssl.create_default_context() if security != "plain" else None,
            timeout=TIMEOUT_S,
        )
    except aiosmtplib.SMTPResponseException as exc:
        reason = f"SMTP {exc.code}: {exc.message}"
        return SendResult("retry" if 400 <= exc.code < 500 else "failed", error=reason)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return SendResult("failed", error=f"recipient refused: {exc.recipients}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return SendResult("retry", error=f"{type(exc).__name__}: {exc}")
    await keep_copy(config, message)
    return SendResult("sent", external_id=str(message["Message-ID"]).strip("<>"))


async def keep_copy(config: JsonObject, message: EmailMessage) -> None:
    """APPEND the sent reply to the mailbox's Sent folder when one is configured (best effort)."""
    imap_config = config.get("imap")
    if not isinstance(imap_config, dict) or not imap_config.get("sent_folder"):
        return

    def append() -> None:
        box = imap.connect(imap_config)
        try:
            imap.append(box, message.as_bytes(), str(imap_config["sent_folder"]))
        finally:
            box.logout()

    try:
        await asyncio.to_thread(append)
    except Exception as exc:  # the customer has the reply; a missing copy is not a failure
        log.warning("could not keep a copy in the Sent folder", error=str(exc))
