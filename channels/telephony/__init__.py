"""Telephony channel: call-log webhooks from Twilio, Asterisk, 3CX and a generic JSON schema."""

from channels.telephony.twilio import twilio_signature

__all__ = ["twilio_signature"]
