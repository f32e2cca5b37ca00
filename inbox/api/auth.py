"""Who is calling: browser sessions (cookie + CSRF token), API and bot tokens, and log-in."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm.models import TeamMember, User
from inbox import ratelimit
from inbox.access import Principal
from inbox.models import ApiToken, UserSession
from inbox.state import ARQ, SESSIONS, SETTINGS
from inbox.users import verify_password

COOKIE = "sb_session"
SESSION_DAYS = 14
TOKEN_PREFIX = "sbt_"
LOGIN_ATTEMPTS_PER_MINUTE = 5


PRINCIPAL = web.RequestKey("principal", object)
LAST_USED_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _principal(
    session: AsyncSession, user_id: int, via: str, **extra: str | None
) -> Principal | None:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    teams = (
        await session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id))
    ).all()
    return Principal(user.id, user.role, user.name, tuple(teams), via, **extra)  # type: ignore[arg-type]


# The token, its user and their teams in one round trip (every API call pays it); built once,
# so a call does not build the statement and its cache key again.
_TOKEN = (
    select(
        ApiToken.id,
        ApiToken.user_id,
        ApiToken.scope,
        ApiToken.channel_id,
        ApiToken.last_used_at,
        User.role,
        User.name,
        User.is_active,
        select(func.array_agg(TeamMember.team_id))
        .where(TeamMember.user_id == User.id)
        .scalar_subquery()
        .label("teams"),
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None))
)


async def authenticate(request: web.Request) -> Principal | None:
    """The caller by bearer token or session cookie; None when anonymous (cached per request)."""
    if PRINCIPAL in request:
        cached = request[PRINCIPAL]
        return cached if isinstance(cached, Principal) else None
    principal: Principal | None = None
    now = datetime.now(UTC)
    header = request.headers.get("Authorization", "")
    async with request.app[SESSIONS]() as session:
        # Autocommit: a read needs no BEGIN and COMMIT around it (two round trips every API
        # call would pay); the rare write below commits on its own.
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        if header.startswith("Bearer "):
            token = header[len("Bearer ") :].strip()
            row = (await session.execute(_TOKEN, {"digest": digest(token)})).first()
            if row is not None and row.is_active:
                # Once a minute at most: a write on every call would cost more than most
                # calls themselves.
                if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
                    await session.execute(
                        update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
                    )
                principal = Principal(
                    row.user_id,
                    row.role,
                    row.name,
                    tuple(row.teams or ()),
                    "token",
                    scope=row.scope,
                    channel_id=row.channel_id,
                )
        elif cookie := request.cookies.get(COOKIE):
            row_s = await session.get(UserSession, digest(cookie))
            if row_s is not None and row_s.expires_at > now:
                principal = await _principal(
                    session, row_s.user_id, "session", csrf_token=row_s.csrf_token
                )
    request[PRINCIPAL] = principal
    return principal


async def create_session(session: AsyncSession, user_id: int) -> tuple[str, str]:
    """A new browser session: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    session.add(
        UserSession(
            token_hash=digest(token),
            user_id=user_id,
            csrf_token=csrf,
            expires_at=datetime.now(UTC) + timedelta(days=SESSION_DAYS),
        )
    )
    await session.execute(delete(UserSession).where(UserSession.expires_at < datetime.now(UTC)))
    return token, csrf


async def create_api_token(
    session: AsyncSession,
    user_id: int,
    name: str,
    scope: str = "api",
    channel_id: str | None = None,
) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user_id, name=name, token_hash=digest(token), scope=scope, channel_id=channel_id
        )
    )
    await session.flush()
    return token


async def too_many_attempts(request: web.Request, email: str) -> int | None:
    """Seconds to wait when this address or client tried too often; counts this attempt."""
    redis = request.app[ARQ]
    by_client = await ratelimit.hit(
        redis, f"switchboard:login:ip:{request.remote}", LOGIN_ATTEMPTS_PER_MINUTE
    )
    by_address = await ratelimit.hit(
        redis, f"switchboard:login:email:{email}", LOGIN_ATTEMPTS_PER_MINUTE
    )
    return by_client or by_address


async def check_login(
    request: web.Request, email: str, password: str
) -> tuple[User | None, int | None]:
    """(user, None) on success; (None, seconds to wait) when rate limited; (None, None) on failure."""
    address = email.strip().lower()
    if (wait := await too_many_attempts(request, address)) is not None:
        return None, wait
    async with request.app[SESSIONS]() as session:
        user = (await session.scalars(select(User).where(User.email == address))).first()
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        return None, None
    return user, None


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    public = request.app[SETTINGS].public_url or ""
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=public.startswith("https://") or request.secure,
        path="/",
    )


async def end_session(request: web.Request) -> None:
    if cookie := request.cookies.get(COOKIE):
        async with request.app[SESSIONS]() as session, session.begin():
            await session.execute(
                delete(UserSession).where(UserSession.token_hash == digest(cookie))
            )


async def revoke_token(session: AsyncSession, token_id: int) -> None:
    await session.execute(
        update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=datetime.now(UTC))
    )
