"""The log-in session's routes: log in and out (the session cookie and its CSRF token), who am
I, and API or bot tokens; `add_routes` mounts them with the rest of the REST API."""

from __future__ import annotations

from aiohttp import web

from crm.models import User
from inbox.api.auth import (
    authenticate,
    check_login,
    create_api_token,
    create_session,
    end_session,
    set_session_cookie,
)
from inbox.api.router import API, ApiError, ApiRequest, error_response
from inbox.models import Channel
from inbox.schemas import LoginIn, Me, TokenIn, TokenOut
from inbox.state import SESSIONS


def not_json(request: web.Request) -> web.Response | None:
    """A 415 unless the body is declared JSON: a cross-site form (text/plain, no CORS preflight)
    must not log a browser in to someone else's account."""
    if request.content_type == "application/json":
        return None
    return web.json_response(
        {"error": {"status": 415, "code": "unsupported_media_type", "message": "send JSON"}},
        status=415,
    )


async def login(request: web.Request) -> web.Response:
    """POST /api/auth/login {email, password}: sets the session cookie, returns the CSRF token."""
    if refused := not_json(request):
        return refused
    try:
        data = LoginIn.model_validate(await request.json())
    except Exception:
        raise web.HTTPBadRequest(
            text='{"error": {"status": 400, "code": "bad_request", "message": "email and password required"}}',
            content_type="application/json",
        ) from None
    user, wait = await check_login(request, data.email, data.password)
    if wait is not None:
        return web.json_response(
            {"error": {"status": 429, "code": "rate_limited", "message": "too many attempts"}},
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if user is None:
        return web.json_response(
            {
                "error": {
                    "status": 401,
                    "code": "bad_credentials",
                    "message": "wrong e-mail or password",
                }
            },
            status=401,
        )
    await end_session(request)  # a session id the browser brought (planted) dies here
    async with request.app[SESSIONS]() as session, session.begin():
        token, csrf = await create_session(session, user.id)
    response = web.json_response(
        {"id": user.id, "name": user.name, "role": user.role, "csrf_token": csrf}
    )
    set_session_cookie(request, response, token)
    return response


async def logout(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    if principal is not None and principal.via == "session":
        # Like every state change of a session: a cross-site form cannot log the browser out.
        if request.headers.get("X-CSRF-Token") != principal.csrf_token:
            return error_response(403, "csrf", "missing or wrong X-CSRF-Token header")
    await end_session(request)
    response = web.json_response({"status": "logged out"})
    response.del_cookie("sb_session", path="/")
    return response


@API.route("GET", "/api/me", summary="Who am I", tag="auth", response=Me, scopes=("api", "bot"))
async def me(req: ApiRequest) -> Me:
    p = req.principal
    return Me(
        id=p.user_id, name=p.name, role=p.role, team_ids=list(p.team_ids), csrf_token=p.csrf_token
    )


@API.route(
    "POST",
    "/api/tokens",
    summary="Create an API or bot token (shown once)",
    tag="auth",
    body=TokenIn,
    response=TokenOut,
    status=201,
)
async def create_token(req: ApiRequest) -> TokenOut:
    body: TokenIn = req.body
    user_id = body.user_id or req.principal.user_id
    if (body.scope == "bot" or user_id != req.principal.user_id) and not req.principal.is_admin:
        raise ApiError(403, "forbidden", "only an admin creates bot tokens or tokens for others")
    if body.scope == "bot" and not body.channel_id:
        raise ApiError(422, "invalid", "a bot token needs a channel_id")
    async with req.sessions() as session, session.begin():
        if body.channel_id is not None and await session.get(Channel, body.channel_id) is None:
            raise ApiError(422, "invalid", "no such channel")
        if await session.get(User, user_id) is None:
            raise ApiError(422, "invalid", "no such user")
        token = await create_api_token(session, user_id, body.name, body.scope, body.channel_id)
    return TokenOut(token=token, scope=body.scope, user_id=user_id)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/auth/logout", logout)
    API.add_routes(app)
