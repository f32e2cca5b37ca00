"""The staged matcher: exact identity, provider key, company domain, fuzzy candidates, decisions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from channels.base import InboundMessage
from channels.base import Sender as ChannelSender
from crm.matcher import MatchConfig, Sender, add_identities, identity_keys, match_sender
from crm.models import Contact, Identity, Lead, MatchReview, Relation
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.ingest.pipeline import Policy, store
from inbox.models import Channel, Conversation, Message

Client = TestClient[Any, Any]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def company(sessions: Sessions) -> dict[str, int]:
    """Hamerslag B.V. (hamerslag.nl) with Jan and Piet Visser; Johan Visser elsewhere."""
    async with sessions() as session, session.begin():
        hamerslag = Relation(name="Hamerslag B.V.", normalized_name="hamerslag")
        bouw = Relation(name="Visser Bouw Holding B.V.", normalized_name="visser bouw")
        session.add_all([hamerslag, bouw])
        await session.flush()
        people = {
            "jan": Contact(
                relation_id=hamerslag.id,
                first_name="Jan",
                last_name="Visser",
                full_name="Jan Visser",
                city="Almere",
                external_id="C-1",
            ),
            "piet": Contact(
                relation_id=hamerslag.id,
                first_name="Piet",
                last_name="Visser",
                full_name="Piet Visser",
            ),
            "johan": Contact(
                relation_id=bouw.id,
                first_name="Johan",
                last_name="Visser",
                full_name="Johan Visser",
            ),
            "karin": Contact(first_name="Karin", last_name="de Vries", full_name="Karin de Vries"),
        }
        session.add_all(people.values())
        await session.flush()
        await add_identities(
            session,
            identity_keys(["jan.visser@hamerslag.nl"], ["06-12345678"]),
            contact_id=people["jan"].id,
        )
        await add_identities(
            session, identity_keys(["info@hamerslag.nl"]), contact_id=people["jan"].id
        )
        await add_identities(
            session, identity_keys(["piet@hamerslag.nl"]), contact_id=people["piet"].id
        )
        await add_identities(
            session, identity_keys(["johan@visserbouw.nl"]), contact_id=people["johan"].id
        )
        await add_identities(
            session, identity_keys(["karin.devries@gmail.com"]), contact_id=people["karin"].id
        )
        session.add(
            Identity(
                kind="domain", value="hamerslag.nl", key="hamerslag.nl", relation_id=hamerslag.id
            )
        )
        return {k: v.id for k, v in people.items()} | {"hamerslag": hamerslag.id, "bouw": bouw.id}


async def match(sessions: Sessions, config: MatchConfig | None = None, **sender: Any) -> Any:
    async with sessions() as session:
        return await match_sender(session, Sender(**sender), config=config)


async def test_exact_address_and_number_link_with_full_score(sessions: Sessions) -> None:
    ids = await company(sessions)
    by_mail = await match(sessions, email="Jan.Visser@Hamerslag.nl")
    by_phone = await match(sessions, phone="+31 6 1234 5678")
    for decision in (by_mail, by_phone):
        assert (decision.decision, decision.contact_id) == ("linked", ids["jan"])
        assert decision.relation_id == ids["hamerslag"]
        assert decision.score == 1.0
        assert decision.external_id == "C-1"
    assert by_phone.reasons == {"phone": "exact"}


async def test_gmail_dots_and_plus_tag_find_the_same_person(sessions: Sessions) -> None:
    ids = await company(sessions)
    decision = await match(sessions, email="karin.de.vries+offerte@googlemail.com")
    assert (decision.decision, decision.contact_id) == ("linked", ids["karin"])
    assert "provider key" in decision.reasons["email"]


async def test_new_address_at_the_company_domain_links_by_name(sessions: Sessions) -> None:
    ids = await company(sessions)
    decision = await match(
        sessions, email="j.visser@hamerslag.nl", name="J. Visser", company="Hamerslag"
    )
    assert (decision.decision, decision.contact_id) == ("linked", ids["jan"])
    assert decision.score >= 0.97
    assert set(decision.reasons) >= {"surname", "given", "domain", "company"}
    # Piet Visser at the same company was considered and lost on the initial.
    assert decision.candidates[0].contact_id == ids["jan"]


async def test_a_shared_mailbox_names_the_relation_never_the_person(sessions: Sessions) -> None:
    ids = await company(sessions)
    decision = await match(sessions, email="info@hamerslag.nl")
    assert decision.contact_id is None
    assert decision.relation_id == ids["hamerslag"]
    # With a name, the person is found among the relation's contacts.
    named = await match(sessions, email="info@hamerslag.nl", name="Piet Visser")
    assert (named.decision, named.contact_id) == ("linked", ids["piet"])


async def test_a_typo_in_the_surname_still_finds_the_candidate(sessions: Sessions) -> None:
    ids = await company(sessions)
    decision = await match(sessions, name="Jan Viser", company="Hamerslag", city="Almere")
    assert decision.candidates and decision.candidates[0].contact_id == ids["jan"]
    assert decision.decision in ("linked", "review")
    assert "≈" in decision.candidates[0].reasons["surname"]


async def test_weak_evidence_goes_to_review_and_strangers_are_unknown(sessions: Sessions) -> None:
    ids = await company(sessions)
    unsure = await match(
        sessions, email="jv1970@hotmail.com", name="J. Visser", company="Hamerslag"
    )
    assert unsure.decision == "review"
    assert unsure.contact_id is None
    assert [c.contact_id for c in unsure.candidates][:1] == [ids["jan"]]
    stranger = await match(sessions, email="m.bakker@example.org", name="Mark Bakker")
    assert (stranger.decision, stranger.contact_id, stranger.candidates) == ("unknown", None, [])
    # A namesake at another company is no match.
    namesake = await match(sessions, name="Johan Visser", company="Hamerslag", email="x@y.nl")
    assert namesake.decision != "linked" or namesake.contact_id != ids["johan"]


async def test_two_equally_good_candidates_go_to_review(sessions: Sessions) -> None:
    await company(sessions)
    async with sessions() as session, session.begin():
        relation = (
            await session.scalars(select(Relation).where(Relation.name == "Hamerslag B.V."))
        ).one()
        session.add(
            Contact(
                relation_id=relation.id,
                first_name="Jan",
                last_name="Visser",
                full_name="Jan Visser",
            )
        )
    decision = await match(sessions, email="j.visser@hamerslag.nl", name="Jan Visser")
    assert decision.decision == "review"
    assert len(decision.candidates) >= 2


def webform(email: str, name: str, company: str) -> InboundMessage:
    return InboundMessage(
        external_id=f"form-{email}",
        kind="form",
        direction="inbound",
        text="Graag een offerte voor de kozijnen.",
        occurred_at=NOW,
        sender=ChannelSender(name=name, company=company, emails=(email,)),
        fields={"project": "Almere"},
    )


async def form_channel(sessions: Sessions) -> Channel:
    async with sessions() as session, session.begin():
        return await add_channel(session, "webform", "Contactformulier", {}, None)


async def test_web_form_from_j_visser_hamerslag_links_to_the_existing_contact(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any]
) -> None:
    ids = await company(sessions)
    channel = await form_channel(sessions)
    response = await client.post(
        f"/webhooks/webform/{channel.id}",
        data=json.dumps(
            {
                "name": "J. Visser",
                "company": "Hamerslag",
                "email": "j.visser@hamerslag.nl",
                "message": "Graag een offerte voor 12 kozijnen.",
            }
        ),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {channel.config['token']}",
        },
    )
    assert response.status == 202
    await run_worker()
    async with sessions() as session:
        conversation = (await session.scalars(select(Conversation))).one()
        message = (await session.scalars(select(Message))).one()
        owner = await session.scalar(
            select(Identity.contact_id).where(Identity.value == "j.visser@hamerslag.nl")
        )
        leads = await session.scalar(select(func.count()).select_from(Lead))
    assert (conversation.contact_id, conversation.relation_id) == (ids["jan"], ids["hamerslag"])
    assert message.meta["match"]["decision"] == "linked"
    assert message.meta["match"]["reasons"]["surname"]
    assert owner == ids["jan"]  # the new address is his now: the next message links exactly
    assert leads == 0


async def test_configured_stricter_the_same_form_waits_in_review_until_confirmed(
    client: Client, sessions: Sessions, run_worker: Callable[[], Any], login: Callable[..., Any]
) -> None:
    ids = await company(sessions)
    channel = await form_channel(sessions)
    policy = Policy(match=MatchConfig(link=0.9999))
    async with sessions() as session, session.begin():
        message = await store(
            session,
            channel,
            None,
            webform("j.visser@hamerslag.nl", "J. Visser", "Hamerslag"),
            policy,
            NOW,
        )
    async with sessions() as session:
        review = (await session.scalars(select(MatchReview))).one()
        conversation = await session.get(Conversation, message.conversation_id)
        assert conversation is not None
    assert review.status == "open"
    assert review.candidates[0]["contact_id"] == ids["jan"]
    assert conversation.contact_id is None and conversation.lead_id is not None
    assert message.meta["match"]["decision"] == "review"

    headers = await login(role="admin")
    listed = await (await client.get("/api/match/reviews", headers=headers)).json()
    assert [r["id"] for r in listed["items"]] == [review.id]
    confirmed = await client.post(
        f"/api/match/reviews/{review.id}/confirm", json={}, headers=headers
    )
    assert confirmed.status == 200, await confirmed.text()
    assert (await confirmed.json())["status"] == "confirmed"
    again = await client.post(f"/api/match/reviews/{review.id}/confirm", json={}, headers=headers)
    assert again.status == 409

    async with sessions() as session:
        conversation = await session.get(Conversation, message.conversation_id)
        assert conversation is not None
        owner = await session.scalar(
            select(Identity.contact_id).where(Identity.value == "j.visser@hamerslag.nl")
        )
    assert conversation.contact_id == ids["jan"]
    assert owner == ids["jan"]
    # The next message from that address links exactly, without the matcher's doubt.
    async with sessions() as session, session.begin():
        second = webform("j.visser@hamerslag.nl", "J. Visser", "Hamerslag")
        second = dataclasses.replace(second, external_id="form-2")
        later = await store(session, channel, None, second, policy, NOW)
        conversation = await session.get(Conversation, later.conversation_id)
        assert conversation is not None and conversation.contact_id == ids["jan"]
        assert "match" not in later.meta


async def test_reject_keeps_the_lead_and_reviews_are_scoped(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    await company(sessions)
    channel = await form_channel(sessions)
    async with sessions() as session, session.begin():
        await store(
            session,
            channel,
            None,
            webform("jv1970@hotmail.com", "J. Visser", "Hamerslag"),
            Policy(),
            NOW,
        )
    agent = await login(role="agent")
    assert (await (await client.get("/api/match/reviews", headers=agent)).json())["items"] == []
    admin = await login(role="admin")
    (review,) = (await (await client.get("/api/match/reviews", headers=admin)).json())["items"]
    rejected = await client.post(f"/api/match/reviews/{review['id']}/reject", headers=admin)
    assert (await rejected.json())["status"] == "rejected"
    async with sessions() as session:
        conversation = (await session.scalars(select(Conversation))).one()
    assert conversation.contact_id is None and conversation.lead_id is not None
    assert (await client.get("/api/match/reviews", headers=admin)).status == 200
    anonymous = await client.get("/api/match/reviews")
    assert anonymous.status == 401


async def test_match_api_explains_its_decision(
    client: Client, sessions: Sessions, login: Callable[..., Any]
) -> None:
    ids = await company(sessions)
    headers = await login(role="agent")
    response = await client.post(
        "/api/match",
        json={"email": "j.visser@hamerslag.nl", "name": "J. Visser", "company": "Hamerslag B.V."},
        headers=headers,
    )
    body = await response.json()
    assert response.status == 200, body
    assert (body["decision"], body["contact_id"], body["external_id"]) == (
        "linked",
        ids["jan"],
        "C-1",
    )
    assert body["reasons"]["domain"]
    assert (await client.post("/api/match", json={"email": "x" * 600}, headers=headers)).status in (
        400,
        422,
    )
