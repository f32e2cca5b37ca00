"""REST routes of the routing rules: list, add, change and remove them, and try them on facts
without a conversation."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import Team, User
from inbox.api.router import API, ApiError, ApiRequest, not_found
from inbox.api.sla import Priority
from inbox.routing.models import RULE_EVENTS, RoutingRule, SlaPolicy
from inbox.routing.rules import ACTIONS, FIELDS, OPS, Facts, Rule, decide
from inbox.schemas import Out

ADMIN = ("admin",)
STAFF = ("admin", "manager")


# --- wire types -----------------------------------------------------------------------------------


class ConditionIn(BaseModel):
    field: str
    op: str = "eq"
    value: Any = None

    @model_validator(mode="after")
    def known(self) -> ConditionIn:
        if self.field not in FIELDS:
            raise ValueError(f"unknown field {self.field!r}; one of {', '.join(FIELDS)}")
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; one of {', '.join(OPS)}")
        if self.op == "matches":
            try:
                re.compile(str(self.value))
            except re.error as exc:
                raise ValueError(f"bad pattern: {exc}") from None
        return self


REQUIRED = {
    "set_team": "team_id",
    "assign_user": "user_id",
    "set_priority": "priority",
    "set_sla": "policy_id",
    "add_labels": "labels",
    "acknowledge": "text",
}


class ActionIn(BaseModel):
    type: str
    team_id: int | None = None
    user_id: int | None = None
    priority: Priority | None = None
    policy_id: int | None = None
    labels: list[str] | None = Field(default=None, max_length=20)
    enabled: bool | None = None
    text: str | None = Field(default=None, max_length=5000)
    subject: str | None = Field(default=None, max_length=500)
    skills: list[str] | None = Field(default=None, max_length=20)
    language: str | None = Field(default=None, max_length=5)

    @model_validator(mode="after")
    def complete(self) -> ActionIn:
        if self.type not in ACTIONS:
            raise ValueError(f"unknown action {self.type!r}; one of {', '.join(ACTIONS)}")
        needed = REQUIRED.get(self.type)
        if needed and getattr(self, needed) in (None, "", []):
            raise ValueError(f"{self.type} needs {needed}")
        return self


class RuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    position: int = 0
    is_active: bool = True
    events: list[str] = Field(default_factory=lambda: ["conversation.created"], min_length=1)
    match: Literal["all", "any"] = "all"
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=50)
    actions: list[ActionIn] = Field(min_length=1, max_length=20)

    @field_validator("events")
    @classmethod
    def known_events(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e not in RULE_EVENTS]
        if unknown:
            raise ValueError(f"unknown events {unknown}; one of {', '.join(RULE_EVENTS)}")
        return value


class RuleOut(Out):
    id: int
    name: str
    position: int
    is_active: bool
    events: list[str]
    match: str
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]


class RuleTestIn(BaseModel):
    """Facts to try the rules on, without a conversation."""

    event: str = "conversation.created"
    channel_kind: str = "email"
    channel_id: str = ""
    message_kind: str | None = "message"
    sender_known: bool = False
    relation_status: str | None = None
    abc_class: str | None = None
    categories: list[str] = Field(default_factory=list)
    region: str | None = None
    account_manager_id: int | None = None
    subject: str = ""
    body: str = ""
    language: str | None = None
    within_business_hours: bool = True
    priority: Priority = "normal"
    labels: list[str] = Field(default_factory=list)


# --- rules ----------------------------------------------------------------------------------------


@API.route(
    "GET", "/api/routing/rules", summary="Routing rules in order", tag="routing", roles=STAFF
)
async def list_rules(req: ApiRequest) -> list[dict[str, Any]]:
    async with req.sessions() as session:
        rows = (
            await session.scalars(
                select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)
            )
        ).all()
    return [RuleOut.model_validate(r).model_dump(mode="json") for r in rows]


def rule_values(body: RuleIn) -> dict[str, Any]:
    return {
        "name": body.name,
        "position": body.position,
        "is_active": body.is_active,
        "events": list(dict.fromkeys(body.events)),
        "match": body.match,
        "conditions": [c.model_dump() for c in body.conditions],
        "actions": [a.model_dump(exclude_none=True) for a in body.actions],
    }


@API.route(
    "POST",
    "/api/routing/rules",
    summary="Add a routing rule",
    tag="routing",
    roles=ADMIN,
    body=RuleIn,
    response=RuleOut,
    status=201,
)
async def create_rule(req: ApiRequest) -> RuleOut:
    async with req.sessions() as session, session.begin():
        await check_references(session, req.body)
        rule = RoutingRule(**rule_values(req.body))
        session.add(rule)
        await session.flush()
    return RuleOut.model_validate(rule)


@API.route(
    "PUT",
    "/api/routing/rules/{rule_id}",
    summary="Change a routing rule",
    tag="routing",
    roles=ADMIN,
    body=RuleIn,
    response=RuleOut,
)
async def update_rule(req: ApiRequest) -> RuleOut:
    async with req.sessions() as session, session.begin():
        rule = await session.get(RoutingRule, req.path_int("rule_id"), with_for_update=True)
        if rule is None:
            raise not_found("rule")
        await check_references(session, req.body)
        for name, value in rule_values(req.body).items():
            setattr(rule, name, value)
    return RuleOut.model_validate(rule)


@API.route(
    "DELETE",
    "/api/routing/rules/{rule_id}",
    summary="Remove a routing rule",
    tag="routing",
    roles=ADMIN,
)
async def delete_rule(req: ApiRequest) -> dict[str, Any]:
    async with req.sessions() as session, session.begin():
        gone = await session.execute(
            delete(RoutingRule).where(RoutingRule.id == req.path_int("rule_id"))
        )
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise not_found("rule")
    return {"deleted": True}


@API.route(
    "POST",
    "/api/routing/test",
    summary="Which rules match these facts, and what they decide",
    tag="routing",
    roles=STAFF,
    body=RuleTestIn,
)
async def test_rules(req: ApiRequest) -> dict[str, Any]:
    body: RuleTestIn = req.body
    facts = Facts(
        **body.model_dump(exclude={"categories", "labels"}),
        categories=tuple(body.categories),
        labels=tuple(body.labels),
    )
    async with req.sessions() as session:
        rows = (
            await session.scalars(
                select(RoutingRule)
                .where(RoutingRule.is_active, RoutingRule.events.contains([body.event]))
                .order_by(RoutingRule.position, RoutingRule.id)
            )
        ).all()
    d = decide([Rule.of(r) for r in rows], facts)
    return {
        "rules": d.rules,
        "team_id": d.team_id,
        "user_id": d.user_id,
        "priority": d.priority,
        "sla_policy_id": d.sla_policy_id,
        "labels": d.labels,
        "bot": d.bot,
        "acknowledge": d.acknowledge is not None,
        "skills": d.skills,
        "language": d.language,
    }


async def check_references(session: AsyncSession, body: RuleIn) -> None:
    for a in body.actions:
        for model, value, what in (
            (Team, a.team_id, "team"),
            (User, a.user_id, "user"),
            (SlaPolicy, a.policy_id, "SLA policy"),
        ):
            if value is not None and await session.get(model, value) is None:
                raise ApiError(422, "invalid", f"no such {what}: {value}")
