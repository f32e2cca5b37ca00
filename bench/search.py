"""Search and matching speed at a million records.

Seeds 1,000,000 records (100k relations, 700k contacts with e-mail identities, 200k projects;
Dutch-looking names from a fixed seed) into a throw-away database with COPY, lets the triggers
build the search index (timed), then measures:

- search-as-you-type through the running service's GET /api/search (HTTP, one client) and the
  in-process function, for 1-, 2- and 3-word queries with and without a typo;
- the raw PostgreSQL lookup in the prefix index (`sb_prefixes(doc) @@ 'a & b & c'`, LIMIT 20)
  as the ceiling, for every shape (a typo'd word as typed);
- recall@5 and MRR on 'hamer jan almere'-style queries (company fragment, given name, project
  city) whose target contact is known;
- the matcher per message (match_sender) for senders built from seeded records with noise;
- the service's peak RSS while it served the searches.

    uv run python bench/search.py [--records 1000000] [--queries 300] [--database NAME] [--quick]

--database NAME keeps the seeded database under that name and reuses it on the next run (the
migrations are brought up to date first); --quick measures fewer queries and no matcher.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PG_ADMIN,
    RESULTS,
    Service,
    console_script,
    free_port,
    latency_ms,
    scratch_database,
    wait_http_ok,
)

SEED = 20261122
GIVEN = (
    "jan piet kees henk gerrit willem johan klaas dirk hans peter marco erik frank bas tom "
    "ruud rob mark paul maarten jeroen sander bram daan lars sem thijs joost wouter niels "
    "anna maria johanna cornelia elisabeth wilhelmina hendrika petra ingrid monique sandra "
    "linda esther marieke anouk femke lotte sanne iris lisa eva emma julia sophie noor fleur "
    "karin els ria annemieke margriet janneke inge astrid ilse yvonne"
).split()
SURNAMES = (
    "de jong|jansen|de vries|van den berg|van dijk|bakker|janssen|visser|smit|meijer|de boer|"
    "mulder|de groot|bos|vos|peters|hendriks|van leeuwen|dekker|brouwer|de wit|dijkstra|"
    "smits|de graaf|van der meer|van der linden|kok|jacobs|de haan|vermeulen|van den heuvel|"
    "van der veen|van den broek|de bruijn|de bruin|van der heijden|schouten|van beek|willems|"
    "van vliet|van de ven|hoekstra|maas|verhoeven|koster|van dam|van der wal|prins|blom|"
    "huisman|peeters|de jonge|kuipers|van veen|post|kuiper|veenstra|kramer|van den brink|"
    "scholten|van wijk|postma|martens|vink|de ruiter|timmermans|groen|gerritsen|jonker|"
    "van loon|boer|van der velde|willemsen|smeets|de lange|de vos|bosch|van dongen|schipper|"
    "de koning|van der laan|koning|van der velden|driessen|van doorn|hermans|evers|van den bosch|"
    "van der meulen|hofman|bosman|wolters|sanders|van der horst|mol|kuijpers|molenaar|van de pol|"
    "de leeuw|verbeek|hamer|ploeg|steenbergen|terpstra|wouters|zijlstra|rietveld|aalbers"
).split("|")
CITIES = (
    "amsterdam rotterdam utrecht eindhoven groningen tilburg almere breda nijmegen apeldoorn "
    "haarlem arnhem enschede amersfoort zaandam leiden zwolle zoetermeer leeuwarden maastricht "
    "dordrecht ede delft venlo deventer alkmaar helmond emmen hilversum heerlen oss roosendaal "
    "purmerend schiedam spijkenisse lelystad vlaardingen gouda hoorn almelo assen veenendaal "
    "zeist nieuwegein capelle hardenberg katwijk kampen harderwijk sneek meppel tiel"
).split()
SYLLABLES = (
    "ha mer slag bo ver kamp stad de lin bruk win tra fo lux ter ra nova bouw werk tech "
    "groen staal hout glas dak vloer licht mach in stal vast goed ge ma ken pro fix mo dul "
    "zon wind wa ter kust dijk polder veld berg dal hof laan plein brug toren haven molen"
).split()
FORMS = ("B.V.", "BV", "B.V.", "V.O.F.", "Holding B.V.", "N.V.", "", "Groep B.V.")
PROJECTS = ("Nieuwbouw", "Renovatie", "Verbouw", "Uitbreiding", "Onderhoud", "Herinrichting")
FREE = ("gmail.com", "hotmail.com", "outlook.com", "ziggo.nl", "kpnmail.nl", "live.nl")


def company_name(rng: random.Random) -> str:
    core = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    extra = rng.choice(("", "", " Bouw", " Installatie", " Techniek", " & Zn", " Groep"))
    form = rng.choice(FORMS)
    return f"{core.capitalize()}{extra} {form}".strip()


def domain_of(name: str, used: set[str], rng: random.Random) -> str:
    base = "".join(c for c in name.lower().split(" ")[0] if c.isalnum())
    domain = f"{base}.nl"
    while domain in used:
        domain = f"{base}{rng.randint(2, 999)}.nl"
    used.add(domain)
    return domain


def generate(records: int) -> dict[str, list[tuple[Any, ...]]]:
    """Relations, contacts, projects and identities: 10 % / 70 % / 20 % of `records`."""
    rng = random.Random(SEED)
    n_rel, n_con = records // 10, records * 7 // 10
    n_proj = records - n_rel - n_con
    relations, domains, contacts, identities, projects = [], [], [], [], []
    used: set[str] = set()
    for rid in range(1, n_rel + 1):
        name = company_name(rng)
        city = rng.choice(CITIES)
        domain = domain_of(name, used, rng)
        relations.append((rid, name, name.lower(), json.dumps([{"city": city.title()}])))
        domains.append(domain)
        identities.append(("domain", domain, domain, False, domain, None, rid))
    for cid in range(1, n_con + 1):
        rid = rng.randint(1, n_rel)
        first, last = rng.choice(GIVEN).title(), rng.choice(SURNAMES)
        last = " ".join(w if w in ("van", "de", "der", "den") else w.title() for w in last.split())
        city = rng.choice(CITIES).title()
        contacts.append((cid, rid, first, last, f"{first} {last}", city, f"EXT-{cid}"))
        local = f"{first}.{last.replace(' ', '')}".lower()
        if rng.random() < 0.8:
            address = f"{local}@{domains[rid - 1]}"
        else:
            address = f"{local}{rng.randint(1, 9999)}@{rng.choice(FREE)}"
        while address in used:  # two Inge de Groots at one company: inge.degroot2@
            name, at = address.split("@")
            address = f"{name}{rng.randint(2, 99)}@{at}"
        used.add(address)
        identities.append(("email", address, address, False, address, cid, None))
    for pid in range(1, n_proj + 1):
        rid = rng.randint(1, n_rel)
        city = rng.choice(CITIES).title()
        projects.append((pid, f"{rng.choice(PROJECTS)} {city}", rid, city))
    return {
        "relations": relations,
        "contacts": contacts,
        "projects": projects,
        "identities": identities,
    }


async def seed(dsn: str, data: dict[str, list[tuple[Any, ...]]]) -> dict[str, float]:
    """COPY in chunks: each chunk is one statement, so the index triggers run once per chunk."""
    conn = await asyncpg.connect(dsn)
    timings: dict[str, float] = {}
    try:
        # A bulk load: the index triggers are off during COPY and the index is built once, set
        # based, afterwards (the migration's backfill); the trigger path is what `switchboard
        # import` and every API write take, measured by bench/import_rows.py.
        for table in ("relations", "contacts", "projects", "identities"):
            await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        chunk = 100_000
        started = time.perf_counter()
        for i in range(0, len(data["relations"]), chunk):
            await conn.copy_records_to_table(
                "relations",
                records=[
                    (r[0], r[1], r[2], "prospect", r[3], "{}")
                    for r in data["relations"][i : i + chunk]
                ],
                columns=["id", "name", "normalized_name", "status", "addresses", "custom_fields"],
            )
        timings["relations_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(0, len(data["contacts"]), chunk):
            await conn.copy_records_to_table(
                "contacts",
                records=[(*c, "{}") for c in data["contacts"][i : i + chunk]],
                columns=[
                    "id", "relation_id", "first_name", "last_name", "full_name", "city",
                    "external_id", "custom_fields",
                ],
            )  # fmt: skip
        timings["contacts_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(0, len(data["identities"]), chunk):
            await conn.copy_records_to_table(
                "identities",
                records=data["identities"][i : i + chunk],
                columns=["kind", "value", "key", "shared", "raw", "contact_id", "relation_id"],
            )
        timings["identities_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(0, len(data["projects"]), chunk):
            await conn.copy_records_to_table(
                "projects",
                records=[(*p, "open", False) for p in data["projects"][i : i + chunk]],
                columns=["id", "name", "relation_id", "city", "status", "confidential"],
            )
        timings["projects_s"] = time.perf_counter() - started
        for table in ("relations", "contacts", "projects"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        for table in ("relations", "contacts", "projects", "identities"):
            await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        await conn.execute("ANALYZE")  # the planner must know the tables are not empty
        started = time.perf_counter()
        for kind in ("relations", "contacts", "projects"):
            await conn.execute(f"SELECT sb_refresh_{kind}(ARRAY(SELECT id FROM {kind}))")
            timings[f"index_{kind}_s"] = time.perf_counter() - started
        await conn.execute("SELECT sb_count_words()")  # as `switchboard import` does at its end
        timings["index_s"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        timings["documents"] = float(await conn.fetchval("SELECT count(*) FROM search_documents"))
        timings["words"] = float(await conn.fetchval("SELECT count(*) FROM search_words"))
    finally:
        await conn.close()
    return timings


def typo(word: str, rng: random.Random) -> str:
    """One edit inside the word (never the first letter): swap, drop, double or replace."""
    if len(word) < 5:
        return word
    i = rng.randint(1, len(word) - 2)
    kind = rng.choice(("swap", "drop", "double", "replace"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeiourstnl") + word[i + 1 :]


async def queries(dsn: str, count: int) -> list[dict[str, Any]]:
    """Queries built from seeded contacts whose relation has a project: the target is known."""
    rng = random.Random(SEED + 1)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT c.id, c.first_name, c.last_name, r.normalized_name, p.city AS project_city
               FROM contacts c JOIN relations r ON r.id = c.relation_id
               JOIN LATERAL (SELECT city FROM projects WHERE relation_id = r.id LIMIT 1) p ON true
               WHERE c.id % 97 = 0 ORDER BY c.id LIMIT $1""",
            count,
        )
    finally:
        await conn.close()
    out = []
    for row in rows:
        company = "".join(ch for ch in row["normalized_name"].split(" ")[0] if ch.isalnum())
        fragment = company[: rng.randint(4, min(7, len(company)))]
        surname = row["last_name"].split(" ")[-1].lower()
        given = row["first_name"].lower()
        city = row["project_city"].lower()
        one = surname[: max(4, len(surname) - 1)]
        two = f"{given} {surname[:4]}"
        three = f"{fragment} {given} {city}"
        for words, text in ((1, one), (2, two), (3, three)):
            out.append({"words": words, "typo": False, "q": text, "target": row["id"]})
            parts = text.split(" ")
            longest = max(range(len(parts)), key=lambda k: len(parts[k]))
            parts[longest] = typo(parts[longest], rng)
            out.append({"words": words, "typo": True, "q": " ".join(parts), "target": row["id"]})
    return out


async def warm(dsn: str) -> dict[str, float]:
    """Read the search table and its indexes once into the operating system's page cache.

    A server that answers searches all day has them in memory; this machine's memory reclaimer
    evicts the pages of a database left idle, and whichever query first needs a page would
    otherwise pay its read from disk. pg_prewarm in read mode where the extension is there,
    else a sequential read of the table (the indexes then warm as the queries go)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        relations = [
            "search_documents",
            "ix_search_documents_doc",
            "ix_search_documents_prefixes",
            "search_words",
            "ix_search_words_word_c",
        ]
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            blocks = sum(
                [await conn.fetchval("SELECT pg_prewarm($1, 'read')", r) for r in relations]
            )
        except asyncpg.PostgresError:
            await conn.fetchval("SELECT count(*) FROM search_documents")
            blocks = await conn.fetchval(
                "SELECT relpages FROM pg_class WHERE relname = 'search_documents'"
            )
    finally:
        await conn.close()
    return {"mb": blocks * 8 / 1024, "seconds": time.perf_counter() - started}


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {key: latency_ms(values) for key, values in samples.items()}


async def run_searches(qs: list[dict[str, Any]], base: str, token: str, dsn: str) -> dict[str, Any]:
    from crm.search import PREFIX, search
    from inbox.db import make_engine, make_sessions

    headers = {"Authorization": f"Bearer {token}"}
    http: dict[str, list[float]] = {}
    server: dict[str, list[float]] = {}  # the service's own time (its Server-Timing header)
    inproc: dict[str, list[float]] = {}
    raw: dict[str, list[float]] = {}
    ranks: list[int | None] = []
    engine = make_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"), pool_size=2)
    sessions = make_sessions(engine)
    conn = await asyncpg.connect(dsn)
    try:
        async with aiohttp.ClientSession() as client:
            for q in qs:  # warm-up: the first queries load the index pages
                async with client.get(
                    f"{base}/api/search", params={"q": q["q"]}, headers=headers
                ) as r:
                    await r.read()
                if qs.index(q) > 20:
                    break
            # The floor: the same HTTP stack, client and token check answering a route that
            # reads nothing more (GET /api/me): what any API call costs before its own work.
            floor = []
            for _ in range(200):
                started = time.perf_counter()
                async with client.get(f"{base}/api/me", headers=headers) as response:
                    await response.read()
                floor.append(time.perf_counter() - started)
            for n, q in enumerate(qs):
                key = f"{q['words']}w{' typo' if q['typo'] else ''}"

                async def over_http(q: dict[str, Any] = q, key: str = key) -> None:
                    started = time.perf_counter()
                    async with client.get(
                        f"{base}/api/search", params={"q": q["q"], "limit": "10"}, headers=headers
                    ) as response:
                        body = await response.json()
                    http.setdefault(key, []).append(time.perf_counter() - started)
                    app_ms = response.headers["Server-Timing"].removeprefix("app;dur=")
                    server.setdefault(key, []).append(float(app_ms) / 1000)
                    if q["words"] == 3:
                        ids = [h["id"] for h in body.get("contact", [])][:5]
                        ranks.append(ids.index(q["target"]) + 1 if q["target"] in ids else None)

                async def in_process(q: dict[str, Any] = q, key: str = key) -> None:
                    async with sessions() as session:
                        started = time.perf_counter()
                        await search(session, q["q"], limit=10)
                        inproc.setdefault(key, []).append(time.perf_counter() - started)

                async def raw_lookup(q: dict[str, Any] = q, key: str = key) -> None:
                    # The ceiling: the prefix index lookup alone, each word as typed.
                    tsq = " & ".join(w[:PREFIX] for w in q["q"].split())
                    started = time.perf_counter()
                    await conn.fetch(
                        "SELECT record_id FROM search_documents "
                        "WHERE sb_prefixes(doc) @@ CAST($1 AS tsquery) LIMIT 20",
                        tsq,
                    )
                    raw.setdefault(key, []).append(time.perf_counter() - started)

                # Whichever runs first reads the query's index and table pages into PostgreSQL's
                # buffers for the other two: the first place goes round, so each of the three
                # pays for it on a third of the queries.
                ways = [over_http, in_process, raw_lookup]
                for way in ways[n % 3 :] + ways[: n % 3]:
                    await way()
        ceiling = await recall_ceiling(
            [q for q in qs if q["words"] == 3 and not q["typo"]], sessions
        )
    finally:
        await conn.close()
        await engine.dispose()
    found = [r for r in ranks if r is not None]
    three = [q for q in qs if q["words"] == 3]
    return {
        "http": summarize(http),
        "server": summarize(server),
        "http_floor": latency_ms(floor),
        "in_process": summarize(inproc),
        "raw_postgres": summarize(raw),
        "recall_at_5_3w": len(found) / len(ranks) if ranks else float("nan"),
        "mrr_3w": sum(1 / r for r in found) / len(ranks) if ranks else float("nan"),
        "recall_ceiling_3w": ceiling,
        "queries": len(qs),
        "three_word_queries": len(three),
        "all": http,
    }


async def recall_ceiling(qs: list[dict[str, Any]], sessions: Any) -> float:
    """The recall@5 a ranker that knows only the query words can reach: every contact holding
    all the words is ranked (no pool) by its own-field hits; a target with five better is out
    of reach, one tied with n others is in the top five with the chance a fair draw gives it.
    (The seeded records have no activity to tell ties apart, and a query's city is the city of
    a project of the target's relation: contacts who live there hold it in their own fields.)"""
    from crm.search import KINDS, _matches, words

    chances = []
    bind = {"pool": 1_000_000, "ranked": 1_000_000}
    where = [f"AND d.kind IN ({', '.join(repr(k) for k in KINDS)})"]
    for q in qs:
        async with sessions() as session:
            rows = await _matches(session, [[w] for w in words(q["q"])], where, bind)
        own = {row.record_id: row.own for row in rows if row.kind == "contact"}
        if q["target"] not in own:
            chances.append(0.0)
            continue
        better = sum(1 for v in own.values() if v > own[q["target"]])
        tied = sum(1 for v in own.values() if v == own[q["target"]])
        chances.append(max(0.0, min(1.0, (5 - better) / tied)))
    return sum(chances) / len(chances) if chances else float("nan")


async def run_matcher(dsn: str, count: int) -> dict[str, Any]:
    """match_sender for senders made from seeded contacts (new address, name variants) and
    strangers; the decision counts say whether the speed came with sensible answers."""
    from crm.matcher import Sender, match_sender
    from inbox.db import make_engine, make_sessions

    rng = random.Random(SEED + 2)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT c.id, c.first_name, c.last_name, r.name AS relation,
                      (SELECT value FROM identities WHERE kind = 'domain' AND relation_id = r.id) AS domain
               FROM contacts c JOIN relations r ON r.id = c.relation_id
               WHERE c.id % 89 = 0 ORDER BY c.id LIMIT $1""",
            count,
        )
    finally:
        await conn.close()
    senders: list[tuple[Sender, int | None]] = []
    for row in rows:
        style = rng.choice(("initial", "full", "company"))
        name = (
            f"{row['first_name'][0]}. {row['last_name']}"
            if style == "initial"
            else f"{row['first_name']} {row['last_name']}"
        )
        senders.append(
            (
                Sender(
                    email=f"{row['first_name'][0].lower()}.{row['last_name'].split()[-1].lower()}@{row['domain']}",
                    name=name,
                    company=row["relation"] if style == "company" else None,
                ),
                row["id"],
            )
        )
    for i in range(len(rows) // 4):  # strangers
        senders.append(
            (Sender(email=f"onbekend{i}@{rng.choice(FREE)}", name=f"Onbekende Persoon{i}"), None)
        )
    engine = make_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"), pool_size=2)
    sessions = make_sessions(engine)
    times: list[float] = []
    outcome: dict[str, int] = {}
    try:
        async with sessions() as session:
            for sender, _ in senders[:20]:
                await match_sender(session, sender)
            for sender, target in senders:
                started = time.perf_counter()
                decision = await match_sender(session, sender)
                times.append(time.perf_counter() - started)
                await session.rollback()
                if target is None:
                    label = (
                        "stranger_linked"
                        if decision.decision == "linked"
                        else "stranger_not_linked"
                    )
                elif decision.decision == "linked":
                    label = "linked_right" if decision.contact_id == target else "linked_wrong"
                else:
                    label = decision.decision
                outcome[label] = outcome.get(label, 0) + 1
    finally:
        await engine.dispose()
    return {"latency": latency_ms(times), "senders": len(senders), "outcome": outcome}


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def admin_token(dsn: str) -> str:
    from sqlalchemy import select

    from crm.models import User
    from inbox.api.auth import create_api_token
    from inbox.db import make_engine, make_sessions

    engine = make_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"), pool_size=1)
    try:
        async with make_sessions(engine)() as session, session.begin():
            email = "bench@switchboard.test"
            user = await session.scalar(select(User).where(User.email == email))
            if user is None:  # (a kept database has it from the last run)
                user = User(email=email, name="Bench", role="admin")
                session.add(user)
                await session.flush()
            return await create_api_token(session, user.id, "bench", "api", None)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def kept_database(name: str) -> AsyncIterator[str]:
    """`name` on the machine's PostgreSQL, created when missing and never dropped."""
    admin = await asyncpg.connect(f"{PG_ADMIN}/postgres", timeout=10)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"{PG_ADMIN}/{name}"


async def seeded_records(dsn: str) -> int | None:
    """The size of the fixture a kept database holds (None: not seeded to the end)."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('bench_fixture') IS NOT NULL"):
            return None
        return int(await conn.fetchval("SELECT records FROM bench_fixture"))
    finally:
        await conn.close()


async def mark_seeded(dsn: str, records: int, seed_info: dict[str, float]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_fixture (records int NOT NULL, seed jsonb NOT NULL)")
        await conn.execute(
            "INSERT INTO bench_fixture VALUES ($1, $2::jsonb)", records, json.dumps(seed_info)
        )
    finally:
        await conn.close()


async def fixture_seed(dsn: str) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        info = json.loads(await conn.fetchval("SELECT seed::text FROM bench_fixture"))
        info["documents"] = float(await conn.fetchval("SELECT count(*) FROM search_documents"))
        info["words"] = float(await conn.fetchval("SELECT count(*) FROM search_words"))
        return {k: float(v) for k, v in info.items()}
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from inbox.db import upgrade_async

    report: dict[str, Any] = {"records": args.records}
    database = (
        kept_database(args.database)
        if args.database
        else scratch_database("switchboard_bench_search")
    )
    async with database as dsn:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://")
        await upgrade_async(url)
        kept = await seeded_records(dsn) if args.database else None
        if kept is not None and kept != args.records:
            raise SystemExit(f"{args.database} holds {kept:,} records, not {args.records:,}")
        if kept is None:
            started = time.perf_counter()
            data = generate(args.records)
            report["generate_s"] = time.perf_counter() - started
            started = time.perf_counter()
            report["seed"] = await seed(dsn, data)
            report["seed"]["total_s"] = time.perf_counter() - started
            del data
            if args.database:
                await mark_seeded(dsn, args.records, report["seed"])
            print(
                f"seeded {args.records:,} records in {report['seed']['total_s']:.0f} s", flush=True
            )
        else:
            report["seed"] = await fixture_seed(dsn)
            print(f"reusing {args.database} ({kept:,} records)", flush=True)
        token = await admin_token(dsn)
        port = free_port()
        env = os.environ | {"DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:6379/15"}
        service = Service(
            "web",
            [console_script("switchboard"), "web", "--port", str(port)],
            env,
            RESULTS / "search-web.log",
        ).start()
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_http_ok(f"{base}/healthz", 60, service)
            qs = await queries(dsn, args.queries)
            report["warm"] = await warm(dsn)
            report["search"] = await run_searches(qs, base, token, dsn)
            report["service_peak_rss_mb"] = peak_rss_mb(service.pid)
        finally:
            service.stop()
        if not args.quick:
            report["match"] = await run_matcher(dsn, args.queries)
    return report


def render(report: dict[str, Any]) -> None:
    s = report["search"]
    print(f"\n# Search and matching at {report['records']:,} records")
    seed_info = report["seed"]
    print(
        f"seed: {seed_info['total_s']:.0f} s (COPY {seed_info['relations_s'] + seed_info['contacts_s'] + seed_info['identities_s'] + seed_info['projects_s']:.0f} s, "
        f"index build {seed_info['index_s']:.0f} s); "
        f"{int(seed_info['documents']):,} search documents, {int(seed_info['words']):,} words"
    )
    if w := report.get("warm"):
        print(
            f"warmed: the search table and indexes read into the page cache first "
            f"({w['mb']:,.0f} MB in {w['seconds']:.1f} s)"
        )
    print("\ntarget (HTTP with auth, every shape): p50 <= 5 ms, p95 <= 20 ms; recall@5 >= 0.95")
    print(
        "\n| query | HTTP p50 | HTTP p95 | server p50 | in-process p50 | in-process p95 "
        "| raw PG p50 | raw PG p95 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted(s["http"]):
        h, i = s["http"][key], s["in_process"][key]
        r = s["raw_postgres"].get(key)
        raw_text = f"{r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms" if r else "- | -"
        app = s.get("server", {}).get(key)
        app_text = f"{app['p50_ms']:.1f} ms" if app else "-"
        print(
            f"| {key} | {h['p50_ms']:.1f} ms | {h['p95_ms']:.1f} ms | {app_text} "
            f"| {i['p50_ms']:.1f} ms | {i['p95_ms']:.1f} ms | {raw_text} |"
        )
    if f := s.get("http_floor"):
        print(
            f"| floor: GET /api/me (HTTP and token check, nothing searched) | "
            f"{f['p50_ms']:.1f} ms | {f['p95_ms']:.1f} ms | - | - | - | - | - |"
        )
    print(
        "server: the service's own time per search (Server-Timing: token check, search, "
        "answer); HTTP adds the client and the loopback round trip"
    )
    print(
        f"\nrecall@5 on 3-word queries (with and without typo): {s['recall_at_5_3w']:.3f} "
        f"(target >= 0.95), MRR {s['mrr_3w']:.3f}; the ceiling for a ranker that knows only "
        f"the query words (ties drawn fairly): {s['recall_ceiling_3w']:.3f}"
    )
    if m := report.get("match"):
        lat = m["latency"]
        print(
            f"matcher per message: p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, "
            f"p99 {lat['p99_ms']:.1f} ms over {m['senders']} senders; outcomes {m['outcome']}"
        )
    print(f"service peak RSS: {report['service_peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--database", help="keep the seeded database under this name, reuse it")
    parser.add_argument("--quick", action="store_true", help="100 queries, no matcher")
    args = parser.parse_args()
    if args.quick:
        args.queries = min(args.queries, 100)
    result = asyncio.run(main(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = dict(result)
    out["search"] = {k: v for k, v in result["search"].items() if k != "all"}
    (RESULTS / "search.json").write_text(json.dumps(out, indent=2, default=str))
    render(result)
