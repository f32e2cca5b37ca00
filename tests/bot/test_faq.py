"""The FAQ matcher on the demo knowledge base: paraphrases, keyword rules, language, no answer."""

from __future__ import annotations

import pytest

from inbox.bot.demo import DEMO_FAQS
from inbox.bot.faq import Matcher, matcher_of, prepared, same_word, stem
from inbox.bot.models import BotFaq

THRESHOLD = 70.0


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    rows = [
        BotFaq(
            id=i,
            key=item["key"],
            language=item["language"],
            question=item["question"],
            paraphrases=item["paraphrases"],
            keywords=item["keywords"],
            answer=item["answer"],
            buttons=item.get("buttons", []),
            in_menu=True,
        )
        for i, item in enumerate(DEMO_FAQS)
    ]
    return matcher_of(rows)


def answer(matcher: Matcher, text: str, language: str = "nl") -> tuple[str, str] | None:
    hit = matcher.best(text, language)
    if hit is None or hit.score < THRESHOLD:
        return None
    return hit.entry.key, hit.entry.language


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Goedemiddag, wat zijn jullie openingstijden op zaterdag?", "nl", ("opening_hours", "nl")),
        ("hoe laat gaan jullie dicht", "nl", ("opening_hours", "nl")),
        ("Waar is mijn bestelling??", "nl", ("order_status", "nl")),
        ("wanneer komt mijn pakketje", "nl", ("order_status", "nl")),  # diminutive of a keyword
        ("Kan ik met iDEAL betalen", "nl", ("payment", "nl")),
        ("offerte aanvragen voor kozijnen", "nl", ("quote", "nl")),
        ("Where is my order?", "en", ("order_status", "en")),
        ("what are your openign hours", "en", ("opening_hours", "en")),  # a typo
        ("I forgot my password", "en", ("account", "en")),
    ],
)
def test_questions_find_their_answer(
    matcher: Matcher, text: str, language: str, expected: tuple[str, str]
) -> None:
    assert answer(matcher, text, language) == expected


@pytest.mark.parametrize(
    "text",
    ["Mijn kat is ziek", "Wie wint de Tour de France?", "tell me a joke", "hallo", "?", ""],
)
def test_what_the_knowledge_base_does_not_cover_gets_no_answer(matcher: Matcher, text: str) -> None:
    assert answer(matcher, text) is None


def test_a_keyword_rule_answers_on_its_own(matcher: Matcher) -> None:
    hit = matcher.best("retourneren", "nl")
    assert hit is not None and hit.entry.key == "returns" and hit.score >= 90


def test_the_conversation_language_breaks_a_tie(matcher: Matcher) -> None:
    nl, en = matcher.best("account", "nl"), matcher.best("account", "en")
    assert nl is not None and (nl.entry.key, nl.entry.language) == ("account", "nl")
    assert en is not None and (en.entry.key, en.entry.language) == ("account", "en")


def test_menu_and_lookup_by_key(matcher: Matcher) -> None:
    assert [e.key for e in matcher.menu("en", limit=3)] == [
        "opening_hours",
        "prices",
        "order_status",
    ]
    entry = matcher.by_key("address", "en")
    assert entry is not None and entry.language == "en" and entry.buttons[0][0] == "Map"
    assert matcher.by_key("nothing", "nl") is None


def test_words_stems_and_stop_words() -> None:
    assert prepared("Wat zijn jullie openingstijden?") == "openingstijden"
    assert stem("pakketje") == "pakke" and stem("geleverd") == "lever"
    assert same_word("pakketje", "pakket") == 0.9
    assert same_word("bezorgkosten", "bezorging") == 0.9  # a compound by its stem
    assert same_word("bestelling", "betaling") == 0.0
    assert same_word("garantie", "garrantie") > 0.9  # a typo
