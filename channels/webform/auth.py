"""Who may post to a form channel: a token, our HMAC signature or Typeform's."""

from __future__ import annotations

from channels.base import Delivery, Unauthorized
from channels.signatures import hmac_b64, hmac_hex, same
from channels.webform.config import FormConfig


def sign_body(secret: str, body: bytes) -> str:
    """The X-Switchboard-Signature header value for a body."""
    return "sha256=" + hmac_hex(secret, body)


def typeform_signature(secret: str, body: bytes) -> str:
    """The Typeform-Signature header value Typeform sends for a body."""
    return "sha256=" + hmac_b64(secret, body)


def bearer(delivery: Delivery) -> str | None:
    scheme, _, value = delivery.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def check(config: FormConfig, delivery: Delivery) -> None:
    """Raise Unauthorized unless one of the channel's credentials matches."""
    tried: list[str] = []
    headers = delivery.headers
    if config.token:
        for where, given in (
            ("bearer token", bearer(delivery)),
            ("?token", delivery.query.get("token")),
        ):
            if given is not None:
                if same(given, config.token):
                    return
                tried.append(f"wrong {where}")
    if config.hmac_secret and "x-switchboard-signature" in headers:
        given = headers["x-switchboard-signature"].strip().lower()
        if same(given, sign_body(config.hmac_secret, delivery.body)):
            return
        tried.append("X-Switchboard-Signature does not match the body")
    if config.typeform_secret and "typeform-signature" in headers:
        given = headers["typeform-signature"].strip()
        if same(given, typeform_signature(config.typeform_secret, delivery.body)):
            return
        tried.append("Typeform-Signature does not match the body")
    raise Unauthorized("; ".join(tried) or "no token or signature")
