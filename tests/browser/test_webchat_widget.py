"""The web chat widget in Chromium, embedded in a page of another origin than the service:
a visitor writes, an agent answers in the inbox, the visitor sees it, also after coming back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from mail_peers import free_port
from sqlalchemy import select, update

from crm.models import User
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Channel, Message
from inbox.service.demo import DEMO_PASSWORD, seed

NAME = '<img src=x onerror="window.pwned=1">Sanne'


@dataclass
class Site:
    url: str
    pages: dict[str, str] = field(default_factory=dict)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A customer's website on another origin (localhost, not 127.0.0.1, on another port)."""
    port = free_port()
    found = Site(f"http://localhost:{port}")

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=found.pages.get(request.path, ""), content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "localhost", port).start()
    yield found
    await runner.cleanup()


async def chat_channel(sessions: Sessions, origin: str) -> Channel:
    async with sessions() as session, session.begin():
        await seed(session)
        await session.execute(update(User).values(language="en"))
        return await add_channel(
            session, "webchat", "Website", {"allowed_origins": [origin]}, team="Verkoop"
        )


def embed(server: str, channel: Channel) -> str:
    return (
        "<!doctype html><html><head><title>Kozijnen</title></head><body><h1>Kozijnen</h1>"
        f'<script src="{server}/webchat/widget.js" data-channel="{channel.id}" async></script>'
        "</body></html>"
    )


async def agent_page(browser: Any, server: str) -> Any:
    context = await browser.new_context(locale="en-GB", timezone_id="Europe/Amsterdam")
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    await tab.goto(server + "/login")
    await tab.fill("input[name=email]", "admin@switchboard.test")
    await tab.fill("input[name=password]", DEMO_PASSWORD)
    await tab.click("button[type=submit]")
    await tab.wait_for_url(server + "/")
    await tab.wait_for_selector("body[data-live=yes]")
    return tab


async def visitor_writes(
    page: Any, url: str, text: str, ready: str = "[data-connected=yes]"
) -> Any:
    """Open the chat on the site's page, skip the pre-chat form and send a message."""
    await page.goto(url)
    chat = page.locator("#switchboard-webchat")
    await chat.locator(".sb-bubble").click()
    await chat.locator(".sb-start").click()
    await page.wait_for_selector(f"#switchboard-webchat{ready}", state="attached")
    await chat.locator("textarea").fill(text)
    await chat.locator(".sb-send").click()
    return chat


async def test_visitor_writes_agent_answers_in_the_inbox_and_the_visitor_sees_it_again_later(
    page: Any, browser: Any, server: str, site: Site, sessions: Sessions, screenshots: Path
) -> None:
    channel = await chat_channel(sessions, site.url)
    site.pages["/offerte"] = embed(server, channel)
    agent = await agent_page(browser, server)

    await page.goto(f"{site.url}/offerte")
    chat = page.locator("#switchboard-webchat")
    await chat.locator(".sb-bubble").click()
    await chat.locator(".sb-head", has_text="Chat with us").wait_for()
    await chat.locator("input[name=name]").fill(NAME)
    await chat.locator("input[name=email]").fill("sanne@dewit.nl")
    await chat.locator(".sb-start").click()
    await page.wait_for_selector("#switchboard-webchat[data-connected=yes]", state="attached")
    await chat.locator("textarea").fill("Hebben jullie de kozijnen ook in antraciet?")
    await chat.locator(".sb-send").click()
    mine = chat.locator(".sb-msg.visitor", has_text="antraciet")
    await mine.wait_for()
    await page.wait_for_function(
        "() => !document.querySelector('#switchboard-webchat')"
        ".shadowRoot.querySelector('.sb-msg.visitor.pending')"
    )  # came back from the server: journaled and processed

    row = agent.locator("#rows .row", has_text="Sanne")
    await row.wait_for()  # live over the agent's /ws
    assert NAME in await row.inner_text()  # shown as text, not as an element
    await row.click()
    await agent.locator(".message.inbound", has_text="antraciet").wait_for()
    await agent.click("button[data-mode=reply]")
    await agent.fill("#composer", "Ja, in antraciet <RAL 7016> & in zwart.")
    await agent.click("#send")
    await agent.locator(".message.outbound", has_text="RAL 7016").wait_for()

    answer = chat.locator(".sb-msg.agent", has_text="Ja, in antraciet <RAL 7016> & in zwart.")
    await answer.wait_for()  # pushed to the visitor's open socket
    assert (
        await page.evaluate("document.getElementById('switchboard-webchat').dataset.transport")
        == "ws"
    )
    assert await agent.evaluate("window.pwned") is None
    assert await chat.locator(".sb-error").inner_text() == ""  # the socket acknowledged it
    await page.screenshot(path=str(screenshots / "webchat-widget.png"))

    # The visitor leaves; meanwhile the agent writes again; back on the site, all is there.
    await page.goto("about:blank")
    await agent.fill("#composer", "Wilt u een afspraak voor inmeten?")
    await agent.click("#send")
    await agent.locator(".message.outbound", has_text="inmeten").wait_for()
    await page.goto(f"{site.url}/offerte")
    await chat.locator(".sb-bubble").click()
    await chat.locator(".sb-msg.visitor", has_text="antraciet").wait_for()
    await chat.locator(".sb-msg.agent", has_text="RAL 7016").wait_for()
    await chat.locator(".sb-msg.agent", has_text="inmeten").wait_for()
    assert await chat.locator("form.sb-form").is_hidden()  # the pre-chat form is not asked again
    async with sessions() as session:
        statuses = (
            await session.scalars(select(Message.status).where(Message.direction == "outbound"))
        ).all()
    assert sorted(statuses) == ["sent", "sent"]
    await agent.context.close()


async def test_without_websockets_the_widget_long_polls_and_still_gets_the_answer(
    page: Any, browser: Any, server: str, site: Site, sessions: Sessions
) -> None:
    channel = await chat_channel(sessions, site.url)
    site.pages["/contact"] = embed(server, channel)
    await page.add_init_script("delete window.WebSocket")  # a proxy that lets no socket through
    chat = await visitor_writes(
        page, f"{site.url}/contact", "Bent u morgen open?", "[data-transport=poll]"
    )
    agent = await agent_page(browser, server)
    await agent.locator("#rows .row").first.click()
    await agent.locator(".message.inbound", has_text="morgen open").wait_for()
    await agent.click("button[data-mode=reply]")
    await agent.fill("#composer", "Ja, van 9 tot 17 uur.")
    await agent.click("#send")
    await chat.locator(".sb-msg.agent", has_text="van 9 tot 17 uur").wait_for()
    await agent.context.close()


async def test_agent_and_visitor_see_each_other_type_across_two_web_processes(
    page: Any, browser: Any, server: str, second_server: str, site: Site, sessions: Sessions
) -> None:
    channel = await chat_channel(sessions, site.url)
    site.pages["/afspraak"] = embed(second_server, channel)  # the visitor's socket: process 2
    chat = await visitor_writes(
        page, f"{site.url}/afspraak", "Is er dinsdag nog plek voor inmeten?"
    )
    agent = await agent_page(browser, server)  # the agent's socket: process 1
    await agent.locator("#rows .row").first.click()
    await agent.locator(".message.inbound", has_text="dinsdag").wait_for()
    assert await chat.locator(".sb-typing").inner_text() == ""
    visitor_typing = agent.locator("#visitor-typing")
    assert await visitor_typing.is_hidden()

    await agent.click("button[data-mode=reply]")
    await agent.locator("#composer").press_sequentially("Dinsdag om")
    await chat.locator(".sb-typing", has_text="typing…").wait_for()

    await chat.locator("textarea").press_sequentially("Liefst in de")
    await visitor_typing.wait_for()
    assert await visitor_typing.inner_text() == "The visitor is typing…"

    await agent.locator("#composer").press_sequentially(" 10 uur kan.")
    await agent.click("#send")
    await chat.locator(".sb-msg.agent", has_text="Dinsdag om 10 uur kan.").wait_for()
    assert await chat.locator(".sb-typing").inner_text() == ""  # the message ends "typing…"
    await agent.context.close()
