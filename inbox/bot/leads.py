"""What the bot learns about a customer: names, e-mail addresses and phone numbers checked, then
fed to the matcher so the conversation lands on the lead or the known contact."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from crm import normalizers
from crm.matcher import add_identities, identity_keys, match_exact
from crm.models import Identity, Lead
from inbox.history import record
from inbox.models import Conversation

# RFC 5322's dot-atom local part and a domain of letter-digit-hyphen labels with a real TLD.
EMAIL = re.compile(
    r"(?<![\w.+-])([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![\w-])"
)
NO_COMPANY = frozenset(
    {"geen", "nee", "niet", "none", "no", "-", "nvt", "n.v.t.", "particulier", "private", "n/a"}
)
LETTER = re.compile(r"[^\W\d_]")


def find_email(text: str) -> str | None:
    """The first syntactically valid e-mail address in the text, lowercased."""
    match = EMAIL.search(text)
    if match is None or len(match.group(1)) > 254 or len(match.group(1).split("@")[0]) > 64:
        return None
    return normalizers.email(match.group(1))


def find_phone(text: str, region: str = "NL") -> str | None:
    """The first valid phone number in the text (national or international), in E.164."""
    for candidate in phonenumbers.PhoneNumberMatcher(text, region):
        if phonenumbers.is_valid_number(candidate.number):
            return phonenumbers.format_number(candidate.number, phonenumbers.PhoneNumberFormat.E164)
    return None


def valid_name(text: str) -> str | None:
    """A person's name as typed, or None for what cannot be one (an address, a sentence)."""
    name = " ".join(text.split())
    if not 2 <= len(name) <= 100 or "@" in name or len(name.split()) > 6:
        return None
    if len(LETTER.findall(name)) < 2 or sum(c.isdigit() for c in name) > 0:
        return None
    return name


def company_of(text: str) -> str | None:
    company = " ".join(text.split())[:300]
    return None if company.lower().strip(".!") in NO_COMPANY or not company else company


@dataclass
class Details:
    """What the customer told the bot (or an external bot set)."""

    name: str | None = None
    company: str | None = None
    email: str | None = None
    phone: str | None = None
    question: str | None = None


async def apply_details(
    session: AsyncSession,
    conversation: Conversation,
    details: Details,
    *,
    region: str = "NL",
    actor_id: int | None = None,
) -> str:
    """Link the conversation to the contact the details identify, else enrich its lead (one is
    created when it has none). Returns "contact" or "lead"."""
    keys = identity_keys(
        [details.email] if details.email else [],
        [details.phone] if details.phone else [],
        region=region,
    )
    match = await match_exact(session, keys)
    if match.known:
        if conversation.contact_id is None and conversation.relation_id is None:
            conversation.contact_id, conversation.relation_id = match.contact_id, match.relation_id
            await move_chat_identities(session, conversation, match.contact_id, match.relation_id)
            if conversation.lead_id is not None:
                lead = await session.get(Lead, conversation.lead_id)
                if lead is not None and lead.status != "converted":
                    lead.status, lead.converted_contact_id = "converted", match.contact_id
            record(
                session,
                conversation.id,
                "linked",
                actor_id,
                contact_id=match.contact_id,
                relation_id=match.relation_id,
                via="bot",
            )
        owner = (
            {"contact_id": match.contact_id}
            if match.contact_id
            else {"relation_id": match.relation_id}
        )
        await add_identities(session, keys, **owner)
        return "contact"
    lead = await session.get(Lead, conversation.lead_id) if conversation.lead_id else None
    if lead is None:
        lead = Lead(source_channel_id=conversation.channel_id)
        session.add(lead)
        await session.flush()
        conversation.lead_id = lead.id
    lead.name = details.name or lead.name
    lead.company = details.company or lead.company
    fields = dict(lead.fields or {})
    for name in ("email", "phone", "question"):
        if value := getattr(details, name):
            fields[name] = value
    lead.fields = fields
    await add_identities(session, keys, lead_id=lead.id)
    return "lead"


async def move_chat_identities(
    session: AsyncSession,
    conversation: Conversation,
    contact_id: int | None,
    relation_id: int | None,
) -> None:
    """The messenger identity a lead got from this chat belongs to the known contact now."""
    if conversation.lead_id is None:
        return
    await session.execute(
        update(Identity)
        .where(
            Identity.lead_id == conversation.lead_id,
            Identity.kind.not_in(("email", "phone")),
        )
        .values(
            contact_id=contact_id, relation_id=None if contact_id else relation_id, lead_id=None
        )
    )
