"""Reading flat vendor payloads (a JSON object or a form) with errors that name the field."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import NoReturn

from channels.base import JsonObject, JsonValue, ParseError, Unprocessable

_UNIX_TIME = re.compile(r"[0-9]{9,11}(\.[0-9]+)?")


def json_object(body: bytes, source: str) -> JsonObject:
    """The body as a JSON object, or ParseError saying what is wrong with it."""
    try:
        # Floats stay text: Asterisk's uniqueid "1715588102.40" must not become 1715588102.4.
        value = json.loads(body, parse_float=str, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"{source}: body is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ParseError(f"{source}: expected a JSON object, got {type(value).__name__}")
    return value


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class Record:
    """One call record; empty strings count as missing, as PBX templates send them."""

    def __init__(self, values: Mapping[str, JsonValue], source: str) -> None:
        self.values = values
        self.source = source

    def invalid(self, key: str, what: str) -> Unprocessable:
        """The error for a field that is present but unusable."""
        return Unprocessable(f"{self.source}: {key} must be {what}, got {self.values[key]!r}")

    def text(self, key: str) -> str | None:
        """The field as stripped text (whole numbers too); None when absent or empty."""
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self.invalid(key, "a string")

    def require(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise Unprocessable(f"{self.source}: missing required field {key!r}")
        return value

    def integer(self, key: str) -> int | None:
        value = self.text(key)
        if value is None:
            return None
        if not _digits(value):
            raise self.invalid(key, "a whole number")
        return int(value)

    def seconds(self, key: str) -> int | None:
        """A duration given as seconds or as "hh:mm:ss"."""
        text = self.text(key)
        if text is None:
            return None
        text, _, fraction = text.partition(".")  # "00:02:05.25": whole seconds are enough
        parts = text.split(":")
        if len(parts) > 3 or not all(_digits(part) for part in (*parts, fraction or "0")):
            raise self.invalid(key, 'seconds or "hh:mm:ss"')
        total = 0
        for part in parts:
            total = total * 60 + int(part)
        return total

    def time(self, key: str, default_tz: tzinfo = UTC) -> datetime | None:
        """An ISO 8601 or RFC 2822 time, or Unix seconds, in UTC; no offset means `default_tz`."""
        text = self.text(key)
        if text is None:
            return None
        try:
            if _UNIX_TIME.fullmatch(text):
                return datetime.fromtimestamp(float(text), UTC)
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, OverflowError, OSError):
            raise self.invalid(key, "an ISO 8601 or RFC 2822 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=default_tz)
        return moment.astimezone(UTC)
