"""How the bot names the next opening time, in the calendar's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from inbox.bot.texts import say, when

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SATURDAY_EVENING = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)


def test_today_tomorrow_and_a_later_day_in_dutch_and_english() -> None:
    tuesday = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    assert when(tuesday, SATURDAY_EVENING, AMSTERDAM, "nl") == "dinsdag 24 november om 08:30"
    assert when(tuesday, SATURDAY_EVENING, AMSTERDAM, "en") == "Tuesday 24 November at 08:30"
    sunday = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    assert when(sunday, SATURDAY_EVENING, AMSTERDAM, "nl") == "morgen om 09:00"
    later = datetime(2026, 11, 21, 20, 30, tzinfo=UTC)
    assert when(later, SATURDAY_EVENING, AMSTERDAM, "en") == "today at 21:30"


def test_an_unknown_language_speaks_dutch() -> None:
    assert say("de", "person") == "Medewerker spreken"
    assert say("en", "lead_thanks", name="Jane") == "Thank you, Jane."
