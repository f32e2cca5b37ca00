"""Shared-secret checks used by several adapters; all compare in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_secret(nbytes: int = 24) -> str:
    """A random URL-safe secret, also valid as a Telegram webhook secret token."""
    return secrets.token_urlsafe(nbytes)


def hmac_digest(key: str, data: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key.encode(), data, algorithm).digest()


def hmac_hex(key: str, data: bytes, algorithm: str = "sha256") -> str:
    return hmac_digest(key, data, algorithm).hex()


def hmac_b64(key: str, data: bytes, algorithm: str = "sha256") -> str:
    return base64.b64encode(hmac_digest(key, data, algorithm)).decode()


def same(given: str | None, expected: str) -> bool:
    """Constant-time equality that treats a missing value as a mismatch."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
