"""The WhatsApp Cloud API channel: Meta's webhook handshake, signed deliveries, one chat per number."""

from __future__ import annotations

from collections.abc import Mapping

from channels.base import (
    Accepted,
    Delivery,
    Forbidden,
    InboundMessage,
    JsonObject,
    Unauthorized,
    Unprocessable,
)
from channels.signatures import hmac_hex, new_secret, same
from channels.whatsapp.config import CloudConfig
from channels.whatsapp.payloads import journal_key, load_values, read_payload, sender_key

SIGNATURE_HEADER = "x-hub-signature-256"


class WhatsAppAdapter:
    """A WhatsApp Business number on the Cloud API: webhooks signed with the app secret."""

    kind = "whatsapp"

    def prepare_config(self, config: JsonObject) -> JsonObject:
        prepared = dict(config)
        if not prepared.get("verify_token"):
            prepared["verify_token"] = new_secret()
        settings = CloudConfig.from_json(prepared)
        if settings.app_secret is None:
            raise ValueError("app_secret is required: the Meta app's secret signs every webhook")
        if not settings.access_token:
            raise ValueError("access_token is required: a system user token for the Graph API")
        return prepared

    def secret_names(self) -> tuple[str, ...]:
        return ("access_token", "app_secret", "verify_token")

    def limited_per_address(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return False  # posted by Meta's servers, never by a browser

    def verify(self, config: JsonObject, query: Mapping[str, str]) -> str:
        """Meta's subscription handshake: the challenge to echo, or Forbidden."""
        token = CloudConfig.from_json(config).verify_token
        if token is None:
            raise ValueError("verify_token is not set; prepare_config generates one")
        if query.get("hub.mode") != "subscribe" or not same(query.get("hub.verify_token"), token):
            raise Forbidden("wrong hub.mode or hub.verify_token")
        return query.get("hub.challenge", "")

    def authenticate(self, config: JsonObject, delivery: Delivery) -> None:
        secret = CloudConfig.from_json(config).app_secret
        if secret is None:
            raise ValueError("app_secret is not set")
        given = delivery.headers.get(SIGNATURE_HEADER, "")
        if not given.startswith("sha256=") or not same(
            given.removeprefix("sha256="), hmac_hex(secret, delivery.body)
        ):
            raise Unauthorized("missing or wrong X-Hub-Signature-256")

    def accept(self, config: JsonObject, delivery: Delivery) -> Accepted:
        values = load_values(delivery.body)
        return Accepted(journal_key(values), sender_key=sender_key(values))

    def normalize(self, config: JsonObject, delivery: Delivery) -> InboundMessage | None:
        """The delivery's one message; a batch is read whole with `normalize_all`."""
        found = self.normalize_all(config, delivery)
        if len(found) > 1:
            raise Unprocessable(f"a batch of {len(found)} messages: read it with normalize_all")
        return found[0] if found else None

    def normalize_all(self, config: JsonObject, delivery: Delivery) -> list[InboundMessage]:
        return read_payload(load_values(delivery.body), delivery.arrival())
