"""What every dialect parses a delivery into, and the message the pipeline gets from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from channels.base import CallInfo, InboundMessage, Sender


@dataclass(frozen=True)
class ParsedCall:
    """One call record, checked and decoded, before it becomes an InboundMessage."""

    journal_key: str  # dedupe key of this delivery (one per callback)
    call_id: str  # stable across all callbacks of one call
    call: CallInfo
    caller_name: str | None = None
    meta: Mapping[str, str] = field(default_factory=dict)  # vendor details worth keeping
    internal: bool = False  # extension to extension: nothing for the CRM


def call_message(parsed: ParsedCall, dialect: str, received_at: datetime) -> InboundMessage:
    call = parsed.call
    return InboundMessage(
        kind="call",
        external_id=parsed.call_id,
        occurred_at=call.started_at or received_at,
        sender=Sender(name=parsed.caller_name, phones=(call.number,)),
        text=summary(call),
        direction=call.direction,
        thread_key=f"phone:{call.number}",
        call=call,
        meta=parsed.meta,
        source_detail=dialect,
    )


def summary(call: CallInfo) -> str:
    """A one-line human description, e.g. "Inbound call from 0612345678 answered by 201, 2m 05s"."""
    if call.direction == "inbound":
        if call.status == "missed":
            return f"Missed call from {call.number}"
        head = f"Inbound call from {call.number}"
    else:
        head = f"Outbound call{f' from {call.agent}' if call.agent else ''} to {call.number}"
    if call.status is None:
        return f"{head}, in progress"
    if call.status == "missed":
        return f"{head} not answered"
    if call.status != "answered":
        return f"{head}: {call.status}"
    text = f"{head} answered"
    if call.direction == "inbound" and call.agent:
        text += f" by {call.agent}"
    if call.duration_s:
        text += f", {duration_text(call.duration_s)}"
    return text


def duration_text(seconds: int) -> str:
    """125 → "2m 05s", 3725 → "1h 02m 05s", 45 → "45s"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
