"""Alembic environment: async engine, the metadata of every model."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import crm.lists
import crm.opportunities  # noqa: F401  (registers pipelines, opportunities, lists)
import inbox.bot.models
import inbox.models
import inbox.outbox.models  # (registers the outbound webhook tables)
import inbox.routing.models  # noqa: F401  (registers the routing and SLA tables)
from crm.base import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # Two processes starting at once must not both migrate.
        context.execute("SELECT pg_advisory_xact_lock(7412013)")
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(
        config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool
    )
    async with engine.connect() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
