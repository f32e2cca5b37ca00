"""CRM records: users and teams, relations, contacts, identities, leads, activities, tasks."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.base import Base, Json, JsonList, Timestamped

ROLES = ("admin", "manager", "agent")
IDENTITY_KINDS = ("email", "phone", "telegram", "whatsapp", "web", "domain")
ACTIVITY_KINDS = ("call", "email", "message", "form", "note", "meeting")
TASK_STATUSES = ("open", "done", "cancelled")
PRIORITIES = ("low", "normal", "high", "urgent")
LEAD_STATUSES = ("new", "contacted", "qualified", "converted", "disqualified")


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_valid")


class User(Timestamped, Base):
    __tablename__ = "users"
    __table_args__ = (one_of("role", ROLES),)

    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # {"tz": "Europe/Amsterdam", "mon": [["08:30", "17:00"]], ...}
    working_hours: Mapped[Json] = mapped_column(default=dict)
    capacity: Mapped[int] = mapped_column(default=20)
    is_active: Mapped[bool] = mapped_column(default=True)
    away: Mapped[bool] = mapped_column(default=False)
    language: Mapped[str] = mapped_column(String(5), default="nl")

    memberships: Mapped[list[TeamMember]] = relationship(back_populates="user")


class Team(Timestamped, Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    working_hours: Mapped[Json] = mapped_column(default=dict)

    members: Mapped[list[TeamMember]] = relationship(back_populates="team")


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # Round-robin order: the member with the lowest rotation number goes next; every assignment
    # takes a fresh number from a sequence, so assignments in one transaction still rotate.
    rotation: Mapped[int] = mapped_column(server_default="0")
    last_assigned_at: Mapped[datetime | None]

    team: Mapped[Team] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")


class RelationStatus(Base):
    """The configurable list of relation statuses (suspect, prospect, customer, ...)."""

    __tablename__ = "relation_statuses"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(default=0)


class Category(Timestamped, Base):
    __tablename__ = "categories"

    name: Mapped[str] = mapped_column(String(100), unique=True)


relation_categories = Table(
    "relation_categories",
    Base.metadata,
    Column("relation_id", ForeignKey("relations.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "category_id", ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)


class Relation(Timestamped, Base):
    """An organisation the company deals with."""

    __tablename__ = "relations"
    __table_args__ = (
        # The A/B/C classes are a configurable list (crm/lists.py), checked on write.
        Index(
            "ix_relations_normalized_name_trgm",
            "normalized_name",
            postgresql_using="gin",
            postgresql_ops={"normalized_name": "gin_trgm_ops"},
        ),
    )

    name: Mapped[str] = mapped_column(String(300))
    normalized_name: Mapped[str] = mapped_column(String(300), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(
        ForeignKey("relation_statuses.code", onupdate="CASCADE"), default="prospect"
    )
    abc_class: Mapped[str | None] = mapped_column(String(1))
    account_manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    region: Mapped[str | None] = mapped_column(String(100))
    branch: Mapped[str | None] = mapped_column(String(100))
    kvk_number: Mapped[str | None] = mapped_column(String(20), index=True)
    website: Mapped[str | None] = mapped_column(String(300))
    # [{"kind": "visit", "street": ..., "postcode": ..., "city": ..., "country": "NL"}]
    addresses: Mapped[JsonList] = mapped_column(default=list)
    custom_fields: Mapped[Json] = mapped_column(default=dict)

    categories: Mapped[list[Category]] = relationship(secondary=relation_categories)
    contacts: Mapped[list[Contact]] = relationship(back_populates="relation")


class RelationLink(Timestamped, Base):
    """A typed link between relations: parent/subsidiary, dealer, ..."""

    __tablename__ = "relation_links"
    __table_args__ = (UniqueConstraint("from_relation_id", "to_relation_id", "kind"),)

    from_relation_id: Mapped[int] = mapped_column(ForeignKey("relations.id", ondelete="CASCADE"))
    to_relation_id: Mapped[int] = mapped_column(
        ForeignKey("relations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))


class Contact(Timestamped, Base):
    """A person, optionally at a relation."""

    __tablename__ = "contacts"

    relation_id: Mapped[int | None] = mapped_column(
        ForeignKey("relations.id", ondelete="SET NULL"), index=True
    )
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(150))
    full_name: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    job_title: Mapped[str | None] = mapped_column(String(150))
    city: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(5))
    custom_fields: Mapped[Json] = mapped_column(default=dict)

    relation: Mapped[Relation | None] = relationship(back_populates="contacts")


class Lead(Timestamped, Base):
    """A not-yet-formal contact: converts into relation + contact."""

    __tablename__ = "leads"
    __table_args__ = (
        one_of("status", LEAD_STATUSES),
        Index("ix_leads_created_at", "created_at"),  # reports: leads by when they came in
    )

    name: Mapped[str | None] = mapped_column(String(300))
    company: Mapped[str | None] = mapped_column(String(300))
    source_channel_id: Mapped[str | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    source_detail: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="new")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    fields: Mapped[Json] = mapped_column(default=dict)  # what the web form or bot asked
    # Fields an administrator defined for leads (crm.lists), checked on every write.
    custom_fields: Mapped[Json] = mapped_column(default=dict, server_default=text("'{}'::jsonb"))
    converted_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )


class Identity(Timestamped, Base):
    """A way to reach someone (an e-mail address, a phone number...), owned by one record."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("kind", "value"),
        one_of("kind", IDENTITY_KINDS),
        CheckConstraint("num_nonnulls(contact_id, relation_id, lead_id) = 1", name="one_owner"),
        # The matcher's blocking key: a number written with another country or area code.
        Index(
            "ix_identities_phone_tail",
            text("right(value, 7)"),
            postgresql_where=text("kind = 'phone'"),
        ),
    )

    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(320))  # normalised: lowercased e-mail, E.164 phone
    # Secondary match key: an e-mail without the provider's plus tag (and dots at gmail.com);
    # equal to value for every other kind. Matching looks it up; value stays as written.
    key: Mapped[str | None] = mapped_column(String(320), index=True)
    # A shared mailbox (info@, sales@): it never links a message to one person by itself.
    shared: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    raw: Mapped[str | None] = mapped_column(String(320))
    label: Mapped[str | None] = mapped_column(String(40))  # work, mobile, shared mailbox...
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    relation_id: Mapped[int | None] = mapped_column(
        ForeignKey("relations.id", ondelete="CASCADE"), index=True
    )
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True
    )


PROJECT_STATUSES = ("open", "on_hold", "closed")


class Project(Timestamped, Base):
    """Work around a relation that gathers conversations, activities, tasks and documents;
    a confidential one is seen only by admins and the users or teams linked to it."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(300))
    relation_id: Mapped[int | None] = mapped_column(
        ForeignKey("relations.id", ondelete="SET NULL"), index=True
    )
    city: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(40), default="open")
    confidential: Mapped[bool] = mapped_column(default=False)
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    # Fields an administrator defined for projects (crm.lists), checked on every write.
    custom_fields: Mapped[Json] = mapped_column(default=dict, server_default=text("'{}'::jsonb"))


class Activity(Timestamped, Base):
    """A call, e-mail, message, note or meeting, linked to whom it concerns."""

    __tablename__ = "activities"
    __table_args__ = (
        one_of("kind", ACTIVITY_KINDS),
        CheckConstraint("direction IN ('inbound', 'outbound', 'internal')", name="direction_valid"),
        UniqueConstraint("channel_id", "external_id"),
        # The relation dashboard's last activities: newest first within a relation.
        Index("ix_activities_relation_time", "relation_id", "occurred_at"),
    )

    kind: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10), default="inbound")
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    duration_s: Mapped[int | None]
    outcome: Mapped[str | None] = mapped_column(String(40))  # answered, missed, busy, failed...
    agent: Mapped[str | None] = mapped_column(String(200))
    recording_url: Mapped[str | None] = mapped_column(String(1000))
    channel_id: Mapped[str | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(300))
    sequence: Mapped[int | None]  # provider order of updates to this activity (call callbacks)
    relation_id: Mapped[int | None] = mapped_column(
        ForeignKey("relations.id", ondelete="SET NULL"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Task(Timestamped, Base):
    """Work for a person or team with a due time."""

    __tablename__ = "tasks"
    __table_args__ = (
        one_of("status", TASK_STATUSES),
        one_of("priority", PRIORITIES),
        Index(
            "ix_tasks_open_assignee",
            "assignee_id",
            "due_at",
            postgresql_where=text("status = 'open'"),
        ),
    )

    kind: Mapped[str] = mapped_column(String(40))  # follow_up, call_back, reply, ...
    title: Mapped[str] = mapped_column(String(500))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    due_at: Mapped[datetime | None]
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    status: Mapped[str] = mapped_column(String(20), default="open")
    completed_at: Mapped[datetime | None]
    relation_id: Mapped[int | None] = mapped_column(
        ForeignKey("relations.id", ondelete="SET NULL"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    activity_id: Mapped[int | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL")
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )


class SearchDocument(Base):
    """One searchable record (relation, contact, project, lead, conversation) with the text of
    its own fields and of its linked records; kept current by triggers (migration 0008)."""

    __tablename__ = "search_documents"
    __table_args__ = (
        Index("ix_search_documents_doc", "doc", postgresql_using="gin"),
        # Every word's prefixes of 2-6 letters: each query word is one exact lookup (0017).
        Index(
            "ix_search_documents_prefixes",
            text("sb_prefixes(doc)"),
            postgresql_using="gin",
            postgresql_with={"gin_pending_list_limit": 256},
        ),
    )

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    record_id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    subtitle: Mapped[str] = mapped_column(String(500), default="")
    # {"name": "Jan Visser", "relation": "Hamerslag B.V.", "project": "Nieuwbouw Almere", ...}
    fields: Mapped[Json] = mapped_column(default=dict)
    doc: Mapped[str] = mapped_column(TSVECTOR)
    names: Mapped[str] = mapped_column(Text, default="")  # folded names (no longer indexed)
    relation_id: Mapped[int | None]
    external_id: Mapped[str | None] = mapped_column(String(100))
    confidential: Mapped[bool] = mapped_column(default=False)
    # The record's latest activity (activities.occurred_at), kept by a trigger (0022); NULL: none.
    active_at: Mapped[datetime | None]


class SearchWord(Base):
    """The words of the search documents, for the one-typo-per-word fallback.

    Not unique on purpose: a unique key makes two transactions that add the same new word wait
    for each other, and the ingest workers (which add words through the index triggers) would
    deadlock. A word added by two transactions at once may appear twice; readers take DISTINCT.
    """

    __tablename__ = "search_words"

    id: Mapped[int] = mapped_column(primary_key=True)
    word: Mapped[str] = mapped_column(String(100), index=True)
    docs: Mapped[int] = mapped_column(default=0, server_default=text("0"))  # as of the last recount

    __table_args__ = (
        # The typo widening's prefix lookups: a range scan in byte order, counts in the index.
        # (Rendered `word COLLATE "C"`: the operator-class slot takes the collation.)
        Index(
            "ix_search_words_word_c",
            "word",
            postgresql_ops={"word": 'COLLATE "C"'},
            postgresql_include=["docs"],
        ),
    )


REVIEW_STATUSES = ("open", "confirmed", "rejected")


class MatchReview(Timestamped, Base):
    """A sender the matcher could not link with confidence: candidates for a person to confirm."""

    __tablename__ = "match_reviews"
    __table_args__ = (
        one_of("status", REVIEW_STATUSES),
        Index("ix_match_reviews_open", "created_at", postgresql_where=text("status = 'open'")),
    )

    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # The sender as the message gave it: {"email": ..., "phone": ..., "name": ..., ...}
    sender: Mapped[Json] = mapped_column(default=dict)
    # [{"contact_id": 1, "relation_id": 2, "score": 0.91, "reasons": {...}}, ...] best first
    candidates: Mapped[JsonList] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]


DUPLICATE_KINDS = ("relation", "contact", "lead")


class DuplicateCandidate(Timestamped, Base):
    """Two records that are likely the same, found by the periodic duplicate job."""

    __tablename__ = "duplicate_candidates"
    __table_args__ = (
        UniqueConstraint("kind", "record_id", "other_id"),
        one_of("kind", DUPLICATE_KINDS),
        CheckConstraint("record_id < other_id", name="ordered_pair"),
        Index(
            "ix_duplicate_candidates_open",
            "kind",
            "cluster",
            postgresql_where=text("status = 'open'"),
        ),
    )

    kind: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int]
    other_id: Mapped[int]
    cluster: Mapped[int]  # the smallest record id of the connected cluster
    score: Mapped[float]
    reasons: Mapped[Json] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open, merged, dismissed


class Merge(Timestamped, Base):
    """One merge of a record into another: what moved, so that it can be undone."""

    __tablename__ = "merges"
    __table_args__ = (one_of("kind", DUPLICATE_KINDS),)

    kind: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[int]  # the record merged away (kept in snapshot)
    target_id: Mapped[int] = mapped_column(index=True)
    snapshot: Mapped[Json] = mapped_column(default=dict)  # the source row as it was
    # {"identities": [ids], "conversations": [ids], "activities": [...], "tasks": [...], ...}
    moved: Mapped[Json] = mapped_column(default=dict)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    undone_at: Mapped[datetime | None]


class CannedReply(Timestamped, Base):
    """A saved answer for the composer: the user's own, a team's, or everyone's (both empty)."""

    __tablename__ = "canned_replies"
    __table_args__ = (CheckConstraint("num_nonnulls(owner_id, team_id) <= 1", name="one_scope"),)

    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    shortcut: Mapped[str | None] = mapped_column(String(40))  # typed as /shortcut in the composer
    language: Mapped[str | None] = mapped_column(String(5))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AccessGrant(Timestamped, Base):
    """Who may see a confidential conversation or project besides admins (and its assignee):
    a user or a whole team."""

    __tablename__ = "access_grants"
    __table_args__ = (
        CheckConstraint("num_nonnulls(conversation_id, project_id) = 1", name="one_subject"),
        CheckConstraint("num_nonnulls(user_id, team_id) = 1", name="one_grantee"),
    )

    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
