"""Web forms: plain HTML forms, JSON posts and Typeform webhooks."""

from __future__ import annotations

from channels.webform.auth import sign_body, typeform_signature

__all__ = ["sign_body", "typeform_signature"]
