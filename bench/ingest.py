"""Ingest benchmark: how many webhook deliveries the web server accepts (journal + commit + 202)
beside the two ceilings measured in the same run (a one-row INSERT + COMMIT, a bare aiohttp
handler), their latency at a fixed offered rate, and how fast one and two worker processes turn a
realistic mix of deliveries into CRM rows, with the lag while deliveries keep flowing.

    uv run python bench/ingest.py [--quick] [--web-processes 2] [--requests N]
                                  [--concurrency C] [--backlog N] [--profile]

What it does (all on loopback, every wait bounded, everything it starts is stopped):
  * a fresh database `switchboard_bench_<random>` on the machine's PostgreSQL (127.0.0.1:5432,
    user postgres), dropped at the end; Redis db 13 on 127.0.0.1:6379, flushed first and last;
  * `switchboard channels add webform|telephony|whatsapp|webchat --json` for the channels (Twilio
    dialect) and
    `switchboard import` of a generated CSV for the CRM (relations, contacts with an e-mail
    address and a mobile number each);
  * `switchboard web --processes N` and `switchboard worker` as real subprocesses (the project's
    console scripts in this virtualenv, which is what `uv run switchboard …` runs); no worker
    runs before the end-to-end phases, so the accept phases have the machine to themselves;
  * the load generator runs here: aiohttp with a connector limited to the concurrency, bodies
    and signatures built before the clock starts, every body unique (submission id, CallSid).

Phases:
  (a) the PostgreSQL ceiling: one-row INSERT … ON CONFLICT … RETURNING, each its own
      transaction, asyncpg, at the same concurrency, into a journal-shaped table (before the
      services start, and again at the end);
  (b) the HTTP ceiling: a minimal aiohttp app answering 202 to every POST (it reads the body),
      served by the project's own multi-process server function with the same number of
      processes, driven by the same load generator with the same requests;
  (c) web form, Twilio, WhatsApp (Cloud API, X-Hub-Signature-256) and web chat (the widget's
      POST /webchat/<id>/messages with a visitor token and the site's Origin) deliveries accepted,
      closed loop at concurrency C; then the web form's and Twilio's latency
      at a fixed 1,000 deliveries/s, open loop, counted from each request's scheduled send time
      (no coordinated omission);
  (d) end to end, with 1 and then 2 worker processes: a backlog of the mix (5,000 events quick,
      20,000 full) is journaled through the webhooks with no worker running, the workers start
      and drain it to processed or failed; the rate is counted from the first event done to the
      last (the workers' start-up apart, and printed), for at most 15 s (full: 75 s). Then
      deliveries of the mix flow at a fixed 500/s for 10 s with the workers running, and the lag
      is processed_at − received_at of those events (the database's clock; processed_at is when
      the worker's batch started; an event still pending 10 s (full: 15 s) after the last send
      counts with its age) and, as a check, the time from received_at until this bench first
      saw the event done (committed), polled every 0.2 s. The workers get SIGTERM, and SIGKILL
      5 s later.

The mix of (d): 30 % from known senders by exact identity (a seeded contact's e-mail address on
the web form, or their mobile number calling), 30 % fuzzy-matchable (a seeded contact's name,
company and city on the web form with an e-mail address the CRM does not know), 40 % unknown
(new people, web form or call); about 30 % of the messages come from a sender who sent one
before (a few send many). Earlier phases' pending events are set aside as `ignored` first.

--profile also records the web server (closed-loop phases, all its processes) and the worker
(the one-worker drain) with py-spy, when it is installed (`uv tool install py-spy`), and prints
the top frames; the figures of a profiled run are a little lower than those of a plain one.

CPU use is printed per phase and per process (the web server's forked processes each), with what
other sessions on the machine used meanwhile (`not this bench`: PostgreSQL backends of other
databases, everything else unattributed). Each service's log is scanned for errors afterwards.
Results are printed and written to bench/results/ingest.json; the services' logs and the seeded
CSV are in bench/results/ingest-logs/.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS,
    ROOT,
    CpuMeter,
    Profiler,
    Service,
    console_script,
    cpu_text,
    free_port,
    latency_ms,
    percentile,
    pg_facts,
    run_json,
    scratch_database,
    top_frames,
    wait_http_ok,
)
from bench.search import CITIES, FREE, GIVEN, SURNAMES, company_name
from channels.signatures import hmac_hex
from channels.telephony import twilio_signature
from channels.webchat import issue_token

# bench/inbox.py uses 14; two benchmarks at once must not flush each other
REDIS_DB = int(os.environ.get("SWITCHBOARD_BENCH_REDIS_DB", "13"))
REDIS = f"redis://127.0.0.1:6379/{REDIS_DB}"
TWILIO_TOKEN = "bench-" + uuid.uuid4().hex
ACCOUNT_SID = "AC" + uuid.uuid4().hex
WHATSAPP_SECRET = "bench-" + uuid.uuid4().hex
WHATSAPP_NUMBER_ID = "106540352242922"
CHAT_SITE = "https://www.bench.example"
ACCEPTED = ("webform", "twilio", "whatsapp", "webchat")  # the kinds of (b) and (c)
OUR_NUMBER = "+31201234567"
TARGETS = {
    "accept_per_s": 2000,
    "accept_over_ceiling": 0.5,
    "p99_ms_at_1000": 25,
    "e2e_per_s_one_worker": 1000,
    "lag_p99_s_at_500": 2.0,
}
MIX = {"known": 0.3, "fuzzy": 0.3, "unknown": 0.4}
WORKER_STOP_S = 5.0  # then SIGKILL: the bench's phases must not wait on a worker that hangs
DISTINCT_SHARE = 0.7  # distinct senders per message of a category: 30 % are repeat messages
CRM_TABLES = (
    "conversations",
    "messages",
    "leads",
    "activities",
    "tasks",
    "match_reviews",
    "identities",
)

Request = tuple[str, bytes, dict[str, str]]


# ---------------------------------------------------------------------------------------------
# Realistic, unique deliveries

VOORNAMEN = (
    "Jan Pieter Kees Henk Sanne Anouk Fleur Daan Bram Lotte Eva Thijs Ruben Femke Joost Marieke "
    "Wouter Inge Bas Lieke Sem Noor Maarten Ilse Gert-Jan Annemiek Rik Mirjam Hans Ellen"
).split()
ACHTERNAMEN = (
    "de Vries|Jansen|van den Berg|Bakker|Visser|Smit|Meijer|de Boer|Mulder|de Groot|Bos|Vos|"
    "Peters|Hendriks|van Leeuwen|Dekker|Brouwer|de Wit|Dijkstra|Smits|de Graaf|van der Meer|"
    "van der Linden|Kok|Jacobs|de Haan|Vermeulen|van den Heuvel|van der Veen|van Dijk"
).split("|")
BEDRIJVEN = (
    "Hamerslag B.V.|Bouwbedrijf Hendriks|Installatietechniek Noord B.V.|Kozijnfabriek Twente|"
    "Dakdekkersbedrijf De Wit V.O.F.|Transport Van Dijk B.V.|Groothandel Brouwer|"
    "Schildersbedrijf Kok|Tuinarchitectuur Bos|Administratiekantoor Meijer|Stichting De Linde|"
    "Garage Smits|Bakkerij Mulder|Zorggroep Vermeulen|Elektro Dekker B.V.||"
).split("|")
PLAATSEN = (
    "Amsterdam Rotterdam Utrecht Eindhoven Groningen Tilburg Almere Breda Nijmegen Apeldoorn "
    "Haarlem Arnhem Enschede Amersfoort Zwolle Leiden Maastricht Dordrecht Zoetermeer Deventer"
).split()
BERICHTEN = (
    "Graag ontvang ik een offerte voor {n} nieuwe kozijnen, inclusief montage.",
    "Wij willen graag een afspraak maken voor een adviesgesprek over zonnepanelen.",
    "Mijn bestelling {n} is nog niet geleverd. Kunt u mij laten weten wanneer deze komt?",
    "Kunt u mij terugbellen over de aanvraag voor onderhoud van de cv-ketel?",
    "Wat zijn de openingstijden van de showroom in {plaats}?",
    "Ik heb een klacht over de factuur van vorige maand: het bedrag klopt niet.",
    "Wij zoeken een leverancier voor {n} werkplekken op ons kantoor in {plaats}.",
    "Is het mogelijk om de levering te verplaatsen naar volgende week dinsdag?",
)
PHONE_FORMATS = (
    lambda d: f"06-{d}",
    lambda d: f"+31 6 {d[:4]} {d[4:]}",
    lambda d: f"0031 6{d}",
    lambda d: f"06 {d[:2]} {d[2:4]} {d[4:6]} {d[6:]}",
)
CALL_STATUSES = ("no-answer", "completed", "completed", "busy", "no-answer", "completed")


@dataclass(frozen=True)
class Person:
    naam: str
    bedrijf: str
    email: str | None
    mobiel: str | None  # 8 digits after 06
    plaats: str


def person(rng: random.Random, i: int, run: str) -> Person:
    """For the accept phases: mostly new senders; one in five is one of 500 returning ones."""
    key = rng.randrange(500) if rng.random() < 0.2 else 10_000 + i
    r = random.Random(f"{run}:{key}")
    voornaam, achternaam = r.choice(VOORNAMEN), r.choice(ACHTERNAMEN)
    bedrijf = r.choice(BEDRIJVEN)
    domain = (
        bedrijf.split()[0].lower().replace(".", "") + f"{key % 97}.nl" if bedrijf else "gmail.com"
    )
    local = f"{voornaam}.{achternaam.replace(' ', '')}".lower().replace("-", "") + str(key)
    return Person(
        naam=f"{voornaam} {achternaam}",
        bedrijf=bedrijf,
        email=f"{local}@{domain}",
        mobiel=f"{(key * 7919) % 100_000_000:08d}",
        plaats=r.choice(PLAATSEN),
    )


class Deliveries:
    """Builds signed requests; every call returns a new delivery (new id), never a redelivery."""

    def __init__(
        self,
        base: str,
        form: dict[str, Any],
        phone: dict[str, Any],
        seed: int,
        chat: dict[str, Any] | None = None,
        webchat: dict[str, Any] | None = None,
    ) -> None:
        self.chat_url = base + chat["webhook_path"] if chat else ""
        self.webchat_url = f"{base}/webchat/{webchat['id']}/messages" if webchat else ""
        self.visitor_secret = webchat["secrets"]["visitor_secret"] if webchat else ""
        self.visitors: dict[str, str] = {}  # a returning person keeps their widget's token
        self.form_url = base + form["webhook_path"]
        self.form_token = form["secrets"]["token"]
        self.phone_url = base + phone["webhook_path"]
        self.rng = random.Random(seed)
        self.run = uuid.uuid4().hex[:8]
        self.n = 0
        self.t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def _next(self) -> int:
        self.n += 1
        return self.n

    def webform(self, p: Person | None = None) -> Request:
        i = self._next()
        p = p or person(self.rng, i, self.run)
        fields = {
            "naam": p.naam,
            "bedrijf": p.bedrijf,
            "e-mail": p.email,
            "telefoon": self.rng.choice(PHONE_FORMATS)(p.mobiel) if p.mobiel else None,
            "plaats": p.plaats,
            "onderwerp": "Contactformulier website",
            "bericht": self.rng.choice(BERICHTEN).format(
                n=self.rng.randint(2, 40), plaats=p.plaats
            ),
            "akkoord_privacy": "ja",
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        headers = {"Authorization": f"Bearer {self.form_token}", "Accept": "application/json"}
        if i % 4 == 0:  # a plain HTML form post (WordPress, Webflow) posted by script
            fields = {"submission_id": f"wp-{self.run}-{i}", "website": ""} | fields
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self.form_url, urlencode(fields).encode(), headers
        body = {
            "submission_id": f"{self.run}-{i}",
            "form_id": "contact-nl",
            "submitted_at": (self.t0 + timedelta(seconds=i)).isoformat(),
        } | fields
        headers["Content-Type"] = "application/json"
        return self.form_url, json.dumps(body).encode(), headers

    def twilio(self, p: Person | None = None) -> Request:
        i = self._next()
        p = p or person(self.rng, i, self.run)
        assert p.mobiel is not None
        status = CALL_STATUSES[i % len(CALL_STATUSES)]
        answered = status == "completed"
        caller = f"+316{p.mobiel}"
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": "CA" + uuid.UUID(int=self.rng.getrandbits(128)).hex,
            "Called": OUR_NUMBER,
            "CalledCity": "",
            "CalledCountry": "NL",
            "Caller": caller,
            "CallerCity": "",
            "CallerCountry": "NL",
            "Direction": "inbound",
            "From": caller,
            "FromCity": "",
            "FromCountry": "NL",
            "To": OUR_NUMBER,
            "ToCity": "",
            "ToCountry": "NL",
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Timestamp": format_datetime(self.t0 + timedelta(seconds=i), usegmt=True),
            "SequenceNumber": "3" if answered else "2",
            "CallDuration": str(self.rng.randint(20, 900)) if answered else "0",
            "Duration": "3" if answered else "0",
            "SipResponseCode": "200" if answered else "487",
        }
        if answered and i % 2:
            params["CallerName"] = p.naam.upper()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(self.phone_url, params, TWILIO_TOKEN),
            "I-Twilio-Idempotency-Token": str(uuid.UUID(int=self.rng.getrandbits(128))),
        }
        return self.phone_url, urlencode(params).encode(), headers

    def whatsapp(self, p: Person | None = None) -> Request:
        """A Cloud API text notification, signed with the app secret as Meta signs it."""
        i = self._next()
        p = p or person(self.rng, i, self.run)
        wa_id = f"316{p.mobiel or f'{i:08d}'}"
        message = {
            "from": wa_id,
            "id": f"wamid.{self.run}{i:010d}",
            "timestamp": str(int((self.t0 + timedelta(seconds=i)).timestamp())),
            "type": "text",
            "text": {"body": self.rng.choice(BERICHTEN).format(n=i % 40 + 2, plaats=p.plaats)},
        }
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "31850011122",
                "phone_number_id": WHATSAPP_NUMBER_ID,
            },
            "contacts": [{"profile": {"name": p.naam}, "wa_id": wa_id}],
            "messages": [message],
        }
        change = {"value": value, "field": "messages"}
        body = json.dumps(
            {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac_hex(WHATSAPP_SECRET, body),
        }
        return self.chat_url, body, headers

    def webchat(self, p: Person | None = None) -> Request:
        """A message from the widget on the customer's site, as its script posts it."""
        i = self._next()
        p = p or person(self.rng, i, self.run)
        token = self.visitors.get(p.naam + p.plaats)
        if token is None:
            token = self.visitors[p.naam + p.plaats] = issue_token(self.visitor_secret)[1]
        body = {
            "id": f"{self.run}-{i}",
            "text": self.rng.choice(BERICHTEN).format(n=i % 40 + 2, plaats=p.plaats),
            "name": p.naam,
            "email": p.email,
            "page": f"{CHAT_SITE}/offerte",
        }
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Origin": CHAT_SITE,
        }
        return self.webchat_url, json.dumps(body).encode(), headers

    def mixed(self) -> Request:
        return self.webform() if self.n % 2 else self.twilio()


def moved(reqs: list[Request], old_base: str, new_base: str) -> list[Request]:
    """The same requests sent to another server."""
    return [(u.replace(old_base, new_base, 1), b, h) for u, b, h in reqs]


# ---------------------------------------------------------------------------------------------
# The CRM the end-to-end phases match against, and the realistic mix of senders

LEGAL_FORM = re.compile(r"\s+(holding |groep )?(b\.?v\.?|n\.?v\.?|v\.?o\.?f\.?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Contact:
    first: str
    last: str
    company: str
    domain: str
    email: str
    mobiel: str  # 8 digits after 06
    city: str

    @property
    def naam(self) -> str:
        return f"{self.first} {self.last}"


def surname(raw: str) -> str:
    return " ".join(w if w in ("van", "de", "der", "den") else w.title() for w in raw.split())


def local_part(first: str, last: str) -> str:
    return f"{first}.{last.replace(' ', '')}".lower()


def crm_contacts(n: int, seed: int = 20261204) -> list[Contact]:
    """n contacts at n/4 companies; one name per company, one address and mobile number each
    (80 % at the company's domain, the rest free mail), every address and number unique."""
    rng = random.Random(seed)
    companies: list[tuple[str, str]] = []
    cores: set[str] = set()
    while len(companies) < max(n // 4, 1):
        name = company_name(rng)
        core = LEGAL_FORM.sub("", name).lower()
        if core in cores:
            continue
        cores.add(core)
        base = "".join(c for c in core.split(" ")[0] if c.isalnum())
        domain = f"{base}.nl" if f"{base}.nl" not in cores else f"{base}{len(companies)}.nl"
        cores.add(domain)
        companies.append((name, domain))
    contacts: list[Contact] = []
    taken: set[tuple[str, str, str]] = set()
    addresses: set[str] = set()
    numbers = rng.sample(range(10_000_000, 60_000_000), n)  # unknown callers use 6…–9…
    while len(contacts) < n:
        company, domain = rng.choice(companies)
        first, last = rng.choice(GIVEN).title(), surname(rng.choice(SURNAMES))
        if (first, last, company) in taken:
            continue
        taken.add((first, last, company))
        local = local_part(first, last)
        if rng.random() < 0.8:
            email = f"{local}@{domain}"
        else:
            email = f"{local}{rng.randint(1, 9999)}@{rng.choice(FREE)}"
        while email in addresses:
            name, at = email.split("@")
            email = f"{name}{rng.randint(2, 99)}@{at}"
        addresses.add(email)
        city = rng.choice(CITIES).title()
        mobiel = f"{numbers[len(contacts)]:08d}"
        contacts.append(Contact(first, last, company, domain, email, mobiel, city))
    return contacts


def write_crm_csv(path: Path, contacts: list[Contact]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(
            ["external_id", "relation", "first_name", "last_name", "email", "phone", "city"]
        )
        for i, c in enumerate(contacts):
            writer.writerow(
                [f"K-{i}", c.company, c.first, c.last, c.email, f"06{c.mobiel}", c.city]
            )


@dataclass(frozen=True)
class Sender:
    category: str  # known | fuzzy | unknown
    person: Person


def with_repeats(senders: list[Sender], messages: int, rng: random.Random) -> list[Sender]:
    """Each sender once, the other messages from the same senders, the first ones more often."""
    out = list(senders[:messages])
    weights = [(rank + 1) ** -0.5 for rank in range(len(senders))]
    out += rng.choices(senders, weights=weights, k=messages - len(out))
    return out


def mix(contacts: list[Contact], n: int, generation: int) -> list[tuple[str, Sender]]:
    """n (channel, sender) pairs of the mix; a new generation has new fuzzy addresses and new
    unknown people, so what an earlier phase taught the CRM does not make them known."""
    rng = random.Random(f"mix:{generation}")
    counts = {k: round(n * share) for k, share in MIX.items()}
    counts["unknown"] = n - counts["known"] - counts["fuzzy"]
    distinct = {k: max(1, math.ceil(v * DISTINCT_SHARE)) for k, v in counts.items()}
    chosen = rng.sample(contacts, min(len(contacts), distinct["known"] + distinct["fuzzy"]))
    known = [
        Sender("known", Person(c.naam, c.company, c.email, c.mobiel, c.city))
        for c in chosen[: distinct["known"]]
    ]
    fuzzy = []
    for c in chosen[distinct["known"] :]:
        tag = "" if generation == 0 else str(generation + 1)
        if rng.random() < 0.5:  # a new address at the company's domain
            email = f"{c.first[0]}.{c.last.replace(' ', '')}{tag}@{c.domain}".lower()
        else:  # or at a free-mail provider
            email = f"{local_part(c.first, c.last)}.{generation}{rng.randint(10, 99)}@{rng.choice(FREE)}"
        fuzzy.append(Sender("fuzzy", Person(c.naam, c.company, email, None, c.city)))
    unknown = []
    numbers = rng.sample(range(60_000_000, 100_000_000), distinct["unknown"])
    for i in range(distinct["unknown"]):
        first, last = rng.choice(GIVEN).title(), surname(rng.choice(SURNAMES))
        company = company_name(rng) if rng.random() < 0.5 else ""
        local = f"{local_part(first, last)}.g{generation}n{i}"
        domain = (
            "".join(ch for ch in company.split(" ")[0].lower() if ch.isalnum()) + f"{i}.nl"
            if company
            else rng.choice(FREE)
        )
        p = Person(
            f"{first} {last}",
            company,
            f"{local}@{domain}",
            f"{numbers[i]:08d}",
            rng.choice(CITIES).title(),
        )
        unknown.append(Sender("unknown", p))
    messages = (
        with_repeats(known, counts["known"], rng)
        + with_repeats(fuzzy, counts["fuzzy"], rng)
        + with_repeats(unknown, counts["unknown"], rng)
    )
    rng.shuffle(messages)
    # Fuzzy senders only fill in the form (a call carries no name and company to match on);
    # known and unknown ones fill in the form or call, half and half.
    return [
        ("webform" if s.category == "fuzzy" or rng.random() < 0.5 else "twilio", s)
        for s in messages
    ]


def build_mix(
    make: Deliveries, pairs: list[tuple[str, Sender]]
) -> tuple[list[Request], dict[bytes, str]]:
    """The requests of a mix, and each body's category (the journal keeps the body)."""
    reqs: list[Request] = []
    category: dict[bytes, str] = {}
    for channel, s in pairs:
        req = make.webform(s.person) if channel == "webform" else make.twilio(s.person)
        reqs.append(req)
        category[req[1]] = s.category
    return reqs, category


def mix_facts(pairs: list[tuple[str, Sender]]) -> dict[str, Any]:
    per_sender = Counter(s.person for _, s in pairs)
    repeats = sum(n for n in per_sender.values() if n > 1)
    return {
        "messages": len(pairs),
        "by_category": dict(Counter(s.category for _, s in pairs)),
        "by_channel": dict(Counter(ch for ch, _ in pairs)),
        "senders": len(per_sender),
        "messages_from_repeat_senders": repeats,
        "most_from_one_sender": max(per_sender.values()) if per_sender else 0,
    }


# ---------------------------------------------------------------------------------------------
# Load


def client(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=60),
        skip_auto_headers=("User-Agent",),
    )


async def post(http: aiohttp.ClientSession, req: Request, statuses: Counter[str]) -> bool:
    url, body, headers = req
    try:
        async with http.post(url, data=body, headers=headers) as r:
            await r.read()
            statuses[str(r.status)] += 1
            return 200 <= r.status < 300
    except (aiohttp.ClientError, TimeoutError) as exc:
        statuses[type(exc).__name__] += 1
        return False


async def closed_loop(
    requests: Iterator[Request], concurrency: int, *, until: float | None = None
) -> dict[str, Any]:
    """`concurrency` requests in flight until the requests (or the time) run out."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    accepted = 0
    async with client(concurrency) as http:

        async def one_connection() -> None:
            nonlocal accepted
            for req in requests:
                t = time.perf_counter()
                ok = await post(http, req, statuses)
                latencies.append(time.perf_counter() - t)
                accepted += ok
                if until is not None and time.perf_counter() >= until:
                    return

        start = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "accepted": accepted,
        "seconds": round(elapsed, 2),
        "per_s": accepted / elapsed,
        **latency_ms(latencies),
        "statuses": dict(statuses),
    }


async def open_loop(
    requests: list[Request], rate: float, max_connections: int, drain_s: float
) -> dict[str, Any]:
    """Send at a fixed rate whatever the answers; latency from each request's scheduled time."""
    latencies: list[float] = []
    send_lag: list[float] = []
    statuses: Counter[str] = Counter()
    async with client(max_connections) as http:

        async def one(scheduled: float, req: Request) -> None:
            send_lag.append(time.perf_counter() - scheduled)
            if await post(http, req, statuses):
                latencies.append(time.perf_counter() - scheduled)

        start = time.perf_counter() + 0.05
        tasks: list[asyncio.Task[None]] = []
        for n, req in enumerate(requests):
            scheduled = start + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled, req)))
        offered_s = time.perf_counter() - start
        _done, pending = await asyncio.wait(tasks, timeout=drain_s)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - start
    lag = sorted(send_lag)
    return {
        "offered_per_s": rate,
        "requests": len(requests),
        "offered_over_s": round(offered_s, 2),
        "accepted": len(latencies),
        "achieved_per_s": len(latencies) / elapsed,
        "unfinished": len(pending),
        "send_lag_p99_ms": percentile(lag, 99) * 1000 if lag else None,
        **latency_ms(latencies),
        "statuses": dict(statuses),
    }


# ---------------------------------------------------------------------------------------------
# (a) The INSERT + COMMIT ceiling

CEILING_TABLE = """
CREATE TABLE IF NOT EXISTS bench_journal (
    id bigserial PRIMARY KEY,
    channel_id varchar(36) NOT NULL,
    external_id varchar(300) NOT NULL,
    payload bytea NOT NULL,
    headers jsonb NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'pending',
    error text,
    attempts integer NOT NULL DEFAULT 0,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    partition_key integer NOT NULL DEFAULT 0,
    UNIQUE (channel_id, external_id)
);
CREATE INDEX IF NOT EXISTS bench_journal_unfinished ON bench_journal (status, id)
    WHERE status IN ('pending', 'failed');
"""


async def insert_ceiling(dsn: str, rows: list[Request], concurrency: int) -> dict[str, Any]:
    """One-row INSERT … ON CONFLICT DO NOTHING RETURNING id, each its own transaction (so one
    COMMIT per row), on `concurrency` connections, into a table shaped like the journal (same
    columns, unique key and partial index) with the same bodies the webhooks get."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        await pool.execute(CEILING_TABLE)
        await pool.execute("TRUNCATE bench_journal")
        metas = [json.dumps({"headers": h, "query": {}, "url": u}) for u, _, h in rows]
        it = iter(enumerate(rows))
        latencies: list[float] = []

        async def one_connection() -> None:
            async with pool.acquire() as conn:
                insert = await conn.prepare(
                    "INSERT INTO bench_journal (channel_id, external_id, payload, headers, "
                    "partition_key) VALUES ($1, $2, $3, $4::jsonb, $5) "
                    "ON CONFLICT DO NOTHING RETURNING id"
                )
                for i, (_, body, _) in it:
                    t = time.perf_counter()
                    await insert.fetchval("bench-channel", f"ext-{i}", body, metas[i], i % 9973)
                    latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        await pool.execute("DROP TABLE bench_journal")
    finally:
        await pool.close()
    return {"rows": len(rows), "per_s": len(rows) / elapsed, **latency_ms(latencies)}


# ---------------------------------------------------------------------------------------------
# (b) The HTTP ceiling: a bare aiohttp app, served the way `switchboard web` serves


def serve_bare(port: int, processes: int) -> None:
    """Answer 202 to every POST after reading its body; nothing else. Runs in the subprocess
    `python bench/ingest.py --serve-bare PORT --web-processes N`, through the same function
    `switchboard web --processes N` uses (fork N processes, SO_REUSEPORT, no access log)."""
    from aiohttp import web

    from inbox.service.cli import serve_processes

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(
            {"status": "accepted", "event_id": 0, "duplicate": False}, status=202
        )

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/{kind}/{channel_id}", accept)
        app.router.add_post("/webchat/{channel_id}/messages", accept)  # the widget's posts
        app.router.add_get("/healthz", healthz)
        return app

    serve_processes(processes, make_app, "127.0.0.1", port)


# ---------------------------------------------------------------------------------------------
# The journal as the workers leave it


async def event_counts(
    conn: asyncpg.Connection, above_id: int = 0, upto: int | None = None
) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM events WHERE id > $1 AND id <= $2 GROUP BY status",
        above_id,
        upto if upto is not None else 2**62,
    )
    return {r["status"]: int(r["n"]) for r in rows}


async def trigger_times(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The search index's trigger functions: calls and time since the phase began."""
    await asyncio.sleep(1.2)  # backends report their counters within a second of going idle
    rows = await conn.fetch(
        "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions "
        "ORDER BY total_time DESC LIMIT 8"
    )
    return [
        {
            "name": r["funcname"],
            "calls": r["calls"],
            "total_ms": r["total_time"],
            "self_ms": r["self_time"],
        }
        for r in rows
    ]


async def max_event_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM events"))


async def table_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in CRM_TABLES}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


CONNECTIONS = """
SELECT count(*) FILTER (WHERE datname = current_database()) AS ours,
       count(*) FILTER (WHERE datname IS DISTINCT FROM current_database()
                        AND backend_type = 'client backend') AS others
FROM pg_stat_activity
"""


class Peak:
    """The most connections to this database, and to the others, seen by any poll."""

    def __init__(self) -> None:
        self.ours = self.others = 0

    async def sample(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(CONNECTIONS)
        self.ours, self.others = max(self.ours, row["ours"]), max(self.others, row["others"])

    def text(self) -> str:
        return f"peak connections: {self.ours} to this database, {self.others} to others"


async def drain(
    conn: asyncpg.Connection,
    above_id: int,
    upto: int,
    started: float,
    window_s: float,
    peak: Peak | None = None,
    *,
    start_limit_s: float | None = None,
) -> dict[str, Any]:
    """Poll until no event in (above_id, upto] is pending, or the time is up: `window_s` after
    the first event was seen done (`start_limit_s`, default `window_s`, when none is)."""
    total = upto - above_id
    first_done_at: float | None = None
    done = done_first = 0
    trace: list[tuple[float, int]] = []
    while True:
        counts = await event_counts(conn, above_id, upto)
        if peak is not None:
            await peak.sample(conn)
        now = time.perf_counter()
        done = sum(v for k, v in counts.items() if k != "pending")
        trace.append((round(now - started, 2), done))
        if done and first_done_at is None:
            first_done_at, done_first = now, done
        if (
            counts.get("pending", 0) == 0
            or (first_done_at is None and now - started >= (start_limit_s or window_s))
            or (first_done_at is not None and now - first_done_at >= window_s)
        ):
            break
        await asyncio.sleep(0.2)
    elapsed = now - started
    steady = None
    if first_done_at is not None and now > first_done_at + 0.5:
        steady = (done - done_first) / (now - first_done_at)
    return {
        "events": total,
        "done": done,
        "left": total - done,
        "statuses": counts,
        "seconds_from_worker_start": round(elapsed, 2),
        "seconds_to_first_done": round(first_done_at - started, 2) if first_done_at else None,
        "per_s_from_start": done / elapsed if elapsed else 0.0,
        "per_s": steady or 0.0,
        "finished": total == done,
        "trace": trace[:: max(1, len(trace) // 40)],
    }


async def by_category(
    conn: asyncpg.Connection, above_id: int, upto: int, category: dict[bytes, str]
) -> dict[str, dict[str, int]]:
    """Where each category's events ended: with a contact, a lead, only a relation, nowhere;
    and the matcher's verdict when it ran."""
    rows = await conn.fetch(
        "SELECT e.payload, e.status, a.contact_id, a.lead_id, a.relation_id, "
        "m.meta #>> '{match,decision}' AS decision "
        "FROM events e LEFT JOIN messages m ON m.event_id = e.id "
        "LEFT JOIN activities a ON a.channel_id = m.channel_id AND a.external_id = m.external_id "
        "WHERE e.id > $1 AND e.id <= $2",
        above_id,
        upto,
    )
    out: dict[str, Counter[str]] = {k: Counter() for k in MIX}
    for r in rows:
        cat = category.get(bytes(r["payload"]))
        if cat is None:
            continue
        c = out[cat]
        if r["status"] != "processed":
            c[r["status"]] += 1
        elif r["contact_id"] is not None:
            c["contact"] += 1
        elif r["lead_id"] is not None:
            c["lead"] += 1
        elif r["relation_id"] is not None:
            c["relation only"] += 1
        else:
            c["no CRM link"] += 1
        if r["decision"]:
            c[f"matcher:{r['decision']}"] += 1
    return {k: dict(v.most_common()) for k, v in out.items()}


async def failure_reasons(
    conn: asyncpg.Connection, above_id: int, upto: int
) -> list[tuple[str, int]]:
    rows = await conn.fetch(
        "SELECT left(error, 160) AS error, count(*) AS n FROM events "
        "WHERE id > $1 AND id <= $2 AND status = 'failed' GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
        above_id,
        upto,
    )
    return [(r["error"], int(r["n"])) for r in rows]


class DoneWatcher:
    """Polls the journal every `interval` s: when was each event above `above_id` first seen
    done (committed), in seconds after its received_at, by the database's clock."""

    def __init__(self, conn: asyncpg.Connection, above_id: int, interval: float = 0.2) -> None:
        self.conn, self.above_id, self.interval = conn, above_id, interval
        self.seen: dict[int, float] = {}
        self.stop = asyncio.Event()
        self.peak = Peak()

    async def run(self) -> None:
        while not self.stop.is_set():
            rows = await self.conn.fetch(
                "SELECT id, extract(epoch FROM clock_timestamp() - received_at)::float8 AS age "
                "FROM events WHERE id > $1 AND status <> 'pending'",
                self.above_id,
            )
            for r in rows:
                self.seen.setdefault(r["id"], r["age"])
            await self.peak.sample(self.conn)
            try:
                await asyncio.wait_for(self.stop.wait(), self.interval)
            except TimeoutError:
                pass


async def lag_figures(conn: asyncpg.Connection, above_id: int, upto: int) -> dict[str, Any]:
    """processed_at − received_at of the events in (above_id, upto]; one still pending counts
    with its age so far (a lower bound of its lag)."""
    rows = await conn.fetch(
        "SELECT id, status, extract(epoch FROM coalesce(processed_at, clock_timestamp()) "
        "- received_at)::float8 AS lag FROM events WHERE id > $1 AND id <= $2",
        above_id,
        upto,
    )
    lags = sorted(r["lag"] for r in rows)
    pending = sum(r["status"] == "pending" for r in rows)
    return {
        "ids": [r["id"] for r in rows],
        "events": len(rows),
        "pending": pending,
        "p50_s": percentile(lags, 50) if lags else float("nan"),
        "p90_s": percentile(lags, 90) if lags else float("nan"),
        "p99_s": percentile(lags, 99) if lags else float("nan"),
        "max_s": lags[-1] if lags else float("nan"),
    }


PROBLEM = re.compile(r"traceback|error|exception|failed|critical", re.IGNORECASE)
LOG_HEAD = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\S*\s*")
CHAINED = ("The above exception", "During handling of the above")
NOT_RAISED = ("Traceback", "(Background on this error", *CHAINED)
PROJECT_FRAME = re.compile(
    r'File "' + re.escape(str(ROOT)) + r'/(?!\.venv/)([^"]+)", line (\d+), in (\S+)'
)


def log_records(lines: list[str]) -> list[list[str]]:
    """A log's records: a timestamped line with what follows it (a traceback, chained ones
    included); a traceback printed on its own starts a record too."""
    records: list[list[str]] = []
    prev = ""
    for line in lines:
        own_traceback = line.startswith("Traceback") and not (
            LOG_HEAD.match(prev) or prev.startswith(CHAINED)
        )
        if not records or LOG_HEAD.match(line) or own_traceback:
            records.append([line])
        else:
            records[-1].append(line)
        if line.strip():
            prev = line
    return records


def log_problems(path: Path, limit: int = 8) -> dict[str, Any]:
    """The records of a service's log that look like trouble, counted by their last exception
    line (or their first line) and the last frame in this project's code."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"records": 0, "distinct": []}
    counts: Counter[str] = Counter()
    example: dict[str, str] = {}
    for record in log_records(lines):
        text = "\n".join(record)
        if not PROBLEM.search(text):
            continue
        raised = [
            line
            for line in record[1:]
            if line.strip() and not line[0].isspace() and not line.startswith(NOT_RAISED)
        ]
        headline = raised[-1] if raised and "Traceback" in text else LOG_HEAD.sub("", record[0])
        frames = PROJECT_FRAME.findall(text)
        where = f"  [at {frames[-1][0]}:{frames[-1][1]} {frames[-1][2]}]" if frames else ""
        key = re.sub(r"\d+", "N", headline)[:160] + where
        counts[key] += 1
        example.setdefault(key, headline[:300] + where)
    return {
        "records": sum(counts.values()),
        "distinct": [(example[k], n) for k, n in counts.most_common(limit)],
    }


def print_problems(name: str, path: Path) -> dict[str, Any]:
    found = log_problems(path)
    if found["records"]:
        print(f"    !! {name} log ({path.relative_to(ROOT)}): {found['records']} error records:")
        for line, n in found["distinct"]:
            gone = " (a client that stopped waiting)" if "ConnectionResetError" in line else ""
            print(f"       {n:>5} × {line}{gone}")
    else:
        print(f"    {name} log ({path.relative_to(ROOT)}): no errors")
    return found


# ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    requests: int
    concurrency: int
    rate: int
    rate_seconds: float
    rate_answer_s: float
    web_processes: int
    crm_contacts: int
    backlog: int
    worker_start_limit_s: float
    backlog_window_s: float
    lag_rate: int
    lag_seconds: float
    lag_answer_s: float
    lag_tail_s: float
    profile: bool


def header(facts: dict[str, Any], plan: Plan) -> str:
    pg = facts["postgres"]
    return (
        f"Switchboard ingest bench — {platform.node()} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}), PostgreSQL {pg['version']} "
        f"(synchronous_commit={pg['synchronous_commit']}, fsync={pg['fsync']}, "
        f"wal_sync_method={pg['wal_sync_method']}), Redis db {REDIS_DB}\n"
        f"`switchboard web --processes {plan.web_processes}`, `switchboard worker` processes only "
        f"in (d), load generator in this process; {plan.requests:,} requests per endpoint at "
        f"concurrency {plan.concurrency}; backlog {plan.backlog:,}; CRM of "
        f"{plan.crm_contacts:,} contacts"
    )


def seconds(v: float) -> str:
    return f"{v:.2f} s" if math.isfinite(v) else "not within the run"


def ok(flag: bool) -> str:
    return "MET" if flag else "NOT MET"


def saturated(cpu: dict[str, Any]) -> str:
    if cpu.get("bench", 0) >= 0.9:
        return "  [load generator ≥ 0.9 core: this figure may be the client's limit]"
    if cpu.get("machine_busy", 0) >= 0.9 * (os.cpu_count() or 1):
        return "  [machine saturated: server, load generator and PostgreSQL share the cores]"
    return ""


async def run(plan: Plan) -> dict[str, Any]:
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "worktree_dirty": bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout.strip()
        ),
        "plan": plan.__dict__,
        "targets": TARGETS,
        "problems": {},
    }
    logs = RESULTS / "ingest-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    switchboard = console_script("switchboard")
    t_run = time.perf_counter()

    def at() -> str:
        return f"[{time.perf_counter() - t_run:.0f} s]"

    r = aioredis.from_url(REDIS)
    await r.flushdb()
    c = plan.concurrency
    n_web = plan.web_processes
    async with scratch_database("switchboard_bench") as dsn:
        database = dsn.rsplit("/", 1)[1]
        if plan.profile:  # for every connection the service opens: time in our functions
            admin = await asyncpg.connect(dsn, timeout=10)
            await admin.execute(f"ALTER DATABASE {database} SET track_functions = 'pl'")
            await admin.close()
        idle = CpuMeter({"bench": os.getpid()}, database)
        idle.start()
        await asyncio.sleep(1)
        results["facts"] = {
            "postgres": await pg_facts(dsn),
            "cpus": os.cpu_count(),
            "before_start": idle.stop(),
        }
        port, bare_port = free_port(), free_port()
        base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        env = os.environ | {
            "DATABASE_URL": dsn,
            "REDIS_URL": REDIS,
            "SWITCHBOARD_PUBLIC_URL": base,
            "SWITCHBOARD_RATE_LIMIT_PER_MINUTE": "10000000",
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            "SWITCHBOARD_DATA_DIR": str(logs / "data"),
        }
        print(header(results["facts"], plan), flush=True)
        print(f"before the start (1 s): {cpu_text(results['facts']['before_start'])}", flush=True)
        form = run_json(
            [
                switchboard,
                "channels",
                "add",
                "webform",
                "--name",
                "Contactformulier website",
                "--json",
                "--config",
                json.dumps({"rate_limit_per_minute": 10000000}),
            ],
            env,
        )
        phone = run_json(
            [
                switchboard,
                "channels",
                "add",
                "telephony",
                "--name",
                "Twilio hoofdnummer",
                "--json",
                "--config",
                json.dumps({"dialect": "twilio", "twilio_auth_token": TWILIO_TOKEN}),
            ],
            env,
        )
        chat = run_json(
            [
                switchboard,
                "channels",
                "add",
                "whatsapp",
                "--name",
                "WhatsApp klantenservice",
                "--json",
                "--config",
                json.dumps(
                    {
                        "phone_number_id": WHATSAPP_NUMBER_ID,
                        "access_token": "bench-token",
                        "app_secret": WHATSAPP_SECRET,
                    }
                ),
            ],
            env,
        )
        webchat = run_json(
            [
                switchboard,
                "channels",
                "add",
                "webchat",
                "--name",
                "Chat op de website",
                "--json",
                "--config",
                json.dumps(
                    {
                        "allowed_origins": [CHAT_SITE],
                        "rate_limit_per_minute": 0,
                        "visitors_per_minute": 0,
                    }
                ),
            ],
            env,
        )
        make = Deliveries(base, form, phone, seed=42, chat=chat, webchat=webchat)

        # The CRM of (d), through the command a user runs.
        contacts = crm_contacts(plan.crm_contacts)
        crm_csv = logs / "crm.csv"
        write_crm_csv(crm_csv, contacts)
        t = time.perf_counter()
        imported = run_json([switchboard, "import", str(crm_csv), "--json"], env, timeout=600)
        imported = {k: v for k, v in imported.items() if k not in ("errors", "conflicts")} | {
            "errors": len(imported.get("errors") or []),
            "conflicts": len(imported.get("conflicts") or []),
            "seconds": round(time.perf_counter() - t, 1),
        }
        results["crm_import"] = imported
        print(
            f"\nCRM: `switchboard import` of {len(contacts):,} contacts in {imported['seconds']:.0f} s: "
            f"{imported.get('contacts_created', 0):,} contacts, "
            f"{imported.get('relations_created', 0):,} relations, "
            f"{imported.get('identities_added', 0):,} addresses/numbers, "
            f"{imported.get('domains_added', 0):,} domains, {imported.get('skipped', 0)} skipped, "
            f"{imported['errors']} errors, {imported['conflicts']} conflicts",
            flush=True,
        )

        # The same requests for (a), (b) and (c).
        reqs = {
            "webform": [make.webform() for _ in range(plan.requests)],
            "twilio": [make.twilio() for _ in range(plan.requests)],
            "whatsapp": [make.whatsapp() for _ in range(plan.requests)],
            "webchat": [make.webchat() for _ in range(plan.requests)],
        }

        # (a) The machine's ceiling, before anything else holds connections.
        meter = CpuMeter({"bench": os.getpid()}, database)
        meter.start()
        pre = await insert_ceiling(dsn, reqs["webform"], c)
        pre["cpu"] = meter.stop()
        results["ceiling_before"] = pre
        print(
            f"\n(a) PostgreSQL ceiling: one-row INSERT+COMMIT, asyncpg, {c} connections, "
            f"journal-shaped table: {pre['per_s']:,.0f} rows/s, p50 {pre['p50_ms']:.1f} ms, "
            f"p99 {pre['p99_ms']:.1f} ms {at()}\n    {cpu_text(pre['cpu'])}",
            flush=True,
        )

        # (b) The HTTP ceiling: a bare aiohttp handler, the same processes, the same requests.
        print(
            f"\n(b) HTTP ceiling: bare aiohttp handler answering 202, {n_web} processes "
            f"(SO_REUSEPORT), closed loop, {c} in flight {at()}",
            flush=True,
        )
        bare = Service(
            "bare",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve-bare",
                str(bare_port),
                "--web-processes",
                str(n_web),
            ],
            env,
            logs / "bare.log",
        ).start()
        results["http_ceiling"] = {}
        try:
            await wait_http_ok(bare_base + "/healthz", 60, bare)
            results["bare_ready_s"] = round(time.perf_counter() - bare.started_at, 1)
            print(f"    (healthy {results['bare_ready_s']:.1f} s after start)", flush=True)
            await closed_loop(iter(moved(reqs["webform"][:1000], base, bare_base)), c)
            for name in ACCEPTED:
                m = CpuMeter({"bench": os.getpid(), "bare": bare.pid}, database)
                m.start()
                x = await closed_loop(iter(moved(reqs[name], base, bare_base)), c)
                x["cpu"] = m.stop()
                results["http_ceiling"][name] = x
                print(
                    f"    {name:8} {x['per_s']:7,.0f}/s   p50 {x['p50_ms']:6.1f} ms  "
                    f"p99 {x['p99_ms']:6.1f} ms  {x['statuses']}{saturated(x['cpu'])}"
                    f"\n             {cpu_text(x['cpu'])}",
                    flush=True,
                )
        finally:
            results["bare_exit_code"] = bare.stop()
        results["problems"]["bare"] = print_problems("bare server", bare.log_path)

        server = Service(
            "web",
            [switchboard, "web", "--port", str(port), "--processes", str(n_web)],
            env,
            logs / "web.log",
        ).start()
        workers: list[Service] = []
        profiles: dict[str, Path] = {}
        conn: asyncpg.Connection | None = None
        try:
            await wait_http_ok(base + "/healthz", 60, server)
            results["web_ready_s"] = round(time.perf_counter() - server.started_at, 1)
            conn = await asyncpg.connect(dsn, timeout=10)
            # Warm up the pools and caches of both endpoints in every process; not counted.
            await closed_loop(iter([make.mixed() for _ in range(1000)]), c)

            def meter_for(*extra: tuple[str, int]) -> CpuMeter:
                m = CpuMeter({"bench": os.getpid(), "server": server.pid, **dict(extra)}, database)
                m.start()
                return m

            # (c) Accept rate, closed loop; no worker runs.
            print(
                f"\n(c) accepted deliveries, closed loop, {c} in flight, {n_web} web processes "
                f"(healthy {results['web_ready_s']:.1f} s after start), no worker running {at()}",
                flush=True,
            )
            for name in ACCEPTED:
                prof = (
                    Profiler(server.pid, logs / f"web-{name}.pyspy.txt", subprocesses=True)
                    if plan.profile
                    else None
                )
                m = meter_for()
                x = await closed_loop(iter(reqs[name]), c)
                x["cpu"] = m.stop()
                if prof is not None and (p := prof.stop()) is not None:
                    profiles[f"web-{name}"] = p
                results[name] = x
                ratio_a = x["per_s"] / pre["per_s"]
                ratio_b = x["per_s"] / results["http_ceiling"][name]["per_s"]
                print(
                    f"    {name:8} {x['per_s']:7,.0f}/s accepted   p50 {x['p50_ms']:6.1f} ms  "
                    f"p99 {x['p99_ms']:6.1f} ms  max {x['max_ms']:6.0f} ms  {x['statuses']}   "
                    f"target ≥ {TARGETS['accept_per_s']:,}/s: "
                    f"{ok(x['per_s'] >= TARGETS['accept_per_s'])}"
                    f"\n             = {ratio_a:.2f} × the PostgreSQL ceiling, "
                    f"{ratio_b:.2f} × the HTTP ceiling (target ≥ {TARGETS['accept_over_ceiling']})"
                    f"\n             {cpu_text(x['cpu'])}",
                    flush=True,
                )

            # (c) Latency at a fixed offered rate, open loop.
            print(
                f"\n(c) latency at {plan.rate:,} deliveries/s offered for {plan.rate_seconds:.0f} s "
                f"(open loop; latency from the scheduled send time), no worker running {at()}",
                flush=True,
            )
            for name, build in (("webform", make.webform), ("twilio", make.twilio)):
                batch = [build() for _ in range(int(plan.rate * plan.rate_seconds))]
                m = meter_for()
                x = await open_loop(batch, plan.rate, 512, drain_s=plan.rate_answer_s)
                x["cpu"] = m.stop()
                results[f"{name}_at_rate"] = x
                print(
                    f"    {name:8} achieved {x['achieved_per_s']:6,.0f}/s  p50 {x['p50_ms']:7.1f} ms"
                    f"  p90 {x['p90_ms']:7.1f} ms  p99 {x['p99_ms']:7.1f} ms  {x['statuses']}"
                    f"{'  unfinished ' + str(x['unfinished']) if x['unfinished'] else ''}   "
                    f"target p99 ≤ {TARGETS['p99_ms_at_1000']} ms: "
                    f"{ok(x['p99_ms'] <= TARGETS['p99_ms_at_1000'])}"
                    f"\n             send lag p99 {x['send_lag_p99_ms']:.1f} ms; {cpu_text(x['cpu'])}",
                    flush=True,
                )

            # What (c) journaled is not the mix: set it aside.
            set_aside = await conn.execute(
                "UPDATE events SET status = 'ignored', error = 'bench: set aside' "
                "WHERE status = 'pending'"
            )
            results["set_aside_before_d"] = int(set_aside.split()[-1])

            # (d) End to end with 1 and with 2 worker processes.
            generation = 0
            for n_workers in (1, 2):
                key = f"{n_workers}w"
                phase: dict[str, Any] = {}
                results[f"e2e_{key}"] = phase
                await r.flushdb()
                pairs = mix(contacts, plan.backlog, generation)
                generation += 1
                backlog_reqs, category = build_mix(make, pairs)
                phase["mix"] = mix_facts(pairs)
                marker = await max_event_id(conn)
                x = await closed_loop(iter(backlog_reqs), c)
                top = await max_event_id(conn)
                phase["journaling"] = {k: x[k] for k in ("per_s", "accepted", "statuses", "p99_ms")}
                f = phase["mix"]
                print(
                    f"\n(d) end to end, {n_workers} worker process{'es' if n_workers > 1 else ''}: "
                    f"backlog of {top - marker:,} deliveries of the mix journaled with no worker "
                    f"running ({x['per_s']:,.0f}/s, {x['statuses']}); measured for up to "
                    f"{plan.backlog_window_s:.0f} s from the first event done (which may take "
                    f"up to {plan.worker_start_limit_s:.0f} s) {at()}"
                    f"\n    mix: {f['by_category']}, {f['by_channel']}; {f['senders']:,} senders, "
                    f"{f['messages_from_repeat_senders']:,} messages from senders who send more "
                    f"than one (at most {f['most_from_one_sender']} from one)",
                    flush=True,
                )
                before = await table_counts(conn)
                workers = [
                    Service(
                        f"worker{i + 1}",
                        [switchboard, "worker"],
                        env,
                        logs / f"worker-{key}-{i + 1}.log",
                    )
                    for i in range(n_workers)
                ]
                started = time.perf_counter()
                for w in workers:
                    w.start()
                prof = (
                    Profiler(workers[0].pid, logs / f"worker-{key}.pyspy.txt")
                    if plan.profile and n_workers == 1
                    else None
                )
                if prof is not None:  # PostgreSQL's side: time in our trigger functions
                    await conn.execute("SELECT pg_stat_reset()")
                m = meter_for(*((w.name, w.pid) for w in workers))
                peak = Peak()
                e2e = await drain(
                    conn,
                    marker,
                    top,
                    started,
                    plan.backlog_window_s,
                    peak,
                    start_limit_s=plan.worker_start_limit_s,
                )
                e2e["connections_peak"] = {"ours": peak.ours, "other_databases": peak.others}
                e2e["cpu"] = m.stop()
                if prof is not None and (p := prof.stop()) is not None:
                    profiles[f"worker-{key}"] = p
                if prof is not None:
                    e2e["pg_functions"] = await trigger_times(conn)
                e2e["created"] = delta(await table_counts(conn), before)
                e2e["by_category"] = await by_category(conn, marker, top, category)
                e2e["failures"] = await failure_reasons(conn, marker, top)
                e2e["workers_alive"] = [w.alive() for w in workers]
                phase["backlog"] = e2e
                target = (
                    f"   target ≥ {TARGETS['e2e_per_s_one_worker']:,}/s: "
                    f"{ok(e2e['per_s'] >= TARGETS['e2e_per_s_one_worker'])}"
                    if n_workers == 1
                    else ""
                )
                rate = (
                    f"{e2e['per_s']:,.0f} messages/s from the first done to the last (the first "
                    f"{e2e['seconds_to_first_done']} s after the workers' start); "
                    f"{e2e['per_s_from_start']:,.0f}/s over "
                    f"{e2e['seconds_from_worker_start']:.1f} s from the workers' start"
                    if e2e["seconds_to_first_done"] is not None
                    else f"none done within {e2e['seconds_from_worker_start']:.0f} s of the "
                    "workers' start"
                )
                print(
                    f"    {e2e['done']:,} of {e2e['events']:,} done: {rate}"
                    f"{'' if e2e['finished'] else '  [time limit]'}{target}"
                    f"\n    events {e2e['statuses']}; created {e2e['created']}",
                    flush=True,
                )
                for cat, counts in e2e["by_category"].items():
                    print(f"      {cat:8} {counts}")
                for reason, n in e2e["failures"]:
                    print(f"      failed ×{n}: {reason}")
                if not all(e2e["workers_alive"]):
                    print(f"    !! a worker exited: alive {e2e['workers_alive']}")
                print(f"    {cpu_text(e2e['cpu'])}; {peak.text()}", flush=True)
                for f in e2e.get("pg_functions", []):
                    print(
                        f"      PostgreSQL {f['name']:32} {f['calls']:>7,} calls "
                        f"{f['total_ms']:>9,.0f} ms total {f['self_ms']:>9,.0f} ms self"
                    )
                if e2e["left"]:
                    await conn.execute(
                        "UPDATE events SET status = 'ignored', error = 'bench: set aside' "
                        "WHERE status = 'pending' AND id > $1 AND id <= $2",
                        marker,
                        top,
                    )

                # The lag while deliveries of the mix flow at a fixed rate, workers running.
                pairs = mix(contacts, int(plan.lag_rate * plan.lag_seconds), generation)
                generation += 1
                flow_reqs, _ = build_mix(make, pairs)
                marker = await max_event_id(conn)
                watcher_conn = await asyncpg.connect(dsn, timeout=10)
                watcher = DoneWatcher(watcher_conn, marker)
                watching = asyncio.create_task(watcher.run())
                m = meter_for(*((w.name, w.pid) for w in workers))
                try:
                    x = await open_loop(flow_reqs, plan.lag_rate, 512, drain_s=plan.lag_answer_s)
                    top = await max_event_id(conn)
                    tail = await drain(
                        conn, marker, top, time.perf_counter(), plan.lag_tail_s, watcher.peak
                    )
                finally:
                    watcher.stop.set()
                    await watching
                    await watcher_conn.close()
                cpu = m.stop()
                lag = await lag_figures(conn, marker, top)
                seen = sorted(watcher.seen.get(i, math.inf) for i in lag.pop("ids"))
                seen_p = {
                    f"p{q}_s": percentile(seen, q) if seen else float("nan") for q in (50, 99)
                }
                flow = {
                    "accept": x,
                    "lag": lag,
                    "seen_committed": seen_p,
                    "left_after_tail": tail["left"],
                    "connections_peak": {
                        "ours": watcher.peak.ours,
                        "other_databases": watcher.peak.others,
                    },
                    "statuses": tail["statuses"],
                    "cpu": cpu,
                }
                phase["flowing"] = flow
                print(
                    f"    lag while {x['achieved_per_s']:,.0f}/s of the mix flow ({plan.lag_rate}/s "
                    f"offered for {plan.lag_seconds:.0f} s {at()}; accept p99 {x['p99_ms']:.0f} ms, "
                    f"{x['statuses']}): processed_at − received_at p50 {lag['p50_s']:.2f} s, "
                    f"p99 {lag['p99_s']:.2f} s, max {lag['max_s']:.2f} s"
                    f"   target p99 ≤ {TARGETS['lag_p99_s_at_500']:.0f} s: "
                    f"{ok(lag['p99_s'] <= TARGETS['lag_p99_s_at_500'])}"
                    f"\n    seen committed by this bench (0.2 s polls): p50 {seconds(seen_p['p50_s'])}, "
                    f"p99 {seconds(seen_p['p99_s'])}; "
                    f"{lag['pending']:,} of {lag['events']:,} still pending "
                    f"{plan.lag_tail_s:.0f} s after the last send"
                    f"{' (their age counted as their lag)' if lag['pending'] else ''}"
                    f"\n    {cpu_text(cpu)}; {watcher.peak.text()}",
                    flush=True,
                )
                for w in workers:
                    w.terminate()
                phase["worker_exits"] = [
                    {
                        "code": w.stop(timeout=WORKER_STOP_S),
                        "seconds": w.exit_seconds,
                        "killed": w.killed,
                    }
                    for w in workers
                ]
                for w in workers:
                    if w.killed:
                        print(
                            f"    !! {w.name} did not exit within {WORKER_STOP_S:.0f} s of SIGTERM: "
                            "killed"
                        )
                    elif w.exit_seconds is not None:
                        print(f"    {w.name} exited within {w.exit_seconds:.1f} s of SIGTERM")
                for w in workers:
                    results["problems"][w.log_path.name] = print_problems(w.name, w.log_path)
                workers = []
                await conn.execute(
                    "UPDATE events SET status = 'ignored', error = 'bench: set aside' "
                    "WHERE status = 'pending'"
                )
            results["journal_total"] = await event_counts(conn)
        finally:
            if conn is not None:
                await conn.close()
            for w in workers:
                w.terminate()
            for w in workers:
                w.stop(timeout=WORKER_STOP_S)
            results["web_exit_code"] = server.stop()
        results["problems"]["web"] = print_problems("web server", server.log_path)

        # (a) again, now that the services are gone: the machine may have drifted.
        post_ = await insert_ceiling(dsn, reqs["webform"], c)
        results["ceiling_after"] = post_
        print(
            f"\n(a) PostgreSQL ceiling again after the run: {post_['per_s']:,.0f} rows/s "
            f"(p99 {post_['p99_ms']:.1f} ms) {at()}",
            flush=True,
        )
    await r.flushdb()
    await r.aclose()

    ceiling = (pre["per_s"] + post_["per_s"]) / 2
    results["ceiling_per_s"] = ceiling
    print(f"\nSummary (targets from the issue), {n_web} web processes")
    rows: list[tuple[str, str, str, bool | None]] = [
        ("(a) PostgreSQL INSERT+COMMIT ceiling (before/after mean)", f"{ceiling:,.0f}/s", "", None)
    ]
    for name in ACCEPTED:
        v = results["http_ceiling"][name]["per_s"]
        rows.append((f"(b) HTTP ceiling, bare aiohttp, {name} requests", f"{v:,.0f}/s", "", None))
    for name in ACCEPTED:
        v = results[name]["per_s"]
        rows.append(
            (
                f"(c) {name} deliveries accepted",
                f"{v:,.0f}/s",
                f"≥ {TARGETS['accept_per_s']:,}/s",
                v >= TARGETS["accept_per_s"],
            )
        )
    for name in ACCEPTED:
        v = results[name]["per_s"] / ceiling
        results[f"{name}_over_pg_ceiling"] = v
        rows.append((f"(c)/(a) {name}", f"{v:.2f}", "≥ 0.50", v >= TARGETS["accept_over_ceiling"]))
    for name in ACCEPTED:
        v = results[name]["per_s"] / results["http_ceiling"][name]["per_s"]
        results[f"{name}_over_http_ceiling"] = v
        rows.append((f"(c)/(b) {name}", f"{v:.2f}", "≥ 0.50", v >= TARGETS["accept_over_ceiling"]))
    for name in ("webform", "twilio"):
        v = results[f"{name}_at_rate"]["p99_ms"]
        rows.append(
            (
                f"(c) {name} p99 at {plan.rate:,}/s offered",
                f"{v:,.1f} ms",
                f"≤ {TARGETS['p99_ms_at_1000']} ms",
                v <= TARGETS["p99_ms_at_1000"],
            )
        )
    for n_workers in (1, 2):
        phase = results[f"e2e_{n_workers}w"]
        v = phase["backlog"]["per_s"]
        target = f"≥ {TARGETS['e2e_per_s_one_worker']:,}/s" if n_workers == 1 else ""
        rows.append(
            (
                f"(d) end to end, {n_workers} worker process{'es' if n_workers > 1 else ''}, backlog",
                f"{v:,.0f}/s",
                target,
                v >= TARGETS["e2e_per_s_one_worker"] if n_workers == 1 else None,
            )
        )
    for n_workers in (1, 2):
        v = results[f"e2e_{n_workers}w"]["flowing"]["lag"]["p99_s"]
        rows.append(
            (
                f"(d) p99 lag at {plan.lag_rate}/s offered, {n_workers} worker process"
                f"{'es' if n_workers > 1 else ''}",
                f"{v:,.2f} s",
                f"≤ {TARGETS['lag_p99_s_at_500']:.0f} s",
                v <= TARGETS["lag_p99_s_at_500"],
            )
        )
    width = max(len(r[0]) for r in rows)
    for label, value, target, met in rows:
        verdict = "" if met is None else ok(met)
        print(
            f"  {label:<{width}}  {value:>11}   {('target ' + target) if target else '':<16}  {verdict}"
        )

    if profiles:
        results["profiles"] = {}
        for name, path in profiles.items():
            top = top_frames(path, n=15)
            results["profiles"][name] = top | {"file": str(path.relative_to(ROOT))}
            print(f"\npy-spy {name}: {top['samples']} samples; top self time (% of samples)")
            for frame, share in top["self"]:
                print(f"  {share:5.1f}  {frame}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases (about 4 minutes)")
    parser.add_argument("--requests", type=int, help="requests per endpoint (20,000; quick 2,000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=int, default=1000, help="offered deliveries/s (1,000)")
    parser.add_argument(
        "--web-processes",
        type=int,
        default=2,
        help="`switchboard web --processes N`, and the bare server's processes (2)",
    )
    parser.add_argument(
        "--backlog", type=int, help="events per end-to-end backlog (20,000; quick 5,000)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server and the worker")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare, args.web_processes)
        return
    q = args.quick
    backlog = args.backlog or (5_000 if q else 20_000)
    plan = Plan(
        requests=args.requests or (2_000 if q else 20_000),
        concurrency=args.concurrency,
        rate=args.rate,
        rate_seconds=3 if q else 10,
        rate_answer_s=10 if q else 20,
        web_processes=args.web_processes,
        crm_contacts=max(3_000 if q else 10_000, math.ceil(backlog * 0.45)),
        backlog=backlog,
        worker_start_limit_s=30 if q else 60,
        backlog_window_s=15 if q else 75,
        lag_rate=500,
        lag_seconds=10,
        lag_answer_s=10 if q else 15,
        lag_tail_s=10 if q else 15,
        profile=args.profile,
    )
    started = time.perf_counter()
    results = asyncio.run(asyncio.wait_for(run(plan), timeout=420 if q else 1000))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwall time {results['wall_s']:.0f} s; results in bench/results/ingest.json")


if __name__ == "__main__":
    main()
