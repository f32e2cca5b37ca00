"""The external bot API's signature: HMAC-SHA256 over timestamp + "." + body."""

from __future__ import annotations

import hashlib
import hmac

from inbox.bot.external import SIGNATURE, TIMESTAMP, signature, verify

SECRET = "s3cret"
BODY = b'{"type":"message.created"}'


def test_signature_is_hex_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, "1700000000", BODY) == f"sha256={expected}"


def test_verify_wants_the_right_secret_body_and_a_fresh_timestamp() -> None:
    headers = {TIMESTAMP: "1700000000", SIGNATURE: signature(SECRET, "1700000000", BODY)}
    assert verify(SECRET, headers, BODY, now=1700000100)
    assert not verify("other", headers, BODY, now=1700000100)
    assert not verify(SECRET, headers, BODY + b" ", now=1700000100)
    assert not verify(SECRET, headers, BODY, now=1700000000 + 301)  # replayed later
    assert not verify(SECRET, {SIGNATURE: headers[SIGNATURE]}, BODY, now=1700000000)
