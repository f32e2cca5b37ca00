"""Contacts, relations and leads: create with a duplicate check, merge and undo, clusters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from crm.dedup import ContactRow, contact_pair_score, find_clusters, relation_score
from crm.matcher import add_identities, identity_keys
from crm.models import (
    Activity,
    Contact,
    DuplicateCandidate,
    Identity,
    Project,
    Relation,
    Task,
    User,
)
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Conversation

Client = TestClient[Any, Any]


async def hamerslag(sessions: Sessions) -> dict[str, int]:
    async with sessions() as session, session.begin():
        relation = Relation(
            name="Hamerslag B.V.", normalized_name="hamerslag", kvk_number="12345678"
        )
        session.add(relation)
        await session.flush()
        jan = Contact(
            relation_id=relation.id, first_name="Jan", last_name="Visser", full_name="Jan Visser"
        )
        session.add(jan)
        await session.flush()
        await add_identities(
            session, identity_keys(["jan.visser@hamerslag.nl"], ["0612345678"]), contact_id=jan.id
        )
        session.add(
            Identity(
                kind="domain", value="hamerslag.nl", key="hamerslag.nl", relation_id=relation.id
            )
        )
        return {"relation": relation.id, "jan": jan.id}


def test_pair_scores_tell_duplicates_from_namesakes() -> None:
    def row(
        i: int, first: str, last: str, company: str, emails: set[str] | None = None
    ) -> ContactRow:
        return ContactRow(i, first, last, f"{first} {last}", company, "", emails or set(), set())

    same, _ = contact_pair_score(
        row(1, "Jan", "Visser", "Hamerslag B.V."), row(2, "J.", "Visser", "Hamerslag BV")
    )
    typo, _ = contact_pair_score(
        row(1, "Jan", "Visser", "Hamerslag B.V."), row(2, "Jan", "Vsser", "Hamerslag")
    )
    other, _ = contact_pair_score(
        row(1, "Jan", "Visser", "Hamerslag B.V."), row(2, "Piet", "Visser", "Hamerslag")
    )
    mail, why = contact_pair_score(
        row(1, "Jan", "Visser", "", {"janvisser@gmail.com"}),
        row(2, "J", "de Vries", "", {"janvisser@gmail.com"}),
    )
    assert same >= 0.9 and typo >= 0.85
    assert other < 0.75 < same
    assert mail >= 0.99 and why == {"id": "same address, number or id"}
    assert relation_score("Hamerslag B.V.", "Hamerslag BV") == 1.0
    assert relation_score("Hamerslag B.V.", "Hammerslag") >= 0.85
    assert relation_score("Hamerslag B.V.", "Visser Bouw") < 0.5


async def test_creating_a_likely_duplicate_contact_is_409_unless_forced(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    ids = await hamerslag(sessions)
    headers = await login("agent")
    body = {
        "first_name": "J.",
        "last_name": "Visser",
        "relation_id": ids["relation"],
        "email": "j.visser@hamerslag.nl",
    }
    refused = await client.post("/api/contacts", json=body, headers=headers)
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert error["code"] == "likely_duplicate"
    assert error["details"]["candidates"][0]["id"] == ids["jan"]
    assert error["details"]["candidates"][0]["reasons"]["surname"]
    forced = await client.post("/api/contacts", json=body | {"force": True}, headers=headers)
    assert forced.status == 201, await forced.text()
    created = await forced.json()
    assert created["full_name"] == "J. Visser"
    fresh = await client.post(
        "/api/contacts",
        json={"first_name": "Els", "last_name": "Nieuw", "email": "els@nieuw.nl"},
        headers=headers,
    )
    assert fresh.status == 201
    bad = await client.post(
        "/api/contacts", json={"first_name": "X", "email": "nope"}, headers=headers
    )
    assert bad.status == 422
    async with sessions() as session:
        owner = await session.scalar(
            select(Identity.contact_id).where(Identity.value == "els@nieuw.nl")
        )
    assert owner == (await fresh.json())["id"]
    patched = await client.patch(
        f"/api/contacts/{ids['jan']}",
        json={"city": "Almere", "job_title": "Inkoper"},
        headers=headers,
    )
    assert (await patched.json())["city"] == "Almere"
    listed = await (await client.get("/api/contacts", params={"q": "Jan"}, headers=headers)).json()
    assert [c["id"] for c in listed["items"]] == [ids["jan"]]


async def test_relations_and_leads_check_duplicates_too(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    ids = await hamerslag(sessions)
    headers = await login("manager")
    by_name = await client.post("/api/relations", json={"name": "Hamerslag BV"}, headers=headers)
    by_kvk = await client.post(
        "/api/relations", json={"name": "HS Bouw", "kvk_number": "12345678"}, headers=headers
    )
    by_site = await client.post(
        "/api/relations",
        json={"name": "Slag & Co", "website": "https://www.hamerslag.nl/"},
        headers=headers,
    )
    for response in (by_name, by_kvk, by_site):
        assert response.status == 409
        assert (await response.json())["error"]["details"]["candidates"][0]["id"] == ids["relation"]
    other = await client.post(
        "/api/relations", json={"name": "Bakker & Zn V.O.F.", "city": "Ede"}, headers=headers
    )
    assert other.status == 201
    assert (await other.json())["addresses"] == [{"kind": "visit", "city": "Ede"}]
    lead = await client.post(
        "/api/leads", json={"name": "Jan Visser", "phone": "06 12345678"}, headers=headers
    )
    assert lead.status == 409
    assert (await lead.json())["error"]["details"]["candidates"][0] == {
        "kind": "contact",
        "id": ids["jan"],
        "score": 1.0,
        "reasons": {"phone": "same"},
    }
    new_lead = await client.post(
        "/api/leads", json={"name": "Mark Bakker", "email": "mark@bakker.nl"}, headers=headers
    )
    assert new_lead.status == 201
    again = await client.post(
        "/api/leads", json={"name": "M. Bakker", "email": "Mark@Bakker.nl"}, headers=headers
    )
    assert (await again.json())["error"]["details"]["candidates"][0]["kind"] == "lead"


async def test_merge_moves_everything_and_undo_puts_it_back(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    ids = await hamerslag(sessions)
    async with sessions() as session, session.begin():
        channel = await add_channel(session, "webform", "W", {})
        dup = Contact(
            relation_id=ids["relation"], first_name="J.", last_name="Visser", full_name="J. Visser",
            city="Almere", external_id="EXT-9",
        )  # fmt: skip
        session.add(dup)
        await session.flush()
        await add_identities(session, identity_keys(["jv@hamerslag.nl"]), contact_id=dup.id)
        conversation = Conversation(channel_id=channel.id, subject="Offerte", contact_id=dup.id)
        session.add(conversation)
        await session.flush()
        session.add(Task(kind="follow_up", title="Bellen", contact_id=dup.id))
        session.add(
            Activity(
                kind="note",
                direction="internal",
                body="x",
                occurred_at=func.now(),
                contact_id=dup.id,
            )
        )
        dup_id = dup.id
    agent = await login("agent")
    refused = await client.post(
        f"/api/contacts/{dup_id}/merge", json={"into": ids["jan"]}, headers=agent
    )
    assert refused.status == 403
    headers = await login("manager")
    merged = await client.post(
        f"/api/contacts/{dup_id}/merge", json={"into": ids["jan"]}, headers=headers
    )
    assert merged.status == 200, await merged.text()
    record = await merged.json()
    assert set(record["moved"]["rows"]) >= {
        "identities.contact_id", "conversations.contact_id", "tasks.contact_id", "activities.contact_id"
    }  # fmt: skip
    assert record["moved"]["filled"] == ["city", "external_id"]
    async with sessions() as session:
        assert await session.get(Contact, dup_id) is None
        jan = await session.get(Contact, ids["jan"])
        assert jan is not None and (jan.city, jan.external_id) == ("Almere", "EXT-9")
        assert await session.scalar(select(Conversation.contact_id)) == ids["jan"]
        owner = await session.scalar(
            select(Identity.contact_id).where(Identity.value == "jv@hamerslag.nl")
        )
        assert owner == ids["jan"]
    undone = await client.post(f"/api/merges/{record['id']}/undo", headers=headers)
    assert undone.status == 200, await undone.text()
    async with sessions() as session:
        back = await session.get(Contact, dup_id)
        jan = await session.get(Contact, ids["jan"])
        assert back is not None and (back.full_name, back.external_id) == ("J. Visser", "EXT-9")
        assert jan is not None and (jan.city, jan.external_id) == (None, None)
        assert await session.scalar(select(Conversation.contact_id)) == dup_id
        assert await session.scalar(select(Task.contact_id)) == dup_id
        owner = await session.scalar(
            select(Identity.contact_id).where(Identity.value == "jv@hamerslag.nl")
        )
        assert owner == dup_id
        assert (
            await session.scalar(
                select(Identity.contact_id).where(Identity.value == "jan.visser@hamerslag.nl")
            )
            == ids["jan"]
        )
    twice = await client.post(f"/api/merges/{record['id']}/undo", headers=headers)
    assert twice.status == 409
    assert (
        await client.post(f"/api/contacts/{dup_id}/merge", json={"into": dup_id}, headers=headers)
    ).status == 422


async def test_relation_merge_moves_contacts_and_projects(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    ids = await hamerslag(sessions)
    async with sessions() as session, session.begin():
        twin = Relation(name="Hamerslag BV", normalized_name="hamerslag", region="Flevoland")
        session.add(twin)
        await session.flush()
        session.add(Project(name="Nieuwbouw", relation_id=twin.id, city="Almere"))
        session.add(
            Contact(relation_id=twin.id, first_name="Piet", last_name="Smit", full_name="Piet Smit")
        )
        twin_id = twin.id
    headers = await login("admin")
    merged = await client.post(
        f"/api/relations/{twin_id}/merge", json={"into": ids["relation"]}, headers=headers
    )
    assert merged.status == 200, await merged.text()
    async with sessions() as session:
        assert await session.scalar(select(Project.relation_id)) == ids["relation"]
        piet = (
            await session.scalars(select(Contact).where(Contact.full_name == "Piet Smit"))
        ).one()
        relation = await session.get(Relation, ids["relation"])
    assert piet.relation_id == ids["relation"]
    assert relation is not None and relation.region == "Flevoland"


async def test_the_duplicate_job_finds_a_cluster_once(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    ids = await hamerslag(sessions)
    async with sessions() as session, session.begin():
        session.add_all(
            [
                Contact(
                    relation_id=ids["relation"],
                    first_name="J.",
                    last_name="Visser",
                    full_name="J. Visser",
                ),
                Contact(
                    relation_id=ids["relation"],
                    first_name="Jan",
                    last_name="Visser",
                    full_name="Jan Visser",
                ),
                Contact(
                    relation_id=ids["relation"],
                    first_name="Piet",
                    last_name="Smit",
                    full_name="Piet Smit",
                ),
            ]
        )
        session.add(Relation(name="Hamerslag BV", normalized_name="hamerslag"))
    async with sessions() as session, session.begin():
        await find_clusters(session)
    async with sessions() as session, session.begin():
        await find_clusters(session)  # idempotent
    async with sessions() as session:
        pairs = (
            await session.scalars(select(DuplicateCandidate).order_by(DuplicateCandidate.id))
        ).all()
    contact_pairs = [p for p in pairs if p.kind == "contact"]
    assert len(contact_pairs) == 3  # the three Vissers pairwise, one cluster
    assert {p.cluster for p in contact_pairs} == {ids["jan"]}
    assert [p.kind for p in pairs].count("relation") == 1
    headers = await login("manager")
    listed = await (
        await client.get("/api/duplicates", params={"kind": "contact"}, headers=headers)
    ).json()
    assert len(listed) == 3
    dismissed = await client.post(f"/api/duplicates/{listed[0]['id']}/dismiss", headers=headers)
    assert (await dismissed.json())["status"] == "dismissed"
    assert len(await (await client.get("/api/duplicates", headers=headers)).json()) == 3


async def test_the_worker_job_runs_once_at_a_time(sessions: Sessions) -> None:
    from workers.dedup import duplicate_clusters

    ids = await hamerslag(sessions)
    async with sessions() as session, session.begin():
        session.add(
            Contact(
                relation_id=ids["relation"],
                first_name="J",
                last_name="Visser",
                full_name="J Visser",
            )
        )
    first, second = await asyncio.gather(
        duplicate_clusters({"sessions": sessions}), duplicate_clusters({"sessions": sessions})
    )
    assert sorted([first, second])[1] == 1  # one of them stored the pair
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DuplicateCandidate)) == 1


async def test_a_lead_is_updated_until_it_is_converted(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    headers = await login("agent")
    created = await client.post(
        "/api/leads", json={"name": "Mark Bakker", "email": "mark@bakker.nl"}, headers=headers
    )
    assert created.status == 201, await created.text()
    at = f"/api/leads/{(await created.json())['id']}"
    async with sessions() as session, session.begin():
        owner = User(email="owner@example.nl", name="Olga", role="agent")
        gone = User(email="gone@example.nl", name="Gijs", role="agent", is_active=False)
        session.add_all([owner, gone])
    patched = await client.patch(
        at,
        json={"company": "Bakker Dakwerken", "status": "contacted", "owner_id": owner.id},
        headers=headers,
    )
    assert patched.status == 200, await patched.text()
    lead = await patched.json()
    assert (lead["name"], lead["company"], lead["status"], lead["owner_id"]) == (
        "Mark Bakker",
        "Bakker Dakwerken",
        "contacted",
        owner.id,
    )
    for body in (
        {"owner_id": gone.id},
        {"owner_id": 999_999},
        {"status": "converted"},
        {"status": None},
    ):
        refused = await client.patch(at, json=body, headers=headers)
        assert refused.status == 422, body
        assert (await refused.json())["error"]["details"][0]["loc"][0] in body, body
    converted = await client.post(f"{at}/convert", json={}, headers=headers)
    assert converted.status == 201, await converted.text()
    late = await client.patch(at, json={"name": "Mark de Bakker"}, headers=headers)
    assert late.status == 409
    assert (await client.patch("/api/leads/999999", json={}, headers=headers)).status == 404


async def test_converting_a_lead_checks_the_new_records_custom_fields(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    admin = await login("admin")
    for field in (
        {"record_type": "relation", "key": "segment", "label": "Segment", "type": "choice",
         "choices": ["MKB", "Overheid"], "required": True},
        {"record_type": "contact", "key": "birthday", "label": "Verjaardag", "type": "date",
         "required": True},
    ):  # fmt: skip
        created = await client.post("/api/settings/custom-fields", json=field, headers=admin)
        assert created.status == 201, await created.text()
    lead = await client.post(
        "/api/leads",
        json={"name": "Mark Bakker", "company": "Bakker Dakwerken", "force": True},
        headers=admin,
    )
    at = f"/api/leads/{(await lead.json())['id']}/convert"
    good = {"segment": "MKB"}, {"birthday": "1970-05-01"}
    for relation_fields, contact_fields, loc in [
        ({}, good[1], ["relation_custom_fields", "segment"]),  # required
        ({"segment": "Zzp"}, good[1], ["relation_custom_fields", "segment"]),  # no such choice
        (good[0], {}, ["contact_custom_fields", "birthday"]),
        (good[0], {"birthday": "morgen"}, ["contact_custom_fields", "birthday"]),
    ]:
        body = {"relation_custom_fields": relation_fields, "contact_custom_fields": contact_fields}
        refused = await client.post(at, json=body, headers=admin)
        assert refused.status == 422, body
        assert (await refused.json())["error"]["details"][0]["loc"] == loc, body
    async with sessions() as session:  # nothing of a refused conversion stays
        assert await session.scalar(select(func.count()).select_from(Relation)) == 0
    converted = await client.post(
        at,
        json={"relation_custom_fields": good[0], "contact_custom_fields": good[1]},
        headers=admin,
    )
    assert converted.status == 201, await converted.text()
    out = await converted.json()
    async with sessions() as session:
        relation = await session.get(Relation, out["relation_id"])
        contact = await session.get(Contact, out["contact_id"])
    assert relation is not None and relation.custom_fields == {"segment": "MKB"}
    assert contact is not None and contact.custom_fields == {"birthday": "1970-05-01"}
