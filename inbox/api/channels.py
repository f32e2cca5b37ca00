"""REST routes of the channels (admin only): list them with their webhook paths and secrets,
and add one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from channels import ADAPTERS
from inbox.api.router import API, ApiError, ApiRequest
from inbox.ingest.channels import add_channel, describe
from inbox.models import Channel
from inbox.schemas import ChannelIn

ADMIN = ("admin",)


@API.route(
    "GET",
    "/api/channels",
    summary="Channels with webhook paths and secrets",
    tag="channels",
    roles=ADMIN,
)
async def list_channels(req: ApiRequest) -> list[dict[str, Any]]:
    base = str(req.request.url.origin())
    async with req.sessions() as session:
        rows = (await session.scalars(select(Channel).order_by(Channel.created_at))).all()
        return [describe(c, base) for c in rows]


@API.route(
    "POST",
    "/api/channels",
    summary="Add a channel",
    tag="channels",
    roles=ADMIN,
    body=ChannelIn,
    status=201,
)
async def create_channel(req: ApiRequest) -> dict[str, Any]:
    body: ChannelIn = req.body
    if body.kind not in ADAPTERS:
        raise ApiError(422, "invalid", f"unknown channel kind {body.kind!r}")
    try:
        async with req.sessions() as session, session.begin():
            channel = await add_channel(session, body.kind, body.name, body.config, body.team)
    except (ValueError, LookupError) as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return describe(channel, str(req.request.url.origin()))
