"""Every route the app mounts, listed from its router (a route added tomorrow is checked too):
none answers 2xx without credentials, none limited to admins or managers answers an agent, and
no state-changing route takes a browser session without its CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from crm.models import User
from inbox.api.auth import COOKIE, create_session
from inbox.api.router import API, UNSAFE
from inbox.db import Sessions
from inbox.service.app import create_app
from inbox.settings import Settings

Client = TestClient[Any, Any]

# Public on purpose: the health and metrics probes, the pages (they carry no data and ask the
# API, which checks), the OpenAPI document, logging in and out, static files, CORS preflights.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("GET", "/login"),
    ("GET", "/conversations/{conversation_id}"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/logout"),
    ("OPTIONS", "/webhooks/{kind}/{channel_id}"),
    ("GET", "/webchat/widget.js"),  # the script a customer's website embeds
}


def mounted_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route of the app, from its router."""
    app = create_app(Settings(), "postgresql+asyncpg://unused/unused", "redis://unused")
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method == "HEAD" or "directory" in info:  # HEAD mirrors GET; static files
            continue
        found.add((route.method, route.resource.canonical if route.resource else ""))
    return sorted(found)


def concrete(path: str, value: str = "1") -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", value, path)


def test_the_route_list_comes_from_the_router() -> None:
    routes = mounted_routes()
    assert {(r.method, r.path) for r in API.routes} <= set(routes)
    assert ("GET", "/ws") in routes and ("POST", "/webhooks/{kind}/{channel_id}") in routes
    assert PUBLIC <= set(routes), "a public route was renamed: update PUBLIC"


async def test_no_route_answers_2xx_without_credentials(client: Client) -> None:
    answered = {}
    for method, path in mounted_routes():
        if (method, path) in PUBLIC:
            continue
        response = await client.request(
            method, concrete(path), json={} if method in UNSAFE else None, allow_redirects=False
        )
        answered[method, path] = response.status
    opened = {k: v for k, v in answered.items() if v < 300 or v >= 500}
    assert opened == {}
    assert all(
        status == 401 for (method, path), status in answered.items() if path.startswith("/api/")
    )


async def test_no_admin_or_manager_route_answers_an_agent(
    client: Client, login: Callable[..., Any]
) -> None:
    agent = await login("agent")
    limited = [r for r in API.routes if "agent" not in r.roles]
    assert limited, "no route is limited to admins or managers any more?"
    answered = {}
    for route in limited:
        response = await client.request(
            route.method,
            concrete(route.path),
            json={} if route.method in UNSAFE else None,
            headers=agent,
        )
        answered[route.method, route.path] = response.status
    assert set(answered.values()) == {403}, answered


async def logged_in(client: Client, sessions: Sessions, role: str) -> str:
    """Give the client's browser a session of a new user; returns its CSRF token."""
    async with sessions() as session, session.begin():
        user = User(email=f"csrf-{role}@switchboard.test", name="Csrf", role=role)
        session.add(user)
        await session.flush()
        token, csrf = await create_session(session, user.id)
    client.session.cookie_jar.update_cookies({COOKIE: token})
    return csrf


async def test_every_state_changing_route_wants_the_csrf_token_of_the_session(
    client: Client, sessions: Sessions
) -> None:
    csrf = await logged_in(client, sessions, "admin")
    unsafe = [(m, p) for m, p in mounted_routes() if m in UNSAFE]
    assert len(unsafe) > 20
    answered = {}
    for method, path in unsafe:
        if path.startswith(("/webhooks/", "/webchat/", "/api/auth/")):
            # Webhooks: the channel's secret authenticates; the chat widget: the visitor's
            # bearer token (no cookie, so nothing for another site to ride on); log-in/out:
            # the test below.
            continue
        for header in ({}, {"X-CSRF-Token": "forged"}):
            response = await client.request(
                method,
                concrete(path),
                json={},
                headers=header,
                allow_redirects=False,
            )
            answered[method, path, bool(header)] = response.status
    forged = {k: v for k, v in answered.items() if v != 403}
    assert forged == {}
    # The same session with its token gets past the check (to the handler's own answer).
    passed = await client.post("/api/me/language", json={}, headers={"X-CSRF-Token": csrf})
    assert passed.status != 403


async def test_a_cross_site_form_cannot_log_a_browser_in_or_out(
    client: Client, sessions: Sessions
) -> None:
    """A form from another site posts text/plain without a preflight, and has no CSRF token."""
    csrf = await logged_in(client, sessions, "agent")
    body = '{"email": "csrf-agent@switchboard.test", "password": "x"}'
    form = {"Content-Type": "text/plain"}
    assert (await client.post("/api/auth/login", data=body, headers=form)).status == 415
    assert (await client.post("/api/auth/logout", data=body, headers=form)).status == 403
    assert (await client.get("/api/me")).status == 200
    assert (await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})).status == 200
    assert (await client.get("/api/me")).status == 401
