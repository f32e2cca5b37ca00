"""Creating and listing channel instances (the CLI and, later, the admin API use this)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels import adapter_for
from channels.base import JsonObject
from crm.models import Team
from inbox.bot.setup import on_channel_added
from inbox.models import Channel


def lookup(config: dict[str, Any], dotted: str) -> Any:
    """A config value by a dotted name such as imap.password."""
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def webhook_path(channel: Channel) -> str:
    return f"/webhooks/{channel.kind}/{channel.id}"


def describe(channel: Channel, base_url: str) -> dict[str, Any]:
    """What an administrator needs to connect the sender: ids, URL and secrets."""
    adapter = adapter_for(channel.kind)
    secrets = {
        name: value for name in adapter.secret_names() if (value := lookup(channel.config, name))
    }
    info = {
        "id": channel.id,
        "kind": channel.kind,
        "name": channel.name,
        "webhook_path": webhook_path(channel),
        "webhook_url": base_url.rstrip("/") + webhook_path(channel),
        "default_team_id": channel.default_team_id,
        "is_active": channel.is_active,
        "config": channel.config,
        "secrets": secrets,
    }
    if channel.kind == "webchat":  # what the site's pages embed
        script = base_url.rstrip("/") + "/webchat/widget.js"
        info["widget_url"] = script
        info["embed"] = f'<script src="{script}" data-channel="{channel.id}" async></script>'
    return info


async def add_channel(
    session: AsyncSession,
    kind: str,
    name: str,
    config: JsonObject,
    team: str | None = None,
) -> Channel:
    adapter = adapter_for(kind)
    prepared = adapter.prepare_config(dict(config))
    team_id = None
    if team is not None:
        team_id = (await session.scalars(select(Team.id).where(Team.name == team))).first()
        if team_id is None:
            raise LookupError(f"no team named {team!r}")
    channel = Channel(kind=kind, name=name, config=prepared, default_team_id=team_id)
    session.add(channel)
    await session.flush()
    await on_channel_added(session, channel)
    return channel
