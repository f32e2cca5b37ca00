"""Bad input: every message either parses or fails with a ParseError and its reason."""

from __future__ import annotations

import base64
import importlib.util
import os
from pathlib import Path

import pytest

from channels.base import InboundMessage, ParseError
from channels.mail import parse_message

MALFORMED = Path(__file__).parent.parent / "fixtures" / "email" / "malformed"


def stdlib_corpus() -> list[Path]:
    """CPython's own corpus of real and partly broken messages (test/test_email/data)."""
    spec = importlib.util.find_spec(
        "test"
    )  # optional: Debian ships it apart (libpython3-testsuite)
    if spec is None or spec.origin is None:
        return []
    return sorted(Path(spec.origin).parent.joinpath("test_email", "data").glob("msg_*.txt"))


def outcome(raw: bytes) -> InboundMessage | str:
    try:
        return parse_message(raw)
    except ParseError as exc:
        assert exc.reason
        return exc.reason


def test_stdlib_corpus_is_there() -> None:
    if not stdlib_corpus():
        pytest.skip(
            "this Python has no test/test_email/data; tests/fixtures/email/malformed covers it"
        )
    assert len(stdlib_corpus()) >= 40


@pytest.mark.parametrize("path", stdlib_corpus(), ids=lambda p: p.name)
def test_stdlib_message_parses_or_fails_with_a_reason(path: Path) -> None:
    assert isinstance(outcome(path.read_bytes()), InboundMessage | str)


@pytest.mark.parametrize("path", sorted(MALFORMED.glob("*.eml")), ids=lambda p: p.name)
def test_malformed_message_parses_or_fails_with_a_reason(path: Path) -> None:
    assert isinstance(outcome(path.read_bytes()), InboundMessage | str)


NOBODY = "no From, Sender or Reply-To header: nobody to attribute it to"
# The corpus files that are no e-mail we could attribute (MIME fragments, a headerless digest).
STDLIB_FAILURES = {
    "msg_11.txt": NOBODY,
    "msg_18.txt": NOBODY,
    "msg_19.txt": "no header fields: not an RFC 5322 message",
    "msg_37.txt": NOBODY,
    "msg_38.txt": NOBODY,
    "msg_39.txt": NOBODY,
    "msg_40.txt": NOBODY,
}


def test_stdlib_corpus_outcomes() -> None:
    corpus = {p.name: outcome(p.read_bytes()) for p in stdlib_corpus()}
    if not corpus:
        pytest.skip("no stdlib corpus in this Python")
    failed = {name: result for name, result in corpus.items() if isinstance(result, str)}
    known = {name: reason for name, reason in STDLIB_FAILURES.items() if name in corpus}
    assert {name: failed[name] for name in failed if name in STDLIB_FAILURES} == known
    newer = {name: reason for name, reason in failed.items() if name not in STDLIB_FAILURES}
    assert set(newer.values()) <= set(STDLIB_FAILURES.values()), newer
    dsn = corpus["msg_16.txt"]
    assert isinstance(dsn, InboundMessage)
    assert (dsn.automated, dsn.bounce_of) == (True, "002001c144a6$8752e060$56104586@oxy.edu")


def test_no_message_id_gets_a_hash_of_the_raw_bytes() -> None:
    raw = (MALFORMED / "no_message_id.eml").read_bytes()
    msg = parse_message(raw)
    assert msg.external_id == (
        "sha256:2bf23e081e6e887aee18a8fad17239b590f08d071f7b8490be2c9975390580e7"
    )
    assert "message_id" not in msg.meta
    assert parse_message(raw).external_id == msg.external_id  # stable across redelivery


def test_broken_base64_is_decoded_as_far_as_it_goes() -> None:
    msg = parse_message((MALFORMED / "broken_base64.eml").read_bytes())
    assert msg.text == "Hierbij de plattegrond van de vergaderruimte. Groet, Henk"
    assert [(a.filename, a.size) for a in msg.attachments] == [("plattegrond.pdf", 38)]
    content = msg.attachments[0].content
    assert content is not None and content.startswith(b"%PDF-1.4\n")
    assert msg.meta["defects"] == ["InvalidBase64CharactersDefect", "InvalidBase64PaddingDefect"]


def test_unknown_charset_falls_back_to_what_the_bytes_are() -> None:
    msg = parse_message((MALFORMED / "unknown_charset.eml").read_bytes())
    assert msg.sender.name == "René Duböis"
    assert msg.subject == "Cafétafels – offerte"
    assert msg.text == "Bonjour, wij zoeken 12 cafétafels – graag een offerte.\n\nRené"


def test_nul_bytes_in_headers_and_body_are_dropped() -> None:
    msg = parse_message((MALFORMED / "nul_in_header.eml").read_bytes())
    assert msg.subject == "Offerte bureaustoelen"
    assert msg.text == "Graag een offerte."
    assert msg.sender.emails == ("jan.visser@hamerslag.nl",)


def test_raw_8bit_headers_in_utf8_and_latin1() -> None:
    utf8 = parse_message((MALFORMED / "raw_8bit_headers.eml").read_bytes())
    assert (utf8.sender.name, utf8.subject) == ("Katrin Müller", "Bürostühle – Anfrage")
    assert utf8.text == "Bitte um ein Angebot für 12 Bürostühle."
    latin1 = parse_message((MALFORMED / "latin1_headers_8bit.eml").read_bytes())
    assert (latin1.sender.name, latin1.subject, latin1.text) == (
        "René Dubois",
        "Cafétafels",
        "Graag 12 cafétafels.",
    )


def test_malformed_encoded_words() -> None:
    msg = parse_message((MALFORMED / "bad_encoded_words.eml").read_bytes())
    assert msg.sender.name == "Jan Visser"
    assert msg.subject == "Vraag over levering cafétafels – spoed =?utf-8?Q?_unfinished"


def test_html_that_html_parser_gives_up_on_still_reads() -> None:
    msg = parse_message((MALFORMED / "html_marked_section.eml").read_bytes())
    assert msg.text == "Graag een offerte. - punt"


def test_garbage_and_headerless_files_fail_with_a_reason() -> None:
    for name in ("binary_garbage.eml", "no_headers.eml"):
        assert outcome((MALFORMED / name).read_bytes()) == (
            "no header fields: not an RFC 5322 message"
        )


def test_deeply_nested_multiparts_do_not_crash() -> None:
    depth = 200
    raw = b"From: a@b.nl\nSubject: nest\n"
    for level in range(depth):
        raw += f'Content-Type: multipart/mixed; boundary="b{level}"\n\n--b{level}\n'.encode()
    raw += b"Content-Type: text/plain\n\ndeep\n"
    for level in reversed(range(depth)):
        raw += f"--b{level}--\n".encode()
    assert isinstance(outcome(raw), InboundMessage | str)


def test_thirty_megabyte_message_keeps_its_text_and_refuses_the_attachment() -> None:
    blob = os.urandom(22 * 2**20)
    encoded = base64.encodebytes(blob)
    raw = (
        b"From: Jan Visser <jan.visser@hamerslag.nl>\nTo: info@switchboard.test\n"
        b"Subject: Bouwtekeningen\nMessage-ID: <big-1@hamerslag.nl>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="BIG"\n\n--BIG\n'
        b"Content-Type: text/plain; charset=utf-8\n\nHierbij de tekeningen.\n--BIG\n"
        b'Content-Type: application/zip; name="tekeningen.zip"\n'
        b'Content-Disposition: attachment; filename="tekeningen.zip"\n'
        b"Content-Transfer-Encoding: base64\n\n" + encoded + b"--BIG--\n"
    )
    assert len(raw) > 30 * 10**6
    msg = parse_message(raw, max_attachment_bytes=20 * 2**20)
    assert msg.text == "Hierbij de tekeningen."
    (attachment,) = msg.attachments
    assert (attachment.filename, attachment.size, attachment.content) == (
        "tekeningen.zip",
        len(blob),
        None,
    )
    assert attachment.refused == f"over the size cap of {20 * 2**20} bytes"
    kept = parse_message(raw)  # the default cap of 25 MiB keeps it
    assert kept.attachments[0].content == blob


def test_broken_rfc2231_continuations_give_a_generated_filename() -> None:
    raw = (
        b"From: a@b.nl\nSubject: x\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
        b"Content-Type: text/plain\n\nzie bijlage\n--B\nContent-Type: application/pdf\n"
        b"Content-Disposition: attachment; filename*=utf-8''a.pdf; filename*0=b\n\n%PDF\n--B--\n"
    )
    msg = parse_message(raw)
    assert [(a.filename, a.content) for a in msg.attachments] == [("part-1.pdf", b"%PDF")]


def test_attached_message_the_generator_refuses_is_kept_as_written() -> None:
    # A byte-mangled digest: BytesGenerator cannot write the attached message back.
    msg = parse_message((MALFORMED / "attached_digest_8bit_boundary.eml").read_bytes())
    (attached,) = msg.attachments
    assert (attached.filename, attached.content_type) == ("part-1.eml", "message/rfc822")
    assert attached.content is not None
    assert attached.content.startswith(b"To: bperson@dom.ain\r\nContent-Type: multipart/digest")


def test_overlong_message_ids_are_cut_to_300_characters() -> None:
    long_id = "x" * 400 + "@b.nl"
    raw = f"From: a@b.nl\nMessage-ID: <{long_id}>\nIn-Reply-To: <{long_id}>\n\nhoi\n".encode()
    msg = parse_message(raw)
    assert msg.external_id == long_id[:300]
    assert msg.in_reply_to == (long_id[:300],)
