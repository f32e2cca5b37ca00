"""The pair scorer and the clustering behind the duplicate job, without a database."""

from __future__ import annotations

from pathlib import Path

import crm
from crm.dedup import (
    RELATION_THRESHOLD,
    PersonRecord,
    _components,
    level_of,
    load_weights,
    person_pair_levels,
    person_pair_score,
    relation_score,
    threshold_of,
)
from crm.weights import Weights, parse

JAN = PersonRecord(
    given="Jan",
    surname="Visser",
    city="Utrecht",
    postcode="3511 AB",
    birth_date="19800412",
    address="12 Oudegracht",
)
SHIPPED = load_weights()


def test_the_scorer_reads_the_fitted_weights_shipped_as_a_data_file() -> None:
    shipped = (Path(crm.__file__).parent / "data" / "dedup_weights.json").read_text()
    assert SHIPPED == parse(shipped)
    assert SHIPPED.threshold is not None and 0 < SHIPPED.threshold < 1
    assert load_weights("/nonexistent.json") == SHIPPED


def test_the_same_person_with_typos_scores_high() -> None:
    typo = PersonRecord(
        given="Jna",
        surname="Vissser",
        city="Utrecht",
        postcode="3511AB",
        birth_date="19800421",
        address="Oudegracht 12",
    )
    score, reasons = person_pair_score(JAN, typo)
    assert score >= 0.9 > threshold_of(SHIPPED)
    assert set(reasons) == {"given", "surname", "city", "postcode", "birth_date", "address"}


def test_a_namesake_born_elsewhere_on_another_day_scores_low() -> None:
    namesake = PersonRecord(
        given="Jan", surname="Visser", city="Groningen", postcode="9711 CD", birth_date="19650101"
    )
    score, reasons = person_pair_score(JAN, namesake)
    assert score < threshold_of(SHIPPED)
    assert reasons["birth_date"] == "0" and reasons["surname"] == "100"


def test_only_fields_both_records_have_count() -> None:
    bare = PersonRecord(given="J", surname="Visser")
    assert person_pair_levels(JAN, bare) == {"given": "80", "surname": "100"}
    score, _ = person_pair_score(JAN, bare)
    assert score == round(SHIPPED.probability({"given": "80", "surname": "100"}), 4)
    assert person_pair_score(PersonRecord(), JAN) == (0.0, {})


def test_nicknames_birth_years_postcode_districts_and_places_within_agree_in_part() -> None:
    tom = PersonRecord(
        given="Tom",
        surname="Chudleigh",
        birth_date="1630-08-01",
        postcode="TQ13 8DF",
        city="West Devon",
    )
    thomas = PersonRecord(
        given="Thomas",
        surname="Chudleigh",
        birth_date="1630-05-11",
        postcode="TQ13 8JR",
        city="Devon",
    )
    assert person_pair_levels(tom, thomas) == {
        "given": "90",
        "surname": "100",
        "birth_date": "30",
        "postcode": "30",
        "city": "50",
    }
    elsewhere = PersonRecord(given="Tom", birth_date="1631-08-02", postcode="TQ14 8DF")
    assert person_pair_levels(elsewhere, thomas) == {
        "given": "90",
        "birth_date": "differ",
        "postcode": "differ",
    }
    assert person_pair_levels(PersonRecord(city="Dover"), thomas) == {"city": "differ"}


def test_agreements_read_as_levels_in_steps() -> None:
    assert [level_of(v) for v in (1.0, 0.95, 0.8, 0.7, 0.6, 0.5, 0.3, 0.29, 0.0)] == [
        "100", "90", "80", "70", "60", "50", "30", "differ", "differ"
    ]  # fmt: skip


def test_a_weights_file_decides_and_a_changed_file_changes_the_decision(tmp_path: Path) -> None:
    """The job scores with a refit in the data folder; rewriting it takes effect at once."""
    moved = PersonRecord(given="Jan", surname="Visser", city="Groningen", birth_date="19800412")
    file = tmp_path / "dedup_weights.json"
    file.write_text(SHIPPED.to_json())
    assert load_weights(str(file)) == SHIPPED
    shipped, reasons = person_pair_score(JAN, moved, load_weights(str(file)))
    assert reasons["city"] == "0"
    # A refit that holds a different city against a pair far more: the same pair drops.
    distrust = Weights(
        prior=SHIPPED.prior,
        levels=SHIPPED.levels | {"city": {"differ": -20.0}},
        threshold=SHIPPED.threshold,
    )
    file.write_text(distrust.to_json())
    lower, _ = person_pair_score(JAN, moved, load_weights(str(file)))
    assert lower < 0.01 < shipped
    assert load_weights(str(file)).threshold == SHIPPED.threshold


def test_a_shared_identity_decides_and_differing_ones_count_against() -> None:
    a = PersonRecord(given="Jan", surname="Visser", ids=frozenset({"jan@gmail.com"}))
    b = PersonRecord(given="Piet", surname="Jansen", ids=frozenset({"jan@gmail.com"}))
    assert person_pair_score(a, b) == (0.99, {"id": "same address, number or id"})
    c = PersonRecord(given="Jan", surname="Visser", ids=frozenset({"+31612345678"}))
    with_ids, reasons = person_pair_score(a, c)
    without, _ = person_pair_score(
        PersonRecord(given="Jan", surname="Visser"), PersonRecord(given="Jan", surname="Visser")
    )
    assert reasons["id"] == "0" and with_ids < without


def test_relation_names_compare_without_legal_form() -> None:
    assert relation_score("Stichting De Brug", "De Brug") >= RELATION_THRESHOLD
    assert relation_score("Visser Holding B.V.", "Visser BV") >= RELATION_THRESHOLD
    assert relation_score("De Brug", "Brugman Installatie") < RELATION_THRESHOLD


def test_clusters_are_connected_components_per_kind() -> None:
    clusters = _components(
        [("contact", 5, 9), ("contact", 9, 3), ("contact", 20, 21), ("relation", 9, 4)]
    )
    assert clusters[("contact", 5)] == clusters[("contact", 9)] == clusters[("contact", 3)] == 3
    assert clusters[("contact", 20)] == clusters[("contact", 21)] == 20
    assert clusters[("relation", 9)] == clusters[("relation", 4)] == 4


def test_a_lone_name_is_read_as_the_surname_when_it_fits_that_better() -> None:
    full = PersonRecord(given="Robert", surname="Stevenson", city="Edinburgh")
    lone = PersonRecord(given="Stevenson", city="Edinburgh")
    assert person_pair_levels(lone, full) == {"surname": "100", "city": "100"}
    assert person_pair_score(lone, full)[0] >= threshold_of(SHIPPED)
    # a lone given name still compares as the given name
    assert person_pair_levels(PersonRecord(given="Robert"), full) == {"given": "100"}
