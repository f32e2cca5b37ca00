"""Search-as-you-type: every word by prefix across linked records, folded, scoped, and safe."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import Engine

from crm import search as crm_search
from crm.models import (
    Activity,
    Contact,
    Lead,
    Project,
    Relation,
    SearchDocument,
    Team,
    TeamMember,
    User,
)
from crm.search import close_words
from inbox.api.auth import create_api_token
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Conversation

Client = TestClient[Any, Any]


async def seed(sessions: Sessions) -> dict[str, Any]:
    async with sessions() as session, session.begin():
        agent = User(email="ank@example.nl", name="Ank", role="agent")
        team, other = Team(name="Verkoop"), Team(name="Service")
        session.add_all([agent, team, other])
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=agent.id))
        hamerslag = Relation(
            name="Hamerslag B.V.", normalized_name="hamerslag", addresses=[{"city": "Utrecht"}]
        )
        hammer = Relation(
            name="Hammer & Zn", normalized_name="hammer", addresses=[{"city": "Almere"}]
        )
        session.add_all([hamerslag, hammer])
        await session.flush()
        jan = Contact(
            relation_id=hamerslag.id, first_name="Jan", last_name="Visser", full_name="Jan Visser"
        )
        janneke = Contact(
            relation_id=hammer.id, first_name="Janneke", last_name="Bos", full_name="Janneke Bos"
        )
        piet = Contact(
            relation_id=hamerslag.id, first_name="Piet", last_name="Smit", full_name="Piet Smit"
        )
        session.add_all([jan, janneke, piet])
        session.add(Project(name="Nieuwbouw De Schelp", relation_id=hamerslag.id, city="Almere"))
        session.add(Lead(name="Émile Dürr", company="Café Zoë"))
        channel = await add_channel(session, "webform", "W", {})
        session.add(
            Conversation(
                channel_id=channel.id, subject="Hamerslag levering Almere", team_id=team.id
            )
        )
        session.add(
            Conversation(channel_id=channel.id, subject="Hamerslag klacht", team_id=other.id)
        )
        await session.flush()
        token = await create_api_token(session, agent.id, "t")
    return {"auth": {"Authorization": f"Bearer {token}"}, "jan": jan}


async def test_hamer_jan_almere_finds_jan_visser_first(client: Client, sessions: Sessions) -> None:
    world = await seed(sessions)
    data = await (
        await client.get("/api/search", params={"q": "hamer jan almere"}, headers=world["auth"])
    ).json()
    contacts = data["contact"]
    assert contacts[0]["title"] == "Jan Visser"
    # Not Janneke Bos at Hammer & Zn in Almere: "hamer" is no prefix of "hammer" (no typo match yet).
    assert {c["title"] for c in contacts} == {"Jan Visser"}
    assert "relation:hamer" in contacts[0]["matched"] and "project:almere" in contacts[0]["matched"]
    assert "conversation" not in data  # no conversation has all three words
    scoped = await (
        await client.get("/api/search", params={"q": "hamerslag"}, headers=world["auth"])
    ).json()
    # The agent's team's conversation, not the other team's "Hamerslag klacht".
    assert [c["title"] for c in scoped["conversation"]] == ["Hamerslag levering Almere"]


async def test_diacritics_and_case_are_folded(client: Client, sessions: Sessions) -> None:
    world = await seed(sessions)
    data = await (
        await client.get("/api/search", params={"q": "EMILE cafe zo"}, headers=world["auth"])
    ).json()
    assert [x["title"] for x in data["lead"]] == ["Émile Dürr"]


async def test_bad_queries_get_an_empty_result_or_a_400(client: Client, sessions: Sessions) -> None:
    world = await seed(sessions)
    one_letter = await client.get("/api/search", params={"q": "j"}, headers=world["auth"])
    assert (one_letter.status, await one_letter.json()) == (200, {})
    initial = await (
        await client.get("/api/search", params={"q": "j visser"}, headers=world["auth"])
    ).json()
    assert [c["title"] for c in initial["contact"]] == ["Jan Visser"]
    for q in ("", "   ", "'; DROP TABLE contacts; --", ".*(", "\x00\x07", "\ud800abc"):
        response = await client.get("/api/search", params={"q": q}, headers=world["auth"])
        assert response.status == 200, q
    long = await client.get("/api/search", params={"q": "a " * 500}, headers=world["auth"])
    assert long.status == 400 and (await long.json())["error"]["code"] == "bad_query"
    huge = await client.get("/api/search", params={"q": "a" * 10_000}, headers=world["auth"])
    assert huge.status == 400  # refused by the HTTP layer: the request line is too long
    async with sessions() as session:
        assert (await session.scalars(select(Contact))).first() is not None  # still there


async def test_one_typo_per_word_still_finds_it(client: Client, sessions: Sessions) -> None:
    world = await seed(sessions)
    data = await (
        await client.get("/api/search", params={"q": "hamreslag visser"}, headers=world["auth"])
    ).json()
    assert data["contact"][0]["title"] == "Jan Visser"
    nothing = await (
        await client.get("/api/search", params={"q": "xyzzyq"}, headers=world["auth"])
    ).json()
    assert nothing == {}


async def test_own_fields_rank_before_linked_records_then_newest(
    client: Client, sessions: Sessions
) -> None:
    world = await seed(sessions)
    async with sessions() as session, session.begin():
        almere = Relation(name="Almere Bouw B.V.", normalized_name="almere bouw")
        session.add(almere)
        await session.flush()
        # Jan de Wit's company is called Almere (his own field); Jan Visser only has a project
        # there (a linked record), and Jan Bos, newer, too.
        session.add(
            Contact(
                relation_id=almere.id, first_name="Jan", last_name="de Wit", full_name="Jan de Wit"
            )
        )
        await session.flush()
        hamerslag = (
            await session.scalars(select(Relation).where(Relation.name.like("Ham%s%")))
        ).one()
        session.add(
            Contact(
                relation_id=hamerslag.id, first_name="Jan", last_name="Bos", full_name="Jan Bos"
            )
        )
    data = await (
        await client.get("/api/search", params={"q": "jan almere"}, headers=world["auth"])
    ).json()
    # (Janneke Bos's company is in Almere: a linked record's word, and 'jan' is not her whole name.)
    titles = [c["title"] for c in data["contact"]]
    assert titles == ["Jan de Wit", "Jan Bos", "Jan Visser", "Janneke Bos"]


async def test_a_typo_widens_only_the_word_that_starts_nothing(
    client: Client, sessions: Sessions
) -> None:
    world = await seed(sessions)
    async with sessions() as session:
        assert await close_words(session, ["visser", "hamreslag"]) == [
            ["visser"],
            ["hamreslag", "hamerslag"],
        ]
    data = await (
        await client.get("/api/search", params={"q": "pite hamreslag"}, headers=world["auth"])
    ).json()
    assert [c["title"] for c in data["contact"]] == ["Piet Smit"]


async def test_recent_activity_breaks_a_tie_in_own_field_hits(
    client: Client, sessions: Sessions
) -> None:
    world = await seed(sessions)
    async with sessions() as session, session.begin():
        hamerslag = (
            await session.scalars(select(Relation).where(Relation.name.like("Ham%s%")))
        ).one()
        # Jan Bos is newer than Jan Visser: with no activity he comes first (the newest record).
        bos = Contact(
            relation_id=hamerslag.id, first_name="Jan", last_name="Bos", full_name="Jan Bos"
        )
        session.add(bos)
    found = await (
        await client.get("/api/search", params={"q": "jan hamer"}, headers=world["auth"])
    ).json()
    assert [c["title"] for c in found["contact"]] == ["Jan Bos", "Jan Visser"]
    async with sessions() as session, session.begin():
        # A call with Jan Visser last week, a note on Jan Bos a month ago: Visser is the one.
        now = datetime.now(UTC)
        session.add_all(
            [
                Activity(kind="call", contact_id=world["jan"].id, occurred_at=now - timedelta(7)),
                Activity(kind="note", contact_id=bos.id, occurred_at=now - timedelta(30)),
            ]
        )
    found = await (
        await client.get("/api/search", params={"q": "jan hamer"}, headers=world["auth"])
    ).json()
    assert [c["title"] for c in found["contact"]] == ["Jan Visser", "Jan Bos"]
    async with sessions() as session, session.begin():
        # An older activity (imported history) leaves the latest one in place.
        session.add(
            Activity(kind="email", contact_id=world["jan"].id, occurred_at=now - timedelta(400))
        )
        await session.execute(
            update(Activity)
            .where(Activity.contact_id == bos.id)
            .values(occurred_at=now - timedelta(1))
        )
    found = await (
        await client.get("/api/search", params={"q": "jan hamer"}, headers=world["auth"])
    ).json()
    assert [c["title"] for c in found["contact"]] == ["Jan Bos", "Jan Visser"]
    async with sessions() as session:
        latest = await session.scalar(
            select(SearchDocument.active_at).where(
                SearchDocument.kind == "relation", SearchDocument.record_id == hamerslag.id
            )
        )
    assert latest is None  # the activities named the contacts only


async def test_a_typo_is_widened_to_the_word_one_edit_away_among_many_alike(
    client: Client, sessions: Sessions
) -> None:
    world = await seed(sessions)
    async with sessions() as session, session.begin():
        # 'staloh' is 'stalho' with two letters swapped; 150 company words start with 'stalo'
        # and share more trigrams with 'staloh' than 'stalhout' does (none of them is one edit).
        alike = [f"Stalo{a}{b}x B.V." for a in "abcdefgijklmn" for b in "abcdefgijklm"][:150]
        session.add_all(Relation(name=name, normalized_name=name.lower()) for name in alike)
        stalhout = Relation(name="Stalhout B.V.", normalized_name="stalhout")
        session.add(stalhout)
        await session.flush()
        names = {"first_name": "Fleur", "last_name": "Visser", "full_name": "Fleur Visser"}
        session.add(Contact(relation_id=stalhout.id, **names))
    async with sessions() as session:
        widened = await close_words(session, ["staloh", "fleur"])
    assert any("stalhout".startswith(w) for w in widened[0][1:]) and widened[1] == ["fleur"]
    data = await (
        await client.get("/api/search", params={"q": "staloh fleur"}, headers=world["auth"])
    ).json()
    assert [c["title"] for c in data["contact"]] == ["Fleur Visser"]


PLAN_QUERIES = [
    "hamer jan almere",
    "jan",
    "visser",
    "hamerslag",
    "hamerslag almere",
    "nieuwbouw schelp",
    "hamreslag",
    "emile zoe",
    "ja vi",
]


async def every_answer(sessions: Sessions) -> list[dict[str, list[tuple[str, int, float]]]]:
    out = []
    for q in PLAN_QUERIES:
        async with sessions() as session:
            found = await crm_search.search(session, q)
        out.append({k: [(h.type, h.id, h.score) for h in hits] for k, hits in found.items()})
    return out


async def test_every_plan_finds_the_same(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the table (common words), the prefix index, and the whole-word index for a rare
    long word are three ways to one answer."""
    await seed(sessions)
    through_the_prefix_index = await every_answer(sessions)
    assert through_the_prefix_index[0]["contact"][0][1] and through_the_prefix_index[6]
    monkeypatch.setattr(crm_search, "SCAN_DOCS", 0)  # every query a read of the table
    assert await every_answer(sessions) == through_the_prefix_index
    monkeypatch.setattr(crm_search, "SCAN_DOCS", 10**9)
    monkeypatch.setattr(crm_search, "RARE_LONG", 10**9)  # long words by their own entries
    assert await every_answer(sessions) == through_the_prefix_index


async def test_a_word_newer_than_the_cached_counts_is_found(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The word counts a process keeps steer plans only: a record added after they were loaded
    is found at once, by a long word and by a short one."""
    await seed(sessions)
    monkeypatch.setattr(crm_search, "VOCABULARY_TTL", 3600.0)
    crm_search._counts.clear()
    async with sessions() as session:
        assert await crm_search.search(session, "jan") != {}  # the counts are loaded now
    async with sessions() as session, session.begin():
        names = {"first_name": "Quirijn", "last_name": "Zwartenkot", "full_name": "Q Zwartenkot"}
        session.add(Contact(**names))
        # One edit from Piet Smit's surname: the counts take it for a typo of 'smit', but the
        # record that holds it as typed is the answer, not the records of the word it is near.
        session.add(Contact(first_name="Ada", last_name="Smitt", full_name="Ada Smitt"))
    for q, title in [
        ("zwartenkot", "Q Zwartenkot"),
        ("quirijn zwartenkot", "Q Zwartenkot"),
        ("zwarte qu", "Q Zwartenkot"),
        ("smitt", "Ada Smitt"),
    ]:
        async with sessions() as session:
            found = await crm_search.search(session, q)
        assert [h.title for h in found.get("contact", [])] == [title], q
    crm_search._counts.clear()


async def test_a_typo_is_searched_with_its_widening_in_one_statement(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word that starts no indexed word sends the query as typed and the widened one
    together: one round trip on the keystroke, not two."""
    await seed(sessions)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "search_documents d" in statement:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        async with sessions() as session:
            found = await crm_search.search(session, "pite hamreslag")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert [h.title for h in found["contact"]] == ["Piet Smit"]
    assert "relation:hamerslag" in found["contact"][0].matched  # ranked by the widened words
    assert len(statements) == 1


async def test_a_small_limit_keeps_the_best_of_each_kind(sessions: Sessions) -> None:
    """Rows that cannot reach a kind's best `limit` are not ranked: the best stay the best."""
    await seed(sessions)
    async with sessions() as session, session.begin():
        relation = Relation(name="Janssen Bouw", normalized_name="janssen bouw")
        session.add(relation)
        await session.flush()
        session.add_all(
            Contact(
                relation_id=relation.id, first_name="Jan", last_name=f"Vos{i}", full_name="Jan Vos"
            )
            for i in range(6)
        )
    for q in [*PLAN_QUERIES, "jan vos", "janssen jan"]:
        async with sessions() as session:
            every = await crm_search.search(session, q, limit=50)
            best = await crm_search.search(session, q, limit=1)
        assert best == {kind: hits[:1] for kind, hits in every.items()}, q


async def test_a_documents_prefixes_are_its_words_first_two_to_six_letters(
    sessions: Sessions,
) -> None:
    """sb_prefixes (the prefix index's expression): each prefix once, none of one letter."""
    async with sessions() as session:
        prefixes = await session.scalar(
            text("SELECT sb_prefixes(to_tsvector('simple', 'jan hamerslag a de jan'))::text")
        )
        empty = await session.scalar(text("SELECT sb_prefixes(''::tsvector)::text"))
    assert prefixes == "'de' 'ha' 'ham' 'hame' 'hamer' 'hamers' 'ja' 'jan'"
    assert empty == ""


async def test_old_word_counts_serve_while_new_ones_load_in_the_background(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(sessions)
    monkeypatch.setattr(crm_search, "VOCABULARY_TTL", 3600.0)
    crm_search._counts.clear()
    async with sessions() as session:
        first = await crm_search.word_counts(session)
    assert first.docs(["visser"]) >= 1 and first.docs(["zwartenkot"]) == 0
    async with sessions() as session, session.begin():
        session.add(Contact(first_name="Quirijn", last_name="Zwartenkot", full_name="Q Z"))
    [key] = crm_search._counts
    crm_search._counts[key] = (time.monotonic() - 7200, first)  # an hour past its time
    async with sessions() as session:
        assert await crm_search.word_counts(session) is first  # no request waits for the load
    await crm_search._refreshing[key]
    async with sessions() as session:
        assert (await crm_search.word_counts(session)).docs(["zwartenkot"]) == 1
    crm_search._counts.clear()


async def test_every_connection_reads_tables_from_their_start(sessions: Sessions) -> None:
    """A common word reads the documents in table order: with synchronized scans a big table's
    read starts wherever another read of it has got to, and the same query would answer with
    other records each time."""
    for _ in range(2):  # a connection back from the pool keeps it
        async with sessions() as session:
            assert await session.scalar(text("SHOW synchronize_seqscans")) == "off"
            await session.rollback()
