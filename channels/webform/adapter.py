"""The web-form channel: authenticate, parse and normalise form posts, from raw bytes only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from channels.base import (
    Accepted,
    Delivery,
    InboundMessage,
    JsonObject,
    ParseError,
    Sender,
    Unprocessable,
    phone_key,
)
from channels.signatures import new_secret
from channels.webform.auth import check
from channels.webform.config import FormConfig
from channels.webform.fieldmap import find, map_fields
from channels.webform.forms import (
    Submission,
    load_json,
    parse_flat_json,
    parse_multipart,
    parse_urlencoded,
)
from channels.webform.typeform import is_typeform, parse_typeform

GENERATED_SECRETS = ("token", "hmac_secret")
JSON_ID_FIELDS = ("submission_id", "id")
FORM_ID_FIELDS = ("form_id", "form")
PLAIN_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def parse_delivery(delivery: Delivery) -> Submission:
    """The submission in a delivery's body, by its Content-Type; ParseError if unreadable."""
    ctype = delivery.content_type
    if ctype == "application/x-www-form-urlencoded":
        return parse_urlencoded(delivery.body, delivery.headers["content-type"])
    if ctype == "multipart/form-data":
        return parse_multipart(delivery.headers["content-type"], delivery.body)
    if ctype == "application/json" or ctype.endswith("+json"):
        data = load_json(delivery.body)
        return parse_typeform(data) if is_typeform(data) else parse_flat_json(data)
    if not ctype:
        raise ParseError("no Content-Type; post a form, multipart/form-data or JSON")
    raise ParseError(
        f"unsupported Content-Type {ctype!r}; post a form, multipart/form-data or JSON"
    )


def browser_form(delivery: Delivery) -> bool:
    """Whether a browser submitted a plain HTML form, rather than a script (fetch/XHR) posting."""
    headers = delivery.headers
    if delivery.content_type not in PLAIN_FORMS or "x-requested-with" in headers:
        return False
    if headers.get("sec-fetch-mode", "navigate") != "navigate":
        return False
    accept = headers.get("accept", "")
    return "application/json" not in accept or "text/html" in accept


@dataclass(frozen=True)
class Reading:
    """What one delivery amounts to; accept() and normalize() share it so they always agree."""

    external_id: str
    drop: bool = False
    message: InboundMessage | None = None


def journal_key(config: FormConfig, sub: Submission, delivery: Delivery) -> tuple[str, str | None]:
    """The delivery's dedupe key, and the form field it came from (if any)."""
    if sub.provider_id:
        return sub.provider_id, None
    names = (config.id_field,) if config.id_field else ()
    id_name = find(sub, names or (JSON_ID_FIELDS if sub.format == "json" else ()))
    if id_name is not None:
        return sub.values[id_name], id_name
    return f"sha256:{delivery.body_hash()}", None


def check_required(config: FormConfig, ours: dict[str, str]) -> None:
    if config.required is None:
        if "email" not in ours and "phone" not in ours:
            raise Unprocessable("need an e-mail address or a phone number")
    elif missing := [field for field in config.required if field not in ours]:
        raise Unprocessable(f"missing required field(s): {', '.join(missing)}")


def sender_key(msg: InboundMessage | None) -> str | None:
    if msg is None:
        return None
    if msg.sender.emails:
        return f"mail:{msg.sender.emails[0].lower()}"
    return phone_key(msg.sender.phones[0]) if msg.sender.phones else None


def read(config: FormConfig, delivery: Delivery) -> Reading:
    sub = parse_delivery(delivery)
    external_id, id_name = journal_key(config, sub, delivery)
    if config.honeypot and sub.values.get(config.honeypot):
        return Reading(external_id, drop=True)
    if not sub.complete:
        return Reading(external_id)
    found = map_fields(sub, config.field_map)
    ours = {field: sub.values[name] for field, name in found.items()}
    check_required(config, ours)

    form_name = find(sub, FORM_ID_FIELDS) if sub.format != "typeform" else None
    form_id = sub.form_id or (form_name and sub.values[form_name])
    plumbing = {*found.values(), config.honeypot, id_name, form_name}
    # Names starting with "_" are framework plumbing (_charset_, _wpnonce, _wpcf7_unit_tag).
    extras = {n: v for n, v in sub.values.items() if n not in plumbing and not n.startswith("_")}
    split_name = " ".join(ours[f] for f in ("first_name", "last_name") if f in ours)
    label = sub.form_title or form_id
    message = InboundMessage(
        kind="form",
        external_id=external_id,
        occurred_at=sub.submitted_at or delivery.arrival(),
        sender=Sender(
            name=ours.get("name") or split_name or None,
            company=ours.get("company"),
            emails=(ours["email"],) if "email" in ours else (),
            phones=(ours["phone"],) if "phone" in ours else (),
            city=ours.get("city"),
        ),
        text=ours.get("message", ""),
        subject=ours.get("subject") or (f"Web form: {label}" if label else "Web form"),
        thread_key=None,  # every submission starts its own conversation
        fields=extras,
        attachments=sub.attachments,
        source_detail=form_id,
    )
    return Reading(external_id, message=message)


# Headers only a server holding the channel's secret sends.
SERVER_AUTH = frozenset({"authorization", "x-switchboard-signature", "typeform-signature"})


class WebformAdapter:
    """Plain HTML forms, JSON posts and Typeform webhooks."""

    kind = "webform"

    def prepare_config(self, config: JsonObject) -> JsonObject:
        prepared = dict(config)
        for name in GENERATED_SECRETS:
            if not prepared.get(name):
                prepared[name] = new_secret()
        FormConfig.from_json(prepared)
        return prepared

    def secret_names(self) -> tuple[str, ...]:
        return ("token", "hmac_secret", "typeform_secret")

    def limited_per_address(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        """A browser's post: its token sits in the page (`?token=`), or it carries no secret.
        A server that holds the bearer token or signs posts for all its visitors from one
        address, so it is not limited per address."""
        lowered = {k.lower() for k in headers}
        return "token" in query or not lowered & SERVER_AUTH

    def authenticate(self, config: JsonObject, delivery: Delivery) -> None:
        check(FormConfig.from_json(config), delivery)

    def accept(self, config: JsonObject, delivery: Delivery) -> Accepted:
        settings = FormConfig.from_json(config)
        reading = read(settings, delivery)
        redirect = settings.redirect_url if browser_form(delivery) else None
        return Accepted(
            reading.external_id,
            redirect_to=redirect,
            drop=reading.drop,
            sender_key=sender_key(reading.message),
        )

    def normalize(self, config: JsonObject, delivery: Delivery) -> InboundMessage | None:
        return read(FormConfig.from_json(config), delivery).message
