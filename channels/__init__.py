"""Channel adapters: one subpackage per channel, all listed here."""

from __future__ import annotations

from channels.base import Adapter
from channels.mail.adapter import EmailAdapter
from channels.telegram.adapter import TelegramAdapter
from channels.telephony.adapter import TelephonyAdapter
from channels.webchat.adapter import WebchatAdapter
from channels.webform.adapter import WebformAdapter
from channels.whatsapp.adapter import WhatsAppAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.kind: adapter
    for adapter in (
        WebformAdapter(),
        TelephonyAdapter(),
        EmailAdapter(),
        TelegramAdapter(),
        WebchatAdapter(),
        WhatsAppAdapter(),
    )
}

# Kinds that can send replies: "module:function" of an async send(config, OutboundMessage),
# imported only when used.
SENDERS: dict[str, str] = {
    "email": "channels.mail.smtp:send",
    "telegram": "channels.telegram.sender:send",
    "webchat": "channels.webchat.sender:send",
    "whatsapp": "channels.whatsapp.sender:send",
}


def adapter_for(kind: str) -> Adapter:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise LookupError(f"unknown channel kind {kind!r}; known: {', '.join(ADAPTERS)}") from None
