"""The conversation's history: every manual and automatic change, with who and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import HistoryEntry


def record(
    session: AsyncSession,
    conversation_id: int,
    action: str,
    actor_id: int | None = None,
    **data: Any,
) -> None:
    session.add(
        HistoryEntry(conversation_id=conversation_id, actor_id=actor_id, action=action, data=data)
    )
