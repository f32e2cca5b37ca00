"""The fault suite's peers: the service on a real port (in a thread of its own, so blocking HTTP
clients such as schemathesis can call it) and API tokens of each role."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from crm.models import User
from inbox.api.auth import create_api_token
from inbox.db import make_engine, make_sessions
from inbox.service.app import create_app
from inbox.service.engines import EngineUrls
from inbox.settings import Settings

USERS = itertools.count(1)


@pytest.fixture(scope="module")
def live_url(settings: Settings, engine_urls: EngineUrls) -> Iterator[str]:
    """The whole app served on 127.0.0.1 from a thread with its own event loop, for a module.

    It keeps what the module's tests leave behind (they add, and never count, rows); the
    function-scoped `sessions` fixture of the next module empties the tables again."""
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


def new_token(engine_urls: EngineUrls, role: str) -> dict[str, str]:
    """Headers of an API token of a new user of the role (in no team), made on a loop of its own."""

    async def go() -> str:
        engine = make_engine(engine_urls.database_url, pool_size=1)
        async with make_sessions(engine)() as session, session.begin():
            user = User(email=f"{role}{next(USERS)}@faults.test", name=role.title(), role=role)
            session.add(user)
            await session.flush()
            token = await create_api_token(session, user.id, "faults", "api", None)
        await engine.dispose()
        return token

    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(go())))
    thread.start()
    thread.join(30)
    return {"Authorization": f"Bearer {result[0]}"}


@pytest.fixture(scope="module")
def role_headers(live_url: str, engine_urls: EngineUrls) -> dict[str, dict[str, str]]:
    """API-token headers of an admin and an agent, for the module's live app."""
    return {role: new_token(engine_urls, role) for role in ("admin", "agent")}
