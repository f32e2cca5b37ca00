"""A telephony channel's settings: checked once when the channel is added, read per delivery."""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from channels.base import JsonObject, ParseError
from channels.signatures import new_secret

DIALECTS = ("generic", "twilio", "asterisk", "3cx")
DEFAULT_INTERNAL_CONTEXTS = ("from-internal",)
_TEXT_KEYS = ("token", "twilio_auth_token", "default_region", "timezone")


def prepare(config: JsonObject) -> JsonObject:
    """A checked copy of `config`, with a generated token where the dialect uses one."""
    prepared = dict(config)
    name = prepared.get("dialect", "generic")
    if not isinstance(name, str) or name.strip().lower() not in DIALECTS:
        raise ValueError(f"unknown telephony dialect {name!r}; choose one of {', '.join(DIALECTS)}")
    prepared["dialect"] = name.strip().lower()
    for key in _TEXT_KEYS:
        value = prepared.get(key)
        if key in prepared and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{key} must be a non-empty string")
    if prepared["dialect"] == "twilio":
        if "twilio_auth_token" not in prepared:
            raise ValueError(
                "the twilio dialect needs twilio_auth_token (the Auth Token of the Twilio account)"
            )
    elif "token" not in prepared:
        prepared["token"] = new_secret()
    region = prepared.get("default_region")
    if isinstance(region, str):
        if len(region.strip()) != 2 or not region.strip().isalpha():
            raise ValueError(f"default_region must be a two-letter country code, not {region!r}")
        prepared["default_region"] = region.strip().upper()
    if "timezone" in prepared:
        try:
            zone(prepared)
        except ParseError as exc:
            raise ValueError(exc.reason) from None
    if "internal_contexts" in prepared:
        contexts = prepared["internal_contexts"]
        if not isinstance(contexts, list) or not all(isinstance(c, str) and c for c in contexts):
            raise ValueError("internal_contexts must be a list of Asterisk context names")
        prepared["internal_contexts"] = list(contexts)
    return prepared


def dialect(config: JsonObject) -> str:
    name = config.get("dialect", "generic")
    return name if isinstance(name, str) else ""


def zone(config: JsonObject) -> tzinfo:
    """The PBX's time zone, for call times sent without an offset (default UTC)."""
    name = config.get("timezone")
    if name is None:
        return UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ParseError(
            f"unknown timezone {name!r}; use an IANA name like Europe/Amsterdam"
        ) from None


def internal_contexts(config: JsonObject) -> tuple[str, ...]:
    """Asterisk dialplan contexts that calls placed by our own phones start in."""
    contexts = config.get("internal_contexts")
    if not isinstance(contexts, list):
        return DEFAULT_INTERNAL_CONTEXTS
    return tuple(c for c in contexts if isinstance(c, str))
