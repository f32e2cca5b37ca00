"""Our own call-log schema, for PBXs and scripts that can POST one JSON object per call.

- call_id (required): unique per call; it is the journal key too
- status (required): "answered", "missed", "busy" or "failed"
- direction: "inbound" (default) or "outbound"
- from, to: numbers as the PBX has them; the customer's side (from inbound, to outbound) is required
- agent, caller_name, recording_url: optional text
- duration: seconds (or "hh:mm:ss")
- started_at: ISO 8601 (no offset: the channel's timezone) or Unix seconds
"""

from __future__ import annotations

from typing import get_args

from channels.base import CallInfo, CallStatus, Delivery, JsonObject
from channels.telephony.calls import ParsedCall
from channels.telephony.records import Record, json_object
from channels.telephony.settings import zone

STATUSES: dict[str, CallStatus] = {status: status for status in get_args(CallStatus)}


def parse(config: JsonObject, delivery: Delivery) -> ParsedCall:
    """One finished call; journal key and external id are its call_id."""
    record = Record(json_object(delivery.body, "generic"), "generic")
    call_id = record.require("call_id")
    direction = record.text("direction") or "inbound"
    if direction not in ("inbound", "outbound"):
        raise record.invalid("direction", '"inbound" or "outbound"')
    status = STATUSES.get(record.require("status"))
    if status is None:
        raise record.invalid("status", " or ".join(f'"{s}"' for s in STATUSES))
    inbound = direction == "inbound"
    call = CallInfo(
        status=status,
        direction="inbound" if inbound else "outbound",
        number=record.require("from" if inbound else "to"),
        our_number=record.text("to" if inbound else "from"),
        agent=record.text("agent"),
        duration_s=record.seconds("duration"),
        started_at=record.time("started_at", zone(config)),
        recording_url=record.text("recording_url"),
    )
    return ParsedCall(
        journal_key=call_id,
        call_id=call_id,
        call=call,
        caller_name=record.text("caller_name"),
        meta={"vendor_status": status},
    )
