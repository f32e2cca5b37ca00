"""The Telegram channel: Updates from captured fixtures, and aiogram against a local fake Bot API."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from support import fixture_bytes
from telegram_api import BOT_USERNAME, TOKEN, FakeBotAPI

from channels.base import (
    Attachment,
    Delivery,
    InboundMessage,
    JsonObject,
    OutboundMessage,
    ParseError,
    Sender,
    SendResult,
    Unauthorized,
    Unprocessable,
)
from channels.telegram import TelegramAdapter, polled_delivery, webhook_url
from channels.telegram.sender import (
    BLOCKED,
    BotAPIError,
    Bots,
    answer_callback,
    delete_webhook,
    download,
    get_bot_username,
    get_updates,
    send,
    set_webhook,
    share,
    split_text,
)

SECRET = "Zm9vYmFy-geheim_42"
CONFIG: JsonObject = {"token": TOKEN, "webhook_secret": SECRET, "bot_username": BOT_USERNAME}
URL = "https://crm.example.nl/webhooks/telegram/ch_tg"
ARRIVAL = datetime(2024, 11, 21, 10, 0, 5, tzinfo=UTC)
JAN = Sender(name="Jan de Vries", telegram_id="604512387", username="jandevries")
GROUP_ID = -1001876543210

adapter = TelegramAdapter()


def delivery(body: bytes, secret: str | None = SECRET) -> Delivery:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return Delivery(body, headers, {}, URL, received_at=ARRIVAL)


def update(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture_bytes("telegram", name))
    return data


def normalized(body: bytes | dict[str, Any], config: JsonObject = CONFIG) -> InboundMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg = adapter.normalize(config, delivery(raw))
    assert msg is not None
    return msg


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def private_meta(message_id: int, chat_id: int = 604512387) -> dict[str, Any]:
    return {
        "chat_id": chat_id,
        "chat_type": "private",
        "message_id": message_id,
        "language_code": "nl",
        "addressed": True,
    }


# Configuration and the webhook door.


def test_kind_and_secret_names() -> None:
    assert adapter.kind == "telegram"
    assert adapter.secret_names() == ("token", "webhook_secret")


def test_prepare_config_generates_a_webhook_secret_and_keeps_given_settings() -> None:
    prepared = adapter.prepare_config({"token": TOKEN, "bot_username": "@HelpdeskVanDijkBot"})
    secret = prepared["webhook_secret"]
    assert isinstance(secret, str) and len(secret) >= 32
    assert prepared["token"] == TOKEN
    assert prepared["bot_username"] == "HelpdeskVanDijkBot"
    assert adapter.prepare_config(CONFIG) == CONFIG


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({}, "token is required"),
        ({"token": "7012345678"}, "token does not look like a bot token"),
        ({"token": "bot7012345678:AAF1x"}, "token does not look like a bot token"),
        ({"token": f"{TOKEN} "}, "token does not look like a bot token"),
        ({"token": TOKEN, "webhook_secret": "geen spaties"}, "webhook_secret must be 1-256"),
        ({"token": TOKEN, "webhook_secret": "x" * 257}, "webhook_secret must be 1-256"),
        ({"token": TOKEN, "mode": "push"}, "mode must be one of webhook, polling"),
        ({"token": TOKEN, "api_base": "api.telegram.org"}, "api_base must be an absolute"),
        ({"token": TOKEN, "public_url": 443}, "public_url must be a string"),
        ({"token": TOKEN, "bot_username": "help desk"}, "bot_username must be a Telegram"),
    ],
)
def test_prepare_config_refuses_bad_settings_without_showing_the_token(
    config: JsonObject, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason) as error:
        adapter.prepare_config(config)
    assert "AAF1x" not in str(error.value)


def test_webhook_url_joins_the_public_url_and_channel_path() -> None:
    config: JsonObject = {**CONFIG, "public_url": "https://crm.example.nl/"}
    assert webhook_url(config, "ch_tg") == "https://crm.example.nl/webhooks/telegram/ch_tg"
    assert webhook_url({**CONFIG, "public_url": URL}, "ch_tg") == URL
    assert webhook_url(CONFIG, "ch_tg") is None
    assert webhook_url({**config, "mode": "polling"}, "ch_tg") is None


def test_authenticate_accepts_the_channel_secret_token() -> None:
    adapter.authenticate(CONFIG, delivery(b"{}"))


@pytest.mark.parametrize("secret", [None, "", "verkeerd-geheim", SECRET.upper()])
def test_authenticate_refuses_a_missing_or_wrong_secret_token(secret: str | None) -> None:
    with pytest.raises(Unauthorized, match="X-Telegram-Bot-Api-Secret-Token"):
        adapter.authenticate(
            CONFIG, delivery(fixture_bytes("telegram", "text__private.json"), secret)
        )


def test_authenticate_without_a_configured_secret_is_a_channel_error() -> None:
    with pytest.raises(ValueError, match="webhook_secret is not set"):
        adapter.authenticate({"token": TOKEN}, delivery(b"{}"))


def test_accept_names_the_update_id_as_journal_key() -> None:
    accepted = adapter.accept(CONFIG, delivery(fixture_bytes("telegram", "text__private.json")))
    assert accepted.external_id == "918273601"
    assert not accepted.drop and accepted.redirect_to is None


@pytest.mark.parametrize(
    ("body", "error", "reason"),
    [
        (b"{niet: json", ParseError, "body is not JSON"),
        (b"\xff\xfe", ParseError, "body is not JSON"),
        (b"[1, 2]", ParseError, "not a JSON object"),
        (b'{"message": {}}', Unprocessable, "update_id missing or not an integer"),
        (b'{"update_id": "918273601"}', Unprocessable, "update_id missing or not an integer"),
        (b'{"update_id": true}', Unprocessable, "update_id missing or not an integer"),
    ],
)
def test_accept_refuses_bodies_that_are_not_updates(
    body: bytes, error: type[ParseError], reason: str
) -> None:
    with pytest.raises(error, match=reason) as raised:
        adapter.accept(CONFIG, delivery(body))
    assert type(raised.value) is error


def test_normalize_refuses_a_message_without_its_chat() -> None:
    body = {"update_id": 1, "message": {"message_id": 3, "date": 1732183200, "text": "Hoi"}}
    with pytest.raises(Unprocessable, match=r"message\.chat missing"):
        normalized(body)


# Each fixture, normalised.


def test_private_text() -> None:
    assert normalized(fixture_bytes("telegram", "text__private.json")) == InboundMessage(
        kind="message",
        external_id="604512387:11",
        occurred_at=at(1732183200),
        sender=JAN,
        text="Goedemiddag, wat zijn jullie openingstijden op zaterdag?",
        thread_key="tg:604512387",
        meta=private_meta(11),
    )


def test_start_with_a_deep_link_payload_is_the_source_detail() -> None:
    assert normalized(fixture_bytes("telegram", "text__start_deeplink.json")) == InboundMessage(
        kind="message",
        external_id="5120334455:1",
        occurred_at=at(1732183500),
        sender=Sender(name="Fatima El Amrani", telegram_id="5120334455"),
        text="/start offerte-voorjaar-2025",
        thread_key="tg:5120334455",
        source_detail="offerte-voorjaar-2025",
        meta=private_meta(1, chat_id=5120334455) | {"command": "start"},
    )


def test_start_without_payload_has_no_source_detail() -> None:
    body = update("text__start_deeplink.json")
    body["message"]["text"] = "/start"
    msg = normalized(body)
    assert (msg.source_detail, msg.meta["command"]) == (None, "start")


def test_edited_message_keeps_the_original_external_id_and_dates_the_edit() -> None:
    assert normalized(fixture_bytes("telegram", "edited__text.json")) == InboundMessage(
        kind="message",
        external_id="604512387:11",
        occurred_at=at(1732183262),
        sender=JAN,
        text="Goedemiddag, wat zijn jullie openingstijden op zaterdag en zondag?",
        thread_key="tg:604512387",
        edited=True,
        meta=private_meta(11),
    )


def test_photo_keeps_the_largest_size_and_the_caption() -> None:
    assert normalized(fixture_bytes("telegram", "photo__caption.json")) == InboundMessage(
        kind="message",
        external_id="604512387:14",
        occurred_at=at(1732184100),
        sender=JAN,
        text="Hierbij een foto van de beschadigde levering van vanochtend.",
        thread_key="tg:604512387",
        attachments=(
            Attachment(
                filename="photo-AQADKr8xGxbxGVJ-.jpg",
                content_type="image/jpeg",
                size=142316,
                ref="AgACAgQAAxkBAAMOZ0Pq1x0aBc9sLrVnT5w1fQ7a4s0AAiq_MRsW8RlSAAE7Yk0vIdXWAQADAgADeQADNgQ",
            ),
        ),
        meta=private_meta(14),
    )


def test_document_is_an_attachment_by_file_id() -> None:
    msg = normalized(fixture_bytes("telegram", "document__pdf.json"))
    assert msg.text == "Klopt deze factuur? Het bedrag lijkt me te hoog."
    assert msg.attachments == (
        Attachment(
            filename="factuur-2024-0815.pdf",
            content_type="application/pdf",
            size=184233,
            ref="BQACAgQAAxkBAAMPZ0PrQn2HfV8yQp3b7mYc6S1_oTkAAn4WAAIW8RlS6VwUq0Yx5Zk2BA",
        ),
    )
    assert (msg.external_id, msg.occurred_at, msg.meta) == (
        "604512387:15",
        at(1732184400),
        private_meta(15),
    )


def test_voice_note_is_an_audio_attachment_without_text() -> None:
    assert normalized(fixture_bytes("telegram", "voice__note.json")) == InboundMessage(
        kind="message",
        external_id="604512387:16",
        occurred_at=at(1732184700),
        sender=JAN,
        text="",
        thread_key="tg:604512387",
        attachments=(
            Attachment(
                filename="voice-AgADgBYAAhbxGVI.ogg",
                content_type="audio/ogg",
                size=28411,
                ref="AwACAgQAAxkBAAMQZ0Pr9mX1b3cJ2k8YvQy4gH7nR8QAAoAWAAIW8RlSb0x1d3n2fJk2BA",
            ),
        ),
        meta=private_meta(16),
    )


def test_own_contact_share_gives_the_sender_a_phone_number() -> None:
    assert normalized(fixture_bytes("telegram", "contact__share.json")) == InboundMessage(
        kind="message",
        external_id="604512387:17",
        occurred_at=at(1732185000),
        sender=Sender(
            name="Jan de Vries",
            telegram_id="604512387",
            username="jandevries",
            phones=("+31612345678",),
        ),
        text="📇 Jan de Vries 31612345678",
        thread_key="tg:604512387",
        meta=private_meta(17)
        | {
            "contact": {
                "phone_number": "31612345678",
                "first_name": "Jan",
                "last_name": "de Vries",
                "user_id": 604512387,
            }
        },
    )


def test_someone_elses_contact_card_is_kept_but_is_not_the_senders_phone() -> None:
    body = update("contact__share.json")
    body["message"]["contact"] = {
        "phone_number": "+31 30 123 4567",
        "first_name": "Kees",
        "last_name": "Smit",
        "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Kees Smit\nEND:VCARD",
    }
    msg = normalized(body)
    assert msg.sender == JAN
    assert msg.text == "📇 Kees Smit +31 30 123 4567"
    assert msg.meta["contact"] == body["message"]["contact"]


def test_location_pin_is_text_and_meta() -> None:
    assert normalized(fixture_bytes("telegram", "location__pin.json")) == InboundMessage(
        kind="message",
        external_id="604512387:18",
        occurred_at=at(1732185300),
        sender=JAN,
        text="📍 52.090737,5.12142",
        thread_key="tg:604512387",
        meta=private_meta(18) | {"location": {"latitude": 52.090737, "longitude": 5.12142}},
    )


def test_venue_names_the_place() -> None:
    body = update("location__pin.json")
    body["message"]["venue"] = {
        "location": body["message"]["location"],
        "title": "Stadhuis Utrecht",
        "address": "Stadhuisbrug 1, Utrecht",
    }
    msg = normalized(body)
    assert msg.text == "📍 Stadhuis Utrecht, Stadhuisbrug 1, Utrecht (52.090737,5.12142)"
    assert msg.meta["venue"] == {"title": "Stadhuis Utrecht", "address": "Stadhuisbrug 1, Utrecht"}


def test_callback_query_is_a_message_with_the_button_data() -> None:
    assert normalized(fixture_bytes("telegram", "callback__button.json")) == InboundMessage(
        kind="message",
        external_id="callback:2603950123456789012",
        occurred_at=ARRIVAL,
        sender=JAN,
        text="handover",
        thread_key="tg:604512387",
        in_reply_to=("604512387:12",),
        meta=private_meta(12)
        | {"callback_query_id": "2603950123456789012", "button_text": "Spreek een medewerker"},
    )


def test_callback_query_on_an_inline_mode_message_is_not_stored() -> None:
    body = update("callback__button.json")
    del body["callback_query"]["message"]
    body["callback_query"]["inline_message_id"] = "AgAAAB8xAAAsdf"
    assert adapter.normalize(CONFIG, delivery(json.dumps(body).encode())) is None


def test_group_message_that_mentions_the_bot_is_addressed() -> None:
    assert normalized(fixture_bytes("telegram", "text__group_mention.json")) == InboundMessage(
        kind="message",
        external_id=f"{GROUP_ID}:2051",
        occurred_at=at(1732186000),
        sender=Sender(name="Pieter Hendriks", telegram_id="781234567", username="pieterhendriks"),
        text="@HelpdeskVanDijkBot kunnen jullie morgen 40 pallets kalkzandsteen leveren in Amersfoort?",
        thread_key=f"tg:{GROUP_ID}",
        meta={
            "chat_id": GROUP_ID,
            "chat_type": "supergroup",
            "message_id": 2051,
            "language_code": "nl",
            "addressed": True,
            "chat_title": "Bouwbedrijf Hendriks — inkoop",
        },
    )


def test_other_group_talk_is_stored_in_the_same_conversation_but_not_addressed() -> None:
    msg = normalized(fixture_bytes("telegram", "text__group_other.json"))
    assert msg.sender == Sender(name="Sanne Bakker", telegram_id="812398765")
    assert (msg.external_id, msg.thread_key) == (f"{GROUP_ID}:2052", f"tg:{GROUP_ID}")
    assert msg.meta["addressed"] is False


def test_without_a_bot_username_a_group_mention_is_not_recognised() -> None:
    config: JsonObject = {"token": TOKEN, "webhook_secret": SECRET}
    msg = normalized(fixture_bytes("telegram", "text__group_mention.json"), config)
    assert msg.meta["addressed"] is False


def test_a_longer_username_is_not_a_mention_of_the_bot() -> None:
    body = update("text__group_mention.json")
    body["message"]["text"] = "@HelpdeskVanDijkBotje en e-mail naar info@HelpdeskVanDijkBot.nl"
    assert normalized(body).meta["addressed"] is False


def test_group_reply_to_the_bot_is_addressed_even_without_a_username() -> None:
    body = update("text__group_other.json")
    body["message"]["reply_to_message"] = {
        "message_id": 2049,
        "from": {"id": 7012345678, "is_bot": True, "first_name": "Helpdesk Van Dijk"},
        "chat": body["message"]["chat"],
        "date": 1732185900,
        "text": "Wij leveren op werkdagen tussen 7 en 16 uur.",
    }
    msg = normalized(body, {"token": TOKEN, "webhook_secret": SECRET})
    assert msg.meta["addressed"] is True
    assert msg.meta["reply_to_message_id"] == 2049
    assert msg.in_reply_to == (f"{GROUP_ID}:2049",)


@pytest.mark.parametrize(
    ("text", "addressed", "command"),
    [
        ("/prijzen@HelpdeskVanDijkBot", True, "prijzen"),
        ("/prijzen@helpdeskvandijkbot kalkzandsteen", True, "prijzen"),
        ("/prijzen@AndereBot", False, None),
        ("/prijzen", False, "prijzen"),
    ],
)
def test_group_commands_are_addressed_only_when_they_name_the_bot(
    text: str, addressed: bool, command: str | None
) -> None:
    body = update("text__group_other.json")
    body["message"]["text"] = text
    msg = normalized(body)
    assert (msg.meta["addressed"], msg.meta.get("command")) == (addressed, command)


def test_my_chat_member_is_not_stored() -> None:
    body = fixture_bytes("telegram", "my_chat_member__blocked.json")
    assert adapter.accept(CONFIG, delivery(body)).external_id == "918273612"
    assert adapter.normalize(CONFIG, delivery(body)) is None


def test_service_message_without_content_is_not_stored() -> None:
    body = update("text__group_other.json")
    del body["message"]["text"]
    body["message"]["new_chat_members"] = [{"id": 99, "is_bot": False, "first_name": "Eva"}]
    assert adapter.normalize(CONFIG, delivery(json.dumps(body).encode())) is None


@pytest.mark.parametrize(
    ("field", "media", "attachment", "text"),
    [
        (
            "video_note",
            {"file_id": "DQACvn", "file_unique_id": "AgADvn", "length": 240, "duration": 9},
            Attachment("video-note-AgADvn.mp4", "video/mp4", 0, ref="DQACvn"),
            "",
        ),
        (
            "video",
            {
                "file_id": "BAACvd",
                "file_unique_id": "AgADvd",
                "file_size": 90210,
                "width": 640,
                "height": 360,
                "duration": 4,
                "mime_type": "video/quicktime",
                "file_name": "lekkage.mov",
            },
            Attachment("lekkage.mov", "video/quicktime", 90210, ref="BAACvd"),
            "",
        ),
        (
            "audio",
            {"file_id": "CQACau", "file_unique_id": "AgADau", "duration": 60, "file_size": 4096},
            Attachment("audio-AgADau.mp3", "audio/mpeg", 4096, ref="CQACau"),
            "",
        ),
        (
            "sticker",
            {
                "file_id": "CAACst",
                "file_unique_id": "AgADst",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "👍",
            },
            Attachment("sticker-AgADst.webp", "image/webp", 0, ref="CAACst"),
            "👍",
        ),
    ],
)
def test_other_media_are_attachments_by_file_id(
    field: str, media: dict[str, Any], attachment: Attachment, text: str
) -> None:
    body = update("text__private.json")
    del body["message"]["text"]
    body["message"][field] = media
    msg = normalized(body)
    assert (msg.attachments, msg.text) == ((attachment,), text)


def test_channel_post_speaks_as_the_channel() -> None:
    body = {
        "update_id": 918273700,
        "channel_post": {
            "message_id": 77,
            "sender_chat": {
                "id": -1001222333444,
                "title": "Van Dijk nieuws",
                "username": "vandijknieuws",
                "type": "channel",
            },
            "chat": {
                "id": -1001222333444,
                "title": "Van Dijk nieuws",
                "username": "vandijknieuws",
                "type": "channel",
            },
            "date": 1732187000,
            "text": "Tussen kerst en oud en nieuw zijn wij gesloten.",
        },
    }
    msg = normalized(body)
    assert msg.sender == Sender(name="Van Dijk nieuws", username="vandijknieuws")
    assert (msg.external_id, msg.meta["addressed"], msg.automated) == (
        "-1001222333444:77",
        False,
        False,
    )


def test_message_from_another_bot_is_automated() -> None:
    body = update("text__group_other.json")
    body["message"]["from"] = {
        "id": 5000001,
        "is_bot": True,
        "first_name": "Planning",
        "username": "PlanningBot",
    }
    assert normalized(body).automated is True


def test_polled_update_normalises_like_a_webhook_delivery() -> None:
    raw = update("text__private.json")
    polled = polled_delivery(raw, received_at=ARRIVAL)
    assert json.loads(polled.body) == raw
    assert adapter.accept(CONFIG, polled).external_id == "918273601"
    assert adapter.normalize(CONFIG, polled) == normalized(
        fixture_bytes("telegram", "text__private.json")
    )


def test_split_text_breaks_long_text_at_spaces_within_the_limit() -> None:
    text = ("Beste klant, " * 400).strip()
    pieces = split_text(text, limit=4096)
    assert len(pieces) == 2
    assert all(len(piece) <= 4096 for piece in pieces)
    assert " ".join(pieces) == text
    assert split_text("😀" * 3000) == ["😀" * 2048, "😀" * 952]  # emoji count twice


# Sending and the other Bot API calls, through aiogram and real HTTP.


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as api:
        yield api


@pytest.fixture(scope="module")
async def bots() -> AsyncIterator[Bots]:
    async with Bots() as pool:
        yield pool


def channel(bot_api: FakeBotAPI) -> JsonObject:
    return {**CONFIG, "api_base": bot_api.base_url}


async def test_send_text_escapes_html_and_replies_to_the_customer(
    bot_api: FakeBotAPI, bots: Bots
) -> None:
    message = OutboundMessage(
        to="604512387",
        text="Prijs <excl. btw> & verzending: €12,50",
        reply_to_external_id="604512387:11",
    )
    result = await send(channel(bot_api), message, bots=bots)
    assert result == SendResult("sent", external_id="604512387:101")
    assert bot_api.calls == [
        (
            "sendMessage",
            {
                "chat_id": "604512387",
                "text": "Prijs &lt;excl. btw&gt; &amp; verzending: €12,50",
                "parse_mode": "HTML",
                "reply_parameters": '{"message_id": 11, "allow_sending_without_reply": true}',
            },
        )
    ]


async def test_send_inline_keyboard(bot_api: FakeBotAPI, bots: Bots) -> None:
    message = OutboundMessage(
        to="tg:604512387",
        text="Waarmee kan ik u helpen?",
        buttons=(
            ("Openingstijden", "faq:openingstijden"),
            ("Spreek een medewerker", "handover"),
            ("Onze website", "https://www.vandijk.nl/contact"),
        ),
    )
    assert (await send(channel(bot_api), message, bots=bots)).status == "sent"
    (params,) = bot_api.sent("sendMessage")
    assert json.loads(params["reply_markup"]) == {
        "inline_keyboard": [
            [{"text": "Openingstijden", "callback_data": "faq:openingstijden"}],
            [{"text": "Spreek een medewerker", "callback_data": "handover"}],
            [{"text": "Onze website", "url": "https://www.vandijk.nl/contact"}],
        ]
    }


async def test_short_buttons_share_a_row(bot_api: FakeBotAPI, bots: Bots) -> None:
    message = OutboundMessage(
        to="604512387", text="Is uw vraag beantwoord?", buttons=(("Ja", "ja"), ("Nee", "nee"))
    )
    await send(channel(bot_api), message, bots=bots)
    (params,) = bot_api.sent("sendMessage")
    assert json.loads(params["reply_markup"])["inline_keyboard"] == [
        [{"text": "Ja", "callback_data": "ja"}, {"text": "Nee", "callback_data": "nee"}]
    ]


async def test_send_document_with_the_text_as_caption(bot_api: FakeBotAPI, bots: Bots) -> None:
    pdf = b"%PDF-1.7\n% offerte\n"
    message = OutboundMessage(
        to="604512387",
        text="Hierbij de offerte <2024-118>.",
        attachments=(Attachment("offerte-2024-118.pdf", "application/pdf", len(pdf), content=pdf),),
    )
    result = await send(channel(bot_api), message, bots=bots)
    assert result == SendResult("sent", external_id="604512387:101")
    ((method, params),) = bot_api.calls
    assert method == "sendDocument"
    assert params["chat_id"] == "604512387"
    assert params["caption"] == "Hierbij de offerte &lt;2024-118&gt;."
    assert params["parse_mode"] == "HTML"
    assert params["document"].startswith("attach://")
    (upload,) = bot_api.uploads
    assert (upload.param, upload.filename, upload.content) == (
        "document",
        "offerte-2024-118.pdf",
        pdf,
    )


async def test_long_text_goes_in_pieces_with_reply_first_and_buttons_last(
    bot_api: FakeBotAPI, bots: Bots
) -> None:
    text = "Onze leveringsvoorwaarden: " + "artikel " * 700
    message = OutboundMessage(
        to="604512387",
        text=text,
        reply_to_external_id="604512387:11",
        buttons=(("Akkoord", "akkoord"),),
        attachments=(Attachment("voorwaarden.pdf", "application/pdf", 4, content=b"%PDF"),),
    )
    result = await send(channel(bot_api), message, bots=bots)
    assert result.external_id == "604512387:101"
    assert [method for method, _ in bot_api.calls] == ["sendMessage", "sendMessage", "sendDocument"]
    first, second, document = (params for _, params in bot_api.calls)
    assert "reply_parameters" in first and "reply_parameters" not in second
    assert "reply_markup" not in first and "reply_markup" in document
    assert "caption" not in document
    assert (first["text"] + " " + second["text"]).strip() == text.strip()


async def test_flood_control_429_is_a_retry_after(bot_api: FakeBotAPI, bots: Bots) -> None:
    bot_api.queue_error("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)
    result = await send(channel(bot_api), OutboundMessage(to="604512387", text="Hallo"), bots=bots)
    assert result.status == "retry"
    assert result.retry_after_s == 3.0
    assert result.error is not None and "Too Many Requests: retry after 3" in result.error


async def test_bot_blocked_403_fails_as_blocked(bot_api: FakeBotAPI, bots: Bots) -> None:
    bot_api.queue_error("sendMessage", 403, "Forbidden: bot was blocked by the user")
    result = await send(channel(bot_api), OutboundMessage(to="604512387", text="Hallo"), bots=bots)
    assert result == SendResult("failed", error=BLOCKED)


async def test_other_403_fails_with_telegrams_reason(bot_api: FakeBotAPI, bots: Bots) -> None:
    bot_api.queue_error("sendMessage", 403, "Forbidden: bot was kicked from the supergroup chat")
    result = await send(
        channel(bot_api), OutboundMessage(to=str(GROUP_ID), text="Hallo"), bots=bots
    )
    assert result == SendResult(
        "failed", error="Forbidden: bot was kicked from the supergroup chat"
    )


async def test_bad_request_400_fails_with_its_description(bot_api: FakeBotAPI, bots: Bots) -> None:
    bot_api.queue_error("sendMessage", 400, "Bad Request: chat not found")
    result = await send(channel(bot_api), OutboundMessage(to="604512387", text="Hallo"), bots=bots)
    assert result == SendResult("failed", error="Bad Request: chat not found")


async def test_group_migrated_to_supergroup_fails_naming_the_new_chat(
    bot_api: FakeBotAPI, bots: Bots
) -> None:
    bot_api.queue_error(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=GROUP_ID,
    )
    result = await send(
        channel(bot_api), OutboundMessage(to="-4012345678", text="Hallo"), bots=bots
    )
    assert result == SendResult("failed", error=f"the group became supergroup {GROUP_ID}")


async def test_server_error_is_a_retry(bot_api: FakeBotAPI, bots: Bots) -> None:
    bot_api.queue_error("sendMessage", 502, "Bad Gateway")
    result = await send(channel(bot_api), OutboundMessage(to="604512387", text="Hallo"), bots=bots)
    assert (result.status, result.error) == ("retry", "Bad Gateway")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_unreachable_api_is_a_retry_and_the_error_hides_the_token(bots: Bots) -> None:
    config: JsonObject = {**CONFIG, "api_base": f"http://127.0.0.1:{free_port()}"}
    result = await send(config, OutboundMessage(to="604512387", text="Hallo"), bots=bots)
    assert result.status == "retry"
    assert result.error is not None and TOKEN not in result.error


async def test_refused_token_fails_without_showing_it(bots: Bots) -> None:
    async with FakeBotAPI(token="7012345678:AAanother-token-altogether") as bot_api:
        result = await send(
            channel(bot_api), OutboundMessage(to="604512387", text="Hallo"), bots=bots
        )
    assert result == SendResult("failed", error="the bot token was refused: Unauthorized")


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            OutboundMessage(to="jan@example.nl", text="Hallo"),
            "not a Telegram chat id: 'jan@example.nl'",
        ),
        (OutboundMessage(to="604512387", text="  "), "nothing to send: no text and no attachments"),
        (
            OutboundMessage(to="604512387", text="Kies", buttons=(("Te lang", "x" * 65),)),
            "button 'Te lang': callback data must be 1-64 bytes",
        ),
        (
            OutboundMessage(
                to="604512387",
                text="Bijlage",
                attachments=(Attachment("leeg.pdf", "application/pdf", 0),),
            ),
            "attachment 'leeg.pdf' has neither bytes nor a reference",
        ),
    ],
)
async def test_unsendable_messages_fail_before_calling_telegram(
    bot_api: FakeBotAPI, bots: Bots, message: OutboundMessage, error: str
) -> None:
    assert await send(channel(bot_api), message, bots=bots) == SendResult("failed", error=error)
    assert bot_api.calls == []


async def test_send_on_a_misconfigured_channel_fails_with_the_reason() -> None:
    result = await send({"token": "geen-token"}, OutboundMessage(to="604512387", text="Hallo"))
    assert result == SendResult(
        "failed", error="token does not look like a bot token (digits:secret)"
    )


async def test_send_without_a_pool_opens_and_closes_its_own_session(bot_api: FakeBotAPI) -> None:
    result = await send(channel(bot_api), OutboundMessage(to="604512387", text="Hallo"))
    assert result == SendResult("sent", external_id="604512387:101")


async def test_the_shared_pool_serves_calls_without_their_own(bot_api: FakeBotAPI) -> None:
    async with Bots() as pool:
        share(pool)
        try:
            await send(channel(bot_api), OutboundMessage(to="604512387", text="Hallo"))
            await answer_callback(channel(bot_api), "2603950123456789012")
        finally:
            share(None)
        assert len(pool) == 1
    assert [method for method, _ in bot_api.calls] == ["sendMessage", "answerCallbackQuery"]


async def test_a_reply_after_a_button_press_is_not_a_telegram_reply(
    bot_api: FakeBotAPI, bots: Bots
) -> None:
    message = OutboundMessage(
        to="604512387",
        text="Ik verbind u door.",
        reply_to_external_id="callback:2603950123456789012",
    )
    assert (await send(channel(bot_api), message, bots=bots)).status == "sent"
    (params,) = bot_api.sent("sendMessage")
    assert "reply_parameters" not in params


async def test_download_through_get_file(bot_api: FakeBotAPI, bots: Bots) -> None:
    pdf_id = update("document__pdf.json")["message"]["document"]["file_id"]
    bot_api.add_file(b"%PDF-1.4 factuur 2024-0815", file_id=pdf_id)
    content, path = await download(channel(bot_api), pdf_id, bots=bots)
    assert content == b"%PDF-1.4 factuur 2024-0815"
    assert path is not None and path.startswith("documents/")
    assert bot_api.sent("getFile") == [{"file_id": pdf_id}]


async def test_download_of_a_sent_document_round_trips(bot_api: FakeBotAPI, bots: Bots) -> None:
    message = OutboundMessage(
        to="604512387",
        text="",
        attachments=(Attachment("prijslijst.csv", "text/csv", 9, content=b"a;b\n1;2\n"),),
    )
    assert (await send(channel(bot_api), message, bots=bots)).status == "sent"
    (file_id,) = bot_api.files
    assert await download(channel(bot_api), file_id, bots=bots) == (
        b"a;b\n1;2\n",
        "documents/file_1.csv",
    )


async def test_download_of_an_unknown_file_fails_for_good(bot_api: FakeBotAPI, bots: Bots) -> None:
    with pytest.raises(BotAPIError, match="Bad Request: invalid file_id") as error:
        await download(channel(bot_api), "BQACbestaatniet", bots=bots)
    assert not error.value.temporary


async def test_download_refuses_files_over_the_limit(bot_api: FakeBotAPI, bots: Bots) -> None:
    file_id = bot_api.add_file(b"x" * 2048)
    with pytest.raises(BotAPIError, match="file over 1024 bytes"):
        await download(channel(bot_api), file_id, bots=bots, max_bytes=1024)


async def test_failed_file_transfer_is_temporary_and_hides_the_token(
    bot_api: FakeBotAPI, bots: Bots
) -> None:
    file_id = bot_api.add_file(b"%PDF")
    bot_api.file_error = 502
    with pytest.raises(BotAPIError) as error:
        await download(channel(bot_api), file_id, bots=bots)
    assert error.value.temporary
    assert error.value.reason == "file download: HTTP 502 Bad Gateway"
    assert TOKEN not in str(error.value)


async def test_set_webhook_sends_the_secret_token(bot_api: FakeBotAPI, bots: Bots) -> None:
    await set_webhook(channel(bot_api), URL, bots=bots)
    (params,) = bot_api.sent("setWebhook")
    assert params["url"] == URL
    assert params["secret_token"] == SECRET
    assert json.loads(params["allowed_updates"]) == [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "callback_query",
        "my_chat_member",
    ]


async def test_answer_callback(bot_api: FakeBotAPI, bots: Bots) -> None:
    await answer_callback(
        channel(bot_api), "2603950123456789012", "Een medewerker komt eraan", bots=bots
    )
    assert bot_api.sent("answerCallbackQuery") == [
        {"callback_query_id": "2603950123456789012", "text": "Een medewerker komt eraan"}
    ]


async def test_too_old_callback_answer_raises_for_the_caller_to_ignore(
    bot_api: FakeBotAPI, bots: Bots
) -> None:
    bot_api.queue_error(
        "answerCallbackQuery",
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )
    with pytest.raises(BotAPIError, match="query is too old") as error:
        await answer_callback(channel(bot_api), "2603950123456789012", bots=bots)
    assert not error.value.temporary


async def test_get_bot_username(bot_api: FakeBotAPI, bots: Bots) -> None:
    assert await get_bot_username(channel(bot_api), bots=bots) == BOT_USERNAME


async def test_get_updates_returns_the_raw_update_json(bot_api: FakeBotAPI, bots: Bots) -> None:
    first, second = update("text__private.json"), update("callback__button.json")
    bot_api.add_update(first)
    bot_api.add_update(second)
    assert await get_updates(channel(bot_api), None, 0, bots=bots) == [first, second]
    # Confirming the first by offset leaves the second.
    assert await get_updates(channel(bot_api), 918273602, 0, bots=bots) == [second]
    params = bot_api.sent("getUpdates")[-1]
    assert (params["offset"], params["limit"]) == ("918273602", "100")


async def test_get_updates_long_polls_until_an_update_arrives(
    bot_api: FakeBotAPI, bots: Bots
) -> None:
    arriving = update("text__start_deeplink.json")
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, bot_api.add_update, arriving)
    assert await get_updates(channel(bot_api), None, 5, bots=bots) == [arriving]
    assert bot_api.sent("getUpdates")[0]["timeout"] == "5"


async def test_get_updates_while_a_webhook_is_set_is_a_conflict(
    bot_api: FakeBotAPI, bots: Bots
) -> None:
    await set_webhook(channel(bot_api), URL, bots=bots)
    with pytest.raises(BotAPIError, match="Conflict: can't use getUpdates") as error:
        await get_updates(channel(bot_api), None, 0, bots=bots)
    assert not error.value.temporary
    await delete_webhook(channel(bot_api), bots=bots)
    assert await get_updates(channel(bot_api), None, 0, bots=bots) == []


async def test_get_updates_flood_control_is_temporary(bot_api: FakeBotAPI, bots: Bots) -> None:
    bot_api.queue_error("getUpdates", 429, "Too Many Requests: retry after 5", retry_after=5)
    with pytest.raises(BotAPIError) as error:
        await get_updates(channel(bot_api), None, 0, bots=bots)
    assert (error.value.temporary, error.value.retry_after_s) == (True, 5.0)
