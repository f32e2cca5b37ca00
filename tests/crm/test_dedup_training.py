"""What `switchboard duplicates train` learns from: merges, their undo, dismissed pairs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from crm import dedup
from crm.dedup import find_clusters, load_weights, refit, training_pairs
from crm.matcher import add_identities, identity_keys
from crm.models import Contact, DuplicateCandidate, Relation
from inbox.db import Sessions


async def visser_family(sessions: Sessions) -> dict[str, int]:
    """One company with Vissers: Jan twice (one as 'J.', with his own address), and others."""
    async with sessions() as session, session.begin():
        relation = Relation(name="Hamerslag B.V.", normalized_name="hamerslag")
        session.add(relation)
        await session.flush()
        people = {
            "jan": ("Jan", "Visser"),
            "j": ("J.", "Visser"),
            "joost": ("Joost", "Visser"),
            "jeroen": ("Jeroen", "Visser"),
            "piet": ("Piet", "Smit"),
            "p": ("P.", "Smit"),
        }
        ids = {}
        for key, (first, last) in people.items():
            contact = Contact(
                relation_id=relation.id,
                first_name=first,
                last_name=last,
                full_name=f"{first} {last}",
            )
            session.add(contact)
            await session.flush()
            ids[key] = contact.id
        await add_identities(session, identity_keys(["jv@hamerslag.nl"]), contact_id=ids["j"])
        return ids


async def test_merges_undone_merges_and_dismissals_are_the_decided_pairs(
    sessions: Sessions,
) -> None:
    ids = await visser_family(sessions)
    async with sessions() as session, session.begin():
        await dedup.merge(session, "contact", ids["j"], ids["jan"], None)
        undone = await dedup.merge(session, "contact", ids["p"], ids["piet"], None)
        await dedup.undo(session, undone.id)
        pair = sorted((ids["joost"], ids["jeroen"]))
        session.add(
            DuplicateCandidate(
                kind="contact",
                record_id=pair[0],
                other_id=pair[1],
                cluster=pair[0],
                score=0.8,
                status="dismissed",
            )
        )
    async with sessions() as session:
        decided, unlisted = await training_pairs(session, load_weights())
    same = {"given": "80", "surname": "100", "company": "100"}
    assert decided == [
        # J. Visser, read from the merge's snapshot with the address that moved to Jan
        (same, True),
        (same, False),  # P. Smit and Piet Smit: the merge was undone
        ({"given": "differ", "surname": "100", "company": "100"}, False),  # dismissed
    ]
    # The job's other pairs (Jan with Joost, Jan with Jeroen) score above its threshold: listed,
    # not taken as two people.
    assert unlisted == []


async def test_a_refit_from_decisions_changes_what_the_job_lists(
    sessions: Sessions, tmp_path: Path
) -> None:
    ids = await visser_family(sessions)
    async with sessions() as session, session.begin():
        assert await find_clusters(session) > 0
    async with sessions() as session:
        listed = set(
            (
                await session.execute(
                    select(DuplicateCandidate.record_id, DuplicateCandidate.other_id)
                )
            ).all()
        )
    # The shipped weights list the Vissers of one company with another given name.
    assert tuple(sorted((ids["joost"], ids["jeroen"]))) in listed
    shipped = load_weights()
    refitted = refit(
        [({"given": "differ", "surname": "100", "company": "100"}, False)] * 3
        + [({"given": "80", "surname": "100", "company": "100"}, True)] * 2,
        shipped,
    )
    (tmp_path / "w.json").write_text(refitted.to_json())
    async with sessions() as session, session.begin():
        await session.execute(DuplicateCandidate.__table__.delete())
        await find_clusters(session, load_weights(str(tmp_path / "w.json")))
    async with sessions() as session:
        relisted = set(
            (
                await session.execute(
                    select(DuplicateCandidate.record_id, DuplicateCandidate.other_id)
                )
            ).all()
        )
    assert tuple(sorted((ids["joost"], ids["jeroen"]))) not in relisted
    assert tuple(sorted((ids["j"], ids["jan"]))) in relisted
