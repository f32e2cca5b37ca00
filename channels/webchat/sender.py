"""Replies to a visitor: the stored message is the delivery. The web process pushes it to the
visitor's open socket (or long poll) on the realtime event, and the widget fetches what it
missed when it reconnects, so sending has nothing left to do."""

from __future__ import annotations

from channels.base import JsonObject, OutboundMessage, SendResult


async def send(config: JsonObject, message: OutboundMessage) -> SendResult:
    if not message.to:
        return SendResult("failed", error="no visitor to answer")
    return SendResult("sent", external_id=message.message_id)
