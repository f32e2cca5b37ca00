"""Canned replies: saved answers for the composer, personal, per team or for everyone.

Who sees what: everyone's, their teams' and their own (admins all). Who may change what: anyone
their own, a manager their teams', an admin everything. Placeholders such as {{contact.first_name}}
are filled in by the composer; the server only refuses names the composer would not know.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import CannedReply, Team
from inbox.access import Principal
from inbox.api.panel import names
from inbox.api.router import API, ApiError, ApiRequest, not_found

Scope = Literal["personal", "team", "everyone"]

PLACEHOLDERS = (
    "contact.first_name",
    "contact.last_name",
    "contact.name",
    "relation.name",
    "agent.name",
    "agent.first_name",
    "conversation.subject",
)
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
SHORTCUT = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class ShortcutAndLanguage(BaseModel):
    shortcut: str | None = Field(default=None, pattern=SHORTCUT)
    language: Literal["nl", "en"] | None = None

    @field_validator("shortcut", mode="before")
    @classmethod
    def bare_shortcut(cls, value: object) -> object:
        """People type the slash they use in the composer; store the name only."""
        return value.strip().removeprefix("/").lower() or None if isinstance(value, str) else value


class CannedIn(ShortcutAndLanguage):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000)
    scope: Scope = "personal"
    team_id: int | None = None


class CannedPatch(ShortcutAndLanguage):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=20_000)


class CannedOut(BaseModel):
    id: int
    title: str
    body: str
    shortcut: str | None
    language: str | None
    scope: Scope
    team_id: int | None
    team_name: str | None
    owner_id: int | None
    editable: bool
    created_at: datetime


class CannedList(BaseModel):
    items: list[CannedOut]
    placeholders: list[str]


def scope_of(reply: CannedReply) -> Scope:
    if reply.owner_id is not None:
        return "personal"
    return "team" if reply.team_id is not None else "everyone"


def visible(p: Principal) -> ColumnElement[bool]:
    """Everyone's, the principal's teams' and their own; an admin sees every reply."""
    if p.is_admin:
        return true()
    everyone = and_(CannedReply.owner_id.is_(None), CannedReply.team_id.is_(None))
    return or_(
        everyone,
        CannedReply.owner_id == p.user_id,
        CannedReply.team_id.in_(p.team_ids) if p.team_ids else false(),
    )


def may_write(p: Principal, scope: Scope, owner_id: int | None, team_id: int | None) -> bool:
    if p.is_admin:
        return True
    if scope == "personal":
        return owner_id == p.user_id
    if scope == "team":
        return p.role == "manager" and team_id in p.team_ids
    return False


def unknown_placeholders(*texts: str | None) -> list[str]:
    names = {m.group(1) for text in texts if text for m in PLACEHOLDER.finditer(text)}
    return sorted(names - set(PLACEHOLDERS))


def check_placeholders(*texts: str | None) -> None:
    unknown = unknown_placeholders(*texts)
    if unknown:
        raise ApiError(
            422,
            "invalid",
            f"unknown placeholder {{{{{unknown[0]}}}}}",
            {"unknown": unknown, "known": list(PLACEHOLDERS)},
        )


async def check_shortcut(session: AsyncSession, reply: CannedReply) -> None:
    """One shortcut means one reply within a scope, or typing it would be a guess."""
    if reply.shortcut is None:
        return
    clash = await session.scalar(
        select(CannedReply.id).where(
            CannedReply.shortcut == reply.shortcut,
            CannedReply.id != reply.id if reply.id is not None else true(),
            CannedReply.owner_id.is_not_distinct_from(reply.owner_id),
            CannedReply.team_id.is_not_distinct_from(reply.team_id),
        )
    )
    if clash is not None:
        raise ApiError(409, "conflict", f"the shortcut /{reply.shortcut} is taken in this scope")


async def describe(
    session: AsyncSession, p: Principal, replies: list[CannedReply]
) -> list[CannedOut]:
    teams = await names(session, Team, Team.name, {r.team_id for r in replies})
    return [
        CannedOut(
            id=r.id,
            title=r.title,
            body=r.body,
            shortcut=r.shortcut,
            language=r.language,
            scope=scope_of(r),
            team_id=r.team_id,
            team_name=teams.get(r.team_id) if r.team_id is not None else None,
            owner_id=r.owner_id,
            editable=may_write(p, scope_of(r), r.owner_id, r.team_id),
            created_at=r.created_at,
        )
        for r in replies
    ]


async def load_visible(req: ApiRequest, session: AsyncSession) -> CannedReply:
    reply = (
        await session.scalars(
            select(CannedReply)
            .where(CannedReply.id == req.path_int("reply_id"), visible(req.principal))
            .with_for_update()
        )
    ).first()
    if reply is None:
        raise not_found("canned reply")
    if not may_write(req.principal, scope_of(reply), reply.owner_id, reply.team_id):
        raise ApiError(403, "forbidden", "you cannot change this canned reply")
    return reply


@API.route(
    "GET",
    "/api/canned-replies",
    summary="The canned replies you may use: everyone's, your teams' and your own",
    tag="canned",
    response=CannedList,
)
async def list_canned(req: ApiRequest) -> CannedList:
    async with req.sessions() as session:
        replies = (
            await session.scalars(
                select(CannedReply)
                .where(visible(req.principal))
                .order_by(func.lower(CannedReply.title), CannedReply.id)
            )
        ).all()
        items = await describe(session, req.principal, list(replies))
    return CannedList(items=items, placeholders=list(PLACEHOLDERS))


@API.route(
    "POST",
    "/api/canned-replies",
    summary="Save a canned reply: your own, your team's (managers) or everyone's (admins)",
    tag="canned",
    body=CannedIn,
    response=CannedOut,
    status=201,
)
async def create_canned(req: ApiRequest) -> CannedOut:
    body: CannedIn = req.body
    p = req.principal
    owner_id = p.user_id if body.scope == "personal" else None
    team_id = body.team_id if body.scope == "team" else None
    if body.scope == "team" and team_id is None:
        raise ApiError(422, "invalid", "a team reply needs a team_id")
    if not may_write(p, body.scope, owner_id, team_id):
        raise ApiError(403, "forbidden", f"your role cannot save {body.scope} canned replies here")
    check_placeholders(body.title, body.body)
    async with req.sessions() as session, session.begin():
        if team_id is not None and await session.get(Team, team_id) is None:
            raise ApiError(422, "invalid", "no such team")
        reply = CannedReply(
            title=body.title.strip(),
            body=body.body,
            shortcut=body.shortcut,
            language=body.language,
            owner_id=owner_id,
            team_id=team_id,
            created_by=p.user_id,
        )
        await check_shortcut(session, reply)
        session.add(reply)
        await session.flush()
        await session.refresh(reply)
        (out,) = await describe(session, p, [reply])
    return out


@API.route(
    "PATCH",
    "/api/canned-replies/{reply_id}",
    summary="Change a canned reply you may edit",
    tag="canned",
    body=CannedPatch,
    response=CannedOut,
)
async def update_canned(req: ApiRequest) -> CannedOut:
    body: CannedPatch = req.body
    changes = body.model_dump(exclude_unset=True)
    async with req.sessions() as session, session.begin():
        reply = await load_visible(req, session)
        for name, value in changes.items():
            if value is None and name in ("title", "body"):
                raise ApiError(422, "invalid", f"{name} cannot be empty")
            setattr(reply, name, value)
        check_placeholders(reply.title, reply.body)
        await check_shortcut(session, reply)
        (out,) = await describe(session, req.principal, [reply])
    return out


@API.route(
    "DELETE",
    "/api/canned-replies/{reply_id}",
    summary="Remove a canned reply you may edit",
    tag="canned",
)
async def delete_canned(req: ApiRequest) -> web.StreamResponse:
    async with req.sessions() as session, session.begin():
        await session.delete(await load_visible(req, session))
    return web.Response(status=204)
