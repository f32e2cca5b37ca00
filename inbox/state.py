"""Typed application state shared by the aiohttp handlers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.base import JsonObject
from inbox.db import Sessions
from inbox.settings import Settings


@dataclass(frozen=True)
class ChannelInfo:
    """What a delivery needs of its channel: the kind and the configuration."""

    id: str
    kind: str
    config: JsonObject


class ChannelCache:
    """Channel settings for a few seconds, so a burst of deliveries costs no lookups."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, Any]] = {}
        self.loading: dict[str, asyncio.Future[Any]] = {}  # lookups under way, one per channel

    def get(self, channel_id: str) -> ChannelInfo | None:
        hit = self._items.get(channel_id)
        if hit is None or hit[0] < time.monotonic():
            return None
        info: ChannelInfo | None = hit[1]
        return info

    def put(self, channel_id: str, info: ChannelInfo | None) -> None:
        self._items[channel_id] = (time.monotonic() + self.ttl, info)


SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", Sessions)
ENGINE = web.AppKey("engine", AsyncEngine)
ARQ = web.AppKey("arq", ArqRedis)
CHANNELS = web.AppKey("channels", ChannelCache)
