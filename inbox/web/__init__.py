"""The web inbox: a log-in page and one page that talks to the REST API and /ws."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

import inbox.api.originals
import inbox.api.page
import inbox.api.panel
import inbox.api.projects
import inbox.api.relation_dashboard
import inbox.api.reports
import inbox.api.search  # noqa: F401  (registers the routes the pages need)
from inbox.api.auth import authenticate

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    # Sandboxed e-mail originals (iframe srcdoc) inherit this policy: no remote images or scripts.
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:;"
    " style-src 'self'; script-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(name: str) -> web.Response:
    return web.Response(
        body=(STATIC / name).read_bytes(), content_type="text/html", headers=SECURITY_HEADERS
    )


async def inbox_page(request: web.Request) -> web.Response:
    return await logged_in_page(request, "inbox.html")


async def logged_in_page(request: web.Request, name: str) -> web.Response:
    if await authenticate(request) is None:
        target = request.path_qs if request.path != "/" else ""
        raise web.HTTPFound("/login" + (f"?next={target}" if target else ""))
    return page(name)


async def record_page(request: web.Request) -> web.Response:
    """A relation's dashboard or a project's timeline (the script reads which from the path)."""
    return await logged_in_page(request, "record.html")


async def reports_page(request: web.Request) -> web.Response:
    return await logged_in_page(request, "reports.html")


async def pipeline_page(request: web.Request) -> web.Response:
    if await authenticate(request) is None:
        raise web.HTTPFound("/login?next=/pipeline")
    return page("pipeline.html")


async def login_page(request: web.Request) -> web.Response:
    return page("login.html")


async def static_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/static/"):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-cache")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", inbox_page)
    app.router.add_get(r"/conversations/{conversation_id:\d+}", inbox_page)
    app.router.add_get("/login", login_page)
    app.router.add_get(r"/relations/{relation_id:\d+}", record_page)
    app.router.add_get(r"/projects/{project_id:\d+}", record_page)
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/pipeline", pipeline_page)
    app.router.add_static("/static/", STATIC, show_index=False)
    app.on_response_prepare.append(static_headers)
