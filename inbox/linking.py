"""Linking a conversation to the contact a person confirmed (from the panel or the review queue).

The lead the conversation started as was this contact all along: its addresses move over (so the
next message links exactly), its conversations, activities and tasks follow, and any review of the
conversation waiting in the queue is closed as confirmed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Activity, Contact, Identity, Lead, MatchReview, Task
from inbox.history import record
from inbox.models import Conversation


async def link_conversation(
    session: AsyncSession, conversation: Conversation, contact: Contact, user_id: int | None
) -> None:
    before = {
        "contact_id": conversation.contact_id,
        "relation_id": conversation.relation_id,
        "lead_id": conversation.lead_id,
    }
    moved = {"contact_id": contact.id, "relation_id": contact.relation_id}
    lead = (
        await session.get(Lead, conversation.lead_id, with_for_update=True)
        if conversation.lead_id
        else None
    )
    if lead is not None and lead.status != "converted":
        await session.execute(
            update(Identity)
            .where(Identity.lead_id == lead.id)
            .values(lead_id=None, contact_id=contact.id)
        )
        for model in (Conversation, Activity, Task):
            await session.execute(update(model).where(model.lead_id == lead.id).values(**moved))
        lead.status, lead.converted_contact_id = "converted", contact.id
    await session.execute(
        update(Activity).where(Activity.conversation_id == conversation.id).values(**moved)
    )
    conversation.contact_id, conversation.relation_id = contact.id, contact.relation_id
    await session.execute(
        update(MatchReview)
        .where(MatchReview.conversation_id == conversation.id, MatchReview.status == "open")
        .values(
            status="confirmed",
            contact_id=contact.id,
            decided_by=user_id,
            decided_at=datetime.now(UTC),
        )
    )
    record(session, conversation.id, "link", user_id, before=before, after=moved)
