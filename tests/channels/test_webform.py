"""The web-form adapter, straight from captured payloads: no HTTP, no database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.base import (
    Accepted,
    Attachment,
    Delivery,
    InboundMessage,
    JsonObject,
    ParseError,
    Sender,
    Unauthorized,
    Unprocessable,
)
from channels.webform import sign_body, typeform_signature
from channels.webform.adapter import WebformAdapter

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webform"
URL = "https://crm.example.nl/webhooks/webform/ch_1"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# The boundary the browser chose for tests/fixtures/webform/multipart__with_file.txt.
BOUNDARY = "----WebKitFormBoundaryq3Xv7fL9sR2tYp0M"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
CONFIG: JsonObject = {"token": "tok-Almere-42", "hmac_secret": "hmac-geheim"}

adapter = WebformAdapter()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def delivery(
    body: bytes,
    content_type: str | None = FORM,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> Delivery:
    all_headers = {"content-type": content_type} if content_type else {}
    return Delivery(body, all_headers | (headers or {}), query or {}, URL)


def normalized(d: Delivery, config: JsonObject = CONFIG) -> InboundMessage:
    msg = adapter.normalize(config, d)
    assert msg is not None
    return msg


def test_kind_and_secret_names() -> None:
    assert adapter.kind == "webform"
    assert adapter.secret_names() == ("token", "hmac_secret", "typeform_secret")


def test_prepare_config_generates_missing_secrets_and_keeps_given_ones() -> None:
    prepared = adapter.prepare_config({"redirect_url": "https://www.example.nl/bedankt"})
    assert isinstance(prepared["token"], str) and len(prepared["token"]) >= 32
    assert isinstance(prepared["hmac_secret"], str) and prepared["hmac_secret"] != prepared["token"]
    assert prepared["redirect_url"] == "https://www.example.nl/bedankt"
    assert adapter.prepare_config(CONFIG) == CONFIG


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"field_map": {"telefax": "fax"}}, "field_map: unknown field(s) telefax"),
        ({"field_map": {"email": 3}}, "field_map.email must be a string or a list of strings"),
        ({"required": ["email", "kvk"]}, "required: unknown field(s) kvk"),
        ({"redirect_url": "/bedankt"}, "redirect_url must be an absolute http(s) URL"),
        ({"cors_origins": ["https://www.example.nl"], "required": []}, None),
        ({"cors_origins": "https://www.example.nl"}, "cors_origins must be a list of origins"),
        ({"cors_origins": [1]}, "cors_origins must be a list of origins"),
        ({"typeform_secret": 12}, "typeform_secret must be a string"),
    ],
)
def test_prepare_config_checks_settings(config: JsonObject, reason: str | None) -> None:
    if reason is None:
        adapter.prepare_config(config)
        return
    with pytest.raises(ValueError, match=re.escape(reason)):
        adapter.prepare_config(config)


def test_bearer_token_authenticates() -> None:
    adapter.authenticate(CONFIG, delivery(b"", headers={"authorization": "Bearer tok-Almere-42"}))


def test_query_token_authenticates() -> None:
    adapter.authenticate(CONFIG, delivery(b"", query={"token": "tok-Almere-42"}))


def test_wrong_token_is_refused_with_a_reason() -> None:
    d = delivery(b"", headers={"authorization": "Bearer tok-Zwolle"}, query={"token": "x"})
    with pytest.raises(Unauthorized) as err:
        adapter.authenticate(CONFIG, d)
    assert err.value.reason == "wrong bearer token; wrong ?token"
    assert err.value.status == 401


def test_no_credentials_is_refused() -> None:
    with pytest.raises(Unauthorized, match="no token or signature"):
        adapter.authenticate(CONFIG, delivery(b"naam=Jan"))


def test_one_good_credential_suffices() -> None:
    body = b"naam=Jan"
    headers = {
        "authorization": "Bearer fout",
        "x-switchboard-signature": sign_body("hmac-geheim", body),
    }
    adapter.authenticate(CONFIG, delivery(body, headers=headers))


def test_our_hmac_signature_is_hex_sha256_of_the_raw_body() -> None:
    body = fixture("json__contact.json")
    expected = hmac.new(b"hmac-geheim", body, hashlib.sha256).hexdigest()
    assert sign_body("hmac-geheim", body) == f"sha256={expected}"
    adapter.authenticate(
        CONFIG, delivery(body, JSON, {"x-switchboard-signature": f"sha256={expected}"})
    )
    upper = {"x-switchboard-signature": f"sha256={expected.upper()}"}
    adapter.authenticate(CONFIG, delivery(body, JSON, upper))
    tampered = body.replace(b"Almere", b"Lelystad")
    with pytest.raises(Unauthorized, match="X-Switchboard-Signature does not match the body"):
        adapter.authenticate(
            CONFIG, delivery(tampered, JSON, {"x-switchboard-signature": f"sha256={expected}"})
        )


def test_typeform_signature_is_base64_sha256_of_the_raw_body() -> None:
    config: JsonObject = {**CONFIG, "typeform_secret": "typeform-geheim"}
    body = fixture("typeform__form_response.json")
    digest = hmac.new(b"typeform-geheim", body, hashlib.sha256).digest()
    signature = "sha256=" + base64.b64encode(digest).decode()
    assert typeform_signature("typeform-geheim", body) == signature
    adapter.authenticate(config, delivery(body, JSON, {"typeform-signature": signature}))
    tampered = body.replace(b"Hamerslag", b"Hamerslog")
    with pytest.raises(Unauthorized, match="Typeform-Signature does not match the body"):
        adapter.authenticate(config, delivery(tampered, JSON, {"typeform-signature": signature}))


def test_typeform_signature_needs_a_configured_secret() -> None:
    body = fixture("typeform__form_response.json")
    headers = {"typeform-signature": typeform_signature("typeform-geheim", body)}
    with pytest.raises(Unauthorized, match="no token or signature"):
        adapter.authenticate(CONFIG, delivery(body, JSON, headers))


def test_urlencoded_html_form() -> None:
    msg = normalized(delivery(fixture("html_form__contact.txt")))
    assert msg.kind == "form"
    assert msg.sender == Sender(
        name="Jan Visser",
        company="Hamerslag B.V.",
        emails=("jan.visser@hamerslag.nl",),
        phones=("06-12345678",),
        city="Almere",
    )
    assert msg.subject == "Vraag over onderhoud"
    assert msg.text == "Goedemiddag,\n\nKunnen jullie volgende week langskomen voor de cv-ketel?"
    # Checkbox groups join; _charset_, the honeypot and the form id are not customer fields.
    assert msg.fields == {"interesse": "onderhoud, cv-ketel"}
    assert msg.source_detail == "contact-home"
    assert msg.thread_key is None
    assert msg.attachments == ()
    assert msg.occurred_at.tzinfo is UTC
    assert (datetime.now(UTC) - msg.occurred_at).total_seconds() < 60


def test_multipart_form_with_a_file() -> None:
    msg = normalized(delivery(fixture("multipart__with_file.txt"), MULTIPART))
    assert msg.sender == Sender(
        name="Sanne de Vries",
        company="Bouwbedrijf Mulder & Zn.",
        emails=("s.devries@mulderbouw.nl",),
        phones=("+31 (0)38 421 7788",),
        city="Zwolle",
    )
    assert msg.subject == "Offerte dakkapel"
    assert msg.text == (
        "Hierbij de plattegrond van de zolder.\n"
        "Is een dakkapel van 3,5 meter mogelijk? Graag een reactie vóór vrijdag."
    )
    assert msg.fields == {}
    # The empty "foto" file input sends a part without a file; it is no attachment.
    (pdf,) = msg.attachments
    assert replace(pdf, content=None) == Attachment("plattegrond zolder.pdf", "application/pdf", 88)
    assert pdf.content is not None
    assert pdf.content.startswith(b"%PDF-1.4\r\n") and pdf.content.endswith(b"%%EOF\r\n")
    assert msg.source_detail is None


def test_flat_json_form() -> None:
    d = delivery(fixture("json__contact.json"), "application/json; charset=utf-8")
    msg = normalized(d)
    assert msg.external_id == "sub_20240312_0042"
    assert msg.sender == Sender(
        name="Fatima el Amrani",
        company="Bakkerij Het Zoete Hoekje",
        emails=("fatima@hetzoetehoekje.nl",),
        phones=("036 523 4567",),
        city="Almere",
    )
    assert msg.subject == "Web form: offerte-zonnepanelen"
    assert (
        msg.text == "Wij willen zonnepanelen op het dak van de bakkerij. Graag een adviesgesprek."
    )
    assert msg.fields == {
        "aantal_panelen": "24",
        "nieuwsbrief": "true",
        "interesses": "zonnepanelen, thuisbatterij",
    }
    assert msg.source_detail == "offerte-zonnepanelen"


def test_typeform_form_response() -> None:
    msg = normalized(delivery(fixture("typeform__form_response.json"), JSON))
    assert msg.external_id == "01HS7K2M9QX4V3B8N6T1RZ5WEJ"
    assert msg.occurred_at == datetime(2024, 3, 12, 9, 44, 31, tzinfo=UTC)
    # Name parts and company by field ref, e-mail/phone/message by question type, city by title.
    assert msg.sender == Sender(
        name="Jan Visser",
        company="Hamerslag B.V.",
        emails=("jan.visser@hamerslag.nl",),
        phones=("+31612345678",),
        city="Almere",
    )
    assert msg.subject == "Web form: Offerte aanvragen"
    assert msg.text == (
        "We willen een aanbouw van ongeveer 4 bij 6 meter aan de achterkant.\n"
        "Kunt u een offerte sturen?"
    )
    assert msg.fields == {
        "Waar gaat uw aanvraag over?": "Aanbouw",
        "Hoeveel vierkante meter ongeveer?": "24",
        "Mogen we u bellen voor een afspraak?": "true",
        "Wanneer wilt u starten?": "2024-06-01",
        "utm_source": "google",
        "utm_campaign": "aanbouw-voorjaar",
    }
    assert msg.source_detail == "Kp4xR7tQ"
    assert msg.thread_key is None


def test_typeform_field_map_by_ref_title_or_id() -> None:
    config: JsonObject = {
        **CONFIG,
        "field_map": {
            "subject": "soort_project",
            "message": ["Hoeveel vierkante meter ongeveer?"],
            "city": "Lo9iKu7Yt3Re",
        },
    }
    msg = normalized(delivery(fixture("typeform__form_response.json"), JSON), config)
    assert msg.subject == "Aanbouw"
    assert msg.text == "24"
    assert msg.sender.city == "Almere"
    assert "Vertel ons meer over uw plannen." in msg.fields


def test_typeform_token_is_the_key_without_event_id() -> None:
    payload = json.loads(fixture("typeform__form_response.json"))
    del payload["event_id"]
    d = delivery(json.dumps(payload).encode(), JSON)
    assert adapter.accept(CONFIG, d).external_id == "a6c1e0f3b2d94e7a8c5f1b0d3e2a9c47"


def test_typeform_partial_response_is_journaled_but_stores_nothing() -> None:
    payload = json.loads(fixture("typeform__form_response.json"))
    payload["event_type"] = "form_response_partial"
    payload["form_response"]["answers"] = payload["form_response"]["answers"][:2]
    d = delivery(json.dumps(payload).encode(), JSON)
    assert adapter.accept(CONFIG, d) == Accepted("01HS7K2M9QX4V3B8N6T1RZ5WEJ")
    assert adapter.normalize(CONFIG, d) is None


def test_field_map_for_gravity_forms_numeric_ids() -> None:
    body = (
        b"1.3=Pieter&1.6=Bakker&2=p.bakker%40bakker-installatie.nl&3=0612345678"
        b"&4=Heerhugowaard&5=Storing+aan+de+warmtepomp&6=Bakker+Installatietechniek"
    )
    config: JsonObject = {
        **CONFIG,
        "field_map": {
            "first_name": "1.3",
            "last_name": "1.6",
            "email": "2",
            "phone": ["3"],
            "city": "4",
            "message": "5",
            "company": "6",
        },
    }
    msg = normalized(delivery(body), config)
    assert msg.sender == Sender(
        name="Pieter Bakker",
        company="Bakker Installatietechniek",
        emails=("p.bakker@bakker-installatie.nl",),
        phones=("0612345678",),
        city="Heerhugowaard",
    )
    assert msg.text == "Storing aan de warmtepomp"
    assert msg.subject == "Web form"
    assert msg.fields == {}


def test_field_names_match_without_case_or_separators() -> None:
    body = b"Full-Name=Jan+Visser&E-Mail=jan%40hamerslag.nl&Company+Name=Hamerslag+B.V."
    msg = normalized(delivery(body))
    assert msg.sender.name == "Jan Visser"
    assert msg.sender.emails == ("jan@hamerslag.nl",)
    assert msg.sender.company == "Hamerslag B.V."


def test_a_configured_name_replaces_the_defaults() -> None:
    body = b"email=info%40hamerslag.nl&contact_email=jan%40hamerslag.nl"
    config: JsonObject = {**CONFIG, "field_map": {"email": "contact_email"}}
    msg = normalized(delivery(body), config)
    assert msg.sender.emails == ("jan@hamerslag.nl",)
    assert msg.fields == {"email": "info@hamerslag.nl"}


def test_honeypot_filled_is_dropped() -> None:
    d = delivery(fixture("html_form__honeypot.txt"))
    accepted = adapter.accept(CONFIG, d)
    assert accepted.drop is True
    assert accepted.external_id == f"sha256:{d.body_hash()}"
    assert adapter.normalize(CONFIG, d) is None


def test_honeypot_can_be_renamed_or_switched_off() -> None:
    d = delivery(fixture("html_form__honeypot.txt"))
    assert adapter.accept({**CONFIG, "honeypot": "fax"}, d).drop is False
    msg = normalized(d, {**CONFIG, "honeypot": None})
    assert msg.fields == {"website": "https://goedkope-pillen.example"}


def test_empty_honeypot_is_kept() -> None:
    assert adapter.accept(CONFIG, delivery(fixture("html_form__contact.txt"))).drop is False


def test_plain_form_gets_the_thank_you_redirect() -> None:
    config: JsonObject = {**CONFIG, "redirect_url": "https://www.example.nl/bedankt"}
    browser = {"accept": "text/html,application/xhtml+xml", "sec-fetch-mode": "navigate"}
    form = delivery(fixture("html_form__contact.txt"), headers=browser)
    assert adapter.accept(config, form).redirect_to == "https://www.example.nl/bedankt"
    multipart = delivery(fixture("multipart__with_file.txt"), MULTIPART)
    assert adapter.accept(config, multipart).redirect_to == "https://www.example.nl/bedankt"
    spam = delivery(fixture("html_form__honeypot.txt"))
    assert adapter.accept(config, spam) == Accepted(
        f"sha256:{spam.body_hash()}", redirect_to="https://www.example.nl/bedankt", drop=True
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"x-requested-with": "XMLHttpRequest"},
        {"sec-fetch-mode": "cors", "accept": "*/*"},
        {"accept": "application/json"},
    ],
)
def test_scripted_posts_get_no_redirect(headers: dict[str, str]) -> None:
    config: JsonObject = {**CONFIG, "redirect_url": "https://www.example.nl/bedankt"}
    d = delivery(fixture("html_form__contact.txt"), headers=headers)
    assert adapter.accept(config, d).redirect_to is None


def test_json_posts_get_no_redirect() -> None:
    config: JsonObject = {**CONFIG, "redirect_url": "https://www.example.nl/bedankt"}
    assert adapter.accept(config, delivery(fixture("json__contact.json"), JSON)).redirect_to is None


def test_no_email_or_phone_is_unprocessable() -> None:
    d = delivery(fixture("json__no_contact.json"), JSON)
    with pytest.raises(Unprocessable) as err:
        adapter.accept(CONFIG, d)
    assert err.value.reason == "need an e-mail address or a phone number"
    assert err.value.status == 422
    with pytest.raises(Unprocessable):
        adapter.normalize(CONFIG, d)


def test_configured_required_fields() -> None:
    config: JsonObject = {**CONFIG, "required": ["email", "company", "message"]}
    body = b"naam=Jan+Visser&email=jan%40hamerslag.nl"
    with pytest.raises(Unprocessable, match=r"^missing required field\(s\): company, message$"):
        adapter.accept(config, delivery(body))
    no_contact = delivery(fixture("json__no_contact.json"), JSON)
    assert adapter.accept({**CONFIG, "required": []}, no_contact).drop is False


def test_journal_key_is_the_body_hash_without_an_id() -> None:
    d = delivery(fixture("html_form__contact.txt"))
    assert adapter.accept(CONFIG, d).external_id == (
        "sha256:c155d7d05b3b8f8ba148abb3f607dda690b33f71ff0b2a4fd8ac3e2a2cacf8ce"
    )


def test_journal_key_from_a_json_id_or_a_configured_id_field() -> None:
    body = b'{"id": 90210, "email": "jan@hamerslag.nl"}'
    msg = normalized(delivery(body, JSON))
    assert msg.external_id == "90210"
    assert msg.fields == {}
    form = b"entry_id=GF-1234&email=jan%40hamerslag.nl&id=7"
    config: JsonObject = {**CONFIG, "id_field": "entry_id"}
    msg = normalized(delivery(form), config)
    assert msg.external_id == "GF-1234"
    assert msg.fields == {"id": "7"}


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("typeform__form_response.json", JSON),
        ("html_form__contact.txt", FORM),
        ("multipart__with_file.txt", MULTIPART),
        ("json__contact.json", JSON),
    ],
)
def test_accept_and_normalize_agree(name: str, content_type: str) -> None:
    d = delivery(fixture(name), content_type)
    assert adapter.accept(CONFIG, d).external_id == normalized(d).external_id


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (fixture("json__broken.json"), JSON, "broken JSON: Unterminated string"),
        (fixture("json__nested.json"), JSON, "field 'contact' is nested JSON"),
        (b'["jan@hamerslag.nl"]', JSON, "JSON body is not an object"),
        (b"\xff\xfe{", JSON, "broken JSON|JSON body is not valid UTF-8"),
        (b"naam=J%E9r%F4me", FORM, "bad form encoding"),
        (b"naam=J\xe9r\xf4me", FORM, "body is not valid utf-8"),
        (b"naam=Jan", "text/plain", "unsupported Content-Type 'text/plain'"),
        (b"naam=Jan", None, "no Content-Type"),
        (fixture("multipart__with_file.txt"), "multipart/form-data", "broken multipart"),
        (b"--x\r\n\r\nJan\r\n--x--\r\n", "multipart/form-data; boundary=x", "no field name"),
        (b'{"form_response": {"answers": {}}}', JSON, "answers is not a list of objects"),
    ],
)
def test_unreadable_bodies_are_parse_errors(
    body: bytes, content_type: str | None, reason: str
) -> None:
    d = delivery(body, content_type)
    with pytest.raises(ParseError, match=reason) as err:
        adapter.accept(CONFIG, d)
    assert err.value.status == 400
    with pytest.raises(ParseError, match=reason):
        adapter.normalize(CONFIG, d)


def test_latin1_form_with_its_charset() -> None:
    d = delivery(b"naam=J%E9r%F4me+Bakker&tel=0201234567", f"{FORM}; charset=ISO-8859-1")
    assert normalized(d).sender.name == "Jérôme Bakker"
