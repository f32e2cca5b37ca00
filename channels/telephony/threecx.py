"""3CX call journaling: the JSON body of the ReportCall scenario in threecx_template.xml.

Keys (3CX template variables): CallType (Inbound|Missed|Outbound|Notanswered), Number, Name,
Agent, AgentFirstName, AgentEmail, QueueExtension, Duration ("hh:mm:ss"), DurationSeconds,
CallStartTimeUTC, CallEstablishedTimeUTC, CallEndTimeUTC (ISO 8601), RecordingUrl, CallDirection.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from channels.base import CallInfo, CallStatus, Delivery, JsonObject, Unprocessable
from channels.telephony.calls import ParsedCall
from channels.telephony.records import Record, json_object

CALL_TYPES: dict[str, tuple[Literal["inbound", "outbound"], CallStatus]] = {
    "inbound": ("inbound", "answered"),
    "missed": ("inbound", "missed"),
    "outbound": ("outbound", "answered"),
    "notanswered": ("outbound", "missed"),
}


def parse(config: JsonObject, delivery: Delivery) -> ParsedCall:
    """One journaled call; 3CX sends no call id, so the key hashes start, agent, number, direction."""
    report = Record(json_object(delivery.body, "3cx"), "3cx")
    call_type = report.require("CallType")
    if call_type.lower() not in CALL_TYPES:
        raise report.invalid("CallType", "one of Inbound, Missed, Outbound, Notanswered")
    direction, status = CALL_TYPES[call_type.lower()]
    number = report.require("Number")
    agent = report.text("Agent")
    started_at = report.time("CallStartTimeUTC")
    if started_at is None:
        raise Unprocessable("3cx: missing required field 'CallStartTimeUTC'")
    identity = "\n".join((f"{started_at:%Y-%m-%dT%H:%M:%SZ}", agent or "", number, direction))
    call_id = hashlib.sha256(identity.encode()).hexdigest()
    duration = report.seconds("DurationSeconds")
    call = CallInfo(
        status=status,
        direction=direction,
        number=number,
        agent=agent,
        duration_s=duration if duration is not None else report.seconds("Duration"),
        started_at=started_at,
        recording_url=report.text("RecordingUrl"),
    )
    kept = {
        "agent_name": report.text("AgentFirstName"),
        "agent_email": report.text("AgentEmail"),
        "queue": report.text("QueueExtension"),
    }
    return ParsedCall(
        journal_key=call_id,
        call_id=call_id,
        call=call,
        caller_name=report.text("Name"),
        meta={"vendor_status": call_type} | {k: v for k, v in kept.items() if v},
    )
