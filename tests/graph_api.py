"""A local fake of the Graph API's WhatsApp endpoints: our sender talks real HTTP to it.

It records every request in `calls`, answers like the Cloud API (message ids, media ids, media
URLs on its own origin, error bodies), and checks the Bearer token. Point a channel at it with
{"api_base": graph.base_url}.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections import deque
from typing import Any

from aiohttp import web
from fake_server import FakeServer

ACCESS_TOKEN = "EAAGm0PX4ZCpsBAKZBtest0accesstoken0ZD"
APP_SECRET = "7d3c0b1f5e9a4c2b8f6e1d0a9c8b7a65"
PHONE_NUMBER_ID = "106540352242922"
VERSION = "v21.0"


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    """X-Hub-Signature-256 as Meta computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeGraphAPI(FakeServer):
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str]] = {}  # media id → (bytes, mime type)
        self.media_url_override: str | None = None  # a URL the media lookup answers instead
        self.errors: deque[tuple[int, dict[str, Any]]] = deque()  # answers for /messages
        self._ids = itertools.count(1)

    def sent(self) -> list[dict[str, Any]]:
        return [c["json"] for c in self.calls if c["path"].endswith("/messages")]

    def queue_error(self, code: int, message: str, status: int = 400) -> None:
        error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1"}
        self.errors.append((status, {"error": error}))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"/{VERSION}/{{number}}/messages", self._messages)
        app.router.add_post(f"/{VERSION}/{{number}}/media", self._upload)
        app.router.add_get(f"/{VERSION}/{{media_id}}", self._media_info)
        app.router.add_get("/media-files/{media_id}", self._media_file)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}"

    def _unauthorized(self) -> web.Response:
        error = {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
        return web.json_response({"error": error}, status=401)

    async def _messages(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        self.calls.append({"path": request.path, "json": body})
        if self.errors:
            status, answer = self.errors.popleft()
            return web.json_response(answer, status=status)
        wamid = f"wamid.OUT{next(self._ids):04d}"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            }
        )

    async def _upload(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        media_id = f"{9000 + next(self._ids)}"
        content = upload.file.read()
        self.media[media_id] = (content, upload.content_type)
        self.calls.append(
            {"path": request.path, "json": {"filename": upload.filename, "size": len(content)}}
        )
        return web.json_response({"id": media_id})

    async def _media_info(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        media_id = request.match_info["media_id"]
        self.calls.append({"path": request.path, "json": None})
        if media_id not in self.media:
            error = {
                "message": "Unsupported get request.",
                "type": "GraphMethodException",
                "code": 100,
            }
            return web.json_response({"error": error}, status=400)
        content, mime = self.media[media_id]
        url = self.media_url_override or f"{self.base_url}/media-files/{media_id}"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": url,
                "mime_type": mime,
                "sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "id": media_id,
            }
        )

    async def _media_file(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        content, mime = self.media[request.match_info["media_id"]]
        self.calls.append({"path": request.path, "json": None})
        return web.Response(body=content, content_type=mime)


def signed_headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": signature(body, secret)}


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
