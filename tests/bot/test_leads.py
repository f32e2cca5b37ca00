"""What the bot accepts as a name, a company, an e-mail address and a phone number."""

from __future__ import annotations

import pytest

from inbox.bot.leads import company_of, find_email, find_phone, valid_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("karin@prins-bouw.nl", "karin@prins-bouw.nl"),
        ("Mijn mail is Karin.Prins@Prins-Bouw.NL, dank!", "karin.prins@prins-bouw.nl"),
        ("j.o'brien+offerte@mail.example.co.uk", "j.o'brien+offerte@mail.example.co.uk"),
        ("karin@prins", None),  # no top-level domain
        ("karin@@prins-bouw.nl", None),
        ("karin..prins@prins-bouw.nl", None),
        ("karin@-prins.nl", None),
        ("geen idee", None),
    ],
)
def test_email_addresses(text: str, expected: str | None) -> None:
    assert find_email(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("06 12345678", "+31612345678"),
        ("bel me op 06-12345678 na vijven", "+31612345678"),
        ("+32 470 12 34 56", "+32470123456"),
        ("0031 20 123 4567", "+31201234567"),
        ("12345", None),
        ("06 1234", None),
        ("mijn nummer krijgt u niet", None),
    ],
)
def test_phone_numbers(text: str, expected: str | None) -> None:
    assert find_phone(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Karin Prins", "Karin Prins"),
        ("  Jan   de  Vries ", "Jan de Vries"),
        ("Zoë van der Berg-Ökan", "Zoë van der Berg-Ökan"),
        ("karin@prins-bouw.nl", None),
        ("06 12345678", None),
        ("x", None),
        ("ik wil eigenlijk gewoon een offerte voor mijn huis", None),
    ],
)
def test_names(text: str, expected: str | None) -> None:
    assert valid_name(text) == expected


def test_no_company_is_none() -> None:
    assert company_of("Prins Bouw B.V.") == "Prins Bouw B.V."
    assert company_of("geen") is None and company_of("None.") is None and company_of(" ") is None
