"""The worker's pool of Telegram Bots, made when a Telegram channel first needs it: aiogram
takes seconds to import, and a worker whose channels are no Telegram bots never pays them.
(The sender makes the pool, with its own class: this module imports nothing of aiogram.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from channels.egress import Egress


class Closable(Protocol):
    def close(self) -> Awaitable[Any]: ...


P = TypeVar("P", bound=Closable)

_egress: Egress | None = None
_made: Closable | None = None


def enable(egress: Egress) -> None:
    """From now on calls without a pool of their own share one, made on the first call."""
    global _egress
    _egress = egress


def get(make: Callable[[Egress], P]) -> P | None:
    """The shared pool (made now by `make` when enabled and not made yet); None if not enabled."""
    global _made
    if _egress is None:
        return None
    if _made is None:
        _made = make(_egress)
    return _made  # type: ignore[return-value]  # made by the one sender module, of its class


async def close() -> None:
    """Close the pool if one was made, and stop sharing."""
    global _egress, _made
    made, _made, _egress = _made, None, None
    if made is not None:
        await made.close()
