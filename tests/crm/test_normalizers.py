"""The normalisers on the names, addresses and numbers Dutch customers actually send."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from crm import normalizers
from crm.normalizers import PersonName


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Café  Ämsterdam", "cafe amsterdam"),
        ("Ĳsselmonde", "ijsselmonde"),
        ("'s-Hertogenbosch", "s hertogenbosch"),
        ("Groß & Söhne", "gross sohne"),
        ("Çelik—Öztürk", "celik ozturk"),
        ("  Jan\tVISSER\n", "jan visser"),
        ("B.V.", "b v"),
        ("--  ..", ""),
        ("", ""),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert normalizers.fold(text) == folded


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jan.Visser@Hamerslag.NL", "jan.visser@hamerslag.nl"),
        ("  <jan@hamerslag.nl> ", "jan@hamerslag.nl"),
        ("mailto:Info@Bakker-Bouw.nl", "info@bakker-bouw.nl"),
        ("jan visser@hamerslag.nl", None),
        ("jan@localhost", None),
        ("geen e-mail", None),
        ("", None),
    ],
)
def test_email(value: str, expected: str | None) -> None:
    assert normalizers.email(value) == expected


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("jan.visser+offerte@googlemail.com", "janvisser@gmail.com"),
        ("j.a.n.visser@gmail.com", "janvisser@gmail.com"),
        ("janvisser@gmail.com", "janvisser@gmail.com"),
        ("j.visser+nieuwsbrief@hotmail.nl", "j.visser@hotmail.nl"),
        ("j.visser+x@outlook.com", "j.visser@outlook.com"),
        ("j.visser+x@live.nl", "j.visser@live.nl"),
        ("j.visser+x@msn.com", "j.visser@msn.com"),
        ("anna+werk@icloud.com", "anna@icloud.com"),
        ("anna+werk@me.com", "anna@me.com"),
        ("anna+werk@proton.me", "anna@proton.me"),
        ("anna+werk@fastmail.com", "anna@fastmail.com"),
        ("anna+werk@yandex.ru", "anna@yandex.ru"),
        ("anna+werk@zoho.com", "anna@zoho.com"),
        # Dots count everywhere but at Gmail; a company domain keeps its +tags.
        ("j.visser@outlook.com", "j.visser@outlook.com"),
        ("j.visser+offerte@hamerslag.nl", "j.visser+offerte@hamerslag.nl"),
        ("j.visser@ziggo.nl", "j.visser@ziggo.nl"),
        ("Jan.Visser+X@GMAIL.com", "janvisser@gmail.com"),
    ],
)
def test_email_key(address: str, key: str) -> None:
    assert normalizers.email_key(address) == key


@pytest.mark.parametrize(
    ("address", "domain", "free"),
    [
        ("jan@hamerslag.nl", "hamerslag.nl", False),
        ("jan@Gmail.com", "gmail.com", True),
        ("jan@hotmail.nl", "hotmail.nl", True),
        ("jan@ziggo.nl", "ziggo.nl", True),
        ("jan@kpnmail.nl", "kpnmail.nl", True),
        ("jan@planet.nl", "planet.nl", True),
        ("jan@hetnet.nl", "hetnet.nl", True),
        ("jan@home.nl", "home.nl", True),
        ("jan@xs4all.nl", "xs4all.nl", True),
        ("jan@casema.nl", "casema.nl", True),
        ("jan@live.nl", "live.nl", True),
        ("jan@icloud.com", "icloud.com", True),
        ("jan@yahoo.com", "yahoo.com", True),
        ("jan@gemeente.amsterdam.nl", "gemeente.amsterdam.nl", False),
        ("geen-adres", "geen-adres", False),
    ],
)
def test_email_domain_and_free_mail(address: str, domain: str, free: bool) -> None:
    assert normalizers.email_domain(address) == domain
    assert normalizers.is_free_mail(domain) is free
    assert (domain in normalizers.FREE_MAIL) is free


@pytest.mark.parametrize(
    ("address", "shared"),
    [
        ("info@hamerslag.nl", True),
        ("Info@Hamerslag.nl", True),
        ("verkoop@hamerslag.nl", True),
        ("inkoop@hamerslag.nl", True),
        ("administratie@hamerslag.nl", True),
        ("kantoor@hamerslag.nl", True),
        ("receptie@hamerslag.nl", True),
        ("planning@hamerslag.nl", True),
        ("facturen@hamerslag.nl", True),
        ("boekhouding@hamerslag.nl", True),
        ("noreply@hamerslag.nl", True),
        ("no-reply@hamerslag.nl", True),
        ("info+offerte@hamerslag.nl", True),
        ("jan.visser@hamerslag.nl", False),
        ("info.jan@hamerslag.nl", False),
        ("jvisser@gmail.com", False),
    ],
)
def test_is_shared_mailbox(address: str, shared: bool) -> None:
    assert normalizers.is_shared_mailbox(address) is shared


@pytest.mark.parametrize(
    ("value", "e164"),
    [
        ("06-12345678", "+31612345678"),
        ("06 12 34 56 78", "+31612345678"),
        ("+31 6 1234 5678", "+31612345678"),
        ("+31 (0)6 12345678", "+31612345678"),
        ("0031612345678", "+31612345678"),
        ("0031 6 1234 5678", "+31612345678"),
        ("020-1234567", "+31201234567"),
        ("(010) 123 45 67", "+31101234567"),
        ("+32 470 12 34 56", "+32470123456"),
        ("0032 470 12 34 56", "+32470123456"),
        ("12", None),
        ("geen nummer", None),
        ("", None),
    ],
)
def test_phone(value: str, e164: str | None) -> None:
    assert normalizers.phone(value) == e164


def test_phone_fast_path_agrees_with_phonenumbers() -> None:
    """Ten national digits from 0 are read without phonenumbers: the same answer."""
    rng = random.Random(7)
    numbers = [f"0{rng.randint(1, 9)}{rng.randint(0, 10**8 - 1):08d}" for _ in range(2000)]
    numbers += [f"{n[:2]}-{n[2:]}" for n in numbers[:200]] + [
        f"{n[:3]} {n[3:]}" for n in numbers[:200]
    ]
    for number in numbers:
        parsed = phonenumbers.parse(number, "NL")
        expected = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        assert phonenumbers.is_possible_number(parsed), number
        assert normalizers.phone(number) == expected, number


def test_phone_other_region() -> None:
    """A national number is read in the region given: the same digits, another country."""
    assert normalizers.phone("0470 12 34 56", region="BE") == "+32470123456"


@pytest.mark.parametrize(
    ("name", "core"),
    [
        ("Hamerslag B.V.", "hamerslag"),
        ("Hamerslag BV", "hamerslag"),
        ("Hamerslag b.v.", "hamerslag"),
        ("Hamerslag BV.", "hamerslag"),
        ("HAMERSLAG B.V. i.o.", "hamerslag"),
        ("Hamerslag", "hamerslag"),
        ("Stichting De Brug", "de brug"),
        ("De Brug Stichting", "de brug"),
        ("Visser Holding B.V.", "visser"),
        ("Visser Holding", "visser"),
        ("De Vries N.V.", "de vries"),
        ("Bakker & Zn V.O.F.", "bakker en zn"),
        ("Bakker vof", "bakker"),
        ("Van der Berg C.V.", "van der berg"),
        ("Coöperatie Rabobank U.A.", "rabobank"),
        ("Vereniging Eigen Huis", "eigen huis"),
        ("Bouwbedrijf Hamerslag B.V.", "bouwbedrijf hamerslag"),
        ("Shell Nederland B.V.", "shell nederland"),
        ("Café Ämsterdam B.V.", "cafe amsterdam"),
        ("Acme GmbH", "acme"),
        ("Acme AG", "acme"),
        ("Acme Ltd.", "acme"),
        ("Acme Inc.", "acme"),
        # Nothing but a legal form: keep the folded text, never an empty key.
        ("B.V.", "b v"),
    ],
)
def test_company(name: str, core: str) -> None:
    assert normalizers.company(name) == core


def test_company_variants_share_a_key() -> None:
    """Dropped, changed or differently written legal forms all land on one key."""
    variants = ["Hamerslag B.V.", "Hamerslag BV", "hamerslag", "HAMERSLAG Holding B.V."]
    assert {normalizers.company(v) for v in variants} == {"hamerslag"}


@pytest.mark.parametrize(
    ("text", "given", "initials", "particles", "surname"),
    [
        ("Jan Visser", ("jan",), "j", "", "visser"),
        ("J. Visser", (), "j", "", "visser"),
        ("Visser, Jan", ("jan",), "j", "", "visser"),
        ("Visser, J.", (), "j", "", "visser"),
        ("J.P. van der Berg", (), "jp", "van der", "berg"),
        ("J. P. van der Berg", (), "jp", "van der", "berg"),
        ("Berg, J.P. van der", (), "jp", "van der", "berg"),
        ("jan van den berg", ("jan",), "j", "van den", "berg"),
        ("Dhr. J. Visser", (), "j", "", "visser"),
        ("De heer J. Visser", (), "j", "", "visser"),
        ("Mevr. A. de Vries-Jansen", (), "a", "de", "vries jansen"),
        ("Mw. drs. A. de Vries", (), "a", "de", "vries"),
        ("VISSER J", (), "j", "", "visser"),
        ('"Jan Visser" <jan@hamerslag.nl>', ("jan",), "j", "", "visser"),
        ("Jan-Peter de Jong", ("jan", "peter"), "jp", "de", "jong"),
        ("Anne Marie Jansen", ("anne", "marie"), "am", "", "jansen"),
        ("Ingrid van 't Hek", ("ingrid",), "i", "van t", "hek"),
        ("Jan Willem van Ruijven", ("jan", "willem"), "jw", "van", "ruijven"),
        ("van Dijk, Piet", ("piet",), "p", "van", "dijk"),
        ("de Vries", (), "", "de", "vries"),
        ("Ömer Çelik", ("omer",), "o", "", "celik"),
        ("Visser", (), "", "", "visser"),
        ("T. Carosella", (), "t", "", "carosella"),  # an initial, not the particle of 't Hart
        ("'t Hart", (), "", "t", "hart"),
    ],
)
def test_person_name(
    text: str, given: tuple[str, ...], initials: str, particles: str, surname: str
) -> None:
    assert normalizers.person_name(text) == PersonName(given, initials, particles, surname)


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("Berg, J.P. van der", "van der berg"),
        ("Dhr. Jan van den Berg", "jan van den berg"),
        ("Mevr. A. de Vries-Jansen", "de vries jansen"),
    ],
)
def test_person_name_full(text: str, full: str) -> None:
    assert normalizers.person_name(text).full == full


@pytest.mark.parametrize("text", ["", "   ", "Dhr.", '"" <jan@hamerslag.nl>'])
def test_person_name_without_a_name(text: str) -> None:
    assert normalizers.person_name(text) == PersonName()


def test_same_person_written_differently() -> None:
    """The ways one person signs compare equal on surname, particles and first initial."""
    written = [
        "J.P. van der Berg",
        "Berg, J.P. van der",
        "Jan Peter van der Berg",
        "jan van der berg",
    ]
    keys = {(p.particles, p.surname, p.initials[:1]) for p in map(normalizers.person_name, written)}
    assert keys == {("van der", "berg", "j")}
