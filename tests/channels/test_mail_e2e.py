"""E-mail end to end against a real Dovecot (IMAP) and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from imap_tools import MailBoxUnencrypted
from mail_peers import Dovecot, Sink, start_dovecot
from sqlalchemy import func, select
from support import FIXTURES, fixture_bytes

from crm.matcher import add_identities, identity_keys
from crm.models import Activity, Contact, Lead, Relation, Task, User
from inbox.api.auth import create_api_token
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Channel, Conversation, Event, Message
from inbox.settings import Settings
from workers.mailbox import sync_mailbox
from workers.worker import policy_from

MAILBOX = "info@switchboard.test"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = start_dovecot()
    # Users exist before the first login: Dovecot re-reads the passwd file only on a newer mtime.
    for i in range(1, 41):
        server.add_user(f"box{i}@switchboard.test", "imap-secret")
    yield server
    server.stop()


@pytest.fixture
async def smtp_sink() -> AsyncIterator[Sink]:
    sink = Sink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


counter = iter(range(1, 1_000_000))


@pytest.fixture
def mailbox_user(dovecot: Dovecot) -> str:
    """A fresh IMAP user per test, so tests never see each other's mail."""
    return f"box{next(counter)}@switchboard.test"


def append(dovecot: Dovecot, user: str, raw: bytes, folder: str = "INBOX") -> None:
    with MailBoxUnencrypted("127.0.0.1", port=dovecot.port).login(user, "imap-secret") as box:
        if not box.folder.exists(folder):
            box.folder.create(folder)
        box.append(raw, folder, dt=None, flag_set=[])


def mail(
    sender: str, subject: str, body: str, message_id: str, to: str = MAILBOX, **headers: str
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Sun, 22 Nov 2026 09:30:00 +0100"
    msg["Message-ID"] = f"<{message_id}>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


async def email_channel(
    sessions: Sessions, dovecot: Dovecot, user: str, sink: Sink | None = None, **extra: Any
) -> Channel:
    config: dict[str, Any] = {"imap": dovecot.imap_config(user) | extra.pop("imap", {})}
    if sink is not None:
        config["smtp"] = sink.smtp_config(MAILBOX)
    async with sessions() as session, session.begin():
        return await add_channel(session, "email", "Info", config | extra)


@pytest.fixture
async def worker_ctx(
    sessions: Sessions, settings: Settings, engine_urls: Any
) -> AsyncIterator[dict[str, Any]]:
    from inbox.db import make_engine

    engine = make_engine(engine_urls.database_url, pool_size=4)
    yield {
        "engine": engine,
        "sessions": sessions,
        "policy": policy_from(settings),
        "mailbox_session_s": 0,
    }
    await engine.dispose()


async def known_contact(sessions: Sessions) -> tuple[Contact, User]:
    async with sessions() as session, session.begin():
        manager = User(email="pieter@switchboard.test", name="Pieter", role="manager")
        session.add(manager)
        await session.flush()
        relation = Relation(
            name="Hamerslag B.V.",
            normalized_name="hamerslag",
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
            session, identity_keys(["jan.visser@hamerslag.nl"]), contact_id=contact.id
        )
        return contact, manager


async def count(sessions: Sessions, model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_mail_from_known_contact_then_reply_then_answer_lands_in_one_conversation(
    dovecot: Dovecot,
    mailbox_user: str,
    smtp_sink: Sink,
    sessions: Sessions,
    worker_ctx: dict[str, Any],
    run_worker: Callable[[], Any],
    client: Any,
) -> None:
    contact, manager = await known_contact(sessions)
    channel = await email_channel(
        sessions, dovecot, mailbox_user, smtp_sink, imap={"sent_folder": "Verzonden"}
    )
    append(
        dovecot,
        mailbox_user,
        mail(
            "Jan Visser <jan.visser@hamerslag.nl>",
            "Offerte kozijnen Almere",
            "Goedemorgen,\n\nKunt u een offerte sturen voor 12 kozijnen?\n\nJan",
            "m1@hamerslag.nl",
        ),
    )
    assert await sync_mailbox(worker_ctx, channel.id) == 1
    await run_worker()
    async with sessions() as session:
        conversation = (await session.scalars(select(Conversation))).one()
        assert (conversation.contact_id, conversation.assignee_id) == (contact.id, manager.id)
        activity = (await session.scalars(select(Activity))).one()
        assert activity.kind == "message" and activity.contact_id == contact.id
        task = (await session.scalars(select(Task))).one()
        assert task.assignee_id == manager.id

    async with sessions() as session, session.begin():
        token = await create_api_token(session, manager.id, "test")
    reply = await client.post(
        f"/api/conversations/{conversation.id}/messages",
        json={"text": "Beste Jan,\n\nDe offerte volgt vandaag."},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status == 201, await reply.text()
    await run_worker()
    assert len(smtp_sink.messages) == 1
    envelope = smtp_sink.messages[0]
    assert envelope.rcpt_tos == ["jan.visser@hamerslag.nl"]
    sent = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
    assert sent["In-Reply-To"] == "<m1@hamerslag.nl>"
    assert sent["References"] == "<m1@hamerslag.nl>"
    assert sent["Subject"] == "Re: Offerte kozijnen Almere"
    body = sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert body.startswith("Beste Jan,")
    assert "> Kunt u een offerte sturen voor 12 kozijnen?" in body
    our_id = str(sent["Message-ID"]).strip("<>")
    assert our_id.startswith(f"sb.{conversation.reply_token}.")
    async with sessions() as session:
        outbound = (
            await session.scalars(select(Message).where(Message.direction == "outbound"))
        ).one()
        assert outbound.status == "sent"
    with MailBoxUnencrypted("127.0.0.1", port=dovecot.port).login(
        mailbox_user, "imap-secret"
    ) as box:
        assert box.folder.status("Verzonden")["MESSAGES"] == 1

    answer = mail(
        "Jan Visser <jan.visser@hamerslag.nl>",
        "Re: Offerte kozijnen Almere",
        "Dank u, ik wacht erop.\n\nOp 22 nov. 2026 om 10:00 schreef Switchboard <info@switchboard.test>:\n> Beste Jan,\n>\n> De offerte volgt vandaag.\n",
        "m2@hamerslag.nl",
        In_Reply_To=f"<{our_id}>",
        References=f"<m1@hamerslag.nl> <{our_id}>",
    )
    append(dovecot, mailbox_user, answer)
    assert await sync_mailbox(worker_ctx, channel.id) == 1
    await run_worker()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 1
        last = (
            await session.scalars(select(Message).where(Message.external_id == "m2@hamerslag.nl"))
        ).one()
        assert last.conversation_id == conversation.id
        assert last.text == "Dank u, ik wacht erop."


async def test_sync_imports_only_new_mail_and_survives_unparseable_messages(
    dovecot: Dovecot,
    mailbox_user: str,
    sessions: Sessions,
    worker_ctx: dict[str, Any],
    run_worker: Callable[[], Any],
) -> None:
    channel = await email_channel(sessions, dovecot, mailbox_user)
    append(dovecot, mailbox_user, mail("a@example.nl", "Een", "1", "one@example.nl"))
    append(
        dovecot, mailbox_user, b"\r\n\r\n"
    )  # no headers at all: kept, failed, never stalls the box
    append(dovecot, mailbox_user, mail("b@example.nl", "Twee", "2", "two@example.nl"))
    assert await sync_mailbox(worker_ctx, channel.id) == 3
    assert await sync_mailbox(worker_ctx, channel.id) == 0  # UID n:* returns the last one again
    append(dovecot, mailbox_user, mail("c@example.nl", "Drie", "3", "three@example.nl"))
    assert await sync_mailbox(worker_ctx, channel.id) == 1
    await run_worker()
    async with sessions() as session:
        statuses = sorted((await session.scalars(select(Event.status))).all())
    assert statuses == ["failed", "processed", "processed", "processed"]


async def test_two_workers_never_import_the_same_mailbox_at_once(
    dovecot: Dovecot, mailbox_user: str, sessions: Sessions, worker_ctx: dict[str, Any]
) -> None:
    channel = await email_channel(sessions, dovecot, mailbox_user)
    for i in range(20):
        append(dovecot, mailbox_user, mail("a@example.nl", f"Bericht {i}", "x", f"n{i}@example.nl"))
    results = await asyncio.gather(*(sync_mailbox(worker_ctx, channel.id) for _ in range(2)))
    assert sorted(results) in ([-1, 20], [0, 20])
    assert await count(sessions, Event) == 20


async def test_uidvalidity_change_resyncs_without_duplicates(
    dovecot: Dovecot, mailbox_user: str, sessions: Sessions, worker_ctx: dict[str, Any]
) -> None:
    channel = await email_channel(sessions, dovecot, mailbox_user, imap={"folders": ["Support"]})
    first = [mail("a@example.nl", f"S{i}", "x", f"s{i}@example.nl") for i in range(3)]
    for raw in first:
        append(dovecot, mailbox_user, raw, "Support")
    assert await sync_mailbox(worker_ctx, channel.id) == 3
    with MailBoxUnencrypted("127.0.0.1", port=dovecot.port).login(
        mailbox_user, "imap-secret"
    ) as box:
        box.folder.delete("Support")
    for raw in [*first, mail("a@example.nl", "S3", "x", "s3@example.nl")]:
        append(dovecot, mailbox_user, raw, "Support")
    assert await sync_mailbox(worker_ctx, channel.id) == 4
    assert await count(sessions, Event) == 4


async def test_idle_picks_up_new_mail_while_the_sync_waits(
    dovecot: Dovecot, mailbox_user: str, sessions: Sessions, worker_ctx: dict[str, Any]
) -> None:
    channel = await email_channel(sessions, dovecot, mailbox_user)
    waiting = asyncio.create_task(sync_mailbox(worker_ctx | {"mailbox_session_s": 6}, channel.id))
    await asyncio.sleep(1.0)
    await asyncio.to_thread(
        append, dovecot, mailbox_user, mail("x@example.nl", "Nieuw", "y", "idle@example.nl")
    )
    for _ in range(50):  # polling is every 30 s, so only IDLE can bring it in within the session
        if await count(sessions, Event) == 1:
            break
        await asyncio.sleep(0.1)
    assert await count(sessions, Event) == 1
    assert await waiting == 1


async def test_after_import_move_puts_mail_in_the_archive_folder(
    dovecot: Dovecot, mailbox_user: str, sessions: Sessions, worker_ctx: dict[str, Any]
) -> None:
    channel = await email_channel(
        sessions, dovecot, mailbox_user, imap={"after_import": "move:Archief"}
    )
    append(dovecot, mailbox_user, mail("a@example.nl", "Een", "1", "mv1@example.nl"))
    assert await sync_mailbox(worker_ctx, channel.id) == 1
    with MailBoxUnencrypted("127.0.0.1", port=dovecot.port).login(
        mailbox_user, "imap-secret"
    ) as box:
        assert box.folder.status("INBOX")["MESSAGES"] == 0
        assert box.folder.status("Archief")["MESSAGES"] == 1


async def test_bounce_fails_our_outbound_message_and_auto_reply_makes_no_lead_or_task(
    dovecot: Dovecot,
    mailbox_user: str,
    sessions: Sessions,
    worker_ctx: dict[str, Any],
    run_worker: Callable[[], Any],
) -> None:
    channel = await email_channel(sessions, dovecot, mailbox_user)
    async with sessions() as session, session.begin():
        conversation = Conversation(channel_id=channel.id, subject="Offerte", reply_token="tok123")
        session.add(conversation)
        await session.flush()
        session.add(
            Message(
                conversation_id=conversation.id,
                channel_id=channel.id,
                external_id="out:1",
                direction="outbound",
                kind="message",
                text="Beste Jan",
                status="sent",
                meta={"provider_id": "sb.tok123@switchboard.test"},
                sent_at=datetime.now(UTC),
            )
        )
    append(dovecot, mailbox_user, fixture_bytes("email", "bounce__dsn.eml"))
    append(dovecot, mailbox_user, fixture_bytes("email", "autoreply__out_of_office.eml"))
    append(dovecot, mailbox_user, fixture_bytes("email", "newsletter__list.eml"))
    assert await sync_mailbox(worker_ctx, channel.id) == 3
    await run_worker()
    async with sessions() as session:
        outbound = (
            await session.scalars(select(Message).where(Message.external_id == "out:1"))
        ).one()
        assert outbound.status == "failed" and outbound.error
        bounce = (
            await session.scalars(
                select(Message)
                .where(Message.direction == "inbound", Message.meta["automated"].astext == "true")
                .order_by(Message.id)
            )
        ).first()
        assert bounce is not None and bounce.conversation_id == conversation.id
        assert await session.scalar(select(func.count()).select_from(Lead)) == 0
        assert await session.scalar(select(func.count()).select_from(Task)) == 0
        assert sorted((await session.scalars(select(Event.status))).all()) == ["processed"] * 3


async def test_subject_fallback_joins_recent_mail_but_not_a_reply_to_something_else(
    dovecot: Dovecot,
    mailbox_user: str,
    sessions: Sessions,
    worker_ctx: dict[str, Any],
    run_worker: Callable[[], Any],
) -> None:
    await known_contact(sessions)
    channel = await email_channel(sessions, dovecot, mailbox_user)
    sender = "Jan Visser <jan.visser@hamerslag.nl>"
    append(
        dovecot,
        mailbox_user,
        mail(sender, "Levering kozijnen", "Wanneer komt de levering?", "f1@hamerslag.nl"),
    )
    append(
        dovecot,
        mailbox_user,
        mail(sender, "RE: Levering kozijnen", "Nog een vraag: kan het eerder?", "f2@hamerslag.nl"),
    )
    append(
        dovecot,
        mailbox_user,
        mail(
            sender,
            "Re: Levering kozijnen",
            "Over de nieuwsbrief",
            "f3@hamerslag.nl",
            In_Reply_To="<newsletter-77@mailer.example>",
        ),
    )
    assert await sync_mailbox(worker_ctx, channel.id) == 3
    await run_worker()
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Message.external_id, Message.conversation_id).order_by(Message.id)
            )
        ).all()
        by_id = dict(rows)  # type: ignore[arg-type]
        assert by_id["f1@hamerslag.nl"] == by_id["f2@hamerslag.nl"]
        assert by_id["f3@hamerslag.nl"] != by_id["f1@hamerslag.nl"]
        flagged = await session.get(Conversation, by_id["f3@hamerslag.nl"])
        assert (
            flagged is not None and flagged.needs_review and "same subject" in flagged.needs_review
        )


def cpython_corpus() -> list[Path]:
    import test  # the standard library's test package, when this Python ships it

    return sorted((Path(test.__file__).parent / "test_email" / "data").glob("msg_*.txt"))


async def test_cpython_mail_corpus_is_journaled_and_processed_or_failed_with_a_reason(
    dovecot: Dovecot,
    mailbox_user: str,
    sessions: Sessions,
    worker_ctx: dict[str, Any],
    run_worker: Callable[[], Any],
) -> None:
    corpus = cpython_corpus() or sorted((FIXTURES / "email" / "malformed").glob("*"))
    assert corpus
    channel = await email_channel(sessions, dovecot, mailbox_user)
    with MailBoxUnencrypted("127.0.0.1", port=dovecot.port).login(
        mailbox_user, "imap-secret"
    ) as box:
        for path in corpus:
            box.append(path.read_bytes(), "INBOX", dt=None, flag_set=[])
    imported = await sync_mailbox(worker_ctx, channel.id)
    assert imported == len(corpus)
    await run_worker()
    async with sessions() as session:
        events = (await session.scalars(select(Event))).all()
    # Identical messages share a Message-ID and are journaled once: nothing else may go missing.
    assert len(events) >= len({p.read_bytes() for p in corpus}) - 5
    assert {e.status for e in events} <= {"processed", "failed"}
    assert all(e.error for e in events if e.status == "failed")
