"""The telephony channel: call logs posted by Twilio, Asterisk, 3CX or our generic schema."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from channels.base import (
    Accepted,
    Delivery,
    InboundMessage,
    JsonObject,
    ParseError,
    Unauthorized,
    phone_key,
)
from channels.telephony import asterisk, generic, settings, threecx, tokens, twilio
from channels.telephony.calls import ParsedCall, call_message


class Dialect(NamedTuple):
    authenticate: Callable[[JsonObject, Delivery], None]
    parse: Callable[[JsonObject, Delivery], ParsedCall]


DIALECTS: dict[str, Dialect] = {
    "generic": Dialect(tokens.authenticate, generic.parse),
    "twilio": Dialect(twilio.authenticate, twilio.parse),
    "asterisk": Dialect(tokens.authenticate, asterisk.parse),
    "3cx": Dialect(tokens.authenticate, threecx.parse),
}


class TelephonyAdapter:
    """Config: dialect, token or twilio_auth_token, default_region, timezone, internal_contexts."""

    kind = "telephony"

    def prepare_config(self, config: JsonObject) -> JsonObject:
        return settings.prepare(config)

    def secret_names(self) -> tuple[str, ...]:
        return ("token", "twilio_auth_token")

    def limited_per_address(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return False  # posted by a provider's servers, never by a browser

    def authenticate(self, config: JsonObject, delivery: Delivery) -> None:
        dialect = DIALECTS.get(settings.dialect(config))
        if dialect is None:
            raise Unauthorized(f"unknown telephony dialect {config.get('dialect')!r}")
        dialect.authenticate(config, delivery)

    def accept(self, config: JsonObject, delivery: Delivery) -> Accepted:
        parsed = _parse(config, delivery)
        # Calls between two of our own extensions are answered 2xx but never kept.
        return Accepted(
            external_id=parsed.journal_key,
            drop=parsed.internal,
            sender_key=phone_key(parsed.call.number),
        )

    def normalize(self, config: JsonObject, delivery: Delivery) -> InboundMessage | None:
        parsed = _parse(config, delivery)
        if parsed.internal:
            return None
        return call_message(parsed, settings.dialect(config), delivery.arrival())


def _parse(config: JsonObject, delivery: Delivery) -> ParsedCall:
    dialect = DIALECTS.get(settings.dialect(config))
    if dialect is None:
        raise ParseError(f"unknown telephony dialect {config.get('dialect')!r}")
    return dialect.parse(config, delivery)
