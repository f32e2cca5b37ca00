"""The REST API's plumbing: one registry of routes that authenticates, checks roles and CSRF,
validates input with pydantic, answers errors in one shape and describes itself as OpenAPI."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from crm.lists import Invalid
from inbox.access import Principal
from inbox.api.auth import authenticate
from inbox.db import Sessions
from inbox.state import SESSIONS

log = structlog.get_logger(__name__)

ALL_ROLES = ("admin", "manager", "agent")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"no such {what}")


def bot_refused(p: Principal) -> None:
    if p.scope == "bot":
        raise ApiError(403, "forbidden", "a bot token cannot do this")


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if details is not None:
        body["details"] = details
    return web.json_response({"error": body}, status=status)


@dataclass
class ApiRequest:
    """What a handler gets: the principal, validated input and a session factory."""

    request: web.Request
    principal: Principal
    body: Any = None
    query: Any = None

    @property
    def sessions(self) -> Sessions:
        return self.request.app[SESSIONS]

    def path_int(self, name: str) -> int:
        try:
            return int(self.request.match_info[name])
        except ValueError:
            raise not_found(name.removesuffix("_id")) from None


Handler = Callable[[ApiRequest], Awaitable[Any]]


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    roles: tuple[str, ...] = ALL_ROLES
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    scopes: tuple[str, ...] = ("api",)  # token scopes allowed besides a browser session


@dataclass
class Api:
    routes: list[Route] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        roles: tuple[str, ...] = ALL_ROLES,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        scopes: tuple[str, ...] = ("api",),
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method,
                    path,
                    handler,
                    summary,
                    tag,
                    roles,
                    body,
                    query,
                    response,
                    status,
                    scopes,
                )
            )
            return handler

        return register

    def add_routes(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, self._wrap(route))
        app.router.add_get("/api/openapi.json", self._openapi_view)

    def _wrap(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        handle = self._handle(route)

        async def view(request: web.Request) -> web.StreamResponse:
            # How long the server took (authentication, the handler, the answer's body), for
            # the browser's network panel and for telling the server's time from the network's.
            started = time.perf_counter()
            response = await handle(request)
            if not response.prepared:
                elapsed = (time.perf_counter() - started) * 1000
                response.headers["Server-Timing"] = f"app;dur={elapsed:.2f}"
            return response

        return view

    def _handle(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def view(request: web.Request) -> web.StreamResponse:
            principal = await authenticate(request)
            if principal is None:
                return error_response(401, "unauthenticated", "log in or send a bearer token")
            if principal.via == "token" and principal.scope not in route.scopes:
                return error_response(403, "forbidden", f"a {principal.scope} token cannot do this")
            if principal.role not in route.roles:
                return error_response(403, "forbidden", "your role does not allow this")
            if principal.via == "session" and request.method in UNSAFE:
                if request.headers.get("X-CSRF-Token") != principal.csrf_token:
                    return error_response(403, "csrf", "missing or wrong X-CSRF-Token header")
            try:
                query = route.query.model_validate(dict(request.query)) if route.query else None
                body = await read_body(request, route.body) if route.body else None
                result = await route.handler(ApiRequest(request, principal, body, query))
            except ValidationError as exc:
                details = [
                    {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors()
                ]
                return error_response(422, "invalid", "the request does not validate", details)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message, exc.details)
            except Invalid as exc:  # a domain check of the CRM: 422 naming the field
                details = [{"loc": exc.field.split("."), "msg": exc.message, "type": "invalid"}]
                return error_response(422, "invalid", f"{exc.field}: {exc.message}", details)
            except web.HTTPException:
                raise
            except Exception:
                log.exception("api handler failed", path=route.path)
                return error_response(500, "internal", "something went wrong on our side")
            if isinstance(result, web.StreamResponse):
                return result
            if isinstance(result, BaseModel):
                return web.Response(
                    text=result.model_dump_json(),
                    status=route.status,
                    content_type="application/json",
                )
            return web.json_response(result, status=route.status, dumps=_dumps)

        return view

    async def _openapi_view(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi())

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every registered route."""
        paths: dict[str, dict[str, Any]] = {}
        schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}

        def ref(model: type[BaseModel]) -> dict[str, str]:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
            return {"$ref": f"#/components/schemas/{model.__name__}"}

        for route in self.routes:
            op: dict[str, Any] = {
                "summary": route.summary,
                "tags": [route.tag],
                "operationId": route.handler.__name__,
                "security": [{"session": []}, {"bearer": []}],
                "x-roles": list(route.roles),
                "responses": {
                    str(route.status): {
                        "description": "OK",
                        **(
                            {"content": {"application/json": {"schema": ref(route.response)}}}
                            if route.response
                            else {}
                        ),
                    },
                    "default": {
                        "description": "Error",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                },
            }
            params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _path_params(route.path)
            ]
            if route.query:
                for name, spec in route.query.model_json_schema().get("properties", {}).items():
                    params.append({"name": name, "in": "query", "required": False, "schema": spec})
            if params:
                op["parameters"] = params
            if route.body:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref(route.body)}},
                }
            paths.setdefault(route.path, {})[route.method.lower()] = op
        return {
            "openapi": "3.1.0",
            "info": {"title": "Switchboard API", "version": "1"},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "session": {"type": "apiKey", "in": "cookie", "name": "sb_session"},
                },
            },
        }


ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
            "required": ["status", "code", "message"],
        }
    },
    "required": ["error"],
}


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


async def read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if not request.can_read_body:
        raise ApiError(400, "bad_request", "a JSON body is required")
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None
    except web.HTTPRequestEntityTooLarge as exc:  # answered like every other API error
        raise ApiError(413, "too_large", exc.text or "the body is too large") from None
    return model.model_validate(data)


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", "the cursor is not one we gave out") from None
    if not isinstance(values, list):
        raise ApiError(400, "bad_cursor", "the cursor is not one we gave out")
    return values


API = Api()
