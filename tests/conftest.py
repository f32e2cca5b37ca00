"""Real engines for the tests: the machine's PostgreSQL and Redis when reachable, else embedded
ones; with CI=true an unreachable engine fails the run instead of falling back silently."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import crm.search
from channels import egress
from crm.base import Base
from inbox.db import Sessions, make_engine, make_sessions, upgrade
from inbox.service.app import create_app
from inbox.service.engines import EngineUrls, engines
from inbox.settings import Settings

KEEP_TABLES = {"relation_statuses", "alembic_version"}
# Every test has its own words: the typo fallback must not keep a word list across tests.
crm.search.VOCABULARY_TTL = 0.0


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def engine_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineUrls]:
    """A fresh database on the test PostgreSQL, and a Redis database of our own."""
    pg_host, redis_host = "127.0.0.1", "127.0.0.1"
    have_pg = reachable(pg_host, 5432)
    have_redis = reachable(redis_host, 6379)
    if in_ci() and not (have_pg and have_redis):
        pytest.fail(f"CI=true but an engine is unreachable: postgres={have_pg} redis={have_redis}")
    data_dir = Path(tempfile.mkdtemp(prefix="sbtest-", dir=tmp_path_factory.getbasetemp()))
    name = f"switchboard_test_{uuid.uuid4().hex[:10]}"
    embedded = Settings(
        database_url=None if not have_pg else f"postgresql+asyncpg://postgres@{pg_host}/postgres",
        redis_url=None if not have_redis else f"redis://{redis_host}:6379/{redis_db()}",
        data_dir=data_dir,
    )
    with engines(embedded) as urls:
        admin_url = urls.database_url
        test_url = (
            f"postgresql+asyncpg://postgres@{pg_host}/{name}"
            if have_pg
            else admin_url.replace("/switchboard?", f"/{name}?", 1)
        )
        off_loop(lambda: asyncio.run(_run_sql(admin_url, f"CREATE DATABASE {name}")))
        off_loop(lambda: upgrade(test_url))
        yield EngineUrls(test_url, urls.redis_url)
        off_loop(
            lambda: asyncio.run(_run_sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        )


def off_loop(fn: Callable[[], Any]) -> Any:
    """Run blocking set-up that starts its own event loop, even when a loop is running here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def redis_db() -> int:
    """A Redis database of this test run's own, so parallel runs never take each other's jobs."""
    return int(os.environ.get("SWITCHBOARD_TEST_REDIS_DB") or 1 + uuid.uuid4().int % 12)


async def _run_sql(url: str, sql: str) -> None:
    engine = make_engine(url, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


@pytest.fixture(scope="session")
def settings(engine_urls: EngineUrls, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=engine_urls.database_url,
        redis_url=engine_urls.redis_url,
        data_dir=tmp_path_factory.mktemp("data"),
        rate_limit_per_minute=1000,
        allow_private_urls=True,  # the fakes of remote APIs listen on loopback
    )


@pytest.fixture(autouse=True)
def channel_egress() -> Iterator[None]:
    """Channel calls may reach the local fakes, as the test settings allow (each test afresh:
    a test may narrow the policy, and a started app or worker sets it from the settings)."""
    egress.configure(allow_private_urls=True)
    yield
    egress.configure(allow_private_urls=True)


@pytest.fixture(scope="session")
async def session_factory(engine_urls: EngineUrls) -> AsyncIterator[Sessions]:
    engine = make_engine(engine_urls.database_url, pool_size=5)
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture
async def sessions(session_factory: Sessions, engine_urls: EngineUrls) -> AsyncIterator[Sessions]:
    """The session factory on empty tables and an empty Redis db.

    Emptied before the test as well as after it, so a test whose teardown failed (a browser
    test that timed out, say) cannot leave rows behind for every test after it.
    """
    await _empty_engines(session_factory, engine_urls)
    yield session_factory
    await _empty_engines(session_factory, engine_urls)


async def _empty_engines(session_factory: Sessions, engine_urls: EngineUrls) -> None:
    from redis.asyncio import Redis

    tables = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name not in KEEP_TABLES)
    async with session_factory() as session, session.begin():
        await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    redis = Redis.from_url(engine_urls.redis_url)
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture
async def session(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    async with sessions() as s:
        yield s


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any],
    settings: Settings,
    engine_urls: EngineUrls,
    sessions: Sessions,
) -> TestClient[Any, Any]:
    app = create_app(settings, engine_urls.database_url, engine_urls.redis_url)
    result: TestClient[Any, Any] = await aiohttp_client(app)
    return result


@pytest.fixture
def run_worker(
    settings: Settings, engine_urls: EngineUrls, sessions: Sessions
) -> Callable[[], Any]:
    """Run a real arq worker until the queue is empty (burst mode)."""
    from workers.worker import close_worker, make_worker

    async def go() -> None:
        worker = make_worker(
            settings,
            engine_urls.database_url,
            engine_urls.redis_url,
            handle_signals=False,
            burst=True,
            extra_ctx={"mailbox_session_s": 0},  # a mailbox sync imports and returns, no IDLE
        )
        try:
            await worker.main()
        finally:
            await close_worker(worker)

    return go


LOGINS = itertools.count(1)


@pytest.fixture
def login(sessions: Sessions) -> Callable[..., Any]:
    """A new user of the role (in no team) and the headers of an API token of theirs."""
    from crm.models import User
    from inbox.api.auth import create_api_token

    async def go(role: str) -> dict[str, str]:
        async with sessions() as session, session.begin():
            user = User(email=f"{role}{next(LOGINS)}@login.test", name=role, role=role)
            session.add(user)
            await session.flush()
            token = await create_api_token(session, user.id, "test", "api", None)
        return {"Authorization": f"Bearer {token}"}

    return go
