"""Abuse of the edges: a planted session cookie, header injection into outgoing mail, file
names that climb out of their folder, and URLs that point the worker at internal services."""

from __future__ import annotations

import socket
from collections.abc import Callable
from email import message_from_bytes
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import aiohttp
import pytest
from aiogram.exceptions import TelegramNetworkError
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fault_peers import journal_mail
from sqlalchemy import select

from channels.base import Attachment as OutAttachment
from channels.base import OutboundMessage
from channels.egress import PUBLIC, NonPublicAddress, for_channels
from channels.mail.smtp import build_email
from channels.telegram.config import BotConfig
from channels.telegram.sender import Bots
from crm.models import User
from inbox.api.auth import COOKIE
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Attachment
from inbox.settings import Settings
from inbox.users import hash_password

Client = TestClient[Any, Any]
PASSWORD = "correct horse battery"


async def person(sessions: Sessions, email: str) -> None:
    async with sessions() as session, session.begin():
        session.add(
            User(email=email, name="P", role="agent", password_hash=hash_password(PASSWORD))
        )


async def log_in(client: Client, email: str) -> str:
    """Log the client's browser in; the session id the answer sets."""
    response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status == 200
    return response.cookies[COOKIE].value


async def test_log_in_never_keeps_a_session_id_the_browser_brought(
    client: Client, sessions: Sessions
) -> None:
    await person(sessions, "anna@abuse.test")
    await person(sessions, "mallory@abuse.test")
    planted = "attacker-chosen-session-id"
    client.session.cookie_jar.update_cookies({COOKIE: planted})
    anna = await log_in(client, "anna@abuse.test")
    assert anna != planted
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: planted})
    assert (await client.get("/api/me")).status == 401
    # Mallory's own valid session, planted in Anna's browser, ends when Anna logs in there.
    client.session.cookie_jar.clear()
    fixed = await log_in(client, "mallory@abuse.test")
    assert await log_in(client, "anna@abuse.test") not in (fixed, anna)
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: fixed})
    assert (await client.get("/api/me")).status == 401


INJECTED = "Offerte\r\nBcc: spy@evil.example\r\n\r\nbody"


@pytest.mark.parametrize(
    "out",
    [
        OutboundMessage(to="jan@example.nl", text="Hoi", subject=INJECTED, message_id="sb.t.1"),
        OutboundMessage(
            to="jan@example.nl\nBcc: spy@evil.example", text="Hoi", message_id="sb.t.2"
        ),
        OutboundMessage(
            to="jan@example.nl",
            text="Hoi",
            subject="Re",
            message_id="sb.t.3",
            in_reply_to="a1@example.nl\r\nBcc: spy@evil.example",
            references=("r1@example.nl\nBcc: spy@evil.example",),
            attachments=(
                OutAttachment(
                    "plan\r\nBcc: spy@evil.example.pdf", "application/pdf", 3, content=b"pdf"
                ),
            ),
        ),
    ],
    ids=["subject", "to", "ids-and-file-name"],
)
def test_a_line_break_in_a_header_value_adds_no_header_to_outgoing_mail(
    out: OutboundMessage,
) -> None:
    config = {"smtp": {"from": "info@switchboard.test", "from_name": "Info\nBcc: spy@evil.example"}}
    sent = build_email(config, out).as_bytes()
    parsed = message_from_bytes(sent)
    assert parsed.get_all("Bcc") is None
    assert b"\nBcc:" not in sent and "spy@evil.example" not in str(parsed["To"])
    assert str(parsed["To"]).strip() in ("jan@example.nl", "")  # "": send() refuses it


def mail_with_files(names: list[str]) -> bytes:
    message = MIMEMultipart("mixed")
    message["From"] = "Jan <jan@example.nl>"
    message["To"] = "info@switchboard.test"
    message["Subject"] = "Bijlagen"
    message["Message-ID"] = "<traversal-1@example.nl>"
    message.attach(MIMEText("Zie bijlagen", "plain", "utf-8"))
    for name in names:
        part = MIMEApplication(b"%PDF-1.4 fake", "pdf")
        part.add_header("Content-Disposition", "attachment", filename=name)
        message.attach(part)
    return message.as_bytes()


BOUNDARY = "----WebKitFormBoundaryAbuse"


def browser_multipart(names: list[str]) -> bytes:
    """A form post with files, their names raw in the header as browsers send them."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in (("email", "eva@example.nl"), ("message", "Zie bijlage"))
    ]
    parts += [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.4 fake\r\n"
        for name in names
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


CLIMBERS = ["../../../etc/passwd", "..\\..\\boot.ini", "/abs/path.pdf", "....//x.pdf", ".."]


async def test_file_names_that_climb_out_are_stored_and_served_without_their_path(
    client: Client,
    sessions: Sessions,
    settings: Settings,
    run_worker: Callable[[], Any],
    login: Callable[..., Any],
) -> None:
    await journal_mail(sessions, [mail_with_files(CLIMBERS)])
    async with sessions() as session, session.begin():
        form = await add_channel(session, "webform", "F", {})
    posted = await client.post(
        f"/webhooks/webform/{form.id}",
        data=browser_multipart(CLIMBERS),
        headers={
            "Authorization": f"Bearer {form.config['token']}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    assert posted.status == 202, await posted.text()
    await run_worker()

    async with sessions() as session:
        files = (await session.scalars(select(Attachment))).all()
    assert len(files) >= 2 * (len(CLIMBERS) - 1), [f.filename for f in files]
    for f in files:
        assert "/" not in f.filename and "\\" not in f.filename, f.filename
        assert not f.filename.startswith(".."), f.filename
    admin = await login("admin")
    for f in files:
        if f.sha256 is None:
            continue
        response = await client.get(f"/api/attachments/{f.id}", headers=admin)
        assert response.status == 200
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment") and "/" not in disposition.split(";", 1)[1]
        assert "\r" not in disposition and "\n" not in disposition
    root = settings.data_dir.expanduser().resolve()
    assert not (root.parent / "etc" / "passwd").exists()
    assert not any(p.name in ("passwd", "boot.ini") for p in root.rglob("*"))


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "100.64.0.1", "::1", "fd00::1", "0.0.0.0"]
)  # fmt: skip
def test_the_egress_guard_refuses_every_non_public_address(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with pytest.raises(NonPublicAddress, match=address.split("%")[0]):
        PUBLIC.socket((family, socket.SOCK_STREAM, 6, "", (address, 80)))
    PUBLIC.socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))).close()


async def test_fetches_of_the_worker_reach_no_loopback_service_by_address_or_by_name() -> None:
    hits: list[str] = []

    async def metadata(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response(
            {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "x"}}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", metadata)
    async with TestServer(app, host="127.0.0.1") as server:
        for host in ("127.0.0.1", "localhost"):
            async with PUBLIC.session() as http:
                with pytest.raises(aiohttp.ClientConnectorError):
                    await http.post(f"http://{host}:{server.port}/bot-hook", json={})
        async with Bots(egress=PUBLIC) as pool:
            bot = pool.get(
                BotConfig.from_json({"token": "123:abc", "api_base": str(server.make_url("/"))})
            )
            with pytest.raises(TelegramNetworkError):
                await bot.get_me()
        async with for_channels(True).session() as http:  # allowed by setting: it connects
            assert (
                await http.post(f"http://127.0.0.1:{server.port}/bot-hook", json={})
            ).status == 200
    assert hits == ["/bot-hook"]
