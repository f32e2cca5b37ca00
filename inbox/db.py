"""The async SQLAlchemy engine and session factory, and the migrations that shape the database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from crm.base import Sessions as Sessions  # the session factory type, defined beside the base

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    # JSON columns are read with orjson: search ranks, reports and the inbox decode many small
    # documents per request, several times faster than with the json module.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        json_deserializer=orjson.loads,
    )
    event.listen(engine.sync_engine, "connect", _connected)
    return engine


def _connected(dbapi_connection: Any, _record: Any) -> None:
    """Each new connection's settings (once, outside any transaction). A sequential scan
    starts at the table's first page, not wherever another scan of it has got to: search reads
    the table in order for common words, and the same query gives the same answer."""
    dbapi_connection.run_async(lambda conn: conn.execute("SET synchronize_seqscans = off"))


def make_sessions(engine: AsyncEngine) -> Sessions:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations (blocking; env.py runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)
