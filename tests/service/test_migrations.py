"""The migrations build exactly the schema the models describe, and downgrade cleanly."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

import inbox.bot.models
import inbox.models
import inbox.routing.models  # noqa: F401
from crm.base import Base
from inbox.db import Sessions


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_and_migrations_agree(sessions: Sessions) -> None:
    async with sessions() as session:
        connection = await session.connection()
        diff = await connection.run_sync(differences)
    assert diff == []
