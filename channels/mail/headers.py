"""Header values as text: RFC 2047 words (also malformed ones), addresses, message ids, dates."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from typing import Any

from channels.mail.charsets import clean, decode_bytes

# Lenient: no whitespace rule inside the text, an empty or odd charset, a language suffix.
ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?]*?)\?=")
FOLD = re.compile(r"\r?\n(?=[ \t])|\r\n?|\n")
SPACES = re.compile(r"\s+")
ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
ANGLE_ID = re.compile(r"<([^<>]*)>")
QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
B64_JUNK = re.compile(r"[^A-Za-z0-9+/]")


def header_values(message: Message[Any, Any], name: str) -> list[str]:
    """Every value of a header, raw as stored (str() also copes with a header object)."""
    return [str(value) for value in message.get_all(name) or ()]


def header_text(message: Message[Any, Any], name: str) -> str | None:
    """The first value of a header decoded to one line of text, or None when absent."""
    values = header_values(message, name)
    return decode_header_text(values[0]) if values else None


def param(part: Message[Any, Any], name: str, header: str = "content-type") -> str | None:
    """A parameter of a MIME header (RFC 2231 too), or None; a malformed header gives None."""
    try:
        value = part.get_param(name, header=header)
        if isinstance(value, tuple):
            return collapse_rfc2231_value(value)
    except (TypeError, ValueError, LookupError, IndexError):
        return None  # broken RFC 2231 continuations trip the standard library
    return value if isinstance(value, str) else None


def raw_to_text(value: str) -> str:
    """A raw header value (8-bit bytes smuggled as surrogates by the parser) as text, unfolded."""
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = value.encode("utf-8", "replace")
    return FOLD.sub("", decode_bytes(data))


def decode_header_text(value: str) -> str:
    """A header value with its encoded words decoded and its whitespace collapsed to one line."""
    text = raw_to_text(value)
    pieces: list[str] = []
    pending: list[tuple[str, bytes]] = []  # adjacent encoded words, joined before decoding
    position = 0

    def flush() -> None:
        charset_run: str | None = None
        data = b""
        for charset, chunk in pending:
            if charset_run is not None and charset != charset_run:
                pieces.append(decode_bytes(data, charset_run))
                data = b""
            charset_run = charset
            data += chunk
        if pending:
            pieces.append(decode_bytes(data, charset_run))
        pending.clear()

    for match in ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        if between.strip() or not pending:
            flush()
            pieces.append(between)
        charset = match.group(1).split("*", 1)[0]
        pending.append((charset, word_bytes(match.group(2), match.group(3))))
        position = match.end()
    flush()
    pieces.append(text[position:])
    return SPACES.sub(" ", clean("".join(pieces))).strip()


def word_bytes(encoding: str, text: str) -> bytes:
    """The bytes of one encoded word, tolerating broken padding and stray characters."""
    if encoding in "bB":
        data = B64_JUNK.sub("", text)
        if len(data) % 4 == 1:
            data = data[:-1]
        try:
            return base64.b64decode(data + "=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return b""
    raw = text.replace("_", " ").encode("utf-8", "replace")
    return QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def addresses(values: Iterable[str]) -> list[tuple[str | None, str]]:
    """(display name, address) pairs from address headers; names decoded, junk skipped."""
    found: list[tuple[str | None, str]] = []
    seen: set[str] = set()
    for value in values:
        text = raw_to_text(value)
        pairs = [(name, addr) for name, addr in getaddresses([text]) if "@" in addr]
        if not pairs:
            pairs = [("", addr) for addr in ADDRESS.findall(text)]
        for name, addr in pairs:
            address = clean(addr).strip().strip("<>\"' ")
            local, _, domain = address.rpartition("@")
            if not local or not domain or " " in address or address.lower() in seen:
                continue
            seen.add(address.lower())
            display = decode_header_text(name) if name else ""
            found.append((display or None, address))
    return found


def message_ids(values: Iterable[str]) -> list[str]:
    """Message ids without angle brackets, in header order, each once."""
    found: list[str] = []
    for value in values:
        text = raw_to_text(value)
        ids = [SPACES.sub("", i) for i in ANGLE_ID.findall(text)]
        if not ids:  # brackets missing: take the bare words that look like ids
            ids = [w.strip("\"'<>,;") for w in re.split(r"[\s,;]+", text) if "@" in w]
        for i in ids:
            if i and i not in found:
                found.append(clean(i))
    return found


def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 date as an aware datetime (UTC when the zone is missing), or None."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(decode_header_text(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if not 1970 <= when.year <= 2100:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
