"""Typeform's webhook: a form_response with typed answers and the form's definition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeGuard

from channels.base import JsonObject, JsonValue, ParseError
from channels.webform.forms import Submission, add, scalar


def is_typeform(data: JsonValue) -> TypeGuard[JsonObject]:
    return isinstance(data, dict) and isinstance(data.get("form_response"), dict)


def text(value: JsonValue) -> str | None:
    return value if isinstance(value, str) and value else None


def objects(value: JsonValue, what: str) -> list[JsonObject]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ParseError(f"Typeform {what} is not a list of objects")
    return [v for v in value if isinstance(v, dict)]


def answer_value(answer: JsonObject) -> str | None:
    """An answer as text: its value sits under the key named by its type."""
    kind = answer.get("type")
    value = answer.get(kind) if isinstance(kind, str) else None
    if kind == "choice" and isinstance(value, dict):
        return text(value.get("label")) or text(value.get("other"))
    if kind == "choices" and isinstance(value, dict):
        labels = value.get("labels")
        picked = [*(labels if isinstance(labels, list) else []), value.get("other")]
        return ", ".join(t for t in map(scalar, picked) if t) or None
    return scalar(value)


def timestamp(value: JsonValue) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None  # a bad timestamp is no reason to lose a response
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def parse_typeform(data: JsonObject) -> Submission:
    """Answers named by question title, also reachable by field ref and id; hidden fields kept."""
    response = data.get("form_response")
    if not isinstance(response, dict):
        raise ParseError("Typeform body has no form_response object")
    definition = response.get("definition")
    definition = definition if isinstance(definition, dict) else {}
    titles: dict[str, str] = {}
    for question in objects(definition.get("fields"), "definition.fields"):
        if (question_id := text(question.get("id"))) and (title := text(question.get("title"))):
            titles[question_id] = title
    values: dict[str, str] = {}
    aliases: dict[str, str] = {}
    types: dict[str, str] = {}
    for answer in objects(response.get("answers"), "form_response.answers"):
        field = answer.get("field")
        field = field if isinstance(field, dict) else {}
        field_id, ref = text(field.get("id")), text(field.get("ref"))
        value = answer_value(answer)
        candidates = (titles.get(field_id or ""), ref, field_id)
        name = next((c for c in candidates if c and c not in values), None)
        if value is None or name is None:
            continue
        add(values, name, value)
        if name not in values:
            continue  # a blank answer
        aliases.update({alias: name for alias in (ref, field_id) if alias})
        if isinstance(kind := field.get("type"), str):
            types[name] = kind
    hidden = response.get("hidden")
    for hidden_name, hidden_value in hidden.items() if isinstance(hidden, dict) else ():
        if (hidden_text := scalar(hidden_value)) is not None and hidden_name not in values:
            add(values, hidden_name, hidden_text)
    return Submission(
        "typeform",
        values,
        aliases=aliases,
        types=types,
        form_id=text(response.get("form_id")) or text(definition.get("id")),
        form_title=text(definition.get("title")),
        provider_id=text(data.get("event_id")) or text(response.get("token")),
        submitted_at=timestamp(response.get("submitted_at")),
        complete=data.get("event_type") == "form_response",
    )
