"""The fault suite's peers: the service on a real port (in a thread of its own, so blocking HTTP
clients such as schemathesis can call it), and the size of its property-based runs."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from inbox.db import Sessions
from inbox.service.app import create_app
from inbox.service.engines import EngineUrls
from inbox.settings import Settings


def examples(ci: int) -> int:
    """Hypothesis examples per property: `ci` in CI, more with SWITCHBOARD_FAULT_EXAMPLES."""
    return int(os.environ.get("SWITCHBOARD_FAULT_EXAMPLES") or ci)


@pytest.fixture
def live_url(settings: Settings, engine_urls: EngineUrls, sessions: Sessions) -> Iterator[str]:
    """The whole app served on 127.0.0.1 from a thread with its own event loop."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(settings, engine_urls.database_url, engine_urls.redis_url))
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="live-app", daemon=True)
    thread.start()
    assert started.wait(30), "the app did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
