"""Helpers of the fault suite (tests/faults) and its benchmark (bench/faults.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from support import fixture_bytes

from channels.telephony.twilio import twilio_signature
from channels.webform.auth import typeform_signature
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from workers.mailbox import journal_batch


def examples(ci: int) -> int:
    """Hypothesis examples per property: `ci` in CI, more with SWITCHBOARD_FAULT_EXAMPLES."""
    return int(os.environ.get("SWITCHBOARD_FAULT_EXAMPLES") or ci)


@dataclass(frozen=True)
class Dialect:
    """One way a delivery reaches a webhook: its channel, a real payload and how it is signed."""

    name: str
    kind: str
    config: dict[str, Any]
    fixture: tuple[str, str]  # (channel folder, file) under tests/fixtures
    content_type: str = "application/json"

    def headers(self, config: dict[str, Any], url: str, body: bytes) -> dict[str, str]:
        """The headers the real sender would add to this body posted to `url`."""
        headers = {"Content-Type": self.content_type}
        if self.kind == "telegram":
            return headers | {"X-Telegram-Bot-Api-Secret-Token": str(config["webhook_secret"])}
        if self.name == "twilio":
            params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            return headers | {"X-Twilio-Signature": twilio_signature(url, params, TWILIO_AUTH)}
        if self.name == "typeform":
            return headers | {"Typeform-Signature": typeform_signature(TYPEFORM_SECRET, body)}
        return headers | {"Authorization": f"Bearer {config['token']}"}

    def body(self) -> bytes:
        return fixture_bytes(*self.fixture)


TWILIO_AUTH, TYPEFORM_SECRET = "faults-twilio-auth", "faults-typeform"
FORM = "application/x-www-form-urlencoded"
DIALECTS = (
    Dialect("webform-json", "webform", {}, ("webform", "json__contact.json")),
    Dialect("webform-html", "webform", {}, ("webform", "html_form__contact.txt"), FORM),
    Dialect(
        "typeform",
        "webform",
        {"typeform_secret": TYPEFORM_SECRET},
        ("webform", "typeform__form_response.json"),
    ),
    Dialect(
        "telegram",
        "telegram",
        {"token": "123456:faults", "bot": {"enabled": False}},
        ("telegram", "text__private.json"),
    ),
    Dialect(
        "generic", "telephony", {"dialect": "generic"}, ("telephony", "generic__answered.json")
    ),
    Dialect(
        "twilio",
        "telephony",
        {"dialect": "twilio", "twilio_auth_token": TWILIO_AUTH},
        ("telephony", "twilio__completed.txt"),
        FORM,
    ),
    Dialect(
        "asterisk", "telephony", {"dialect": "asterisk"}, ("telephony", "asterisk__answered.json")
    ),
    Dialect("3cx", "telephony", {"dialect": "3cx"}, ("telephony", "3cx__inbound.json")),
)


async def journal_mail(sessions: Sessions, raws: list[bytes]) -> str:
    """A mailbox channel (its IMAP server never answers) with these messages journaled by the
    poller's own code, as if fetched; returns the channel id."""
    async with sessions() as session, session.begin():
        channel = await add_channel(
            session,
            "email",
            "Mailbox",
            {"imap": {"host": "127.0.0.1", "port": 9, "username": "x", "password": "y"}},
        )
        await journal_batch(session, channel.id, list(enumerate(raws, start=1)))
    return channel.id
