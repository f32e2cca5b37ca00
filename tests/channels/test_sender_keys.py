"""Each adapter names the sender of a delivery when it accepts it: the journal partitions by it,
so one sender's events are processed in order and by one worker at a time."""

from __future__ import annotations

import json

import pytest
from support import fixture_bytes

from channels.base import Delivery
from channels.telegram.adapter import TelegramAdapter
from channels.telephony.adapter import TelephonyAdapter
from channels.webform.adapter import WebformAdapter

URL = "https://inbox.example.nl/webhooks/x/1"
FORM = {"token": "tok-Almere-42", "hmac_secret": "hmac-geheim"}


def json_delivery(body: object) -> Delivery:
    return Delivery(json.dumps(body).encode(), {"content-type": "application/json"}, {}, URL)


@pytest.mark.parametrize(
    ("fixture", "key"),
    [
        ("text__private.json", "tg:604512387"),
        ("edited__text.json", "tg:604512387"),
        ("callback__button.json", "tg:604512387"),  # the chat of the message the button is on
        ("text__group_mention.json", "tg:-1001876543210"),  # the group, not the member
    ],
)
def test_a_telegram_update_is_keyed_by_its_chat(fixture: str, key: str) -> None:
    body = fixture_bytes("telegram", fixture)
    assert TelegramAdapter().accept({}, Delivery(body, {}, {}, URL)).sender_key == key


def test_a_call_log_is_keyed_by_the_number_however_it_is_written() -> None:
    adapter, config = TelephonyAdapter(), {"dialect": "generic", "token": "t"}
    keys = {
        adapter.accept(
            config,
            json_delivery(
                {"call_id": f"c{n}", "status": "missed", "direction": "inbound", "from": number}
            ),
        ).sender_key
        for n, number in enumerate(["+31 6 12345678", "0612345678", "0031-6-1234-5678"])
    }
    assert keys == {"tel:612345678"}


def test_a_form_post_is_keyed_by_its_email_else_its_phone() -> None:
    adapter = WebformAdapter()
    by_mail = adapter.accept(
        FORM, json_delivery({"name": "Jan", "email": "Jan@Bakker.NL", "phone": "0612345678"})
    )
    by_phone = adapter.accept(FORM, json_delivery({"name": "Jan", "phone": "+31 6 12345678"}))
    assert by_mail.sender_key == "mail:jan@bakker.nl"
    assert by_phone.sender_key == "tel:612345678"


def test_only_a_browsers_form_post_counts_against_the_per_address_limit() -> None:
    adapter = WebformAdapter()
    assert adapter.limited_per_address({}, {"token": "t"})
    assert adapter.limited_per_address({"Content-Type": "text/plain"}, {})
    assert not adapter.limited_per_address({"Authorization": "Bearer t"}, {})
    assert not adapter.limited_per_address({"X-Switchboard-Signature": "sha256=ab"}, {})
    assert not TelephonyAdapter().limited_per_address({}, {"token": "t"})
