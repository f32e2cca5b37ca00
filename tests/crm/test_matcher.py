"""The staged matcher: exact identity, provider key, company domain, fuzzy candidates, decisions."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

import crm
from channels.base import InboundMessage
from channels.base import Sender as ChannelSender
from crm.matcher import (
    MatchConfig,
    Sender,
    add_identities,
    identity_keys,
    labelled_pairs,
    match_sender,
    ranked_candidates,
    review_labels,
)
from crm.models import Contact, Identity, Lead, MatchReview, Relation
from crm.weights import Weights, fit, parse
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
    assert decision.score >= MatchConfig().link
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


async def test_a_surname_typo_finds_a_contact_added_a_moment_ago(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No company, no address of theirs: only the index of words can read 'Quarringtn'. The words
    # are looked up when needed, so a contact created after the last match is found at once
    # (a word list cached for a minute would not hold their surname yet).
    monkeypatch.setattr(crm.search, "VOCABULARY_TTL", 60.0)
    await company(sessions)
    assert (await match(sessions, name="Jan Viser")).candidates
    async with sessions() as session, session.begin():
        new = Contact(
            first_name="Bartholomew", last_name="Quarrington", full_name="Bartholomew Quarrington"
        )
        session.add(new)
    decision = await match(sessions, name="Bartholomew Quarringtn", email="bq@gmail.com")
    assert decision.candidates and decision.candidates[0].contact_id == new.id
    assert "≈" in decision.candidates[0].reasons["surname"]


async def test_weak_evidence_goes_to_review_and_strangers_are_unknown(sessions: Sessions) -> None:
    ids = await company(sessions)
    # (With the company named, one J. Visser there is enough for a link: the learned weights.)
    unsure = await match(sessions, email="jv1970@hotmail.com", name="J. Visser", city="Almere")
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
    policy = Policy(match=MatchConfig(link=0.9999999))
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
            webform("jv1970@hotmail.com", "Visser", "Hamerslag"),  # Jan or Piet?
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


# --- the evidence added for issue #14 -----------------------------------------------------------


async def colleague(
    sessions: Sessions, first: str, last: str, relation: str = "Hamerslag B.V.", **identity: str
) -> int:
    """One more contact at Hamerslag B.V. (or another relation), with an e-mail address or phone
    number if given."""
    async with sessions() as session, session.begin():
        employer = (await session.scalars(select(Relation).where(Relation.name == relation))).one()
        contact = Contact(
            relation_id=employer.id, first_name=first, last_name=last, full_name=f"{first} {last}"
        )
        session.add(contact)
        await session.flush()
        await add_identities(
            session,
            identity_keys(identity.get("emails", "").split(), identity.get("phones", "").split()),
            contact_id=contact.id,
        )
        return contact.id


async def test_a_dutch_short_form_is_the_same_given_name(sessions: Sessions) -> None:
    await company(sessions)
    kees = await colleague(sessions, "Cornelis", "Bakker")
    decision = await match(sessions, name="Kees Bakker", company="Hamerslag", email="k@xs4all.nl")
    assert decision.candidates[0].contact_id == kees
    assert decision.candidates[0].reasons["given"] == "kees is a form of cornelis"
    assert decision.candidates[0].levels["given"] == "nickname"


async def test_a_surname_joined_or_split_by_its_particles_is_found(sessions: Sessions) -> None:
    await company(sessions)
    pieter = await colleague(sessions, "Pieter", "van der Berg")
    for written in ("Pieter Vanderberg", "Berg, Pieter van der", "Pieter vander Berg"):
        decision = await match(sessions, name=written, email="pb@xs4all.nl")
        assert [c.contact_id for c in decision.candidates][:1] == [pieter], written
        assert decision.candidates[0].levels["surname"] in ("exact", "joined"), written
    joined = await match(sessions, name="Pieter Vanderberg", email="pb@xs4all.nl")
    assert joined.candidates[0].levels["surname"] == "joined"
    # The other way round: the record is written joined, the sender splits it.
    vanderberg = await colleague(sessions, "Klaas", "Vanderberg")
    split = await match(sessions, name="Klaas van der Berg", email="kv@xs4all.nl")
    assert split.candidates[0].contact_id == vanderberg
    assert split.candidates[0].levels["surname"] == "joined"


@pytest.mark.parametrize(
    ("first", "last", "sender", "field", "level"),
    [
        # A stray space in the surname is joined.
        ("Deakyn", "Blake", {"name": "Deakyn Bl ake"}, "surname", "joined"),
        ("Lily", "Chabrel", {"name": "L. Chab Rel", "company": "Hamerslag"}, "surname", "joined"),
        # 'T.' is an initial, not the particle of 't Hart.
        ("Tess", "Carosella", {"name": "T. Carosella", "company": "Hamerslag"}, "given", "initial"),
        # Two letters swapped in the given name are a slip, not another person.
        ("Tara", "Plovanic", {"name": "Atra Plovanic", "company": "Hamerslag"}, "given", "fuzzy"),
    ],
)
async def test_a_slip_in_the_name_still_reads_as_the_person(
    sessions: Sessions, first: str, last: str, sender: dict[str, str], field: str, level: str
) -> None:
    await company(sessions)
    person = await colleague(sessions, first, last)
    decision = await match(sessions, email="xy@xs4all.nl", **sender)
    assert decision.candidates[0].contact_id == person
    assert decision.candidates[0].levels[field] == level


async def test_a_conflicting_second_initial_is_evidence_against(sessions: Sessions) -> None:
    ids = await company(sessions)
    jp = await colleague(sessions, "J.P.", "Smit", emails="jp.smit@hamerslag.nl")
    same = await match(sessions, name="J.P. Smit", email="smit@hamerslag.nl")
    other = await match(sessions, name="J.K. Smit", email="smit@hamerslag.nl")
    assert (same.decision, same.contact_id) == ("linked", jp)
    assert other.decision != "linked"
    assert other.candidates == [] or other.candidates[0].levels["given"] == (
        "second_initial_conflict"
    )
    assert ids["jan"] not in [c.contact_id for c in other.candidates]


async def test_surname_two_edits_off_at_the_company_domain_is_a_candidate(
    sessions: Sessions,
) -> None:
    ids = await company(sessions)
    # 'vizzer' is two edits from 'visser': close enough only at Jan's own company domain.
    at_domain = await match(sessions, name="Jan Vizzer", email="jan.vizzer@hamerslag.nl")
    elsewhere = await match(sessions, name="Jan Vizzer", company="Hamerslag", email="jv@xs4all.nl")
    assert at_domain.candidates[0].contact_id == ids["jan"]
    assert at_domain.candidates[0].levels["surname"] == "two_edits_domain"
    assert ids["jan"] not in [c.contact_id for c in elsewhere.candidates if c.score >= 0.5]


async def test_swapped_names_with_a_typo_are_read_the_other_way_round(sessions: Sessions) -> None:
    ids = await company(sessions)
    decision = await match(sessions, name="Vissr Jan", company="Hamerslag", email="jv@xs4all.nl")
    assert decision.candidates[0].contact_id == ids["jan"]
    assert decision.candidates[0].levels == decision.candidates[0].levels | {
        "surname": "swapped",
        "given": "swapped",
    }


async def test_the_last_seven_digits_of_a_number_find_the_contact(sessions: Sessions) -> None:
    ids = await company(sessions)
    async with sessions() as session:
        # Jan's +31 6 12345678 written with the Belgian country code: no exact identity.
        [candidates] = await ranked_candidates(session, [Sender(phone="+32 6 1234 5678")])
    assert [c.contact_id for c in candidates] == [ids["jan"]]
    assert candidates[0].levels == {"phone": "last7"}


async def test_a_converted_lead_s_address_is_evidence_for_its_contact(sessions: Sessions) -> None:
    ids = await company(sessions)
    async with sessions() as session, session.begin():
        lead = Lead(name="J. Visser", status="converted", converted_contact_id=ids["jan"])
        session.add(lead)
        await session.flush()
        await add_identities(session, identity_keys(["jv1970@hotmail.com"]), lead_id=lead.id)
    decision = await match(sessions, email="jv1970@hotmail.com", name="J. Visser")
    assert (decision.decision, decision.contact_id) == ("linked", ids["jan"])
    assert "earlier messages" in decision.reasons["history"]
    # A lead nobody converted stays the lead's.
    async with sessions() as session, session.begin():
        open_lead = Lead(name="P. Visser")
        session.add(open_lead)
        await session.flush()
        await add_identities(session, identity_keys(["pv@hotmail.com"]), lead_id=open_lead.id)
    still = await match(sessions, email="pv@hotmail.com", name="P. Visser")
    assert (still.decision, still.lead_id) == ("unknown", open_lead.id)


def test_the_matcher_reads_the_fitted_weights_shipped_as_a_data_file() -> None:
    shipped = json.loads(
        (Path(crm.__file__).parent / "data" / "match_weights.json").read_text(encoding="utf-8")
    )
    assert MatchConfig().weights == parse(json.dumps(shipped))
    assert MatchConfig(weights_file="/nonexistent.json").weights == MatchConfig().weights


async def test_weights_from_a_file_change_the_decision(sessions: Sessions, tmp_path: Path) -> None:
    ids = await company(sessions)
    sender = {"email": "j.visser@hamerslag.nl", "name": "J. Visser", "company": "Hamerslag"}
    assert (await match(sessions, **sender)).contact_id == ids["jan"]
    distrust = MatchConfig().weights
    distrust = Weights(prior=distrust.prior - 20, levels=distrust.levels)
    (tmp_path / "w.json").write_text(distrust.to_json())
    config = MatchConfig(weights_file=str(tmp_path / "w.json"))
    assert (await match(sessions, config, **sender)).decision == "unknown"


async def test_review_decisions_refit_the_weights(sessions: Sessions) -> None:
    ids = await company(sessions)
    async with sessions() as session, session.begin():
        session.add_all(
            [
                MatchReview(
                    sender={"name": "J. Visser", "company": "Hamerslag", "email": "jv@xs4all.nl"},
                    status="confirmed",
                    contact_id=ids["jan"],
                ),
                MatchReview(
                    sender={"name": "Johan Visser", "company": "Visser Bouw"},
                    status="rejected",
                ),
                MatchReview(sender={"name": "K. Visser", "company": "Hamerslag"}, status="open"),
            ]
        )
    async with sessions() as session:
        labels = await review_labels(session)
        pairs = await labelled_pairs(session, labels)
    assert [label for _, label in labels] == [("contact_id", ids["jan"]), ("contact_id", None)]
    matches = [levels for levels, match in pairs if match]
    assert matches == [{"surname": "exact", "given": "initial", "company": "same", "email": "new"}]
    assert len(pairs) > 1
    before = MatchConfig().weights
    after = fit(pairs, start=before, rounds=200)
    # The confirmed pair's evidence counts for more, the rejected one's for less.
    assert after.of("given", "initial") > before.of("given", "initial")
    assert after.of("company", "differ") < before.of("company", "differ") + 0.01


async def test_a_colleague_with_another_surname_is_never_linked(sessions: Sessions) -> None:
    ids = await company(sessions)
    # Everything but the surname agrees: the shipped weights must not let that outweigh it.
    decision = await match(
        sessions,
        email="jan.bakker@hamerslag.nl",
        name="Jan Bakker",
        company="Hamerslag",
        city="Almere",
    )
    assert decision.decision != "linked"
    assert ids["jan"] not in [
        c.contact_id for c in decision.candidates if c.score >= MatchConfig().link
    ]


async def test_an_address_that_spells_the_name_tells_two_namesakes_apart(
    sessions: Sessions,
) -> None:
    ids = await company(sessions)
    # Jan and Piet Visser both work at Hamerslag; only the address says which one writes.
    decision = await match(
        sessions, name="Visser", company="Hamerslag", email="janvisser1970@gmail.com"
    )
    ranked = {c.contact_id: c for c in decision.candidates}
    assert decision.candidates[0].contact_id == ids["jan"]
    assert ranked[ids["jan"]].levels["local"] == "name"
    assert ranked[ids["piet"]].levels["local"] == "differ"
    assert ranked[ids["jan"]].score > ranked[ids["piet"]].score


async def test_a_surname_two_edits_off_is_a_slip_when_the_address_spells_it(
    sessions: Sessions,
) -> None:
    await company(sessions)
    noah = await colleague(sessions, "Noah", "Berry")
    sender = {"name": "Noah Bhbry", "company": "Hamerslag"}
    spelled = await match(sessions, email="n.berry80@ziggo.nl", **sender)
    unspelled = await match(sessions, email="nb@ziggo.nl", **sender)
    assert spelled.candidates[0].contact_id == noah
    assert spelled.candidates[0].levels["surname"] == "two_edits_address"
    assert noah not in [c.contact_id for c in unspelled.candidates if c.score >= 0.5]


async def test_a_company_domain_nobody_registered_finds_the_relation_it_spells(
    sessions: Sessions,
) -> None:
    await company(sessions)
    async with sessions() as session, session.begin():
        session.add(Relation(name="Prolen N.V.", normalized_name="prolen"))
    rees = await colleague(sessions, "Nicholas", "Rees", relation="Prolen N.V.")
    # Nobody at Prolen wrote from prolen.nl before, and the given name has a typo.
    decision = await match(sessions, name="Nichohlas Rees", email="nrees@prolen.nl")
    assert decision.candidates[0].contact_id == rees
    assert decision.candidates[0].levels["domain"] == "named"
    assert decision.candidates[0].levels["local"] == "name"
    elsewhere = await match(sessions, name="Nichohlas Rees", email="nrees@prolenbouw.nl")
    assert elsewhere.decision != "linked"
    assert all("domain" not in c.levels for c in elsewhere.candidates)


def test_a_refit_keeps_the_weights_of_the_fields_it_is_told_to_keep() -> None:
    start = MatchConfig().weights
    # Every labelled match shares the city, no non-match does: the fit would trust it fully.
    samples = [({"surname": "exact", "city": "same"}, True)] * 40 + [
        ({"surname": "exact"}, False)
    ] * 40
    free = fit(samples, start=start, rounds=300)
    kept = fit(samples, start=start, rounds=300, keep=("city",))
    assert free.of("city", "same") > start.of("city", "same") + 0.5
    assert kept.of("city", "same") == start.of("city", "same")
    assert kept.of("surname", "exact") != start.of("surname", "exact")
