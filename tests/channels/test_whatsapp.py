"""The WhatsApp adapter from real Cloud API webhook bodies: handshake, signature, normalisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from graph_api import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, signature
from support import fixture_bytes

from channels import adapter_for
from channels.base import (
    Delivery,
    Forbidden,
    InboundMessage,
    ParseError,
    Unauthorized,
    Unprocessable,
    messages_of,
)
from channels.whatsapp.config import CloudConfig
from channels.whatsapp.sender import GraphError, check_media_url, interactive

ADAPTER = adapter_for("whatsapp")
CONFIG: dict[str, Any] = {
    "phone_number_id": PHONE_NUMBER_ID,
    "access_token": ACCESS_TOKEN,
    "app_secret": APP_SECRET,
    "verify_token": "kies-een-lang-geheim",
}
ARRIVAL = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def delivery(name: str, secret: str = APP_SECRET) -> Delivery:
    body = fixture_bytes("whatsapp", name)
    return Delivery(
        body=body,
        headers={
            "content-type": "application/json",
            "x-hub-signature-256": signature(body, secret),
        },
        query={},
        url="https://switchboard.test/webhooks/whatsapp/x",
        received_at=ARRIVAL,
    )


def normalized(name: str) -> InboundMessage:
    d = delivery(name)
    ADAPTER.authenticate(CONFIG, d)
    msg = ADAPTER.normalize(CONFIG, d)
    assert msg is not None
    return msg


def test_the_handshake_echoes_the_challenge_for_the_right_token() -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "kies-een-lang-geheim",
        "hub.challenge": "1158201444",
    }
    assert ADAPTER.verify(CONFIG, query) == "1158201444"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {
            "hub.mode": "unsubscribe",
            "hub.verify_token": "kies-een-lang-geheim",
            "hub.challenge": "1",
        },
        {"hub.challenge": "1"},
    ],
)
def test_a_wrong_handshake_is_forbidden(query: dict[str, str]) -> None:
    with pytest.raises(Forbidden):
        ADAPTER.verify(CONFIG, query)  # type: ignore[attr-defined]


def test_a_delivery_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(Unauthorized):
        ADAPTER.authenticate(CONFIG, delivery("text__plain.json", secret="not-the-app-secret"))


def test_an_unsigned_delivery_is_refused() -> None:
    d = delivery("text__plain.json")
    unsigned = Delivery(
        body=d.body, headers={"content-type": "application/json"}, query={}, url=d.url
    )
    with pytest.raises(Unauthorized):
        ADAPTER.authenticate(CONFIG, unsigned)


def test_a_text_is_keyed_by_its_wamid_and_partitioned_by_the_number() -> None:
    accepted = ADAPTER.accept(CONFIG, delivery("text__plain.json"))
    assert accepted.external_id.startswith("wamid.HBgLMzE2MTIzNDU2Nzg")
    assert accepted.sender_key == "wa:31612345678"


def test_a_text_becomes_a_message_from_the_number_with_its_profile_name() -> None:
    msg = normalized("text__plain.json")
    assert msg.kind == "message"
    assert msg.text == "Hallo, wat zijn jullie openingstijden?"
    assert msg.sender.name == "Sanne de Vries"
    assert msg.sender.phones == ("+31612345678",)
    assert msg.thread_key == "wa:31612345678"
    assert msg.meta["reply_address"] == "31612345678"
    assert msg.occurred_at == datetime.fromtimestamp(1764838800, UTC)


def test_a_reply_names_the_message_it_answers() -> None:
    msg = normalized("text__reply_context.json")
    assert msg.in_reply_to == ("wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBMkQ3RTdBNTc3Q0Y5NDg3OUUA",)


@pytest.mark.parametrize(
    ("name", "text", "data"),
    [
        ("interactive__button_reply.json", "Medewerker", "handover"),
        ("interactive__list_reply.json", "Openingstijden", "faq:hours"),
        ("button__template_quick_reply.json", "Bevestigen", "confirm_appointment"),
    ],
)
def test_a_button_reply_shows_its_title_and_keeps_its_data(name: str, text: str, data: str) -> None:
    msg = normalized(name)
    assert msg.text == text
    assert msg.meta["button_data"] == data


@pytest.mark.parametrize(
    ("name", "filename", "content_type", "ref", "text"),
    [
        (
            "image__caption.json",
            "image-1479537139650973.jpg",
            "image/jpeg",
            "1479537139650973",
            "Zo ziet de schade eruit",
        ),
        ("document__pdf.json", "factuur-2026-118.pdf", "application/pdf", "733398575851011", ""),
        ("audio__voice.json", "audio-1205573537513446.ogg", "audio/ogg", "1205573537513446", ""),
    ],
)
def test_media_arrives_as_a_reference_to_download(
    name: str, filename: str, content_type: str, ref: str, text: str
) -> None:
    msg = normalized(name)
    [attachment] = msg.attachments
    assert (attachment.filename, attachment.content_type, attachment.ref) == (
        filename,
        content_type,
        ref,
    )
    assert attachment.content is None
    assert msg.text == text


def test_a_voice_note_is_marked_as_one() -> None:
    assert normalized("audio__voice.json").meta["voice"] is True


def test_a_shared_contact_card_keeps_its_numbers_and_addresses() -> None:
    msg = normalized("contacts__card.json")
    assert msg.text == "📇 Pieter Jansen +31 6 98765432 pieter@jansen-installatie.nl"
    assert msg.meta["contacts"] == [
        {
            "name": "Pieter Jansen",
            "phones": ["+31 6 98765432"],
            "emails": ["pieter@jansen-installatie.nl"],
        }
    ]
    assert msg.sender.phones == ("+31612345678",)  # the card is someone else, not the sender


def test_a_location_pin_keeps_coordinates_and_place() -> None:
    msg = normalized("location__pin.json")
    assert msg.text == "📍 Kantoor Amsterdam, Damrak 1, 1012 LG Amsterdam (52.3676,4.9041)"
    assert msg.meta["location"] == {
        "latitude": 52.3676,
        "longitude": 4.9041,
        "place": "Kantoor Amsterdam, Damrak 1, 1012 LG Amsterdam",
    }


@pytest.mark.parametrize("name", ["unsupported__reaction.json", "unsupported__unknown.json"])
def test_an_unknown_type_is_kept_as_unsupported_with_the_raw_payload(name: str) -> None:
    msg = normalized(name)
    raw = json.loads(fixture_bytes("whatsapp", name))["entry"][0]["changes"][0]["value"][
        "messages"
    ][0]
    assert msg.meta["unsupported"] is True
    assert msg.meta["raw"] == raw
    assert msg.text.startswith("[unsupported WhatsApp message:")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("status__sent.json", "sent"),
        ("status__delivered.json", "delivered"),
        ("status__read.json", "read"),
    ],
)
def test_a_status_update_is_a_receipt_for_our_message(name: str, status: str) -> None:
    accepted = ADAPTER.accept(CONFIG, delivery(name))
    msg = normalized(name)
    assert msg.kind == "receipt"
    assert (
        accepted.external_id
        == f"status:wamid.HBgLMzE2MTIzNDU2NzgVAgARGBI0QzFGNkQ1NzlCRDJBQUU2RTQA:{status}"
    )
    assert accepted.sender_key == "wa:31612345678"
    assert msg.meta["receipts"] == [
        {"of": "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBI0QzFGNkQ1NzlCRDJBQUU2RTQA", "status": status}
    ]


def test_a_failed_status_carries_the_reason() -> None:
    [receipt] = normalized("status__failed.json").meta["receipts"]  # type: ignore[misc]
    assert receipt["status"] == "failed"  # type: ignore[index]
    assert str(receipt["error"]).startswith("131047: Re-engagement message (Message failed")  # type: ignore[index]


def test_a_batch_gives_every_message_in_order_and_its_receipts() -> None:
    d = delivery("batch__messages_and_statuses.json")
    ADAPTER.authenticate(CONFIG, d)
    found = messages_of(ADAPTER, CONFIG, d)
    assert [(m.kind, m.sender.name, m.thread_key, m.text) for m in found] == [
        (
            "message",
            "Sanne de Vries",
            "wa:31612345678",
            "Goedemorgen, mijn bestelling 4471 is nog niet binnen.",
        ),
        ("message", "Pieter Jansen", "wa:31698765432", "De beschadigde doos"),
        (
            "message",
            "Sanne de Vries",
            "wa:31612345678",
            "Het ordernummer staat in de bevestiging van vrijdag.",
        ),
        ("receipt", None, None, ""),
    ]
    assert len({m.external_id for m in found}) == 4
    assert found[1].attachments[0].ref == "902133846615277"
    assert found[3].meta["receipts"] == [
        {"of": "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBI0QzFGNkQ1NzlCRDJBQUU2RTQA", "status": "delivered"}
    ]
    with pytest.raises(Unprocessable, match="normalize_all"):
        ADAPTER.normalize(CONFIG, d)


def test_a_batch_is_keyed_by_all_its_items_and_from_several_numbers_has_no_sender() -> None:
    body = json.loads(fixture_bytes("whatsapp", "batch__messages_and_statuses.json"))
    accepted = ADAPTER.accept(CONFIG, delivery("batch__messages_and_statuses.json"))
    assert accepted.external_id.startswith("batch:")
    assert accepted.sender_key is None
    body["entry"] = body["entry"][::-1]  # the same items in another order: the same delivery
    again = Delivery(body=json.dumps(body).encode(), headers={}, query={}, url="")
    assert ADAPTER.accept(CONFIG, again).external_id == accepted.external_id
    body["entry"] = body["entry"][:1]  # one item fewer: another delivery
    fewer = Delivery(body=json.dumps(body).encode(), headers={}, query={}, url="")
    accepted_fewer = ADAPTER.accept(CONFIG, fewer)
    assert (
        accepted_fewer.external_id == body["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    )
    assert accepted_fewer.sender_key == "wa:31612345678"


def test_broken_json_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not JSON"):
        ADAPTER.accept(CONFIG, delivery("broken__json.json"))


def test_a_message_without_an_id_is_unprocessable() -> None:
    with pytest.raises(Unprocessable, match=r"messages\[0\]\.id missing"):
        ADAPTER.accept(CONFIG, delivery("missing__id.json"))


def test_a_new_channel_gets_a_verify_token_and_needs_the_app_secret() -> None:
    prepared = ADAPTER.prepare_config(
        {"phone_number_id": PHONE_NUMBER_ID, "access_token": "t", "app_secret": "s"}
    )
    assert len(str(prepared["verify_token"])) >= 20
    with pytest.raises(ValueError, match="app_secret"):
        ADAPTER.prepare_config({"phone_number_id": PHONE_NUMBER_ID, "access_token": "t"})


def test_media_urls_off_the_api_base_must_be_public_https() -> None:
    settings = CloudConfig.from_json(CONFIG | {"api_base": "http://127.0.0.1:9999"})
    assert check_media_url("http://127.0.0.1:9999/media-files/1", settings) is False
    assert check_media_url(
        "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", settings
    )
    for url in (
        "http://127.0.0.1:8080/x",
        "https://127.0.0.1/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/x",
        "https://10.0.0.7/x",
        "file:///etc/passwd",
    ):
        with pytest.raises(GraphError):
            check_media_url(url, settings)


def test_more_than_three_buttons_become_a_list() -> None:
    buttons = tuple((f"Vraag {n}", f"faq:{n}") for n in range(4))
    body = interactive("Waarmee kan ik helpen?", buttons)
    assert body["interactive"]["type"] == "list"  # type: ignore[index,call-overload]
    short = interactive("Nog iets?", (("Ja", "menu"), ("Medewerker", "handover")))
    assert short["interactive"]["action"]["buttons"][1] == {  # type: ignore[index,call-overload]
        "type": "reply",
        "reply": {"id": "handover", "title": "Medewerker"},
    }
