"""The e-mail channel: a mailbox read over IMAP, answered over SMTP."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from channels.base import (
    Accepted,
    Delivery,
    InboundMessage,
    JsonObject,
    ParseError,
    Unauthorized,
)
from channels.mail.headers import message_ids
from channels.mail.parse import DEFAULT_MAX_ATTACHMENT_BYTES, parse_message

SECURITY = ("tls", "starttls", "plain")
AFTER_IMPORT = ("leave", "seen")
IMAP_PORTS = {"tls": 993, "starttls": 143, "plain": 143}
SMTP_PORTS = {"tls": 465, "starttls": 587, "plain": 25}


def _server(section: Any, name: str, ports: dict[str, int]) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise ValueError(f"{name} must be an object with host, port, security, username, password")
    server = dict(section)
    if not server.get("host"):
        raise ValueError(f"{name}.host is required")
    security = server.setdefault("security", "tls")
    if security not in SECURITY:
        raise ValueError(f"{name}.security must be one of {', '.join(SECURITY)}")
    port = server.setdefault("port", ports[security])
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"{name}.port must be a port number")
    return server


class EmailAdapter:
    """Mail arrives by IMAP sync, not by webhook: the sync journals raw messages itself."""

    kind = "email"

    def prepare_config(self, config: JsonObject) -> JsonObject:
        prepared: dict[str, Any] = dict(config)
        imap = _server(config.get("imap"), "imap", IMAP_PORTS)
        folders = imap.setdefault("folders", ["INBOX"])
        if (
            not isinstance(folders, list)
            or not folders
            or not all(isinstance(f, str) for f in folders)
        ):
            raise ValueError("imap.folders must be a non-empty list of folder names")
        after = imap.setdefault("after_import", "leave")
        if not isinstance(after, str) or not (after in AFTER_IMPORT or after.startswith("move:")):
            raise ValueError("imap.after_import must be leave, seen or move:<folder>")
        prepared["imap"] = imap
        if config.get("smtp") is not None:
            smtp = _server(config["smtp"], "smtp", SMTP_PORTS)
            if not smtp.get("from"):
                smtp["from"] = imap.get("username")
            prepared["smtp"] = smtp
        cap = prepared.setdefault("max_attachment_bytes", DEFAULT_MAX_ATTACHMENT_BYTES)
        if not isinstance(cap, int) or cap <= 0:
            raise ValueError("max_attachment_bytes must be a positive number")
        return prepared

    def secret_names(self) -> tuple[str, ...]:
        return ("imap.password", "smtp.password")

    def limited_per_address(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return False  # posted by a provider's servers, never by a browser

    def authenticate(self, config: JsonObject, delivery: Delivery) -> None:
        raise Unauthorized("e-mail arrives by IMAP, not by webhook")

    def accept(self, config: JsonObject, delivery: Delivery) -> Accepted:
        return Accepted(external_id=journal_key(delivery.body))

    def normalize(self, config: JsonObject, delivery: Delivery) -> InboundMessage | None:
        cap = config.get("max_attachment_bytes")
        return parse_message(
            delivery.body,
            max_attachment_bytes=cap if isinstance(cap, int) else DEFAULT_MAX_ATTACHMENT_BYTES,
            reply_domain=str(config["reply_domain"]) if config.get("reply_domain") else None,
            received_at=delivery.received_at,
        )


def journal_key(raw: bytes) -> str:
    """The Message-ID (without brackets), or a hash of the bytes when there is none."""
    if not raw.strip():
        raise ParseError("empty message")
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[: 256 * 1024])
        ids = message_ids([str(v) for v in headers.get_all("Message-ID") or []])
    except Exception:  # the worker reports what is wrong with it; the key must not fail
        ids = []
    return ids[0][:300] if ids else "sha256:" + hashlib.sha256(raw).hexdigest()
