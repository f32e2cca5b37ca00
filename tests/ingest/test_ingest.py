"""From a real delivery on the HTTP endpoint to the stored conversation, lead, activity and task."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.telephony import twilio_signature
from crm.matcher import add_identities, identity_keys
from crm.models import Activity, Contact, Identity, Lead, Relation, Task, Team, TeamMember, User
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Channel, Conversation, Event, Message
from inbox.routing.models import QueueEntry, TeamRouting
from inbox.settings import Settings
from workers.jobs import replay_events
from workers.worker import policy_from

Client = TestClient[Any, Any]


async def count(session: AsyncSession, model: type[Any]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def make_team(session: AsyncSession, name: str, *people: str) -> tuple[Team, list[User]]:
    team = Team(name=name)
    session.add(team)
    users = [User(email=f"{p.lower()}@switchboard.test", name=p, role="agent") for p in people]
    session.add_all(users)
    await session.flush()
    session.add_all(TeamMember(team_id=team.id, user_id=u.id) for u in users)
    await session.flush()
    return team, users


async def make_channel(
    sessions: Sessions, kind: str, config: dict[str, Any], team: str | None = None
) -> Channel:
    async with sessions() as session, session.begin():
        return await add_channel(session, kind, f"test {kind}", config, team)


async def post_form(client: Client, channel: Channel, data: dict[str, Any]) -> Any:
    return await client.post(
        f"/webhooks/webform/{channel.id}",
        data=json.dumps(data),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {channel.config['token']}",
        },
    )


async def test_form_from_unknown_sender_becomes_lead_conversation_message_and_task(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    async with sessions() as session, session.begin():
        _, (ank, bert) = await make_team(session, "Verkoop", "Ank", "Bert")
    channel = await make_channel(sessions, "webform", {}, team="Verkoop")

    response = await post_form(
        client,
        channel,
        {
            "name": "Jan Visser",
            "company": "Hamerslag B.V.",
            "email": "Jan.Visser@Hamerslag.nl",
            "phone": "06-12345678",
            "message": "Graag een offerte voor 12 kozijnen.",
            "project": "Almere",
        },
    )
    assert response.status == 202, await response.text()
    event_id = (await response.json())["event_id"]
    await run_worker()

    async with sessions() as session:
        event = await session.get(Event, event_id)
        assert event is not None and event.status == "processed", event and event.error
        lead = (await session.scalars(select(Lead))).one()
        assert (lead.name, lead.company, lead.source_channel_id) == (
            "Jan Visser",
            "Hamerslag B.V.",
            channel.id,
        )
        identities = {(i.kind, i.value) for i in (await session.scalars(select(Identity))).all()}
        assert identities == {("email", "jan.visser@hamerslag.nl"), ("phone", "+31612345678")}
        conversation = (await session.scalars(select(Conversation))).one()
        assert conversation.lead_id == lead.id and conversation.channel_id == channel.id
        message = (await session.scalars(select(Message))).one()
        assert message.text == "Graag een offerte voor 12 kozijnen."
        assert message.conversation_id == conversation.id and message.event_id == event_id
        task = (await session.scalars(select(Task))).one()
        assert task.kind == "follow_up_lead" and task.lead_id == lead.id
        assert task.assignee_id in (ank.id, bert.id) and task.due_at is not None
        assert conversation.assignee_id == task.assignee_id


async def test_round_robin_spreads_new_leads_over_the_team(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    async with sessions() as session, session.begin():
        _, people = await make_team(session, "Verkoop", "Ank", "Bert", "Carla")
    channel = await make_channel(sessions, "webform", {}, team="Verkoop")
    for i in range(6):
        response = await post_form(
            client,
            channel,
            {"name": f"Klant {i}", "email": f"klant{i}@example.nl", "message": "Vraag"},
        )
        assert response.status == 202
    await run_worker()
    async with sessions() as session:
        rows = (
            await session.execute(select(Task.assignee_id, func.count()).group_by(Task.assignee_id))
        ).all()
    assert sorted(n for _, n in rows) == [2, 2, 2]
    assert {a for a, _ in rows} == {p.id for p in people}


async def test_one_batch_never_fills_a_person_beyond_capacity(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    """Loads are read once per batch: the batch must count what it assigned itself."""
    async with sessions() as session, session.begin():
        team, people = await make_team(session, "Klachten", "Ank", "Bert")
        session.add(TeamRouting(team_id=team.id, strategy="least_loaded"))
        for person in people:
            person.capacity = 2
    channel = await make_channel(sessions, "webform", {}, team="Klachten")
    for i in range(5):
        response = await post_form(
            client,
            channel,
            {"name": f"Klant {i}", "email": f"klant{i}@example.nl", "message": "Klacht"},
        )
        assert response.status == 202
    await run_worker()
    async with sessions() as session:
        per_person = dict(
            (
                await session.execute(
                    select(Conversation.assignee_id, func.count()).group_by(
                        Conversation.assignee_id
                    )
                )
            ).all()
        )
        queued = await count(session, QueueEntry)
    assert per_person == {people[0].id: 2, people[1].id: 2, None: 1}
    assert queued == 1


async def known_contact(session: AsyncSession) -> tuple[Contact, Relation, User]:
    manager = User(email="pieter@switchboard.test", name="Pieter", role="manager")
    session.add(manager)
    await session.flush()
    relation = Relation(
        name="Hamerslag B.V.",
        normalized_name="hamerslag b v",
        status="customer",
        account_manager_id=manager.id,
    )
    session.add(relation)
    await session.flush()
    contact = Contact(
        relation_id=relation.id, first_name="Jan", last_name="Visser", full_name="Jan Visser"
    )
    session.add(contact)
    await session.flush()
    await add_identities(
        session, identity_keys(["jan.visser@hamerslag.nl"], ["06-12345678"]), contact_id=contact.id
    )
    return contact, relation, manager


def twilio_body(call_sid: str, status: str, from_: str, seq: int, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": from_,
        "To": "+31201234567",
        "Caller": from_,
        "Called": "+31201234567",
        "CallbackSource": "call-progress-events",
        "SequenceNumber": str(seq),
        "Timestamp": "Sun, 22 Nov 2026 10:15:00 +0000",
        **extra,
    }


async def post_twilio(
    client: Client, channel: Channel, params: dict[str, str], token: str | None = None
) -> Any:
    path = f"/webhooks/telephony/{channel.id}"
    url = str(client.make_url(path))
    signature = twilio_signature(url, params, token or str(channel.config["twilio_auth_token"]))
    return await client.post(
        path,
        data=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )


@pytest.mark.parametrize("number", ["06-12345678", "+31 6 1234 5678", "0031612345678"])
async def test_twilio_missed_call_from_known_number_gives_account_manager_a_call_back_task(
    number: str, client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    async with sessions() as session, session.begin():
        await make_team(session, "Service", "Daan")
        contact, relation, manager = await known_contact(session)
    channel = await make_channel(
        sessions,
        "telephony",
        {"dialect": "twilio", "twilio_auth_token": "tw-secret-123"},
        team="Service",
    )

    for seq, status in enumerate(["ringing", "no-answer"]):
        response = await post_twilio(
            client, channel, twilio_body("CA11112222333344445555666677778888", status, number, seq)
        )
        assert response.status == 202, await response.text()
    await run_worker()

    async with sessions() as session:
        statuses = sorted((await session.scalars(select(Event.status))).all())
        assert statuses == ["ignored", "processed"]
        task = (await session.scalars(select(Task))).one()
        assert task.kind == "call_back"
        assert task.assignee_id == manager.id
        assert (task.contact_id, task.relation_id) == (contact.id, relation.id)
        activity = (await session.scalars(select(Activity))).one()
        assert (activity.kind, activity.outcome, activity.contact_id) == (
            "call",
            "missed",
            contact.id,
        )
        assert await count(session, Lead) == 0


async def test_answered_call_is_an_activity_without_a_task_and_later_callbacks_update_it(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    async with sessions() as session, session.begin():
        contact, _, _ = await known_contact(session)
    channel = await make_channel(
        sessions, "telephony", {"dialect": "twilio", "twilio_auth_token": "tw-secret-123"}
    )
    sid = "CA99998888777766665555444433332222"
    completed = twilio_body(
        sid,
        "completed",
        "+31612345678",
        3,
        CallDuration="125",
        RecordingUrl="https://api.twilio.com/rec/RE1",
    )
    assert (await post_twilio(client, channel, completed)).status == 202
    await run_worker()
    async with sessions() as session:
        activity = (await session.scalars(select(Activity))).one()
        assert (activity.outcome, activity.duration_s, activity.contact_id) == (
            "answered",
            125,
            contact.id,
        )
        assert activity.recording_url == "https://api.twilio.com/rec/RE1"
        assert await count(session, Task) == 0
        assert await count(session, Message) == 1


async def test_the_same_delivery_three_times_is_one_event_and_one_message(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    channel = await make_channel(sessions, "webform", {})
    body = {"submission_id": "sub-42", "name": "Eva", "email": "eva@example.nl", "message": "Hallo"}
    answers = [await post_form(client, channel, body) for _ in range(3)]
    assert [a.status for a in answers] == [202, 200, 200]
    assert [(await a.json())["duplicate"] for a in answers] == [False, True, True]
    await run_worker()
    await post_form(client, channel, body)
    await run_worker()
    async with sessions() as session:
        assert await count(session, Event) == 1
        assert await count(session, Message) == 1
        assert await count(session, Lead) == 1


async def test_an_event_left_pending_by_a_crash_is_processed_when_the_worker_starts(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], settings: Settings
) -> None:
    channel = await make_channel(sessions, "webform", {})
    response = await post_form(
        client, channel, {"name": "Tess", "email": "tess@example.nl", "message": "Bel me"}
    )
    event_id = (await response.json())["event_id"]
    # The crash: the queued job is gone with the worker that held it; only the journal remains.
    assert settings.redis_url
    redis = Redis.from_url(settings.redis_url)
    await redis.flushdb()
    await redis.aclose()
    async with sessions() as session:
        assert (await session.get(Event, event_id)).status == "pending"  # type: ignore[union-attr]
    await run_worker()
    async with sessions() as session:
        assert (await session.get(Event, event_id)).status == "processed"  # type: ignore[union-attr]
        assert await count(session, Message) == 1


async def test_wrong_or_missing_secret_is_401_and_not_journaled(
    client: Client, sessions: Sessions
) -> None:
    form = await make_channel(sessions, "webform", {})
    phone = await make_channel(
        sessions, "telephony", {"dialect": "twilio", "twilio_auth_token": "right"}
    )
    body = json.dumps({"name": "X", "email": "x@example.nl"})
    assert (
        await client.post(
            f"/webhooks/webform/{form.id}", data=body, headers={"Content-Type": "application/json"}
        )
    ).status == 401
    wrong = await client.post(
        f"/webhooks/webform/{form.id}",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer not-the-token"},
    )
    assert wrong.status == 401 and "error" in await wrong.json()
    forged = await post_twilio(
        client, phone, twilio_body("CA1", "no-answer", "0612345678", 1), token="wrong"
    )
    assert forged.status == 401
    async with sessions() as session:
        assert await count(session, Event) == 0


async def test_oversized_body_is_413(
    client: Client, sessions: Sessions, settings: Settings
) -> None:
    channel = await make_channel(sessions, "webform", {})
    big = json.dumps({"email": "x@example.nl", "message": "x" * (settings.max_body_bytes + 10)})
    response = await client.post(
        f"/webhooks/webform/{channel.id}",
        data=io.BytesIO(big.encode()),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {channel.config['token']}",
        },
    )
    assert response.status == 413


async def test_malformed_delivery_gets_a_reason_and_is_kept_as_failed(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions, "webform", {})
    broken = await client.post(
        f"/webhooks/webform/{channel.id}",
        data=b'{"email": "x@example.nl", ',
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {channel.config['token']}",
        },
    )
    assert broken.status == 400
    reason = (await broken.json())["error"]
    assert reason
    async with sessions() as session:
        event = (await session.scalars(select(Event))).one()
        assert (event.status, event.error) == ("failed", reason)
        assert event.payload == b'{"email": "x@example.nl", '
        assert "authorization" not in event.headers["headers"]
    assert (await client.get("/healthz")).status == 200  # still serving


async def test_replay_processes_a_failed_event_once_the_cause_is_fixed(
    client: Client, sessions: Sessions, settings: Settings
) -> None:
    channel = await make_channel(sessions, "webform", {})
    # A form builder that names its fields in its own way: no e-mail or phone we recognise.
    response = await post_form(
        client, channel, {"veld_1": "Bram", "veld_2": "bram@example.nl", "veld_3": "Hoi"}
    )
    assert response.status == 422
    event_id = (await response.json())["event_id"]
    ctx = {"sessions": sessions, "policy": policy_from(settings)}
    assert (await replay_events(ctx, [event_id]))[0]["status"] == "failed"

    async with sessions() as session, session.begin():
        stored = await session.get(Channel, channel.id)
        assert stored is not None
        stored.config = stored.config | {
            "field_map": {"name": "veld_1", "email": "veld_2", "message": "veld_3"}
        }
    outcome = await replay_events(ctx, [event_id])
    assert outcome[0]["status"] == "processed"
    async with sessions() as session:
        lead = (await session.scalars(select(Lead))).one()
        assert lead.name == "Bram"
        event = await session.get(Event, event_id)
        assert event is not None and event.status == "processed" and event.attempts == 2


async def test_metrics_count_deliveries_by_channel_and_status(
    client: Client, sessions: Sessions
) -> None:
    channel = await make_channel(sessions, "webform", {})
    await post_form(client, channel, {"email": "m@example.nl", "message": "x"})
    text = await (await client.get("/metrics")).text()
    assert 'switchboard_deliveries_total{kind="webform",status="202"}' in text
