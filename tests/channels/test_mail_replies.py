"""Reply stripping on paired fixtures: replies/NAME.eml must give exactly NAME.expected.txt."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.mail import reply_accuracy, reply_pairs, strip_reply

REPLIES = Path(__file__).parent.parent / "fixtures" / "email" / "replies"
PAIRS = {name: (got, expected) for name, got, expected in reply_pairs(REPLIES)}


def test_every_fixture_has_its_expected_text() -> None:
    emls = {p.stem for p in REPLIES.glob("*.eml")}
    expected = {p.name.removesuffix(".expected.txt") for p in REPLIES.glob("*.expected.txt")}
    assert emls == expected
    assert len(emls) >= 40


def test_exact_match_rate_is_at_least_95_percent() -> None:
    exact, total = reply_accuracy(REPLIES)
    assert total == len(PAIRS)
    assert exact / total >= 0.95, f"{exact}/{total} exact"


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_reply_is_stripped_exactly(name: str) -> None:
    got, expected = PAIRS[name]
    assert got == expected


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("Ja.\n\nOn Tue, 12 Mar 2024 at 09:15, Sanne <s@x.nl> wrote:\n\n> Vraag?", "Ja."),
        ("Ja.\n\nOp di 12 mrt 2024 om 09:15 schreef Sanne <\ns@x.nl>:\n\n> Vraag?", "Ja."),
        ("Ja.\n\nAm Di., 12. März 2024 um 09:15 Uhr schrieb Sanne <s@x.nl>:\n> Frage?", "Ja."),
        ("Ja.\n\nSanne schreef op 12-03-2024 09:15:\n> Vraag?", "Ja."),
        ("Ja.\n\nSanne wrote:\n> Vraag?", "Ja."),
        ("Ja.\n\n-----Original Message-----\nFrom: Sanne\nSent: Tuesday", "Ja."),
        ("Ja.\n\n-----Oorspronkelijk bericht-----\nVan: Sanne", "Ja."),
        ("Ja.\n\n-----Ursprüngliche Nachricht-----\nVon: Sanne", "Ja."),
        ("Ja.\n\nVan: Sanne\nVerzonden: di\nAan: Jan\nOnderwerp: x\n\nVraag", "Ja."),
        ("Ja.\n\n*From:* Sanne\n*Sent:* Tue\n*To:* Jan\n*Subject:* x\n\nVraag", "Ja."),
        ("Ja.\n\nVon: Sanne\nGesendet: Di\nAn: Jan\nBetreff: x\n\nFrage", "Ja."),
        ("Ja.\n\nSent from my iPhone", "Ja."),
        ("Ja.\n\nVerzonden vanaf mijn iPhone", "Ja."),
        ("Ja.\n\nVerstuurd vanaf mijn Samsung Galaxy A54", "Ja."),
        ("Ja.\n\nVon meinem iPhone gesendet", "Ja."),
        ("Ja.\n\nSent from Outlook for Android", "Ja."),
        ("Ja.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "Ja."),
        ("Ja.\n\n-- \nJan Visser\nHamerslag", "Ja."),
        ("> Vraag?\n\nJa.", "Ja."),
        ("Verzonden met PostNL, zei u.\nKlopt dat?", "Verzonden met PostNL, zei u.\nKlopt dat?"),
        ("Van: 9 uur\nTot: 5 uur", "Van: 9 uur\nTot: 5 uur"),
        ("Ja.\r\n\r\n\r\n\r\nNee.\r\n", "Ja.\n\nNee."),
        ("", ""),
    ],
)
def test_strip_reply(text: str, stripped: str) -> None:
    assert strip_reply(text) == stripped
