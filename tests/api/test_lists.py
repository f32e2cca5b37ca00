"""Configurable lists and custom fields: defaults, replacing a list, values in use, validation of
the records that use them, and who may change them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, insert, select

from crm.lists import RECORD_TYPES
from crm.models import Relation, RelationStatus
from inbox.db import Sessions

Client = TestClient[Any, Any]


async def put(client: Client, name: str, items: list[dict[str, Any]], headers: Any) -> Any:
    return await client.put(f"/api/settings/lists/{name}", json={"items": items}, headers=headers)


def codes(body: dict[str, Any]) -> list[str]:
    return [i["code"] for i in body["items"]]


async def test_every_list_reads_with_its_defaults(
    client: Client, login: Callable[..., Any]
) -> None:
    agent = await login("agent")
    response = await client.get("/api/settings/lists", headers=agent)
    lists = {x["name"]: x for x in (await response.json())["items"]}
    assert set(lists) == {
        "relation_statuses",
        "categories",
        "abc_classes",
        "lead_sources",
        "activity_outcomes",
        "opportunity_stages",
    }
    assert codes(lists["abc_classes"]) == ["A", "B", "C"]
    assert "prospect" in codes(lists["relation_statuses"])
    assert [(i["label"], i["probability"]) for i in lists["opportunity_stages"]["items"]][:2] == [
        ("Nieuw", 10),
        ("Offerte", 40),
    ]
    missing = await client.get("/api/settings/lists/colours", headers=agent)
    assert missing.status == 404


async def test_managers_replace_a_list_and_agents_cannot(
    client: Client, login: Callable[..., Any]
) -> None:
    manager, agent = await login("manager"), await login("agent")
    items = [{"code": "fair", "label": "Beurs"}, {"code": "web", "label": "Website"}]
    refused = await put(client, "lead_sources", items, agent)
    assert refused.status == 403
    stored = await put(client, "lead_sources", items, manager)
    assert stored.status == 200 and codes(await stored.json()) == ["fair", "web"]
    again = await client.get("/api/settings/lists/lead_sources", headers=agent)
    assert [i["label"] for i in (await again.json())["items"]] == ["Beurs", "Website"]

    # The stored list is what opportunities are checked against.
    web = await client.post(
        "/api/opportunities", json={"name": "x", "source": "web"}, headers=manager
    )
    assert web.status == 201
    gone = await client.post(
        "/api/opportunities", json={"name": "x", "source": "referral"}, headers=manager
    )
    assert gone.status == 422
    assert (await gone.json())["error"]["details"][0]["loc"] == ["source"]


async def test_bad_lists_are_refused_with_the_field(
    client: Client, login: Callable[..., Any]
) -> None:
    admin = await login("admin")
    for name, items, loc in (
        ("lead_sources", [], ["items"]),
        ("lead_sources", [{"code": "a", "label": "A"}, {"code": "a", "label": "B"}], ["items"]),
        ("lead_sources", [{"code": " ", "label": "A"}], ["items", "0"]),
        ("abc_classes", [{"code": "AA", "label": "Dubbel A"}], ["items"]),
        ("opportunity_stages", [{"code": "x", "label": "X"}], ["items", "0", "probability"]),
        (
            "opportunity_stages",
            [{"code": "won", "label": "Won", "probability": 100, "outcome": "won"}],
            ["items"],
        ),
    ):
        response = await put(client, name, items, admin)
        assert response.status == 422, (name, items)
        body = await response.json()
        assert body["error"]["details"][0]["loc"] == loc, body


async def test_a_value_in_use_stays_and_relations_take_only_listed_classes(
    client: Client, login: Callable[..., Any]
) -> None:
    admin = await login("admin")
    relation = await client.post(
        "/api/relations", json={"name": "Hamerslag", "abc_class": "A"}, headers=admin
    )
    assert relation.status == 201
    unknown = await client.post(
        "/api/relations", json={"name": "Prins", "abc_class": "D", "force": True}, headers=admin
    )
    assert unknown.status == 422
    assert (await unknown.json())["error"]["details"][0]["loc"] == ["abc_class"]

    dropped = await put(client, "abc_classes", [{"code": "B", "label": "B"}], admin)
    assert dropped.status == 422 and "'A'" in (await dropped.json())["error"]["message"]
    widened = await put(
        client,
        "abc_classes",
        [{"code": c, "label": f"{c}-klant"} for c in "ABCD"],
        admin,
    )
    assert widened.status == 200
    now_known = await client.post(
        "/api/relations", json={"name": "Prins", "abc_class": "D", "force": True}, headers=admin
    )
    assert now_known.status == 201


@pytest.fixture
async def kept_statuses(sessions: Sessions) -> AsyncIterator[None]:
    """The relation statuses outlive each test (the migration seeds them): put them back."""
    async with sessions() as session:
        rows = (await session.execute(select(RelationStatus.__table__))).mappings().all()
    yield
    async with sessions() as session, session.begin():
        await session.execute(delete(Relation))
        await session.execute(delete(RelationStatus))
        await session.execute(insert(RelationStatus), [dict(r) for r in rows])


@pytest.mark.usefixtures("kept_statuses")
async def test_relation_statuses_and_categories_are_lists_too(
    client: Client, login: Callable[..., Any]
) -> None:
    admin = await login("admin")
    statuses = [
        {"code": "suspect", "label": "Suspect"},
        {"code": "prospect", "label": "Prospect"},
        {"code": "customer", "label": "Klant"},
        {"code": "dealer", "label": "Dealer"},
    ]
    response = await put(client, "relation_statuses", statuses, admin)
    assert response.status == 200, await response.text()
    assert codes(await response.json()) == ["suspect", "prospect", "customer", "dealer"]
    dealer = await client.post(
        "/api/relations", json={"name": "Dealer BV", "status": "dealer"}, headers=admin
    )
    assert dealer.status == 201
    in_use = await put(client, "relation_statuses", statuses[:3], admin)
    assert in_use.status == 422

    response = await put(
        client,
        "categories",
        [{"code": "Bouw", "label": "Bouw"}, {"code": "Installatie", "label": "Installatie"}],
        admin,
    )
    assert codes(await response.json()) == ["Bouw", "Installatie"]


async def test_opportunity_stages_are_edited_as_a_list(
    client: Client, login: Callable[..., Any]
) -> None:
    manager = await login("manager")
    stages = await (
        await client.get("/api/settings/lists/opportunity_stages", headers=manager)
    ).json()
    items = stages["items"]
    opp = await client.post(
        "/api/opportunities", json={"name": "x", "stage_id": items[1]["id"]}, headers=manager
    )
    assert opp.status == 201
    # Rename Offerte, drop Onderhandeling, add Demo: the kept stage keeps its opportunity.
    new = [
        items[0],
        {**items[1], "label": "Offerte verstuurd", "probability": 50},
        {"code": "demo", "label": "Demo", "probability": 60},
        items[3],
        items[4],
    ]
    response = await put(client, "opportunity_stages", new, manager)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert [(i["label"], i["probability"]) for i in body["items"]] == [
        ("Nieuw", 10),
        ("Offerte verstuurd", 50),
        ("Demo", 60),
        ("Gewonnen", 100),
        ("Verloren", 0),
    ]
    assert body["items"][1]["id"] == items[1]["id"]
    in_use = await put(client, "opportunity_stages", [items[0], items[3]], manager)
    assert in_use.status == 422 and "Offerte" in (await in_use.json())["error"]["message"]
    # Two kept stages may swap their codes.
    kept = body["items"]
    swapped = [{**kept[0], "code": kept[1]["code"]}, {**kept[1], "code": kept[0]["code"]}]
    response = await put(client, "opportunity_stages", swapped + kept[2:], manager)
    assert response.status == 200, await response.text()
    assert codes(await response.json())[:2] == [kept[1]["code"], kept[0]["code"]]
    twice = await put(client, "opportunity_stages", [kept[0], kept[0], *kept[3:]], manager)
    assert twice.status == 422


async def test_custom_fields_are_typed_and_checked_on_write(
    client: Client, login: Callable[..., Any]
) -> None:
    admin, agent = await login("admin"), await login("agent")
    for field in (
        {
            "record_type": "opportunity",
            "key": "segment",
            "label": "Segment",
            "type": "choice",
            "choices": ["MKB", "Zakelijk"],
            "required": True,
        },
        {"record_type": "opportunity", "key": "m2", "label": "Oppervlakte", "type": "number"},
        {"record_type": "opportunity", "key": "visit", "label": "Bezoek", "type": "date"},
        {"record_type": "opportunity", "key": "note", "label": "Notitie", "type": "text"},
    ):
        created = await client.post("/api/settings/custom-fields", json=field, headers=admin)
        assert created.status == 201, await created.text()
    refused = await client.post(
        "/api/settings/custom-fields",
        json={"record_type": "lead", "key": "x", "label": "X", "type": "text"},
        headers=agent,
    )
    assert refused.status == 403
    no_choices = await client.post(
        "/api/settings/custom-fields",
        json={"record_type": "lead", "key": "x", "label": "X", "type": "choice"},
        headers=admin,
    )
    assert no_choices.status == 422

    for values, loc in (
        ({}, ["custom_fields", "segment"]),
        ({"segment": "Overheid"}, ["custom_fields", "segment"]),
        ({"segment": "MKB", "m2": "veel"}, ["custom_fields", "m2"]),
        ({"segment": "MKB", "visit": "31-02-2027"}, ["custom_fields", "visit"]),
        ({"segment": "MKB", "colour": "blauw"}, ["custom_fields", "colour"]),
    ):
        response = await client.post(
            "/api/opportunities", json={"name": "x", "custom_fields": values}, headers=agent
        )
        assert response.status == 422, values
        assert (await response.json())["error"]["details"][0]["loc"] == loc, values
    ok = await client.post(
        "/api/opportunities",
        json={
            "name": "x",
            "custom_fields": {"segment": "MKB", "m2": "120.0", "visit": "2027-03-01"},
        },
        headers=agent,
    )
    assert ok.status == 201, await ok.text()
    opp = await ok.json()
    assert opp["custom_fields"] == {"segment": "MKB", "m2": 120, "visit": "2027-03-01"}
    patched = await client.patch(
        f"/api/opportunities/{opp['id']}", json={"custom_fields": {"note": "bellen"}}, headers=agent
    )
    assert (await patched.json())["custom_fields"]["note"] == "bellen"
    assert (await patched.json())["custom_fields"]["segment"] == "MKB"
    listed = await client.get("/api/settings/custom-fields?record_type=opportunity", headers=agent)
    assert [f["key"] for f in (await listed.json())["items"]] == ["segment", "m2", "visit", "note"]


async def test_relations_and_contacts_check_their_custom_fields(
    client: Client, login: Callable[..., Any]
) -> None:
    admin = await login("admin")
    for field in (
        {"record_type": "relation", "key": "employees", "label": "Medewerkers", "type": "number"},
        {"record_type": "contact", "key": "birthday", "label": "Verjaardag", "type": "date"},
    ):
        assert (
            await client.post("/api/settings/custom-fields", json=field, headers=admin)
        ).status == 201
    bad = await client.post(
        "/api/relations",
        json={"name": "Hamerslag", "custom_fields": {"employees": "veel"}},
        headers=admin,
    )
    assert bad.status == 422
    assert (await bad.json())["error"]["details"][0]["loc"] == ["custom_fields", "employees"]
    good = await client.post(
        "/api/relations",
        json={"name": "Hamerslag", "custom_fields": {"employees": 40}},
        headers=admin,
    )
    relation = await good.json()
    assert relation["custom_fields"] == {"employees": 40}
    patched = await client.patch(
        f"/api/relations/{relation['id']}",
        json={"custom_fields": {"employees": "41"}},
        headers=admin,
    )
    assert (await patched.json())["custom_fields"] == {"employees": 41}

    contact = await client.post(
        "/api/contacts",
        json={
            "first_name": "Jan",
            "relation_id": relation["id"],
            "custom_fields": {"birthday": "1970-05-01"},
        },
        headers=admin,
    )
    assert contact.status == 201, await contact.text()
    wrong = await client.patch(
        f"/api/contacts/{(await contact.json())['id']}",
        json={"custom_fields": {"birthday": "morgen"}},
        headers=admin,
    )
    assert wrong.status == 422
    assert (await wrong.json())["error"]["details"][0]["loc"] == ["custom_fields", "birthday"]


# Every record type custom fields can be defined for, with how it is created over the API and
# (where it can be) updated: a type without a write path here fails the first assertion below.
WRITES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "relation": ("/api/relations", {"name": "Hamerslag"}, True),
    "contact": ("/api/contacts", {"first_name": "Jan"}, True),
    "lead": ("/api/leads", {"name": "Piet Bakker", "force": True}, True),
    "opportunity": ("/api/opportunities", {"name": "Dakrenovatie"}, True),
    "project": ("/api/projects", {"name": "Nieuwbouw Oost"}, True),
}


def test_every_record_type_with_custom_fields_has_a_checked_write() -> None:
    assert set(WRITES) == set(RECORD_TYPES)


@pytest.mark.parametrize("record_type", sorted(WRITES))
async def test_custom_fields_are_checked_on_every_write_of_a_record_type(
    client: Client, login: Callable[..., Any], record_type: str
) -> None:
    admin = await login("admin")
    path, base, patchable = WRITES[record_type]
    for field in (
        {"key": "klasse", "label": "Klasse", "type": "choice", "choices": ["goud", "zilver"]},
        {"key": "m2", "label": "Oppervlakte", "type": "number"},
        {"key": "bezoek", "label": "Bezoek", "type": "date"},
        {"key": "notitie", "label": "Notitie", "type": "text"},
    ):
        created = await client.post(
            "/api/settings/custom-fields", json={"record_type": record_type, **field}, headers=admin
        )
        assert created.status == 201, await created.text()
    # A field of another record type is unknown here.
    other = "lead" if record_type != "lead" else "project"
    foreign = await client.post(
        "/api/settings/custom-fields",
        json={"record_type": other, "key": "alleen_elders", "label": "Elders", "type": "text"},
        headers=admin,
    )
    assert foreign.status == 201
    wrong: list[tuple[dict[str, Any], str]] = [
        ({"m2": "veel"}, "m2"),  # wrong type
        ({"m2": True}, "m2"),
        ({"bezoek": "31-02-2027"}, "bezoek"),
        ({"bezoek": 20270301}, "bezoek"),
        ({"notitie": ["een", "lijst"]}, "notitie"),
        ({"klasse": "brons"}, "klasse"),  # unknown choice
        ({"kleur": "blauw"}, "kleur"),  # unknown field
        ({"alleen_elders": "x"}, "alleen_elders"),
    ]
    for values, key in wrong:
        response = await client.post(path, json={**base, "custom_fields": values}, headers=admin)
        assert response.status == 422, (values, await response.text())
        error = (await response.json())["error"]
        assert error["details"][0]["loc"] == ["custom_fields", key], values
    ok = await client.post(
        path,
        json={**base, "custom_fields": {"klasse": "goud", "m2": "120.0", "bezoek": "2027-03-01"}},
        headers=admin,
    )
    assert ok.status == 201, await ok.text()
    record = await ok.json()
    assert record["custom_fields"] == {"klasse": "goud", "m2": 120, "bezoek": "2027-03-01"}
    if not patchable:
        return
    at = f"{path}/{record['id']}"
    for values, key in wrong:
        response = await client.patch(at, json={"custom_fields": values}, headers=admin)
        assert response.status == 422, (values, await response.text())
        assert (await response.json())["error"]["details"][0]["loc"] == ["custom_fields", key]
    patched = await client.patch(
        at, json={"custom_fields": {"notitie": "bellen", "m2": None}}, headers=admin
    )
    assert patched.status == 200, await patched.text()
    assert (await patched.json())["custom_fields"] == {
        "klasse": "goud",
        "bezoek": "2027-03-01",
        "notitie": "bellen",
    }
