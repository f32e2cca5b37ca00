"""Eight weeks of history for the demo company, so that every report and dashboard shows
something: answered and resolved conversations on both channels (some late, some complaints),
replies by the agents, leads per source with the opportunities the converted ones became, open
tasks, and two projects with their activities."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import (
    Activity,
    Contact,
    Lead,
    Project,
    Relation,
    RelationLink,
    Task,
    Team,
    TeamMember,
    User,
)
from crm.opportunities import Opportunity, default_pipeline
from inbox.models import Channel, Conversation, Message
from inbox.routing.models import ConversationSla

DAYS = 56
SUBJECTS = {
    "webform": ["Offerte kozijnen", "Vraag over levertijd", "Prijsopgave dakkapel", "Showroom bezoek"],
    "telephony": ["Storing cv-ketel", "Terugbelverzoek", "Vraag over factuur", "Monteur inplannen"],
}  # fmt: skip


async def seed_history(
    session: AsyncSession, channels: list[Channel], now: datetime | None = None, rng_seed: int = 7
) -> int:
    """Add the history (once: the caller seeds it with a fresh demo); returns conversations."""
    rng = random.Random(rng_seed)
    now = now or datetime.now(UTC)
    teams = {t.name: t.id for t in (await session.scalars(select(Team))).all()}
    members: dict[int, list[int]] = {}
    for team_id, user_id in (
        await session.execute(select(TeamMember.team_id, TeamMember.user_id))
    ).all():
        members.setdefault(team_id, []).append(user_id)
    contacts = (await session.execute(select(Contact.id, Contact.relation_id))).all()
    conversations: list[tuple[Conversation, Channel, int | None]] = []
    for day in range(DAYS, -1, -1):
        start = (now - timedelta(days=day)).replace(hour=7, minute=0, second=0, microsecond=0)
        weekend = start.weekday() >= 5
        for _ in range(rng.randrange(0, 2) if weekend else rng.randrange(3, 9)):
            channel = channels[0] if rng.random() < 0.6 else channels[1]
            team = teams["Verkoop"] if channel.kind == "webform" else teams["Service"]
            created = start + timedelta(minutes=rng.randrange(0, 10 * 60))
            if created >= now - timedelta(minutes=5):
                continue
            contact_id, relation_id = rng.choice(contacts)
            assignee = rng.choice(members[team])
            answered = created + timedelta(minutes=int(rng.expovariate(1 / 70)) + 3)
            resolved = answered + timedelta(minutes=int(rng.expovariate(1 / 900)) + 10)
            done = resolved < now - timedelta(days=2)
            conversation = Conversation(
                channel_id=channel.id,
                subject=rng.choice(SUBJECTS[channel.kind]),
                status="resolved" if done else "open",
                contact_id=contact_id,
                relation_id=relation_id,
                team_id=team,
                assignee_id=assignee,
                created_at=created,
                last_message_at=answered if answered < now else created,
                last_inbound_at=created,
                first_response_at=answered if answered < now else None,
                resolved_at=resolved if done else None,
                labels=["klacht"] if rng.random() < 0.06 else [],
            )
            conversations.append((conversation, channel, assignee))
    # Hamerslag hears from the demo's Jan Visser, with one complaint: the dashboard has content.
    hamerslag = (
        await session.scalars(select(Relation).where(Relation.name == "Hamerslag B.V.").limit(1))
    ).first()
    jan = (
        await session.scalars(
            select(Contact).where(Contact.relation_id == hamerslag.id).order_by(Contact.id).limit(1)
        )
    ).first() if hamerslag else None  # fmt: skip
    if hamerslag and jan:
        for conversation, _, _ in conversations[-12::3]:
            conversation.relation_id, conversation.contact_id = hamerslag.id, jan.id
        conversations[-12][0].labels = ["klacht"]
    session.add_all([c for c, _, _ in conversations])
    await session.flush()
    rows: list[Message | ConversationSla] = []
    for n, (c, channel, author) in enumerate(conversations):
        kind = "form" if channel.kind == "webform" else "call"
        rows.append(
            Message(
                conversation_id=c.id, channel_id=channel.id, external_id=f"demo-in-{n}",
                direction="inbound", kind=kind, subject=c.subject, text=c.subject or "",
                sent_at=c.created_at, status="received",
                meta={"call": {"status": "answered", "duration_s": 60 + n % 400}} if kind == "call" else {},
            )
        )  # fmt: skip
        if c.first_response_at is not None:
            rows.append(
                Message(
                    conversation_id=c.id, channel_id=channel.id, external_id=f"demo-out-{n}",
                    direction="outbound", kind="message", text="Dank voor uw bericht, wij helpen u graag.",
                    sent_at=c.first_response_at, status="sent", author_id=author,
                )
            )  # fmt: skip
        rows.append(
            ConversationSla(
                conversation_id=c.id,
                started_at=c.created_at,
                first_response_due_at=c.created_at + timedelta(hours=1),
                resolution_due_at=c.created_at + timedelta(days=1),
            )
        )
    session.add_all(rows)
    await seed_leads(session, rng, channels, now)
    await seed_projects(session, rng, conversations, hamerslag, jan, now)
    return len(conversations)


async def seed_leads(
    session: AsyncSession, rng: random.Random, channels: list[Channel], now: datetime
) -> None:
    sources: list[Channel | None] = [channels[0], channels[0], channels[1], None]
    names = [
        "Karin Prins",
        "Erik de Wit",
        "Fatima Yilmaz",
        "Joost Kramer",
        "Linda Vos",
        "Ahmed Bakr",
    ]
    leads = []
    for day in range(DAYS, 0, -1):
        for _ in range(rng.randrange(0, 4)):
            source = rng.choice(sources)
            leads.append(
                Lead(
                    name=rng.choice(names),
                    company=f"{rng.choice(['Bouw', 'Klus', 'Woon'])}bedrijf {rng.randrange(1, 99)}",
                    source_channel_id=source.id if source else None,
                    status=rng.choice(["new", "contacted", "qualified", "converted", "converted"]),
                    created_at=now - timedelta(days=day, hours=rng.randrange(0, 8)),
                )
            )
    session.add_all(leads)
    await session.flush()
    # Converted leads became opportunities: some won, some lost, the rest still open.
    pipeline = await default_pipeline(session)
    stages = {st.outcome: st for st in reversed(pipeline.stages)}  # the first of each outcome
    open_stages = [st for st in pipeline.stages if st.outcome == "open"]
    deals = []
    for lead in leads:
        if lead.status != "converted":
            continue
        roll = rng.random()
        stage = (
            stages["won"]
            if roll < 0.45
            else stages["lost"]
            if roll < 0.65
            else rng.choice(open_stages)
        )
        deals.append(
            Opportunity(
                name=f"{lead.company} - {rng.choice(['kozijnen', 'dakkapel', 'renovatie', 'onderhoud'])}",
                pipeline_id=pipeline.id, stage_id=stage.id, status=stage.outcome,
                probability=stage.probability, amount=rng.randrange(20, 400) * 100,
                lead_id=lead.id, source_channel_id=lead.source_channel_id,
                created_at=lead.created_at + timedelta(days=1),
                closed_at=lead.created_at + timedelta(days=8) if stage.outcome != "open" else None,
                lost_reason="Te duur" if stage.outcome == "lost" else None,
            )
        )  # fmt: skip
    session.add_all(deals)


async def seed_projects(
    session: AsyncSession,
    rng: random.Random,
    conversations: list[tuple[Conversation, Channel, int | None]],
    hamerslag: Relation | None,
    jan: Contact | None,
    now: datetime,
) -> None:
    """Two projects with meetings, calls and notes, tasks, and conversations linked to them."""
    other = (
        await session.scalars(
            select(Relation).where(Relation.name != "Hamerslag B.V.").order_by(Relation.id).limit(2)
        )
    ).all()
    users = {u.email.split("@")[0]: u.id for u in (await session.scalars(select(User))).all()}
    if hamerslag is None or len(other) < 2:
        return
    session.add(
        RelationLink(from_relation_id=other[1].id, to_relation_id=hamerslag.id, kind="dealer")
    )
    almere = Project(
        name="Nieuwbouw Almere Poort", relation_id=hamerslag.id, city="Almere",
        description="48 woningen, kozijnen en dakkapellen", owner_id=users.get("mohamed"),
        starts_on=(now - timedelta(days=40)).date(), ends_on=(now + timedelta(days=120)).date(),
    )  # fmt: skip
    utrecht = Project(
        name="Renovatie hoofdkantoor", relation_id=other[0].id, city="Utrecht",
        description="Gevelrenovatie en nieuwe installaties", owner_id=users.get("pieter"),
        starts_on=(now - timedelta(days=20)).date(),
    )  # fmt: skip
    session.add_all([almere, utrecht])
    await session.flush()
    plan = [
        (almere, "meeting", "Bouwvergadering", "Planning fase 1 besproken", 30),
        (almere, "call", "Uitvoerder gebeld", "Levering kozijnen week 12", 21),
        (almere, "note", "Tekeningen ontvangen", "Revisie C van de architect", 14),
        (almere, "meeting", "Oplevering modelwoning", None, 3),
        (utrecht, "meeting", "Kick-off renovatie", "Afspraken over bereikbaarheid", 18),
        (utrecht, "call", "Offerte installaties besproken", None, 9),
        (utrecht, "note", "Vergunning aangevraagd", None, 5),
    ]
    session.add_all(
        Activity(
            kind=kind, direction="internal" if kind != "call" else "outbound", subject=subject,
            body=body, occurred_at=now - timedelta(days=days, hours=rng.randrange(0, 6)),
            relation_id=project.relation_id, project_id=project.id,
            contact_id=jan.id if project is almere and jan else None,
            duration_s=300 if kind == "call" else None, user_id=project.owner_id,
        )
        for project, kind, subject, body, days in plan
    )  # fmt: skip
    session.add_all(
        [
            Task(kind="follow_up", title="Meerwerk offerte sturen", project_id=almere.id,
                 relation_id=hamerslag.id, assignee_id=users.get("mohamed"), due_at=now + timedelta(days=2)),
            Task(kind="follow_up", title="Planning installateur bevestigen", project_id=utrecht.id,
                 relation_id=other[0].id, assignee_id=users.get("lotte"), due_at=now - timedelta(days=1)),
        ]
    )  # fmt: skip
    for conversation, _, _ in conversations[-12::3]:
        conversation.project_id = almere.id
    pipeline = await default_pipeline(session)
    by_code = {st.code: st for st in pipeline.stages}
    for name, code, amount in (
        ("Kozijnen Almere Poort", "offerte", 48_000),
        ("Dakkapellen fase 2", "nieuw", 12_000),
    ):
        stage = by_code.get(code) or pipeline.stages[0]
        session.add(
            Opportunity(
                name=name, pipeline_id=pipeline.id, stage_id=stage.id, status=stage.outcome,
                probability=stage.probability, amount=amount, relation_id=hamerslag.id,
                contact_id=jan.id if jan else None, owner_id=users.get("mohamed"),
                team_id=hamerslag.team_id, expected_close_date=(now + timedelta(days=45)).date(),
            )
        )  # fmt: skip
