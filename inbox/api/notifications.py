"""REST routes of a person's notifications: the latest ones, and marking one read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from inbox.api.router import API, ApiRequest, not_found
from inbox.routing.models import Notification
from inbox.schemas import Out


def now() -> datetime:
    return datetime.now(UTC)


class NotificationOut(Out):
    id: int
    kind: str
    conversation_id: int | None
    task_id: int | None
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


@API.route("GET", "/api/notifications", summary="My latest notifications", tag="routing")
async def list_notifications(req: ApiRequest) -> list[dict[str, Any]]:
    unread = req.request.query.get("unread") in ("1", "true", "yes")
    query = select(Notification).where(Notification.user_id == req.principal.user_id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    async with req.sessions() as session:
        rows = (await session.scalars(query.order_by(Notification.id.desc()).limit(100))).all()
    return [NotificationOut.model_validate(n).model_dump(mode="json") for n in rows]


@API.route(
    "POST",
    "/api/notifications/{notification_id}/read",
    summary="Mark a notification read",
    tag="routing",
    response=NotificationOut,
)
async def read_notification(req: ApiRequest) -> NotificationOut:
    async with req.sessions() as session, session.begin():
        n = await session.get(Notification, req.path_int("notification_id"), with_for_update=True)
        if n is None or n.user_id != req.principal.user_id:
            raise not_found("notification")
        n.read_at = n.read_at or now()
    return NotificationOut.model_validate(n)
