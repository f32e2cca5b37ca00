"""Bytes to text for any charset a mail client may declare, never raising."""

from __future__ import annotations

import codecs
import re

# Names mail clients put in headers that Python spells differently (or means something wider).
ALIASES = {
    "iso-8859-1": "cp1252",  # what senders labelled latin-1 almost always is (WHATWG does the same)
    "latin1": "cp1252",
    "us-ascii": "",  # 8-bit bytes under a us-ascii label are utf-8 or cp1252, never ascii
    "ascii": "",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "windows-31j": "cp932",
    "x-sjis": "shift_jis",
    "x-mac-roman": "mac_roman",
    "x-mac-ce": "mac_latin2",
    "x-user-defined": "",
    "x-unknown": "",
    "unknown-8bit": "",
}
# Codecs that are not a body's character set, whatever a header claims.
NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "charmap"}
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def codec_for(declared: str | None) -> str | None:
    """Python's codec for a declared charset, or None when it is unknown or not a charset."""
    if not declared:
        return None
    name = declared.strip().strip("\"'").strip().lower()
    name = ALIASES.get(name, name)
    if not name:
        return None
    for candidate in (name, name.replace("-", ""), name.replace("-", "_")):
        try:
            info = codecs.lookup(candidate)
        except LookupError:
            continue
        except (TypeError, ValueError):  # a name with NUL bytes or other junk
            return None
        return None if info.name in NOT_CHARSETS else info.name
    return None


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Decode with the declared charset, then utf-8, then cp1252; latin-1 never fails."""
    codec = codec_for(declared)
    attempts = [codec] if codec else []
    if codec != "utf-8":
        attempts.append("utf-8")
    for name in attempts:
        try:
            return clean(data.decode(name))
        except (UnicodeError, LookupError):
            continue
    if codec and codec not in ("cp1252", "utf-8"):
        # A multibyte charset with a few broken bytes reads better in itself than as cp1252.
        try:
            return clean(data.decode(codec, "replace"))
        except (UnicodeError, LookupError):
            pass
    try:
        return clean(data.decode("cp1252"))
    except UnicodeError:
        return clean(data.decode("latin-1"))


def clean(text: str) -> str:
    """Text PostgreSQL accepts: no NUL or other control characters, no lone surrogates, no BOM."""
    text = text.removeprefix("\ufeff")
    text = CONTROL.sub("", text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
