"""A web chat channel's settings, read and checked from its JSON config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from channels.base import JsonObject, JsonValue

PRECHAT_FIELDS = ("name", "email")
PRECHAT_MODES = ("required", "optional", "off")
DEFAULT_FILE_BYTES = 5 * 1024 * 1024


def origin(value: str) -> str:
    """An origin as browsers send it (scheme://host[:port]); ValueError for anything else."""
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"allowed_origins: {value!r} is not an origin like https://example.nl")
    return f"{parts.scheme}://{parts.netloc}".lower()


def positive_int(config: JsonObject, name: str, default: int) -> int:
    value = config.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def text_setting(config: JsonObject, name: str, default: str) -> str:
    value = config.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


@dataclass(frozen=True)
class ChatConfig:
    visitor_secret: str | None = None
    allowed_origins: tuple[str, ...] = ()  # empty: the widget works on no site yet
    prechat: Mapping[str, str] = field(
        default_factory=lambda: {"name": "optional", "email": "optional"}
    )
    max_file_bytes: int = DEFAULT_FILE_BYTES
    rate_limit_per_minute: int = 30  # messages per visitor; 0 switches the limit off
    visitors_per_minute: int = 20  # new visitor tokens per address (one office, many people)
    business_hours: Mapping[str, JsonValue] | None = None  # None: always online
    title: str = "Chat with us"
    greeting: str = "Hello! How can we help?"
    offline_text: str = "We are offline now. Leave a message and your e-mail: we answer by e-mail."

    @classmethod
    def from_json(cls, config: JsonObject) -> ChatConfig:
        """Read the settings; ValueError names the first bad one."""
        raw_origins = config.get("allowed_origins") or []
        if not isinstance(raw_origins, list) or not all(isinstance(o, str) for o in raw_origins):
            raise ValueError("allowed_origins must be a list of origins")
        raw_prechat = config.get("prechat") or {}
        if not isinstance(raw_prechat, dict):
            raise ValueError('prechat must be an object like {"name": "required"}')
        prechat = {"name": "optional", "email": "optional"}
        for name, mode in raw_prechat.items():
            if name not in PRECHAT_FIELDS or mode not in PRECHAT_MODES:
                raise ValueError(
                    f"prechat.{name}: fields {', '.join(PRECHAT_FIELDS)}, "
                    f"each one of {', '.join(PRECHAT_MODES)}"
                )
            prechat[name] = str(mode)
        hours = config.get("business_hours")
        if hours is not None and not isinstance(hours, dict):
            raise ValueError('business_hours must be an object like {"mon": [["09:00", "17:00"]]}')
        secret = config.get("visitor_secret")
        if secret is not None and not isinstance(secret, str):
            raise ValueError("visitor_secret must be a string")
        defaults = cls()
        return cls(
            visitor_secret=secret or None,
            allowed_origins=tuple(origin(str(o)) for o in raw_origins),
            prechat=prechat,
            max_file_bytes=positive_int(config, "max_file_bytes", DEFAULT_FILE_BYTES),
            rate_limit_per_minute=positive_int(config, "rate_limit_per_minute", 30),
            visitors_per_minute=positive_int(config, "visitors_per_minute", 20),
            business_hours=hours,
            title=text_setting(config, "title", defaults.title),
            greeting=text_setting(config, "greeting", defaults.greeting),
            offline_text=text_setting(config, "offline_text", defaults.offline_text),
        )

    def allows(self, origin_header: str | None) -> bool:
        """Whether a page of this origin may embed the chat."""
        if not origin_header:
            return False
        return "*" in self.allowed_origins or origin_header.lower() in self.allowed_origins
