"""The webhook endpoint's behaviour at the door: auth schemes, limits, spam, browsers, dialects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from support import fixture_bytes

from channels.webform import sign_body, typeform_signature
from crm.models import Activity, Lead, Task
from inbox.db import Sessions
from inbox.ingest import webhooks
from inbox.ingest.channels import add_channel
from inbox.models import Channel, Event, Message

Client = TestClient[Any, Any]


async def make_channel(sessions: Sessions, kind: str, config: dict[str, Any]) -> Channel:
    async with sessions() as session, session.begin():
        return await add_channel(session, kind, f"test {kind}", config)


async def events(sessions: Sessions) -> list[Event]:
    async with sessions() as session:
        return list((await session.scalars(select(Event).order_by(Event.id))).all())


async def test_rate_limit_answers_429_with_retry_after(client: Client, sessions: Sessions) -> None:
    channel = await make_channel(sessions, "webform", {"rate_limit_per_minute": 3})
    statuses = []
    for i in range(5):
        response = await client.post(
            f"/webhooks/webform/{channel.id}?token={channel.config['token']}",
            data={"name": f"Spammer {i}", "email": f"s{i}@example.nl", "message": "koop nu"},
        )
        statuses.append(response.status)
        if response.status == 429:
            assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert statuses.count(429) == 2
    assert len(await events(sessions)) == 3


async def test_a_server_posting_with_its_bearer_token_is_not_limited_per_address(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions, "webform", {"rate_limit_per_minute": 2})
    auth = {"Authorization": f"Bearer {channel.config['token']}"}
    statuses = [
        (
            await client.post(
                f"/webhooks/webform/{channel.id}",
                data={"name": f"Klant {i}", "email": f"k{i}@example.nl", "message": "offerte"},
                headers=auth,
            )
        ).status
        for i in range(4)
    ]
    assert statuses == [202] * 4
    assert len(await events(sessions)) == 4


async def test_concurrent_deliveries_are_journaled_together_each_once(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions, "webform", {})
    url = f"/webhooks/webform/{channel.id}"
    auth = {"Authorization": f"Bearer {channel.config['token']}"}

    async def post(n: int) -> tuple[int, dict[str, Any]]:
        body = {"submission_id": f"sub-{n}", "email": f"k{n}@example.nl", "message": "hoi"}
        response = await client.post(url, json=body, headers=auth)
        return response.status, await response.json()

    # Sixty different submissions and the same one five times, all in flight at once: the
    # group commit writes them together, yet each gets its own answer.
    answers = await asyncio.gather(*(post(n) for n in [*range(60), 7, 7, 7, 7, 7]))
    assert sum(status == 202 for status, _ in answers) == 60
    repeats = [body for status, body in answers if status == 200]
    assert len(repeats) == 5 and all(body["duplicate"] for body in repeats)
    sevens = {body["event_id"] for status, body in answers if status == 200}
    journaled = await events(sessions)
    assert len(journaled) == 60
    assert sevens == {e.id for e in journaled if e.external_id == "sub-7"}


async def test_deliveries_that_miss_the_channel_cache_together_share_one_lookup(
    client: Client, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = await make_channel(sessions, "webform", {})
    lookups: list[str] = []
    fetch = webhooks.fetch_channel

    async def counted(app: Any, channel_id: str) -> Any:
        lookups.append(channel_id)
        await asyncio.sleep(0.05)  # still looking when the others arrive
        return await fetch(app, channel_id)

    monkeypatch.setattr(webhooks, "fetch_channel", counted)
    auth = {"Authorization": f"Bearer {channel.config['token']}"}
    responses = await asyncio.gather(
        *(
            client.post(
                f"/webhooks/webform/{channel.id}",
                json={"submission_id": f"s{n}", "email": f"k{n}@example.nl"},
                headers=auth,
            )
            for n in range(20)
        )
    )
    assert [r.status for r in responses] == [202] * 20
    assert lookups == [channel.id]


async def test_honeypot_submission_is_kept_as_ignored_and_never_processed(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    channel = await make_channel(sessions, "webform", {})
    response = await client.post(
        f"/webhooks/webform/{channel.id}?token={channel.config['token']}",
        data=fixture_bytes("webform", "html_form__honeypot.txt"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert response.status in (200, 202, 303)
    await run_worker()
    [event] = await events(sessions)
    assert event.status == "ignored"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0


async def test_plain_html_form_is_redirected_to_the_thank_you_page(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(
        sessions, "webform", {"redirect_url": "https://www.example.nl/bedankt"}
    )
    response = await client.post(
        f"/webhooks/webform/{channel.id}?token={channel.config['token']}",
        data=fixture_bytes("webform", "html_form__contact.txt"),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Mode": "navigate"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "https://www.example.nl/bedankt"
    assert [e.status for e in await events(sessions)] == ["pending"]


async def test_cors_preflight_and_headers_only_for_allowed_origins(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions, "webform", {"cors_origins": ["https://www.example.nl"]})
    path = f"/webhooks/webform/{channel.id}"
    ok = await client.options(
        path, headers={"Origin": "https://www.example.nl", "Access-Control-Request-Method": "POST"}
    )
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://www.example.nl"
    bad = await client.options(
        path, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert bad.status == 403 and "Access-Control-Allow-Origin" not in bad.headers
    posted = await client.post(
        f"{path}?token={channel.config['token']}",
        data=json.dumps({"email": "a@example.nl", "message": "hoi"}),
        headers={"Content-Type": "application/json", "Origin": "https://www.example.nl"},
    )
    assert posted.status == 202
    assert posted.headers["Access-Control-Allow-Origin"] == "https://www.example.nl"


async def test_our_hmac_signature_and_typeform_signature_authenticate(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions, "webform", {"typeform_secret": "tf-secret"})
    body = json.dumps({"email": "sig@example.nl", "message": "ondertekend"}).encode()
    signed = await client.post(
        f"/webhooks/webform/{channel.id}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Switchboard-Signature": sign_body(str(channel.config["hmac_secret"]), body),
        },
    )
    assert signed.status == 202
    tampered = await client.post(
        f"/webhooks/webform/{channel.id}",
        data=body + b" ",
        headers={
            "Content-Type": "application/json",
            "X-Switchboard-Signature": sign_body(str(channel.config["hmac_secret"]), body),
        },
    )
    assert tampered.status == 401
    typeform = fixture_bytes("webform", "typeform__form_response.json")
    answer = await client.post(
        f"/webhooks/webform/{channel.id}",
        data=typeform,
        headers={
            "Content-Type": "application/json",
            "Typeform-Signature": typeform_signature("tf-secret", typeform),
        },
    )
    assert answer.status == 202
    assert (await answer.json())["event_id"]
    assert [e.external_id for e in await events(sessions)][1] == json.loads(typeform)["event_id"]


async def test_chunked_body_over_the_limit_is_413(client: Client, sessions: Sessions) -> None:
    channel = await make_channel(sessions, "webform", {})

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "x@example.nl", "message": "'
        for _ in range(1100):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post(
        f"/webhooks/webform/{channel.id}?token={channel.config['token']}",
        data=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    assert await events(sessions) == []


async def test_unknown_channel_or_kind_is_404(client: Client, sessions: Sessions) -> None:
    channel = await make_channel(sessions, "webform", {})
    assert (await client.post("/webhooks/webform/0000", data=b"{}")).status == 404
    assert (await client.post(f"/webhooks/telephony/{channel.id}", data=b"{}")).status == 404
    assert (await client.post(f"/webhooks/fax/{channel.id}", data=b"{}")).status == 404


async def test_3cx_call_journal_is_deduplicated_without_a_call_id(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    channel = await make_channel(sessions, "telephony", {"dialect": "3cx"})
    body = fixture_bytes("telephony", "3cx__missed.json")
    for _ in range(2):
        response = await client.post(
            f"/webhooks/telephony/{channel.id}?token={channel.config['token']}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status in (200, 202)
    await run_worker()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1
        activity = (await session.scalars(select(Activity))).one()
        assert (activity.kind, activity.outcome) == ("call", "missed")
        lead = (await session.scalars(select(Lead))).one()  # an unknown number becomes a lead
        task = (await session.scalars(select(Task))).one()
        assert task.kind == "call_back" and task.lead_id == lead.id


async def test_asterisk_answered_call_from_unknown_number_is_a_lead_with_the_phone(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    channel = await make_channel(sessions, "telephony", {"dialect": "asterisk"})
    response = await client.post(
        f"/webhooks/telephony/{channel.id}",
        data=fixture_bytes("telephony", "asterisk__answered.json"),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {channel.config['token']}",
        },
    )
    assert response.status == 202, await response.text()
    await run_worker()
    async with sessions() as session:
        activity = (await session.scalars(select(Activity))).one()
        assert activity.outcome == "answered" and activity.duration_s and activity.lead_id
        assert await session.scalar(select(func.count()).select_from(Task)) == 0


async def test_generic_call_missing_a_field_is_422_and_kept(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions, "telephony", {})
    response = await client.post(
        f"/webhooks/telephony/{channel.id}",
        data=fixture_bytes("telephony", "generic__missing_call_id.json"),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {channel.config['token']}",
        },
    )
    assert response.status == 422
    assert "call_id" in (await response.json())["error"]
    [event] = await events(sessions)
    assert event.status == "failed" and "call_id" in (event.error or "")
