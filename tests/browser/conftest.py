"""A real server (web app plus a running worker) on a free port, and one Chromium per session."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from inbox.db import Sessions
from inbox.service.app import create_app, with_worker
from inbox.service.engines import EngineUrls
from inbox.settings import Settings

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(
    os.environ.get("SWITCHBOARD_SCREENSHOTS")
    or Path(tempfile.gettempdir()) / "switchboard-screenshots"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for every browser test (Debian's, as on CI)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but {CHROMIUM} is missing (.ci/run installs it)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    playwright = await async_playwright().start()
    chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    yield chromium
    await chromium.close()
    await playwright.stop()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (no cookies, no localStorage) per test, in English."""
    context = await browser.new_context(
        locale="en-GB", viewport={"width": 1440, "height": 900}, timezone_id="Europe/Amsterdam"
    )
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    yield tab
    await context.close()


@pytest.fixture
async def server(
    settings: Settings, engine_urls: EngineUrls, sessions: Sessions
) -> AsyncIterator[str]:
    """The whole service on a free port: web app, /ws and a worker processing deliveries."""
    from workers.worker import make_worker

    port = free_port()
    app = create_app(settings, engine_urls.database_url, engine_urls.redis_url)
    with_worker(
        app,
        lambda: make_worker(
            settings, engine_urls.database_url, engine_urls.redis_url, handle_signals=False
        ),
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def second_server(settings: Settings, engine_urls: EngineUrls) -> AsyncIterator[str]:
    """Another web process of the same service (same database and Redis, no worker): what
    one process hears from its sockets must reach the sockets of the other."""
    port = free_port()
    app = create_app(settings, engine_urls.database_url, engine_urls.redis_url)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SHOTS.exists() and any(SHOTS.glob("*.png")):
        terminalreporter.write_line(f"web inbox screenshots: {SHOTS}")
