"""REST routes of outbound webhooks (admins): subscriptions, their delivery log, redelivery."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from channels.egress import for_webhooks
from inbox.api.router import API, ApiError, ApiRequest, not_found
from inbox.bot.external import new_secret
from inbox.outbox.models import WebhookDelivery, WebhookSubscription
from inbox.outbox.schemas import (
    DeliveryOut,
    DeliveryQuery,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)
from inbox.state import ARQ, SETTINGS

ADMIN = ("admin",)
BASE = "/api/webhooks/subscriptions"


async def check_url(req: ApiRequest, url: str) -> None:
    egress = for_webhooks(req.request.app[SETTINGS].webhook_allow_loopback)
    reason = await egress.refused_url(url)
    if reason:
        raise ApiError(422, "refused_destination", reason)


async def kick(req: ApiRequest) -> None:
    """Have a worker look at the outbox now rather than at its next round."""
    await req.request.app[ARQ].enqueue_job("deliver_webhooks", _job_id="deliver_webhooks:kick")


def out(row: WebhookSubscription, with_secret: bool = False) -> SubscriptionOut:
    result = SubscriptionOut.model_validate(row)
    result.secret = row.secret if with_secret else None
    return result


@API.route("GET", BASE, summary="Outbound webhook subscriptions", tag="webhooks", roles=ADMIN)
async def list_subscriptions(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        rows = (
            await session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
        ).all()
    return [out(r).model_dump(mode="json") for r in rows]


@API.route(
    "POST",
    BASE,
    summary="Subscribe a URL to event types (the secret is shown once)",
    tag="webhooks",
    roles=ADMIN,
    body=SubscriptionIn,
    response=SubscriptionOut,
    status=201,
)
async def create_subscription(req: ApiRequest) -> SubscriptionOut:
    body: SubscriptionIn = req.body
    await check_url(req, body.url)
    async with req.sessions() as session, session.begin():
        row = WebhookSubscription(
            url=body.url,
            events=sorted(set(body.events)),
            description=body.description,
            secret=body.secret or new_secret(),
            owner_id=req.principal.user_id,
            active=True,
        )
        session.add(row)
        await session.flush()
        return out(row, with_secret=True)


@API.route(
    "GET",
    BASE + "/{subscription_id}",
    summary="One outbound webhook subscription",
    tag="webhooks",
    roles=ADMIN,
    response=SubscriptionOut,
)
async def get_subscription(req: ApiRequest) -> SubscriptionOut:
    async with req.sessions() as session:
        row = await session.get(WebhookSubscription, req.path_int("subscription_id"))
        if row is None:
            raise not_found("subscription")
        return out(row)


@API.route(
    "PATCH",
    BASE + "/{subscription_id}",
    summary="Change, pause, re-enable a subscription or rotate its secret",
    tag="webhooks",
    roles=ADMIN,
    body=SubscriptionPatch,
    response=SubscriptionOut,
)
async def update_subscription(req: ApiRequest) -> SubscriptionOut:
    body: SubscriptionPatch = req.body
    if body.url is not None:
        await check_url(req, body.url)
    async with req.sessions() as session, session.begin():
        row = await session.get(
            WebhookSubscription, req.path_int("subscription_id"), with_for_update=True
        )
        if row is None:
            raise not_found("subscription")
        if body.url is not None:
            row.url = body.url
        if body.events is not None:
            row.events = sorted(set(body.events))
        if "description" in body.model_fields_set:
            row.description = body.description
        if body.active is not None and body.active != row.active:
            row.active = body.active
            # Re-enabled: a fresh start, the failure window counts from the next failure.
            row.failing_since = row.disabled_at = row.disabled_reason = None
        if body.rotate_secret:
            row.secret = new_secret()
        await session.flush()
        result = out(row, with_secret=body.rotate_secret)
    if body.active:
        await kick(req)
    return result


@API.route(
    "DELETE",
    BASE + "/{subscription_id}",
    summary="Remove a subscription and its delivery log",
    tag="webhooks",
    roles=ADMIN,
)
async def delete_subscription(req: ApiRequest) -> web.StreamResponse:
    async with req.sessions() as session, session.begin():
        row = await session.get(WebhookSubscription, req.path_int("subscription_id"))
        if row is None:
            raise not_found("subscription")
        await session.delete(row)
    return web.Response(status=204)


@API.route(
    "GET",
    BASE + "/{subscription_id}/deliveries",
    summary="A subscription's deliveries, newest first: status code, latency, attempts",
    tag="webhooks",
    roles=ADMIN,
    query=DeliveryQuery,
)
async def list_deliveries(req: ApiRequest) -> dict[str, Any]:
    q: DeliveryQuery = req.query
    subscription_id = req.path_int("subscription_id")
    d = WebhookDelivery
    query = select(d).where(d.subscription_id == subscription_id).order_by(d.id.desc())
    if q.status:
        query = query.where(d.status == q.status)
    if q.before is not None:
        query = query.where(d.id < q.before)
    async with req.sessions() as session:
        if await session.get(WebhookSubscription, subscription_id) is None:
            raise not_found("subscription")
        rows = (await session.scalars(query.limit(q.limit + 1))).all()
    items = [DeliveryOut.model_validate(r).model_dump(mode="json") for r in rows[: q.limit]]
    more = len(rows) > q.limit
    return {"items": items, "next_before": items[-1]["id"] if more else None}


@API.route(
    "POST",
    BASE + "/{subscription_id}/deliveries/{delivery_id}/redeliver",
    summary="Send a delivery again (a new delivery of the same event)",
    tag="webhooks",
    roles=ADMIN,
    response=DeliveryOut,
    status=202,
)
async def redeliver(req: ApiRequest) -> DeliveryOut:
    subscription_id = req.path_int("subscription_id")
    async with req.sessions() as session, session.begin():
        original = await session.get(WebhookDelivery, req.path_int("delivery_id"))
        if original is None or original.subscription_id != subscription_id:
            raise not_found("delivery")
        # Its own stream: a manual redelivery does not wait behind (or hold up) the
        # conversation's later events.
        copy = WebhookDelivery(
            event_id=original.event_id,
            subscription_id=subscription_id,
            event_type=original.event_type,
            conversation_id=None,
            payload=original.payload,
            status="pending",
            attempts=0,
            redelivery_of=original.id,
        )
        session.add(copy)
        await session.flush()
        await session.refresh(copy)
        result = DeliveryOut.model_validate(copy)
    await kick(req)
    return result
