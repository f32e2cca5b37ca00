"""The e-mail channel's pure parts, straight from raw messages: no IMAP, no SMTP, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from channels.base import Attachment, ParseError, Sender
from channels.mail import (
    bounce_reason,
    bounced_message_id,
    classify,
    find_reply_token,
    html_to_text,
    make_message_id,
    parse_message,
    read_message,
    reply_address,
    strip_reply,
)
from channels.mail.charsets import decode_bytes
from channels.mail.headers import decode_header_text

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email"
CET = timezone(timedelta(hours=1))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def headers(text: str) -> EmailMessage:
    return read_message(text.strip().encode() + b"\n\nbody\n")


def test_first_message_from_a_known_contact() -> None:
    msg = parse_message(fixture("known_contact__first.eml"), reply_domain="switchboard.test")
    assert msg.kind == "message"
    assert (
        msg.external_id == "AM9PR08MB7123E1F2A3B4C5D6E7F8@AM9PR08MB7123.eurprd08.prod.outlook.com"
    )
    assert msg.occurred_at == datetime(2024, 3, 11, 9, 12, 5, tzinfo=UTC)
    assert msg.sender == Sender(name="Jan Visser", emails=("jan.visser@hamerslag.nl",))
    assert msg.subject == "Offerte bureaustoelen"
    assert msg.recipients == ("info@switchboard.test",)
    assert msg.in_reply_to == ()
    assert msg.reply_token is None
    assert msg.automated is False
    assert msg.bounce_of is None
    assert msg.attachments == ()
    assert msg.text == msg.full_text
    assert msg.text.startswith("Goedemorgen,\n\nWij zijn op zoek naar nieuwe bureaustoelen")
    assert msg.text.endswith("Jan Visser\nInkoop | Hamerslag B.V.\nT 036 - 123 45 67")
    assert msg.html is not None and '<p class="MsoNormal">Goedemorgen,</p>' in msg.html
    assert dict(msg.meta) == {
        "message_id": "AM9PR08MB7123E1F2A3B4C5D6E7F8@AM9PR08MB7123.eurprd08.prod.outlook.com",
        "from": "jan.visser@hamerslag.nl",
        "to": ["info@switchboard.test"],
        "reply_address": "jan.visser@hamerslag.nl",
    }


def test_dutch_reply_is_stripped_and_carries_our_token() -> None:
    msg = parse_message(fixture("known_contact__reply.eml"), reply_domain="switchboard.test")
    assert (
        msg.external_id == "AM9PR08MB7123F9A0B1C2D3E4F5A6@AM9PR08MB7123.eurprd08.prod.outlook.com"
    )
    assert msg.occurred_at == datetime(2024, 3, 12, 10, 42, 17, tzinfo=CET)
    assert msg.in_reply_to == (
        "sb.tok123.2@switchboard.test",
        "AM9PR08MB7123E1F2A3B4C5D6E7F8@AM9PR08MB7123.eurprd08.prod.outlook.com",
    )
    assert msg.reply_token == "tok123"
    assert msg.subject == "Re: Offerte bureaustoelen"
    assert msg.text == (
        "Hoi Sanne,\n\nDank voor de snelle offerte. We gaan akkoord met 40 stoelen Ergo Plus in "
        "antraciet.\nKunnen jullie op dinsdag 2 april leveren?\n\nGroet,\nJan"
    )
    assert msg.full_text is not None
    assert msg.full_text.startswith(msg.text + "\n\nOp di 12 mrt 2024 om 09:15 schreef Sanne")
    assert msg.full_text.endswith("> Sanne Bakker\n> Binnendienst")
    assert msg.automated is False


def test_out_of_office_is_automated_but_threads_to_our_message() -> None:
    msg = parse_message(fixture("autoreply__out_of_office.eml"))
    assert msg.automated is True
    assert msg.meta["auto"] == "auto-submitted: auto-generated"
    assert msg.reply_token == "tok123"
    assert msg.bounce_of is None
    assert msg.sender.emails == ("jan.visser@hamerslag.nl",)
    assert msg.text.startswith(
        "Dank voor uw bericht.\n\nIk ben afwezig tot en met maandag 25 maart"
    )


def test_bounce_names_the_outbound_message_that_failed() -> None:
    msg = parse_message(fixture("bounce__dsn.eml"))
    assert msg.automated is True
    assert msg.bounce_of == "sb.tok123@switchboard.test"
    assert msg.meta["auto"] == "delivery status notification"
    assert msg.meta["bounce"] == (
        "j.visser@hamerslag.nl: 550 5.1.1 <j.visser@hamerslag.nl>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert msg.sender == Sender(
        name="Mail Delivery System", emails=("MAILER-DAEMON@mail.switchboard.test",)
    )
    assert [(a.filename, a.content_type) for a in msg.attachments] == [
        ("part-1.txt", "message/delivery-status"),
        ("part-2.eml", "message/rfc822"),
    ]
    returned = msg.attachments[1].content
    assert returned is not None and b"Message-ID: <sb.tok123@switchboard.test>" in returned
    assert msg.reply_token is None  # a bounce references our message only inside its report


def test_newsletter_is_automated_list_mail() -> None:
    msg = parse_message(fixture("newsletter__list.eml"))
    assert msg.automated is True
    assert msg.meta["auto"] == "precedence: bulk"
    assert msg.meta["list_id"] == "Nieuwsbrief Kantoor & Co <nieuwsbrief.kantoorenco.example>"
    assert msg.subject == "Voorjaarsactie: 20% korting op bureaulampen"
    assert msg.sender == Sender(name="Kantoor & Co", emails=("nieuwsbrief@kantoorenco.example",))


def test_photos_from_a_phone_are_kept_as_attachments_with_their_bytes() -> None:
    msg = parse_message(fixture("replies/samsung__nl_with_photos.eml"))
    assert [(a.filename, a.content_type, a.size, a.inline) for a in msg.attachments] == [
        ("20240314_101201.jpg", "image/jpeg", 91, False),
        ("20240314_101202.jpg", "image/jpeg", 91, False),
    ]
    content = msg.attachments[0].content
    assert content is not None and content.startswith(b"\xff\xd8") and content.endswith(b"\xff\xd9")


def test_attachment_names_inline_images_and_rfc2231() -> None:
    msg = parse_message(fixture("malformed/rfc2231_filename.eml"))
    assert msg.attachments == (
        Attachment("Offerte cafétafels.pdf", "application/pdf", 9, content=b"%PDF-1.4\n"),
        Attachment("passwd", "application/octet-stream", 11, content=b"root:x:0:0:"),
        Attachment(
            "logo Hamerslag.png",
            "image/png",
            8,
            content=b"\x89PNG\r\n\x1a\n",
            inline=True,
            content_id="logo@hamerslag.nl",
        ),
    )
    assert msg.text == "Zie bijlagen."


def test_attachment_over_the_cap_is_refused_with_a_note() -> None:
    msg = parse_message(fixture("replies/samsung__nl_with_photos.eml"), max_attachment_bytes=50)
    first = msg.attachments[0]
    assert (first.size, first.content, first.refused) == (91, None, "over the size cap of 50 bytes")


def test_reply_to_is_a_second_identity_and_replaces_a_no_reply_sender() -> None:
    raw = (
        b"From: Jan Visser <jan.visser@hamerslag.nl>\nReply-To: Inkoop <inkoop@hamerslag.nl>\n"
        b"To: info@switchboard.test\nCc: Fatima <f.elamrani@hamerslag.nl>, info@switchboard.test\n"
        b"Subject: Vraag\nMessage-ID: <r1@hamerslag.nl>\n\nHallo\n"
    )
    msg = parse_message(raw)
    assert msg.sender == Sender(
        name="Jan Visser", emails=("jan.visser@hamerslag.nl", "inkoop@hamerslag.nl")
    )
    assert msg.recipients == (
        "info@switchboard.test",
        "f.elamrani@hamerslag.nl",
        "info@switchboard.test",
    )
    assert msg.meta["reply_address"] == "inkoop@hamerslag.nl"
    assert msg.meta["cc"] == ["f.elamrani@hamerslag.nl", "info@switchboard.test"]

    form = (
        b"From: Website Hamerslag <no-reply@hamerslag.nl>\n"
        b"Reply-To: Roos Smit <roos@smitadvies.nl>\nTo: info@switchboard.test\n"
        b"Subject: Contactformulier\n\nNaam: Roos Smit\n"
    )
    assert parse_message(form).sender == Sender(name="Roos Smit", emails=("roos@smitadvies.nl",))


def test_plus_address_token_wins_over_references() -> None:
    raw = (
        b"From: jan.visser@hamerslag.nl\nTo: Service <reply+abc123@switchboard.test>\n"
        b"In-Reply-To: <sb.other.5@switchboard.test>\nSubject: Re: x\n\nJa\n"
    )
    assert parse_message(raw, reply_domain="switchboard.test").reply_token == "abc123"
    assert parse_message(raw).reply_token == "other"  # no reply domain: only our Message-IDs
    assert parse_message(raw, reply_domain="elders.example").reply_token == "other"


def test_plus_address_in_delivered_to_counts_for_bcc() -> None:
    raw = (
        b"Delivered-To: reply+bcc42@switchboard.test\nFrom: jan.visser@hamerslag.nl\n"
        b"To: iemand@hamerslag.nl\nSubject: x\n\nJa\n"
    )
    msg = parse_message(raw, reply_domain="switchboard.test")
    assert msg.reply_token == "bcc42"
    assert msg.recipients == ("iemand@hamerslag.nl",)


def test_references_are_most_recent_first_without_duplicates() -> None:
    raw = (
        b"From: a@b.nl\nMessage-ID: <self@b.nl>\nIn-Reply-To: <m3@x.nl>\n"
        b"References: <m1@x.nl>\n <m2@x.nl> <m3@x.nl>\nSubject: x\n\ny\n"
    )
    assert parse_message(raw).in_reply_to == ("m3@x.nl", "m2@x.nl", "m1@x.nl")


def test_message_id_and_reply_address_helpers() -> None:
    assert make_message_id("tok123", "switchboard.test", 7) == "sb.tok123.7@switchboard.test"
    generated = make_message_id("tok123", "switchboard.test")
    assert generated.startswith("sb.tok123.") and generated.endswith("@switchboard.test")
    assert generated != make_message_id("tok123", "switchboard.test")
    assert reply_address("tok123", "switchboard.test") == "reply+tok123@switchboard.test"
    with pytest.raises(ValueError, match="reply token"):
        make_message_id("tok.123", "switchboard.test")
    with pytest.raises(ValueError, match="not a domain"):
        make_message_id("tok123", "a@b")


def test_find_reply_token() -> None:
    ours = make_message_id("f00dcafe", "switchboard.test", 12)
    assert find_reply_token([], [ours]) == "f00dcafe"
    assert find_reply_token([], ["sb.f00dcafe@switchboard.test"]) == "f00dcafe"
    assert find_reply_token([], ["<sb.f00dcafe@switchboard.test>"]) == "f00dcafe"
    assert find_reply_token([], ["CAH8y@mail.gmail.com", "sb.old@x.test"]) == "old"
    assert find_reply_token(["REPLY+Tok9@Switchboard.Test"], [], "switchboard.test") == "Tok9"
    assert find_reply_token(["reply+tok9@other.test"], [], "switchboard.test") is None
    assert find_reply_token(["info@switchboard.test"], ["x@y"], "switchboard.test") is None


@pytest.mark.parametrize(
    ("header_block", "reason"),
    [
        ("From: a@b.nl\nAuto-Submitted: auto-replied", "auto-submitted: auto-replied"),
        ("From: a@b.nl\nAuto-Submitted: no", None),
        ("From: a@b.nl\nX-Autoreply: yes", "x-autoreply"),
        ("From: a@b.nl\nX-Autorespond: Out of office", "x-autorespond"),
        ("From: a@b.nl\nPrecedence: bulk", "precedence: bulk"),
        ("From: a@b.nl\nPrecedence: junk", "precedence: junk"),
        ("From: a@b.nl\nPrecedence: list", "precedence: list"),
        ("From: a@b.nl\nPrecedence: first-class", None),
        ("From: a@b.nl\nList-Id: <leden.vereniging.nl>", "list-id"),
        ("From: a@b.nl\nList-Unsubscribe: <mailto:u@b.nl>", "list-unsubscribe"),
        ("From: MAILER-DAEMON@mx.b.nl", "sent by mailer-daemon"),
        ("From: Postmaster <postmaster@b.nl>", "sent by postmaster"),
        ("From: a@b.nl\nX-Failed-Recipients: c@d.nl", "delivery status notification"),
        ("From: a@b.nl\nReturn-Path: <>", "null return-path"),
        ("From: Jan <jan@b.nl>\nReturn-Path: <jan@b.nl>", None),
        (
            'From: a@b.nl\nContent-Type: multipart/report; report-type="delivery-status";'
            ' boundary="x"',
            "delivery status notification",
        ),
        (
            "From: a@b.nl\nContent-Type: multipart/report; report-type=disposition-notification;"
            " boundary=x",
            "read receipt",
        ),
    ],
)
def test_classify(header_block: str, reason: str | None) -> None:
    assert classify(headers(header_block)) == reason


DELAYED = b"""From: MAILER-DAEMON@mx.example
To: info@switchboard.test
Subject: Delayed Mail (still being retried)
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message is delayed.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; jan@hamerslag.nl
Action: delayed
Status: 4.4.1

--B
Content-Type: text/rfc822-headers

Message-ID: <sb.tok9.3@switchboard.test>
Subject: Offerte

--B--
"""


def test_a_delay_notice_is_no_bounce() -> None:
    msg = parse_message(DELAYED)
    assert msg.automated is True
    assert msg.bounce_of is None
    assert bounced_message_id(read_message(DELAYED)) is None
    failed = DELAYED.replace(b"Action: delayed", b"Action: failed").replace(b"4.4.1", b"5.4.1")
    assert bounced_message_id(read_message(failed)) == "sb.tok9.3@switchboard.test"
    assert bounce_reason(read_message(failed)) == "jan@hamerslag.nl: 5.4.1"


def test_bounce_without_a_report_quotes_the_message_id_in_its_text() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <mailer-daemon@mx.example>\nTo: info@switchboard.test\n"
        b"Subject: failure notice\n\nSorry, we were unable to deliver your message.\n\n"
        b"--- Below this line is a copy of the message.\n\nFrom: info@switchboard.test\n"
        b"Message-ID: <sb.tok77.1@switchboard.test>\nSubject: Offerte\n"
    )
    msg = parse_message(raw)
    assert (msg.automated, msg.bounce_of) == (True, "sb.tok77.1@switchboard.test")


def test_read_receipt_is_automated_and_no_bounce() -> None:
    raw = (
        b"From: jan@hamerslag.nl\nTo: info@switchboard.test\nSubject: Gelezen: Offerte\n"
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nGelezen.\n--B\n"
        b"Content-Type: message/disposition-notification\n\n"
        b"Final-Recipient: rfc822; jan@hamerslag.nl\n"
        b"Original-Message-ID: <sb.tok5.1@switchboard.test>\nDisposition: manual-action/MDN-sent-manually; displayed\n"
        b"--B--\n"
    )
    msg = parse_message(raw)
    assert (msg.automated, msg.meta["auto"], msg.bounce_of) == (True, "read receipt", None)


def test_html_only_message_becomes_readable_text() -> None:
    raw = (
        b"From: a@b.nl\nSubject: html\nContent-Type: text/html; charset=utf-8\n\n"
        b"<html><head><style>p{color:red}</style><title>t</title></head><body>"
        b"<p>Beste&nbsp;Sanne,</p><p>Graag:<ul><li>40 stoelen</li><li>2 tafels</li></ul></p>"
        b"<ol><li>eerst</li><li>dan</li></ol><table><tr><td>Prijs</td><td>&euro; 1.240</td></tr></table>"
        b"<script>alert(1)</script><div>Groet,<br>Jan</div></body></html>\n"
    )
    msg = parse_message(raw)
    assert msg.full_text == (
        "Beste Sanne,\n\nGraag:\n\n- 40 stoelen\n- 2 tafels\n\n1. eerst\n2. dan\n\n"
        "Prijs € 1.240\n\nGroet,\nJan"
    )
    assert msg.html is not None and msg.html.startswith("<html>")


def test_html_blockquotes_become_quoted_lines() -> None:
    html = (
        "<div>Ja.</div><div>On Tue, 12 Mar 2024 at 09:15, Sanne wrote:</div>"
        "<blockquote><div>Vraag</div><blockquote>Ouder</blockquote></blockquote><pre>a  b\n c</pre>"
    )
    assert html_to_text(html) == (
        "Ja.\nOn Tue, 12 Mar 2024 at 09:15, Sanne wrote:\n> Vraag\n>> Ouder\n\na  b\n c"
    )


def test_format_flowed_paragraphs_are_joined() -> None:
    raw = (
        b"From: a@b.nl\nSubject: flowed\nContent-Type: text/plain; charset=utf-8; format=flowed\n\n"
        b"Dit is een lange zin die over \nmeer regels loopt.\n\n> geciteerd en \n> doorlopend\n"
        b"-- \nJan\n"
    )
    assert parse_message(raw).full_text == (
        "Dit is een lange zin die over meer regels loopt.\n\n> geciteerd en doorlopend\n-- \nJan"
    )


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        ("café".encode(), "utf-8", "café"),
        ("café".encode("latin-1"), "iso-8859-1", "café"),
        (b"\x93quoted\x94 \x80 5", "iso-8859-1", "“quoted” € 5"),  # latin-1 labels mean cp1252
        ("café".encode(), "iso-8859-1", "cafÃ©"),  # a label that fits is believed
        ("café".encode("latin-1"), "utf-8", "café"),  # a wrong utf-8 label falls back
        ("café".encode(), "x-unknown", "café"),
        ("café".encode("cp1252"), "x-unknown", "café"),
        ("café".encode(), "us-ascii", "café"),
        ("日本語".encode("shift_jis"), "shift_jis", "日本語"),
        ("日本語".encode("iso-2022-jp"), "ISO-2022-JP", "日本語"),
        ("한국어".encode("cp949"), "ks_c_5601-1987", "한국어"),
        ("中文".encode("gb18030"), "gb2312", "中文"),
        (b"abc", "base64", "abc"),  # not a text codec: ignored
        (b"a\\u0041", "unicode-escape", "a\\u0041"),
        (b"a\x00b\x81", None, "ab\x81"),  # NUL dropped; \x81 has no cp1252 meaning
        (b"\xef\xbb\xbfhoi", "utf-8", "hoi"),
    ],
)
def test_decode_bytes_never_fails(data: bytes, charset: str | None, text: str) -> None:
    assert decode_bytes(data, charset) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("=?utf-8?Q?Caf=C3=A9?= =?utf-8?Q?_De_Hoek?=", "Café De Hoek"),
        ("=?utf-8?Q?Caf=C3?= =?utf-8?Q?=A9?=", "Café"),  # a character split over two words
        ("=?UTF-8?B?SmFuIFZpc3Nlcg?=", "Jan Visser"),  # padding missing
        ("=?iso-8859-1?q?M=FCller?= GmbH", "Müller GmbH"),
        ("=?utf-8*nl?Q?Bo=C3=AEte?=", "Boîte"),  # RFC 2231 language suffix
        ("=?x-unknown?Q?Ren=E9?=", "René"),
        ("=?utf-8?Q?half open", "=?utf-8?Q?half open"),
        ("Offerte\x00 \r\n bureaustoelen", "Offerte bureaustoelen"),
        ("Caf\udcc3\udca9", "Café"),  # raw utf-8 bytes in a header
        ("Caf\udce9", "Café"),  # raw latin-1 bytes in a header
    ],
)
def test_decode_header_text(value: str, text: str) -> None:
    assert decode_header_text(value) == text


def test_date_falls_back_to_received_then_to_arrival() -> None:
    msg = parse_message(fixture("malformed/bad_date_and_garbage_ids.eml"))
    assert msg.occurred_at == datetime(2024, 3, 12, 12, 1, 2, tzinfo=CET)
    assert msg.external_id == "no-brackets-id@hamerslag.nl"
    assert msg.in_reply_to == ("sb.tok123.2@switchboard.test", "a@b")
    arrival = datetime(2024, 3, 20, 8, 0, tzinfo=UTC)
    bare = b"From: a@b.nl\nDate: someday\nSubject: x\n\ny\n"
    assert parse_message(bare, received_at=arrival).occurred_at == arrival
    naive = b"From: a@b.nl\nDate: Tue, 12 Mar 2024 10:00:00 -0000\nSubject: x\n\ny\n"
    assert parse_message(naive).occurred_at == datetime(2024, 3, 12, 10, 0, tzinfo=UTC)


def test_forwarded_subject_keeps_the_forwarded_mail() -> None:
    text = "Zie hieronder.\n\nVan: Klant <k@x.nl>\nVerzonden: maandag\nAan: Jan\nOnderwerp: Klacht\n\nKapot."
    assert strip_reply(text) == "Zie hieronder."
    assert strip_reply(text, forwarded=True) == text


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message: no bytes"),
        (b"  \r\n\r\n ", "empty message: no bytes"),
        (b"just some words\nand more\n", "no header fields: not an RFC 5322 message"),
        (
            b"Subject: hallo\n\nniemand\n",
            "no From, Sender or Reply-To header: nobody to attribute it to",
        ),
    ],
)
def test_what_is_no_email_at_all(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_message(raw)
    assert caught.value.reason == reason
