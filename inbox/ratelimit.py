"""Fixed-window rate limits in Redis: the window starts with the first hit, so no burst slips
through at a clock-minute boundary."""

from __future__ import annotations

from redis.asyncio import Redis


async def hit(redis: Redis, key: str, limit: int, window_s: int = 60) -> int | None:
    """Count one hit; the seconds to wait when over the limit, else None."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=window_s, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = await pipe.execute()
    if int(count) > limit:
        return max(int(ttl), 1)
    return None
