"""Search-as-you-type over relations, contacts, projects, leads and conversations, limited to
what the principal may see."""

from __future__ import annotations

import orjson
from aiohttp import web

from crm.search import BadQuery, search
from inbox.access import CONVERSATIONS_SQL, PROJECTS_SQL
from inbox.api.router import API, ApiError, ApiRequest


@API.route(
    "GET",
    "/api/search",
    summary="Search-as-you-type over relations, contacts, projects, leads and conversations",
    tag="search",
)
async def search_route(req: ApiRequest) -> web.Response:
    query = req.request.query.get("q", "")
    try:
        limit = min(max(int(req.request.query.get("limit", "10")), 1), 50)
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be a number") from None
    p = req.principal
    visible, params = "true", {}
    if not p.is_admin:
        visible = CONVERSATIONS_SQL
        params = {"me": p.user_id, "teams": list(p.team_ids)}
    try:
        async with req.sessions() as session:
            # Reads only: no BEGIN and ROLLBACK around them (round trips on every keystroke).
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            groups = await search(
                session,
                query,
                limit=limit,
                visible_conversations=visible,
                params=params,
                confidential=p.is_admin,
                granted_projects=None if p.is_admin else PROJECTS_SQL,
            )
    except BadQuery as exc:
        raise ApiError(400, "bad_query", str(exc)) from None
    # (Serialized here with orjson: the hits are plain values, and this answers every keystroke.)
    body = {kind: [vars(h) for h in hits] for kind, hits in groups.items()}
    return web.Response(body=orjson.dumps(body), content_type="application/json")
