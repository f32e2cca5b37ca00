"""A small company for the routing tests: teams of people, a mail channel, an inbound message."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import InboundMessage, Sender
from crm.models import Team, TeamMember, User
from inbox.db import Sessions
from inbox.ingest.pipeline import Policy, store
from inbox.models import Channel, Conversation

# Monday 23 November 2026, 10:00 in Amsterdam.
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
COUNTER = itertools.count(1)


@dataclass
class World:
    sessions: Sessions
    start: datetime = MONDAY_10

    async def team(self, name: str, *people: str, capacity: int = 20) -> tuple[int, list[int]]:
        async with self.sessions() as session, session.begin():
            team = Team(name=name)
            session.add(team)
            users = [
                User(
                    email=f"{p.lower()}.{next(COUNTER)}@switchboard.test",
                    name=p,
                    role="agent",
                    capacity=capacity,
                )
                for p in people
            ]
            session.add_all(users)
            await session.flush()
            session.add_all(TeamMember(team_id=team.id, user_id=u.id) for u in users)
            return team.id, [u.id for u in users]

    async def channel(self, team_id: int | None, kind: str = "email") -> Channel:
        async with self.sessions() as session, session.begin():
            channel = Channel(kind=kind, name=f"{kind} {next(COUNTER)}", default_team_id=team_id)
            session.add(channel)
        return channel

    async def receive(
        self, channel: Channel, at: datetime = MONDAY_10, **kwargs: Any
    ) -> Conversation:
        """Store one inbound message in its own transaction; the conversation it landed in."""
        async with self.sessions() as session, session.begin():
            return await receive_in(session, channel, at, **kwargs)

    @staticmethod
    async def receive_in(
        session: AsyncSession, channel: Channel, at: datetime = MONDAY_10, **kwargs: Any
    ) -> Conversation:
        return await receive_in(session, channel, at, **kwargs)

    async def conversations(self) -> list[Conversation]:
        async with self.sessions() as session:
            return list(
                (await session.scalars(select(Conversation).order_by(Conversation.id))).all()
            )


async def receive_in(
    session: AsyncSession,
    channel: Channel,
    at: datetime,
    *,
    text: str = "Graag een offerte.",
    subject: str | None = "Vraag",
    email: str | None = None,
    automated: bool = False,
) -> Conversation:
    n = next(COUNTER)
    msg = InboundMessage(
        kind="message",
        external_id=f"<m{n}@example.nl>",
        occurred_at=at,
        sender=Sender(name=f"Klant {n}", emails=(email or f"klant{n}@example.nl",)),
        text=text,
        subject=subject,
        automated=automated,
    )
    channel = await session.merge(channel, load=False)
    message = await store(session, channel, None, msg, Policy(), at)
    conversation = await session.get(Conversation, message.conversation_id)
    assert conversation is not None
    return conversation


@pytest.fixture
def world(sessions: Sessions) -> World:
    return World(sessions)


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return lambda: MONDAY_10
