"""A WhatsApp Cloud API channel's settings, read and checked from its JSON config."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from channels.base import JsonObject

DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
PHONE_NUMBER_ID = re.compile(r"[0-9]{5,30}")
API_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]{1,3}")
# Free-form replies only within 24 hours of the customer's last message; templates any time.
SERVICE_WINDOW = timedelta(hours=24)
WINDOW_ERROR = "outside WhatsApp's 24-hour customer-service window: only a template may be sent"


def text_setting(config: JsonObject, name: str) -> str | None:
    value = config.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"{name} must be a string")


@dataclass(frozen=True)
class CloudConfig:
    phone_number_id: str
    access_token: str = ""
    app_secret: str | None = None
    verify_token: str | None = None
    api_base: str = DEFAULT_API_BASE
    api_version: str = DEFAULT_API_VERSION

    def __repr__(self) -> str:  # secrets never reach a log line through a repr
        return f"CloudConfig(phone_number_id={self.phone_number_id!r}, api_base={self.api_base!r})"

    @property
    def graph(self) -> str:
        return f"{self.api_base}/{self.api_version}"

    @classmethod
    def from_json(cls, config: JsonObject) -> CloudConfig:
        """Read the settings; ValueError names the first bad one (never showing a secret)."""
        number_id = text_setting(config, "phone_number_id")
        if number_id is None or not PHONE_NUMBER_ID.fullmatch(number_id):
            raise ValueError("phone_number_id is required: the sender number's id in Meta's app")
        base = text_setting(config, "api_base") or DEFAULT_API_BASE
        if not base.startswith(("https://", "http://")):
            raise ValueError("api_base must be an absolute http(s) URL")
        version = text_setting(config, "api_version") or DEFAULT_API_VERSION
        if not API_VERSION.fullmatch(version):
            raise ValueError("api_version must look like v21.0")
        return cls(
            phone_number_id=number_id,
            access_token=text_setting(config, "access_token") or "",
            app_secret=text_setting(config, "app_secret"),
            verify_token=text_setting(config, "verify_token"),
            api_base=base.rstrip("/"),
            api_version=version,
        )
