import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from twilio.request_validator import RequestValidator

from channels import adapter_for
from channels.base import (
    Accepted,
    AdapterError,
    CallInfo,
    Delivery,
    InboundMessage,
    JsonObject,
    JsonValue,
    ParseError,
    Sender,
    Unauthorized,
    Unprocessable,
)
from channels.telephony import settings, twilio_signature
from channels.telephony.adapter import DIALECTS, TelephonyAdapter
from channels.telephony.calls import duration_text, summary

FIXTURES = Path(__file__).parent.parent / "fixtures" / "telephony"
ADAPTER = TelephonyAdapter()
TOKEN = "tel-token-8Hk2"
TWILIO_AUTH = "twilio-auth-0f9e"
URL = "https://switchboard.example.nl/webhooks/telephony/7"
FORM = "application/x-www-form-urlencoded"
DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
COMPLETED_SID = "CA3b7e2f0c9a8d4e1b6c5f4a3d2e1b0c9a"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def config(dialect: str, **extra: JsonValue) -> JsonObject:
    secret = {"twilio_auth_token": TWILIO_AUTH} if dialect == "twilio" else {"token": TOKEN}
    return ADAPTER.prepare_config({"dialect": dialect, **secret, **extra})


def delivery(
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    url: str = URL,
) -> Delivery:
    return Delivery(
        body=body,
        headers={"content-type": "application/json", **(headers or {})},
        query=query or {},
        url=url,
    )


def signed(body: bytes, url: str = URL, auth_token: str = TWILIO_AUTH) -> Delivery:
    signature = twilio_signature(url, parse_qsl(body.decode(), keep_blank_values=True), auth_token)
    headers = {"content-type": FORM, "x-twilio-signature": signature}
    return Delivery(body=body, headers=headers, query={}, url=url)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def failure(call: Callable[[], object]) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        call()
    return caught.value


def refusals(cfg: JsonObject, request: Delivery) -> list[tuple[type[AdapterError], str, int]]:
    """How accept() and then normalize() refuse the delivery; both must."""
    errors = [
        failure(lambda: ADAPTER.accept(cfg, request)),
        failure(lambda: ADAPTER.normalize(cfg, request)),
    ]
    return [(type(error), error.reason, error.status) for error in errors]


# Twilio signatures


def test_twilio_signature_matches_the_documented_vector() -> None:
    assert twilio_signature(DOCS_URL, DOCS_PARAMS, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_authenticates_the_documented_request() -> None:
    request = Delivery(
        body=urlencode(DOCS_PARAMS).encode(),
        headers={"content-type": FORM, "x-twilio-signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
        query={"foo": "1", "bar": "2"},
        url=DOCS_URL,
    )
    ADAPTER.authenticate({"dialect": "twilio", "twilio_auth_token": "12345"}, request)


@pytest.mark.parametrize(
    "params",
    [
        DOCS_PARAMS,
        {},
        {"CallerName": "", "From": "+31612345678", "Body": "Één café, ça va? ☎"},
        [("To", "+31201234567"), ("Media", "b"), ("Media", "a"), ("Media", "b")],
    ],
)
def test_twilio_signature_agrees_with_twilio_request_validator(
    params: dict[str, str] | list[tuple[str, str]],
) -> None:
    validator = RequestValidator(TWILIO_AUTH)

    class MultiDict(dict[str, list[str]]):
        def getall(self, name: str) -> list[str]:
            return self[name]

    grouped = MultiDict()
    for name, value in params.items() if isinstance(params, dict) else params:
        grouped.setdefault(name, []).append(value)
    ours = twilio_signature(URL + "?x=1", params, TWILIO_AUTH)
    assert ours == validator.compute_signature(URL + "?x=1", grouped)
    assert validator.validate(URL + "?x=1", grouped, ours)


def test_twilio_fixture_signature_is_accepted_by_request_validator_and_by_us() -> None:
    body = fixture("twilio__completed.txt")
    signature = RequestValidator(TWILIO_AUTH).compute_signature(
        URL, dict(parse_qsl(body.decode(), keep_blank_values=True))
    )
    request = Delivery(
        body=body,
        headers={"content-type": FORM, "x-twilio-signature": signature},
        query={},
        url=URL,
    )
    ADAPTER.authenticate(config("twilio"), request)


@pytest.mark.parametrize(
    ("signed_url", "delivered_url"),
    [
        (
            "https://sb.example.nl:443/webhooks/telephony/7?a=1",
            "https://sb.example.nl/webhooks/telephony/7?a=1",
        ),
        (
            "https://sb.example.nl/webhooks/telephony/7",
            "https://sb.example.nl:443/webhooks/telephony/7",
        ),
        (
            "http://sb.example.nl:80/webhooks/telephony/7",
            "http://sb.example.nl/webhooks/telephony/7",
        ),
    ],
)
def test_twilio_accepts_the_url_with_or_without_its_default_port(
    signed_url: str, delivered_url: str
) -> None:
    body = fixture("twilio__completed.txt")
    request = dataclasses.replace(signed(body, url=signed_url), url=delivered_url)
    ADAPTER.authenticate(config("twilio"), request)
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    signature = request.headers["x-twilio-signature"]
    assert RequestValidator(TWILIO_AUTH).validate(delivered_url, params, signature)


def test_twilio_does_not_drop_a_non_default_port() -> None:
    body = fixture("twilio__completed.txt")
    request = dataclasses.replace(
        signed(body, url="https://sb.example.nl/hook"), url="https://sb.example.nl:8443/hook"
    )
    assert failure(lambda: ADAPTER.authenticate(config("twilio"), request)).reason == (
        "X-Twilio-Signature does not match"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda d: dataclasses.replace(d, headers={"content-type": FORM}),
            "missing X-Twilio-Signature header",
        ),
        (
            lambda d: dataclasses.replace(d, body=d.body.replace(b"completed", b"no-answer")),
            "X-Twilio-Signature does not match",
        ),
        (
            lambda d: dataclasses.replace(d, url=URL + "?other=1"),
            "X-Twilio-Signature does not match",
        ),
        (
            lambda d: dataclasses.replace(d, headers={**d.headers, "x-twilio-signature": "AAAA"}),
            "X-Twilio-Signature does not match",
        ),
        (
            lambda d: dataclasses.replace(d, body=b"\xff\xfe"),
            "body is not UTF-8 form data, so its signature cannot match",
        ),
    ],
)
def test_twilio_refuses_a_missing_or_wrong_signature(
    change: Callable[[Delivery], Delivery], reason: str
) -> None:
    request = change(signed(fixture("twilio__completed.txt")))
    error = failure(lambda: ADAPTER.authenticate(config("twilio"), request))
    assert isinstance(error, Unauthorized)
    assert error.reason == reason


def test_twilio_refuses_a_signature_made_with_another_auth_token() -> None:
    request = signed(fixture("twilio__completed.txt"), auth_token="someone-else")
    assert isinstance(
        failure(lambda: ADAPTER.authenticate(config("twilio"), request)), Unauthorized
    )


# Twilio status callbacks


def test_twilio_completed_callback_is_an_answered_inbound_call() -> None:
    request = signed(fixture("twilio__completed.txt"))
    cfg = config("twilio")
    ADAPTER.authenticate(cfg, request)
    assert ADAPTER.accept(cfg, request) == Accepted(external_id=f"{COMPLETED_SID}:3")
    call = CallInfo(
        status="answered",
        direction="inbound",
        number="+31612345678",
        our_number="+31201234567",
        duration_s=125,
        started_at=at("2024-05-13T08:17:12"),
        recording_url="https://api.twilio.com/2010-04-01/Accounts/AC5f1d8a0c3b2e4f6a7b8c9d0e1f2a3b4c"
        "/Recordings/RE8c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
        sequence=3,
    )
    assert ADAPTER.normalize(cfg, request) == InboundMessage(
        kind="call",
        external_id=COMPLETED_SID,
        occurred_at=at("2024-05-13T08:17:12"),
        sender=Sender(name="DE VRIES J", phones=("+31612345678",)),
        text="Inbound call from +31612345678 answered, 2m 05s",
        direction="inbound",
        thread_key="phone:+31612345678",
        call=call,
        meta={"vendor_status": "completed"},
        source_detail="twilio",
    )


def test_twilio_no_answer_on_an_outbound_call_is_missed_on_the_dialled_number() -> None:
    request = signed(fixture("twilio__no_answer.txt"))
    cfg = config("twilio")
    assert ADAPTER.accept(cfg, request).external_id == "CA9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a:2"
    message = ADAPTER.normalize(cfg, request)
    assert message is not None
    assert message.call == CallInfo(
        status="missed",
        direction="outbound",
        number="+31687654321",
        our_number="+31201234567",
        duration_s=0,
        started_at=at("2024-05-14T13:02:40"),
        sequence=2,
    )
    assert message.external_id == "CA9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"
    assert message.direction == "outbound"
    assert message.sender == Sender(phones=("+31687654321",))
    assert message.text == "Outbound call to +31687654321 not answered"


def test_twilio_ringing_callback_is_a_running_call_keyed_by_its_sequence() -> None:
    request = signed(fixture("twilio__ringing.txt"))
    assert ADAPTER.accept(config("twilio"), request).external_id == f"{COMPLETED_SID}:0"
    message = ADAPTER.normalize(config("twilio"), request)
    assert message is not None
    assert message.external_id == COMPLETED_SID
    assert message.call is not None
    assert (message.call.status, message.call.sequence) == (None, 0)
    assert message.text == "Inbound call from +31612345678, in progress"


def test_twilio_callback_without_sequence_is_keyed_by_its_status() -> None:
    request = signed(fixture("twilio__incoming.txt"))
    before = datetime.now(UTC)
    assert ADAPTER.accept(config("twilio"), request).external_id == (
        "CA1e2d3c4b5a69788796a5b4c3d2e1f0a9:ringing"
    )
    message = ADAPTER.normalize(config("twilio"), request)
    assert message is not None
    assert message.call is not None
    assert (message.call.started_at, message.call.sequence) == (None, None)
    # No Timestamp in the payload: the message is dated when it was read.
    assert before <= message.occurred_at <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", "answered"),
        ("no-answer", "missed"),
        ("canceled", "missed"),
        ("busy", "busy"),
        ("failed", "failed"),
        ("queued", None),
        ("initiated", None),
        ("in-progress", None),
    ],
)
def test_twilio_call_status_mapping(status: str, expected: str | None) -> None:
    body = fixture("twilio__completed.txt").replace(
        b"CallStatus=completed", f"CallStatus={status}".encode()
    )
    message = ADAPTER.normalize(config("twilio"), signed(body))
    assert message is not None
    assert message.call is not None
    assert message.call.status == expected


@pytest.mark.parametrize(
    ("fields", "error", "reason"),
    [
        (
            {"CallStatus": "answered"},
            Unprocessable,
            "twilio: CallStatus must be one of completed, "
            "no-answer, canceled, busy, failed, queued, initiated, ringing, in-progress, got 'answered'",
        ),
        ({"CallSid": ""}, Unprocessable, "twilio: missing required field 'CallSid'"),
        ({"From": ""}, Unprocessable, "twilio: missing required field 'From'"),
        (
            {"SequenceNumber": "x"},
            Unprocessable,
            "twilio: SequenceNumber must be a whole number, got 'x'",
        ),
        (
            {"Timestamp": "gisteren"},
            Unprocessable,
            "twilio: Timestamp must be an ISO 8601 or RFC 2822 time, got 'gisteren'",
        ),
    ],
)
def test_twilio_refuses_callbacks_it_cannot_use(
    fields: dict[str, str], error: type[AdapterError], reason: str
) -> None:
    params = dict(parse_qsl(fixture("twilio__completed.txt").decode(), keep_blank_values=True))
    request = signed(urlencode(params | fields).encode())
    ADAPTER.authenticate(config("twilio"), request)
    assert refusals(config("twilio"), request) == [(error, reason, 422)] * 2


def test_twilio_refuses_a_json_body() -> None:
    request = dataclasses.replace(
        signed(fixture("twilio__completed.txt")), headers={"content-type": "application/json"}
    )
    error = failure(lambda: ADAPTER.accept(config("twilio"), request))
    assert (type(error), error.reason, error.status) == (
        ParseError,
        f"twilio: expected {FORM}, got application/json",
        400,
    )


# Token authentication (generic, Asterisk, 3CX)


@pytest.mark.parametrize("dialect", ["generic", "asterisk", "3cx"])
@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"authorization": f"Bearer {TOKEN}"}, {}),
        ({"authorization": f"bearer  {TOKEN} "}, {}),
        ({}, {"token": TOKEN}),
        ({"authorization": basic("token", TOKEN)}, {}),
        ({"authorization": basic("3cx", TOKEN)}, {}),
        ({"authorization": basic(TOKEN, "")}, {}),
        ({"authorization": "Bearer wrong"}, {"token": TOKEN}),
    ],
)
def test_token_dialects_accept_the_token_in_any_supported_place(
    dialect: str, headers: dict[str, str], query: dict[str, str]
) -> None:
    # The body is never looked at: authentication comes before parsing.
    ADAPTER.authenticate(config(dialect), delivery(b"not json", headers=headers, query=query))


@pytest.mark.parametrize(
    ("headers", "query", "reason"),
    [
        ({}, {}, "no token given (Authorization header or ?token=)"),
        (
            {"authorization": "Bearer "},
            {"token": ""},
            "no token given (Authorization header or ?token=)",
        ),
        ({"authorization": f"Bearer {TOKEN}x"}, {}, "wrong token"),
        ({}, {"token": TOKEN[:-1]}, "wrong token"),
        ({"authorization": basic("token", "guess")}, {}, "wrong token"),
        (
            {"authorization": "Basic %%%not-base64"},
            {},
            "no token given (Authorization header or ?token=)",
        ),
        (
            {"authorization": f"Token {TOKEN}"},
            {},
            "no token given (Authorization header or ?token=)",
        ),
    ],
)
def test_token_dialects_refuse_a_missing_or_wrong_token(
    headers: dict[str, str], query: dict[str, str], reason: str
) -> None:
    request = delivery(fixture("generic__answered.json"), headers=headers, query=query)
    error = failure(lambda: ADAPTER.authenticate(config("generic"), request))
    assert (type(error), error.reason, error.status) == (Unauthorized, reason, 401)


def test_a_channel_without_its_secret_refuses_everything() -> None:
    request = delivery(b"{}", query={"token": TOKEN})
    assert failure(lambda: ADAPTER.authenticate({"dialect": "generic"}, request)).reason == (
        "this channel has no token configured"
    )
    assert failure(lambda: ADAPTER.authenticate({"dialect": "twilio"}, request)).reason == (
        "this channel has no twilio_auth_token configured"
    )
    assert isinstance(
        failure(lambda: ADAPTER.authenticate({"dialect": "sip"}, request)), Unauthorized
    )


# Asterisk CDRs


def test_asterisk_answered_cdr_is_an_inbound_call_for_the_extension() -> None:
    request = delivery(fixture("asterisk__answered.json"))
    cfg = config("asterisk", timezone="Europe/Amsterdam")
    # uniqueid is a JSON number in cdr_custom output; its trailing zero must survive.
    assert ADAPTER.accept(cfg, request) == Accepted(external_id="1715588102.40:57")
    call = CallInfo(
        status="answered",
        direction="inbound",
        number="0031612345678",
        agent="201",
        duration_s=125,
        started_at=at("2024-05-13T08:15:02"),
        sequence=57,
    )
    assert ADAPTER.normalize(cfg, request) == InboundMessage(
        kind="call",
        external_id="1715588102.40",
        occurred_at=at("2024-05-13T08:15:02"),
        sender=Sender(name="Jan de Vries", phones=("0031612345678",)),
        text="Inbound call from 0031612345678 answered by 201, 2m 05s",
        direction="inbound",
        thread_key="phone:0031612345678",
        call=call,
        meta={"vendor_status": "ANSWERED", "linkedid": "1715588102.39"},
        source_detail="asterisk",
    )


def test_asterisk_no_answer_to_a_ring_group_is_a_missed_call() -> None:
    request = delivery(fixture("asterisk__no_answer.json"))
    assert ADAPTER.accept(config("asterisk"), request).external_id == "1715596200.61:63"
    message = ADAPTER.normalize(config("asterisk"), request)
    assert message is not None
    assert message.call == CallInfo(
        status="missed",
        direction="inbound",
        number="0687654321",
        agent="600",
        duration_s=0,
        started_at=at("2024-05-13T12:30:00"),
        sequence=63,
    )
    assert message.sender == Sender(phones=("0687654321",))  # the caller ID name is the number
    assert message.text == "Missed call from 0687654321"


def test_asterisk_call_from_an_extension_is_outbound_to_the_dialled_number() -> None:
    message = ADAPTER.normalize(config("asterisk"), delivery(fixture("asterisk__outbound.json")))
    assert message is not None
    assert message.call == CallInfo(
        status="answered",
        direction="outbound",
        number="0612345678",
        agent="201",
        duration_s=305,
        started_at=at("2024-05-13T14:00:00"),
        sequence=71,
    )
    assert (message.direction, message.sender) == ("outbound", Sender(phones=("0612345678",)))
    assert message.text == "Outbound call from 201 to 0612345678 answered, 5m 05s"
    assert message.meta == {
        "vendor_status": "ANSWERED",
        "linkedid": "1715601600.70",
        "accountcode": "sales",
    }


def test_asterisk_ami_cdr_event_fields_are_read_too() -> None:
    request = delivery(fixture("asterisk__ami_busy.json"))
    assert ADAPTER.accept(config("asterisk"), request).external_id == "1715590964.80"
    message = ADAPTER.normalize(config("asterisk"), request)
    assert message is not None
    assert message.call == CallInfo(
        status="busy",
        direction="inbound",
        number="+31 6 1234 5678",
        agent="202",
        duration_s=0,
        started_at=at("2024-05-13T11:02:44"),
    )
    assert message.text == "Inbound call from +31 6 1234 5678: busy"


def test_asterisk_call_between_two_extensions_is_dropped() -> None:
    request = delivery(fixture("asterisk__internal.json"))
    assert ADAPTER.accept(config("asterisk"), request) == Accepted(
        external_id="1715602200.75:74", drop=True
    )
    assert ADAPTER.normalize(config("asterisk"), request) is None


@pytest.mark.parametrize(
    ("cdr", "direction", "number", "agent"),
    [
        # Dialled from an internal context by a phone whose src was rewritten to our main number.
        (
            {
                "src": "0201234567",
                "dst": "0612345678",
                "dcontext": "from-internal",
                "channel": "PJSIP/alice-0000001f",
            },
            "outbound",
            "0612345678",
            "alice",
        ),
        (
            {
                "src": "0612345678",
                "dst": "s",
                "dcontext": "ivr-main",
                "dstchannel": "Local/203@from-queue-00000012;1",
            },
            "inbound",
            "0612345678",
            "203",
        ),
        ({"src": "0612345678", "dst": "s", "dcontext": "from-pstn"}, "inbound", "0612345678", None),
        (
            {"src": "0201234567", "dst": "0612345678", "dcontext": "sales-out"},
            "inbound",
            "0201234567",
            None,
        ),
    ],
)
def test_asterisk_direction_and_agent_heuristics(
    cdr: dict[str, str], direction: str, number: str, agent: str | None
) -> None:
    body = json.dumps({"uniqueid": "1715600000.1", "disposition": "ANSWERED", **cdr}).encode()
    message = ADAPTER.normalize(config("asterisk"), delivery(body))
    assert message is not None
    assert message.call is not None
    assert (message.call.direction, message.call.number, message.call.agent) == (
        direction,
        number,
        agent,
    )


def test_asterisk_internal_contexts_are_configurable() -> None:
    body = json.dumps(
        {
            "uniqueid": "1715600000.2",
            "disposition": "ANSWERED",
            "src": "0201234567",
            "dst": "0612345678",
            "dcontext": "sales-out",
        }
    ).encode()
    message = ADAPTER.normalize(config("asterisk", internal_contexts=["sales-out"]), delivery(body))
    assert message is not None
    assert (message.direction, message.sender.phones) == ("outbound", ("0612345678",))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"uniqueid": ""}, "asterisk: missing required field 'uniqueid'"),
        ({"disposition": None}, "asterisk: missing required field 'disposition'"),
        (
            {"disposition": "HUNG UP"},
            "asterisk: disposition must be one of ANSWERED, NO ANSWER, "
            "BUSY, FAILED, CONGESTION, got 'HUNG UP'",
        ),
        ({"src": ""}, "asterisk: missing required field 'src'"),
        ({"billsec": "lang"}, "asterisk: billsec must be seconds or \"hh:mm:ss\", got 'lang'"),
        (
            {"start": "13-05-2024"},
            "asterisk: start must be an ISO 8601 or RFC 2822 time, got '13-05-2024'",
        ),
        ({"src": ["0612345678"]}, "asterisk: src must be a string, got ['0612345678']"),
    ],
)
def test_asterisk_refuses_cdrs_it_cannot_use(change: JsonObject, reason: str) -> None:
    cdr = json.loads(fixture("asterisk__answered.json")) | change
    request = delivery(json.dumps(cdr).encode())
    assert refusals(config("asterisk"), request) == [(Unprocessable, reason, 422)] * 2


# 3CX call journaling


def threecx_id(start: str, agent: str, number: str, direction: str) -> str:
    return hashlib.sha256(f"{start}\n{agent}\n{number}\n{direction}".encode()).hexdigest()


def test_3cx_inbound_call_is_answered_and_keyed_by_a_hash() -> None:
    request = delivery(fixture("3cx__inbound.json"), query={"token": TOKEN})
    cfg = config("3cx")
    ADAPTER.authenticate(cfg, request)
    call_id = threecx_id("2024-05-13T08:15:02Z", "201", "+31 6 1234 5678", "inbound")
    assert ADAPTER.accept(cfg, request) == Accepted(external_id=call_id)
    assert ADAPTER.normalize(cfg, request) == InboundMessage(
        kind="call",
        external_id=call_id,
        occurred_at=at("2024-05-13T08:15:02"),
        sender=Sender(name="Jan de Vries", phones=("+31 6 1234 5678",)),
        text="Inbound call from +31 6 1234 5678 answered by 201, 2m 05s",
        direction="inbound",
        thread_key="phone:+31 6 1234 5678",
        call=CallInfo(
            status="answered",
            direction="inbound",
            number="+31 6 1234 5678",
            agent="201",
            duration_s=125,
            started_at=at("2024-05-13T08:15:02"),
        ),
        meta={
            "vendor_status": "Inbound",
            "agent_name": "Pieter",
            "agent_email": "pieter@bakkerij-example.nl",
            "queue": "800",
        },
        source_detail="3cx",
    )


def test_3cx_missed_call() -> None:
    message = ADAPTER.normalize(config("3cx"), delivery(fixture("3cx__missed.json")))
    assert message is not None
    assert message.external_id == threecx_id("2024-05-13T10:30:00Z", "202", "0687654321", "inbound")
    assert message.call == CallInfo(
        status="missed",
        direction="inbound",
        number="0687654321",
        agent="202",
        duration_s=0,
        started_at=at("2024-05-13T10:30:00"),
    )
    assert (message.sender, message.text) == (
        Sender(phones=("0687654321",)),
        "Missed call from 0687654321",
    )


def test_3cx_outbound_call_with_recording() -> None:
    message = ADAPTER.normalize(config("3cx"), delivery(fixture("3cx__outbound.json")))
    assert message is not None
    assert message.call == CallInfo(
        status="answered",
        direction="outbound",
        number="0031612345678",
        agent="201",
        duration_s=3725,
        started_at=at("2024-05-13T12:00:00"),
        recording_url="https://pbx.bakkerij-example.nl/recordings/201/20240513120000.wav",
    )
    assert message.text == "Outbound call from 201 to 0031612345678 answered, 1h 02m 05s"


def test_3cx_not_answered_outbound_call_is_missed_and_duration_seconds_win() -> None:
    report = json.loads(fixture("3cx__outbound.json")) | {
        "CallType": "Notanswered",
        "DurationSeconds": "0",
    }
    message = ADAPTER.normalize(config("3cx"), delivery(json.dumps(report).encode()))
    assert message is not None
    assert message.call is not None
    assert (message.call.status, message.call.direction, message.call.duration_s) == (
        "missed",
        "outbound",
        0,
    )
    assert message.text == "Outbound call from 201 to 0031612345678 not answered"


def test_3cx_same_call_reported_twice_gets_the_same_key_and_another_call_another() -> None:
    report = json.loads(fixture("3cx__inbound.json"))
    again = report | {"CallStartTimeUTC": "2024-05-13T08:15:02+00:00", "Duration": "00:02:06"}
    other = report | {"Agent": "202"}
    keys = [
        ADAPTER.accept(config("3cx"), delivery(json.dumps(r).encode())).external_id
        for r in (report, again, other)
    ]
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Number": ""}, "3cx: missing required field 'Number'"),
        ({"CallStartTimeUTC": ""}, "3cx: missing required field 'CallStartTimeUTC'"),
        (
            {"CallType": "Transferred"},
            "3cx: CallType must be one of Inbound, Missed, Outbound, "
            "Notanswered, got 'Transferred'",
        ),
        ({"Duration": "2 min"}, "3cx: Duration must be seconds or \"hh:mm:ss\", got '2 min'"),
    ],
)
def test_3cx_refuses_reports_it_cannot_use(change: JsonObject, reason: str) -> None:
    report = json.loads(fixture("3cx__inbound.json")) | change
    error = failure(lambda: ADAPTER.accept(config("3cx"), delivery(json.dumps(report).encode())))
    assert (type(error), error.reason) == (Unprocessable, reason)


# Generic JSON


def test_generic_answered_call() -> None:
    request = delivery(
        fixture("generic__answered.json"), headers={"authorization": f"Bearer {TOKEN}"}
    )
    cfg = config("generic")
    ADAPTER.authenticate(cfg, request)
    assert ADAPTER.accept(cfg, request) == Accepted(external_id="pbx-20240513-0042")
    call = CallInfo(
        status="answered",
        direction="inbound",
        number="06-12345678",
        our_number="020-1234567",
        agent="201",
        duration_s=125,
        started_at=at("2024-05-13T08:15:02"),
        recording_url="https://pbx.bakkerij-example.nl/rec/0042.mp3",
    )
    assert ADAPTER.normalize(cfg, request) == InboundMessage(
        kind="call",
        external_id="pbx-20240513-0042",
        occurred_at=at("2024-05-13T08:15:02"),
        sender=Sender(name="Jan de Vries", phones=("06-12345678",)),
        text="Inbound call from 06-12345678 answered by 201, 2m 05s",
        direction="inbound",
        thread_key="phone:06-12345678",
        call=call,
        meta={"vendor_status": "answered"},
        source_detail="generic",
    )


def test_generic_time_without_offset_is_in_the_channel_timezone() -> None:
    message = ADAPTER.normalize(
        config("generic", timezone="Europe/Amsterdam"), delivery(fixture("generic__missed.json"))
    )
    assert message is not None
    assert message.call == CallInfo(
        status="missed",
        direction="inbound",
        number="0687654321",
        our_number="020-1234567",
        started_at=at("2024-05-13T10:30:00"),
    )
    assert message.occurred_at == at("2024-05-13T10:30:00")


def test_generic_outbound_call_takes_the_number_from_to() -> None:
    body = json.dumps(
        {
            "call_id": "c-9",
            "direction": "outbound",
            "status": "busy",
            "from": "020-1234567",
            "to": "0031612345678",
            "agent": "Sanne",
            "duration": "0",
            "started_at": 1715594400,
        }
    ).encode()
    message = ADAPTER.normalize(config("generic"), delivery(body))
    assert message is not None
    assert message.call == CallInfo(
        status="busy",
        direction="outbound",
        number="0031612345678",
        our_number="020-1234567",
        agent="Sanne",
        duration_s=0,
        started_at=at("2024-05-13T10:00:00"),
    )
    assert message.text == "Outbound call from Sanne to 0031612345678: busy"


def test_generic_call_without_a_time_is_dated_now() -> None:
    before = datetime.now(UTC)
    body = b'{"call_id": "c-1", "status": "failed", "from": "06-12345678"}'
    message = ADAPTER.normalize(config("generic"), delivery(body))
    assert message is not None
    assert message.call is not None
    assert message.call.started_at is None
    assert before <= message.occurred_at <= datetime.now(UTC)
    assert message.text == "Inbound call from 06-12345678: failed"


def test_generic_missing_call_id_fixture_is_unprocessable() -> None:
    request = delivery(fixture("generic__missing_call_id.json"))
    error = failure(lambda: ADAPTER.accept(config("generic"), request))
    assert (type(error), error.reason, error.status) == (
        Unprocessable,
        "generic: missing required field 'call_id'",
        422,
    )


def test_generic_broken_json_fixture_is_a_parse_error() -> None:
    error = failure(
        lambda: ADAPTER.accept(config("generic"), delivery(fixture("generic__broken.json")))
    )
    assert (type(error), error.status) == (ParseError, 400)
    assert error.reason.startswith("generic: body is not valid JSON (Unterminated string")


@pytest.mark.parametrize(
    ("body", "error", "reason"),
    [
        (b"[1, 2]", ParseError, "generic: expected a JSON object, got list"),
        (b'"call"', ParseError, "generic: expected a JSON object, got str"),
        (
            b"",
            ParseError,
            "generic: body is not valid JSON (Expecting value: line 1 column 1 (char 0))",
        ),
        (b"\xff\xfe\x00", ParseError, None),
        (
            b'{"call_id": "c", "status": "answered", "from": "1", "duration": NaN}',
            ParseError,
            "generic: body is not valid JSON (NaN is not a JSON value)",
        ),
        (b"[" * 100_000, ParseError, None),
        (
            b'{"call_id": "c", "from": "06-12345678"}',
            Unprocessable,
            "generic: missing required field 'status'",
        ),
        (
            b'{"call_id": "c", "status": "answered"}',
            Unprocessable,
            "generic: missing required field 'from'",
        ),
        (
            b'{"call_id": "c", "status": "answered", "direction": "outbound", "from": "020"}',
            Unprocessable,
            "generic: missing required field 'to'",
        ),
        (
            b'{"call_id": "c", "status": "ringing", "from": "06"}',
            Unprocessable,
            'generic: status must be "answered" or "missed" or "busy" or "failed", got \'ringing\'',
        ),
        (
            b'{"call_id": "c", "status": "missed", "from": "06", "direction": "in"}',
            Unprocessable,
            'generic: direction must be "inbound" or "outbound", got \'in\'',
        ),
        (
            b'{"call_id": "c", "status": "missed", "from": "06", "duration": -5}',
            Unprocessable,
            'generic: duration must be seconds or "hh:mm:ss", got -5',
        ),
        (
            b'{"call_id": "c", "status": "missed", "from": "06", "duration": true}',
            Unprocessable,
            "generic: duration must be a string, got True",
        ),
        (
            b'{"call_id": {"id": 1}, "status": "missed", "from": "06"}',
            Unprocessable,
            "generic: call_id must be a string, got {'id': 1}",
        ),
    ],
)
def test_generic_refuses_bodies_it_cannot_use(
    body: bytes, error: type[AdapterError], reason: str | None
) -> None:
    refused = refusals(config("generic"), delivery(body))
    assert refused[0] == refused[1]
    assert refused[0][0] is error
    if reason is not None:
        assert refused[0][1] == reason


# accept() and normalize() agree on every fixture


def fixture_delivery(name: str) -> tuple[JsonObject, Delivery]:
    dialect = name.split("__")[0]
    if dialect == "twilio":
        return config("twilio"), signed(fixture(name))
    return config(dialect), delivery(fixture(name), query={"token": TOKEN})


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.iterdir()))
def test_accept_and_normalize_agree_on_every_fixture(name: str) -> None:
    cfg, request = fixture_delivery(name)
    ADAPTER.authenticate(cfg, request)
    try:
        accepted = ADAPTER.accept(cfg, request)
    except AdapterError as refused:
        again = failure(lambda: ADAPTER.normalize(cfg, request))
        assert (type(again), again.reason) == (type(refused), refused.reason)
        return
    first, second = ADAPTER.normalize(cfg, request), ADAPTER.normalize(cfg, request)
    assert (first is None) == accepted.drop
    if first is None or second is None:
        assert first is second is None
        return
    assert accepted.external_id.startswith(first.external_id)
    assert first.occurred_at.tzinfo is not None
    if first.call is not None and first.call.started_at is None:
        second = dataclasses.replace(second, occurred_at=first.occurred_at)
    assert first == second


# Summaries


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m 00s"), (125, "2m 05s"), (3725, "1h 02m 05s")],
)
def test_duration_text(seconds: int, text: str) -> None:
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (
            CallInfo(
                status="answered", direction="inbound", number="06", agent="201", duration_s=0
            ),
            "Inbound call from 06 answered by 201",
        ),
        (
            CallInfo(status="answered", direction="outbound", number="06"),
            "Outbound call to 06 answered",
        ),
        (
            CallInfo(status="missed", direction="inbound", number="06", agent="201"),
            "Missed call from 06",
        ),
        (
            CallInfo(status="failed", direction="outbound", number="06"),
            "Outbound call to 06: failed",
        ),
        (
            CallInfo(status=None, direction="outbound", number="06", agent="201"),
            "Outbound call from 201 to 06, in progress",
        ),
    ],
)
def test_summary(call: CallInfo, text: str) -> None:
    assert summary(call) == text


# Channel settings


def test_prepare_config_defaults_to_generic_and_generates_a_token() -> None:
    original: JsonObject = {}
    prepared = ADAPTER.prepare_config(original)
    assert original == {}
    assert prepared["dialect"] == "generic"
    assert isinstance(prepared["token"], str) and len(prepared["token"]) >= 32
    assert ADAPTER.prepare_config({})["token"] != prepared["token"]


def test_prepare_config_keeps_given_settings_and_normalises_them() -> None:
    given: JsonObject = {
        "dialect": " 3CX ",
        "token": "mine",
        "default_region": "nl",
        "timezone": "Europe/Amsterdam",
        "internal_contexts": ["from-internal", "sales-out"],
    }
    assert ADAPTER.prepare_config(given) == given | {"dialect": "3cx", "default_region": "NL"}


def test_prepare_config_for_twilio_needs_the_auth_token_and_makes_no_token() -> None:
    with pytest.raises(ValueError, match="twilio dialect needs twilio_auth_token"):
        ADAPTER.prepare_config({"dialect": "twilio"})
    assert ADAPTER.prepare_config({"dialect": "twilio", "twilio_auth_token": "abc"}) == {
        "dialect": "twilio",
        "twilio_auth_token": "abc",
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"dialect": "voys"},
            "unknown telephony dialect 'voys'; choose one of generic, twilio, asterisk, 3cx",
        ),
        ({"dialect": 3}, "unknown telephony dialect 3"),
        ({"token": ""}, "token must be a non-empty string"),
        (
            {"dialect": "twilio", "twilio_auth_token": 12345},
            "twilio_auth_token must be a non-empty string",
        ),
        ({"default_region": "NLD"}, "default_region must be a two-letter country code"),
        ({"timezone": "Europe/Utrecht"}, "unknown timezone 'Europe/Utrecht'"),
        ({"internal_contexts": "from-internal"}, "internal_contexts must be a list"),
    ],
)
def test_prepare_config_refuses_bad_settings(given: JsonObject, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ADAPTER.prepare_config(given)


def test_the_adapter_is_registered_with_its_secrets_and_dialects() -> None:
    assert isinstance(adapter_for("telephony"), TelephonyAdapter)
    assert ADAPTER.secret_names() == ("token", "twilio_auth_token")
    assert tuple(DIALECTS) == settings.DIALECTS
