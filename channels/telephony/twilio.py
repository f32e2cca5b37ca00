"""Twilio voice status callbacks: form-encoded POSTs signed with the account's Auth Token."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

from channels.base import CallInfo, CallStatus, Delivery, JsonObject, ParseError, Unauthorized
from channels.signatures import hmac_b64, same
from channels.telephony.calls import ParsedCall
from channels.telephony.records import Record

FORM = "application/x-www-form-urlencoded"

STATUSES: dict[str, CallStatus | None] = {
    "completed": "answered",
    "no-answer": "missed",
    "canceled": "missed",
    "busy": "busy",
    "failed": "failed",
    # The call is still running; a later callback carries the outcome.
    "queued": None,
    "initiated": None,
    "ringing": None,
    "in-progress": None,
}

_DEFAULT_PORTS = {"https": 443, "http": 80}


def twilio_signature(
    url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], auth_token: str
) -> str:
    """The X-Twilio-Signature Twilio sends for a POST of form `params` to `url`.

    `url` is the full URL as configured at Twilio, query string included; `params` the POST
    form fields (a mapping or name/value pairs, so repeated names are possible).
    """
    pairs = params.items() if isinstance(params, Mapping) else params
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    # Twilio's own validator drops repeated identical values and sorts the rest.
    signed = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    return hmac_b64(auth_token, signed.encode(), "sha1")


def authenticate(config: JsonObject, delivery: Delivery) -> None:
    """Raise Unauthorized unless X-Twilio-Signature matches the URL and form params."""
    auth_token = config.get("twilio_auth_token")
    if not isinstance(auth_token, str) or not auth_token:
        raise Unauthorized("this channel has no twilio_auth_token configured")
    signature = delivery.headers.get("x-twilio-signature")
    if not signature:
        raise Unauthorized("missing X-Twilio-Signature header")
    try:
        params = form_params(delivery.body)
    except UnicodeDecodeError:
        raise Unauthorized("body is not UTF-8 form data, so its signature cannot match") from None
    expected = [twilio_signature(url, params, auth_token) for url in url_variants(delivery.url)]
    if not sum(same(signature, candidate) for candidate in expected):
        raise Unauthorized("X-Twilio-Signature does not match")


def parse(config: JsonObject, delivery: Delivery) -> ParsedCall:
    """A status callback as a call; journal key CallSid:SequenceNumber (else CallSid:CallStatus)."""
    if delivery.content_type not in ("", FORM):
        raise ParseError(f"twilio: expected {FORM}, got {delivery.content_type}")
    try:
        form = Record(dict(form_params(delivery.body)), "twilio")
    except UnicodeDecodeError:
        raise ParseError("twilio: body is not UTF-8 form data") from None
    sid = form.require("CallSid")
    raw_status = form.require("CallStatus")
    if raw_status not in STATUSES:
        raise form.invalid("CallStatus", f"one of {', '.join(STATUSES)}")
    inbound = form.text("Direction") == "inbound"
    ours, theirs = ("To", "From") if inbound else ("From", "To")
    sequence = form.text("SequenceNumber")
    call = CallInfo(
        status=STATUSES[raw_status],
        direction="inbound" if inbound else "outbound",
        number=form.require(theirs),
        our_number=form.text(ours),
        duration_s=form.seconds("CallDuration"),
        started_at=form.time("Timestamp"),
        recording_url=form.text("RecordingUrl"),
        sequence=form.integer("SequenceNumber"),
    )
    return ParsedCall(
        journal_key=f"{sid}:{sequence if sequence is not None else raw_status}",
        call_id=sid,
        call=call,
        caller_name=form.text("CallerName"),
        meta={"vendor_status": raw_status},
    )


def form_params(body: bytes) -> list[tuple[str, str]]:
    """The form fields in order, blank ones kept because Twilio signs them too."""
    return parse_qsl(body.decode(), keep_blank_values=True)


def url_variants(url: str) -> list[str]:
    """The URL as delivered, plus the same URL with the default port added or removed."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    prefix = f"{parts.scheme}://{parts.netloc}"
    try:
        port = parts.port
    except ValueError:
        return [url]
    if default is None or not url.startswith(prefix):
        return [url]
    rest = url[len(prefix) :]
    if port is None:
        return [url, f"{prefix}:{default}{rest}"]
    if port == default:
        return [url, f"{parts.scheme}://{parts.netloc.rsplit(':', 1)[0]}{rest}"]
    return [url]
