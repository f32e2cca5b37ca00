"""What the Bot API (or the way to it) refused: importable without aiogram, whose import takes
seconds, so code that only catches it does not pay for them."""

from __future__ import annotations


class BotAPIError(Exception):
    """What the Bot API (or the way to it) refused; `temporary` errors are worth a retry."""

    def __init__(
        self, reason: str, *, temporary: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary
        self.retry_after_s = retry_after_s
