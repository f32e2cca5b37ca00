"""A form channel's settings, read and checked from its JSON config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from channels.base import JsonObject, JsonValue
from channels.webform.fieldmap import OUR_FIELDS


def optional_str(config: JsonObject, name: str) -> str | None:
    value = config.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"{name} must be a string")


def str_list(value: JsonValue, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{what} must be a string or a list of strings")
    return tuple(str(v) for v in value)


def our_fields(names: tuple[str, ...], what: str) -> tuple[str, ...]:
    unknown = [n for n in names if n not in OUR_FIELDS]
    if unknown:
        raise ValueError(
            f"{what}: unknown field(s) {', '.join(unknown)}; known: {', '.join(OUR_FIELDS)}"
        )
    return names


@dataclass(frozen=True)
class FormConfig:
    token: str | None = None
    hmac_secret: str | None = None
    typeform_secret: str | None = None
    field_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # our field → form names
    honeypot: str | None = "website"
    redirect_url: str | None = None
    required: tuple[str, ...] | None = None  # None: an e-mail address or a phone number
    id_field: str | None = None

    @classmethod
    def from_json(cls, config: JsonObject) -> FormConfig:
        """Read the settings; ValueError names the first bad one."""
        raw_map = config.get("field_map") or {}
        if not isinstance(raw_map, dict):
            raise ValueError("field_map must be an object of our field → form field name(s)")
        our_fields(tuple(raw_map), "field_map")
        field_map = {ours: str_list(names, f"field_map.{ours}") for ours, names in raw_map.items()}
        required = config.get("required")
        required_fields = (
            None if required is None else our_fields(str_list(required, "required"), "required")
        )
        redirect_url = optional_str(config, "redirect_url")
        if redirect_url and not redirect_url.startswith(("https://", "http://")):
            raise ValueError("redirect_url must be an absolute http(s) URL")
        origins = config.get("cors_origins") or []
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise ValueError("cors_origins must be a list of origins")  # the HTTP layer reads it
        return cls(
            token=optional_str(config, "token"),
            hmac_secret=optional_str(config, "hmac_secret"),
            typeform_secret=optional_str(config, "typeform_secret"),
            field_map=field_map,
            # An explicit null or "" switches the honeypot off.
            honeypot=optional_str(config, "honeypot") if "honeypot" in config else "website",
            redirect_url=redirect_url,
            required=required_fields,
            id_field=optional_str(config, "id_field"),
        )
