"""A realistic Dutch demo company: people, teams, ~50 relations with contacts, two channels."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm import normalizers
from crm.matcher import Key, add_identities, identity_keys
from crm.models import Category, Contact, Project, Relation, Team, TeamMember, User
from inbox.bot.demo import seed_knowledge_base
from inbox.ingest.channels import add_channel
from inbox.models import Channel
from inbox.service.demo_pipeline import seed_pipeline
from inbox.users import hash_password

DEMO_PASSWORD = "switchboard-demo"

PEOPLE = [
    ("admin@switchboard.test", "Anke de Boer", "admin", ["Verkoop", "Service"]),
    ("pieter@switchboard.test", "Pieter Jansen", "manager", ["Verkoop"]),
    ("sanne@switchboard.test", "Sanne Bakker", "manager", ["Service", "Klachten"]),
    ("mohamed@switchboard.test", "Mohamed el Amrani", "agent", ["Verkoop"]),
    ("lotte@switchboard.test", "Lotte Smit", "agent", ["Verkoop", "Service"]),
    ("daan@switchboard.test", "Daan Mulder", "agent", ["Service"]),
    ("fleur@switchboard.test", "Fleur Visser", "agent", ["Klachten", "Service"]),
]
COMPANIES = [
    "Hamerslag",
    "Bouwbedrijf Van der Linden",
    "Kozijnenfabriek Noord",
    "De Groot Installatietechniek",
    "Timmerbedrijf Hoekstra",
    "Aannemersbedrijf Meijer",
    "Dakdekkers Brabant",
    "Schildersbedrijf Kok",
    "Van Dijk Vastgoed",
    "Bos Elektrotechniek",
    "Vos & Zonen",
    "Peters Loodgieters",
    "Hendriks Bouwmaterialen",
    "Dekker Tegelwerken",
    "Van Leeuwen Architecten",
    "Brouwer Renovatie",
    "De Wit Projectontwikkeling",
    "Dijkstra Grondwerken",
    "Smits Steigerbouw",
    "Van den Heuvel Glas",
    "Willems Houthandel",
    "Jacobs Isolatie",
    "Van der Meer Sanitair",
    "Koster Keukens",
    "Prins Vloeren",
    "Huisman Zonnepanelen",
    "Kuipers Metaalbouw",
    "Van Wijk Onderhoud",
    "Postma Betonbouw",
    "Verhoeven Stukadoors",
    "Maas Infra",
    "Bosman Bouwadvies",
    "Van Beek Woningbouw",
    "Mertens Interieurbouw",
    "Kramer Klimaattechniek",
    "Gerritsen Hekwerk",
    "Molenaar Restauratie",
    "Van Dam Transport",
    "Evers Hoveniers",
    "Claassen Bouwkeuring",
    "Wouters Dakkapellen",
    "Sanders Ramen & Deuren",
    "Lammers Bestratingen",
    "Groen Duurzaam Bouwen",
    "Koning Bouwgroep",
    "Scholten Trappen",
    "Van Vliet Montage",
    "Boer Energieadvies",
    "Martens Beveiliging",
    "Hermans Bouwsupport",
]
LEGAL = ["B.V.", "B.V.", "B.V.", "V.O.F.", "N.V.", "Holding B.V.", ""]
CITIES = [
    ("Almere", "Flevoland"),
    ("Amsterdam", "Noord-Holland"),
    ("Utrecht", "Utrecht"),
    ("Rotterdam", "Zuid-Holland"),
    ("Eindhoven", "Noord-Brabant"),
    ("Zwolle", "Overijssel"),
    ("Groningen", "Groningen"),
    ("Amersfoort", "Utrecht"),
    ("Breda", "Noord-Brabant"),
    ("Apeldoorn", "Gelderland"),
    ("Leeuwarden", "Friesland"),
    ("Haarlem", "Noord-Holland"),
]
FIRST = [
    "Jan",
    "Kees",
    "Sophie",
    "Emma",
    "Lucas",
    "Noah",
    "Julia",
    "Mila",
    "Thijs",
    "Bram",
    "Eva",
    "Sem",
    "Tess",
    "Ruben",
    "Anouk",
    "Jeroen",
    "Marieke",
    "Willem",
    "Ilse",
    "Hugo",
]
LAST = [
    "Visser",
    "de Jong",
    "van den Berg",
    "Bakker",
    "Janssen",
    "de Vries",
    "van Dijk",
    "Smit",
    "Meijer",
    "de Graaf",
    "van der Heijden",
    "Mulder",
    "Koster",
    "Peters",
    "Hendriks",
]
STATUSES = (
    ["customer"] * 5 + ["prospect"] * 3 + ["suspect"] * 2 + ["supplier", "advisor", "competitor"]
)
CATEGORIES = ["Aannemer", "Installateur", "Architect", "Groothandel", "Particulier", "Overheid"]


@dataclass(frozen=True)
class DemoResult:
    created: bool
    users: int
    relations: int
    contacts: int
    channels: list[Channel]


def slug(text: str) -> str:
    return "".join(c for c in normalizers.fold(text).replace(" ", "") if c.isalnum())


async def seed(session: AsyncSession, rng_seed: int = 2026) -> DemoResult:
    """Seed the demo company once; a second run only reports what is there."""
    existing = await session.scalar(select(func.count()).select_from(Relation))
    if existing:
        channels = list((await session.scalars(select(Channel).order_by(Channel.created_at))).all())
        n_users = await session.scalar(select(func.count()).select_from(User)) or 0
        n_contacts = await session.scalar(select(func.count()).select_from(Contact)) or 0
        return DemoResult(False, n_users, existing, n_contacts, channels)

    rng = random.Random(rng_seed)
    password = hash_password(DEMO_PASSWORD)
    teams = {name: Team(name=name) for name in ("Verkoop", "Service", "Klachten")}
    session.add_all(teams.values())
    users: list[User] = []
    for email, name, role, team_names in PEOPLE:
        user = User(
            email=email,
            name=name,
            role=role,
            password_hash=password,
            working_hours={"tz": "Europe/Amsterdam"}
            | {day: [["08:30", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
            capacity=25 if role == "agent" else 15,
        )
        users.append(user)
        session.add(user)
        await session.flush()
        for team_name in team_names:
            session.add(TeamMember(team_id=teams[team_name].id, user_id=user.id))
    await session.flush()
    teams["Verkoop"].lead_id = users[1].id
    teams["Service"].lead_id = users[2].id
    teams["Klachten"].lead_id = users[2].id
    categories = [Category(name=n) for n in CATEGORIES]
    session.add_all(categories)

    managers = [u for u in users if u.role in ("manager", "agent")]
    n_contacts = 0
    for i, base in enumerate(COMPANIES):
        legal = "B.V." if i == 0 else rng.choice(LEGAL)
        name = f"{base} {legal}".strip()
        city, region = CITIES[0] if i == 0 else rng.choice(CITIES)
        domain = f"{slug(base)}.nl"
        relation = Relation(
            name=name,
            normalized_name=normalizers.company(name),
            status=STATUSES[i % len(STATUSES)],
            abc_class=rng.choice("AABBBCC"),
            account_manager_id=users[3].id if i == 0 else rng.choice(managers).id,
            team_id=teams["Verkoop"].id,
            region=region,
            branch="Bouw",
            kvk_number=f"{rng.randrange(10_000_000, 99_999_999)}",
            website=f"https://www.{domain}",
            addresses=[
                {
                    "kind": "visit",
                    "street": f"Industrieweg {rng.randrange(1, 200)}",
                    "postcode": f"{rng.randrange(1000, 9999)} {rng.choice('ABCDEFGHJK')}{rng.choice('LMNPRSTVWX')}",
                    "city": city,
                    "country": "NL",
                }
            ],
            custom_fields={"source": "demo"},
            categories=rng.sample(categories, k=rng.randrange(1, 3)),
        )
        session.add(relation)
        await session.flush()
        await add_identities(
            session,
            identity_keys(
                [f"info@{domain}"],
                phones=[f"0{rng.randrange(10, 99)}-{rng.randrange(1_000_000, 9_999_999)}"],
            ),
            relation_id=relation.id,
        )
        # The company's domain: mail from a new colleague there is recognised as this relation.
        await add_identities(session, [Key("domain", domain, domain)], relation_id=relation.id)
        people = [("Jan", "Visser")] if i == 0 else []
        people += [(rng.choice(FIRST), rng.choice(LAST)) for _ in range(rng.randrange(1, 4))]
        for first, last in people:
            contact = Contact(
                relation_id=relation.id,
                first_name=first,
                last_name=last,
                full_name=f"{first} {last}",
                city=city,
                job_title=rng.choice(
                    ["Directeur", "Inkoper", "Projectleider", "Werkvoorbereider", None]
                ),
                language="nl",
            )
            session.add(contact)
            await session.flush()
            n_contacts += 1
            mobile = (
                "06-12345678"
                if i == 0 and first == "Jan"
                else f"06-{rng.randrange(10_000_000, 99_999_999)}"
            )
            address = f"{slug(first)}.{slug(last)}@{domain}"
            await add_identities(session, identity_keys([address], [mobile]), contact_id=contact.id)
        if i % 3 == 0:
            session.add(
                Project(
                    name=f"Nieuwbouw {city} fase {rng.randrange(1, 4)}",
                    relation_id=relation.id,
                    city=city,
                )
            )

    form = await add_channel(
        session,
        "webform",
        "Website contactformulier",
        {
            "redirect_url": "https://www.example.nl/bedankt",
            "cors_origins": ["https://www.example.nl"],
        },
        team="Verkoop",
    )
    phone = await add_channel(
        session, "telephony", "Telefooncentrale", {"dialect": "generic"}, team="Service"
    )
    await seed_knowledge_base(session)
    await seed_pipeline(session)
    return DemoResult(True, len(users), len(COMPANIES), n_contacts, [form, phone])


def demo_summary(result: DemoResult) -> dict[str, Any]:
    return {
        "created": result.created,
        "users": result.users,
        "relations": result.relations,
        "contacts": result.contacts,
        "login": {"email": PEOPLE[0][0], "password": DEMO_PASSWORD},
    }
