"""The demo company's sales pipeline: a dozen opportunities with the demo relations, spread over
the stages (two won, one lost), each moved there step by step over the past weeks."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Contact, User
from crm.opportunities import (
    Draft,
    StageChange,
    create_opportunity,
    default_pipeline,
    update_opportunity,
)

# (what, amount in euros, how many stages it moved on, lead source, lost reason)
DEALS = [
    ("Kozijnen nieuwbouw", 48_500, 0, "website", None),
    ("Dakkapellen 6 woningen", 31_200, 1, "phone", None),
    ("Onderhoudscontract 2027", 12_000, 2, "referral", None),
    ("Renovatie kantoorpand", 96_000, 1, "fair", None),
    ("Zonnepanelen bedrijfshal", 27_800, 0, "email", None),
    ("Isolatie schoolgebouw", 54_300, 2, "campaign", None),
    ("Keukens appartementen", 73_000, 1, "website", None),
    ("Glaswerk showroom", 8_900, 0, "chat", None),
    ("Steigerhuur voorjaar", 15_400, 2, "phone", None),
    ("Tegelwerk zorgcentrum", 22_600, 3, "referral", None),  # won
    ("Vloeren kantoren", 18_750, 3, "website", None),  # won
    ("Gevelrenovatie", 64_000, 4, "fair", "Prijs te hoog: gekozen voor een concurrent"),  # lost
]
OWNERS = ("pieter@switchboard.test", "mohamed@switchboard.test", "lotte@switchboard.test")


async def seed_pipeline(session: AsyncSession, rng_seed: int = 12) -> int:
    """Add the demo opportunities; returns how many."""
    rng = random.Random(rng_seed)
    now = datetime.now(UTC)
    pipeline = await default_pipeline(session)
    stages = pipeline.stages
    owners = list((await session.scalars(select(User.id).where(User.email.in_(OWNERS)))).all())
    relations = (
        await session.execute(
            select(Contact.relation_id, func.min(Contact.id))
            .where(Contact.relation_id.is_not(None))
            .group_by(Contact.relation_id)
            .order_by(Contact.relation_id)
            .limit(len(DEALS))
        )
    ).all()
    for (what, amount, steps, source, lost_reason), (relation_id, contact_id) in zip(
        DEALS, relations, strict=False
    ):
        opened = now - timedelta(days=rng.randrange(20, 70))
        opportunity = await create_opportunity(
            session,
            Draft(
                name=what,
                amount=Decimal(amount),
                expected_close_date=date.today() + timedelta(days=rng.randrange(10, 120)),
                owner_id=rng.choice(owners) if owners else None,
                relation_id=relation_id,
                contact_id=contact_id,
                source=source,
            ),
            None,
        )
        # Won deals skip the lost stage; the lost one goes there from negotiation.
        path = stages[1 : 1 + steps] if steps < 4 else [*stages[1:3], stages[4]]
        for stage in path:
            changes: dict[str, object] = {"stage_id": stage.id}
            if stage.outcome == "lost":
                changes["lost_reason"] = lost_reason
            await update_opportunity(session, opportunity, changes, opportunity.owner_id)
        # Spread the history over the weeks since it was opened.
        changes_made = (
            await session.scalars(
                select(StageChange)
                .where(StageChange.opportunity_id == opportunity.id)
                .order_by(StageChange.id)
            )
        ).all()
        when = opened
        for change in changes_made:
            change.created_at = when
            when += timedelta(days=rng.randrange(3, 12))
        opportunity.created_at = opened
        opportunity.updated_at = changes_made[-1].created_at
        if opportunity.status != "open":
            opportunity.closed_at = changes_made[-1].created_at
        await session.flush()
    return min(len(DEALS), len(relations))
