"""Asterisk CDRs posted as JSON: `cdr_custom` JSON records or AMI `Event: Cdr` fields."""

from __future__ import annotations

import re

from channels.base import CallInfo, CallStatus, Delivery, JsonObject
from channels.telephony.calls import ParsedCall
from channels.telephony.records import Record, json_object
from channels.telephony.settings import internal_contexts, zone

DISPOSITIONS: dict[str, CallStatus] = {
    "ANSWERED": "answered",
    "NO ANSWER": "missed",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}

# AMI Cdr event names for the CDR() fields, so a shipper can forward either as is.
AMI_FIELDS = {
    "AccountCode": "accountcode",
    "Source": "src",
    "Destination": "dst",
    "DestinationContext": "dcontext",
    "CallerID": "clid",
    "Channel": "channel",
    "DestinationChannel": "dstchannel",
    "LastApplication": "lastapp",
    "LastData": "lastdata",
    "StartTime": "start",
    "AnswerTime": "answer",
    "EndTime": "end",
    "Duration": "duration",
    "BillableSeconds": "billsec",
    "Disposition": "disposition",
    "AMAFlags": "amaflags",
    "UniqueID": "uniqueid",
    "LinkedID": "linkedid",
    "UserField": "userfield",
    "Sequence": "sequence",
}

EXTENSION_MAX_DIGITS = 5
_CLID = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<number>[^>]*)>\s*$')


def parse(config: JsonObject, delivery: Delivery) -> ParsedCall:
    """One CDR; journal key uniqueid (plus its sequence when the record has one)."""
    body = json_object(delivery.body, "asterisk")
    cdr = Record({AMI_FIELDS.get(key, key): value for key, value in body.items()}, "asterisk")
    uniqueid = cdr.require("uniqueid")
    disposition = cdr.require("disposition").upper()
    if disposition not in DISPOSITIONS:
        raise cdr.invalid("disposition", f"one of {', '.join(DISPOSITIONS)}")
    src, dst = cdr.text("src"), cdr.text("dst")
    context = cdr.text("dcontext") or ""
    # Placed by one of our phones, or dialled from an internal context without ringing one of ours.
    outbound = is_extension(src) or (
        not is_extension(dst) and any(name in context for name in internal_contexts(config))
    )
    if outbound:
        number = cdr.require("dst")
        agent = src if is_extension(src) else endpoint(cdr.text("channel"))
        caller_name = None  # the caller ID is our own agent's
    else:
        number = cdr.require("src")
        agent = dst if is_extension(dst) else endpoint(cdr.text("dstchannel"))
        caller_name = clid_name(cdr.text("clid"))
    sequence = cdr.text("sequence")
    call = CallInfo(
        status=DISPOSITIONS[disposition],
        direction="outbound" if outbound else "inbound",
        number=number,
        agent=agent,
        duration_s=cdr.seconds("billsec"),
        started_at=cdr.time("start", zone(config)),
        sequence=cdr.integer("sequence"),
    )
    kept = {name: cdr.text(name) for name in ("linkedid", "accountcode", "userfield")}
    return ParsedCall(
        journal_key=f"{uniqueid}:{sequence}" if sequence is not None else uniqueid,
        call_id=uniqueid,
        call=call,
        caller_name=caller_name,
        meta={"vendor_status": disposition} | {k: v for k, v in kept.items() if v},
        internal=is_extension(src) and is_extension(dst),
    )


def is_extension(number: str | None) -> bool:
    """Short all-digit numbers are our own phones, not customers."""
    if number is None:
        return False
    return number.isascii() and number.isdigit() and len(number) <= EXTENSION_MAX_DIGITS


def endpoint(channel: str | None) -> str | None:
    """The device of a channel name: "PJSIP/201-0000002a" → "201", "Local/201@q-0001;1" → "201"."""
    if not channel or "/" not in channel:
        return None
    resource = channel.split("/", 1)[1].split(";", 1)[0]
    name = resource.split("@", 1)[0] if "@" in resource else resource.rsplit("-", 1)[0]
    return name or None


def clid_name(clid: str | None) -> str | None:
    """The name in a caller ID like '"Jan de Vries" <0612345678>', if it is not just the number."""
    match = _CLID.match(clid or "")
    if not match:
        return None
    name = match["name"].strip()
    return name if name and name != match["number"].strip() else None
