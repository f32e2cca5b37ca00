"""A local fake of the Telegram Bot API: aiogram talks real HTTP to it on a free loopback port.

It reads aiogram's form-encoded (or multipart) requests, records them in `calls`, and answers like
Telegram does, errors included. Use it as a fixture:

    @pytest.fixture
    async def bot_api() -> AsyncIterator[FakeBotAPI]:
        async with FakeBotAPI() as api:
            yield api

and point a channel at it with {"token": TOKEN, "api_base": bot_api.base_url}.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import mimetypes
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from fake_server import FakeServer
from multidict import MultiDictProxy

TOKEN = "7012345678:AAF1x-Kq9zR2vT8wYb3nLmP4sD6fGh7JkLc"
BOT_USERNAME = "HelpdeskVanDijkBot"
# The tags Telegram's HTML parse mode knows; anything else is a 400.
HTML_TAGS = frozenset(
    "b strong i em u ins s strike del a code pre span tg-spoiler tg-emoji blockquote".split()
)
TAG = re.compile(r"<(/?)([a-zA-Z-]*)[^>]*>")
ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    method: str
    param: str  # the parameter that named it ("document" → "attach://<field>")
    field: str
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class QueuedError:
    code: int
    description: str
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None


class TelegramError(Exception):
    def __init__(self, code: int, description: str, **parameters: int) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


def html_problem(text: str) -> str | None:
    """Why Telegram's HTML parser would refuse `text`, like its own 400 description."""
    for match in TAG.finditer(text):
        if match.group(2).lower() not in HTML_TAGS:
            offset = len(text[: match.start()].encode())
            return f'Unsupported start tag "{match.group(2)}" at byte offset {offset}'
    stripped = TAG.sub("", text)
    for index, char in enumerate(stripped):
        if char == "<" or char == ">":
            return f"Unexpected character {char!r} at byte offset {index}"
        if char == "&" and not ENTITY.match(stripped, index):
            return f"Character '&' is reserved and must be escaped at byte offset {index}"
    return None


def plain(text: str) -> str:
    """The text Telegram stores for an HTML-formatted message: tags gone, entities decoded."""
    return html.unescape(TAG.sub("", text))


class FakeBotAPI(FakeServer):
    """The Bot API methods Switchboard uses, with `queue_error` to make the next call fail."""

    def __init__(self, token: str | None = None, bot_username: str = BOT_USERNAME) -> None:
        self.token = token  # when set, other tokens get 401 Unauthorized
        self.bot_username = bot_username
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.uploads: list[Upload] = []
        self.files: dict[str, bytes] = {}  # file_id → bytes, served through getFile
        self.updates: list[dict[str, Any]] = []  # served by getUpdates
        self.webhook: dict[str, str] | None = None
        self.file_error: int | None = None  # when set, file downloads answer this HTTP status
        self._errors: dict[str, deque[QueuedError]] = defaultdict(deque)
        self._message_ids = itertools.count(101)
        self._file_numbers = itertools.count(1)
        self._paths: dict[str, str] = {}  # file_path → file_id
        self._new_update = asyncio.Event()

    @property
    def bot_id(self) -> int:
        return int((self.token or TOKEN).split(":", 1)[0])

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    def queue_error(
        self,
        method: str,
        code: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """The next call of `method` fails with this error (queued errors are used in order)."""
        error = QueuedError(code, description, retry_after, migrate_to_chat_id)
        self._errors[method.lower()].append(error)

    def add_update(self, update: dict[str, Any]) -> None:
        """Hand an Update to getUpdates, waking a long poll that is waiting."""
        self.updates.append(update)
        self._new_update.set()

    def add_file(self, content: bytes, file_id: str | None = None) -> str:
        """Make a file downloadable through getFile; its file_id."""
        file_id = file_id or f"BQACAgQAAxkBAAI{next(self._file_numbers):04d}fake"
        self.files[file_id] = content
        return file_id

    def sent(self, method: str) -> list[dict[str, str]]:
        """The parameters of every call of `method`, in order."""
        return [params for name, params in self.calls if name.lower() == method.lower()]

    # The HTTP side.

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request, method)
        self.calls.append((method, params))
        if self.token is not None and request.match_info["token"] != self.token:
            return self._error(QueuedError(401, "Unauthorized"))
        queued = self._errors.get(method.lower())
        if queued:
            return self._error(queued.popleft())
        handler = getattr(self, f"_{method.lower()}", None)
        if handler is None:
            return self._error(QueuedError(404, "Not Found"))
        try:
            result = await handler(params)
        except TelegramError as exc:
            return self._error(QueuedError(exc.code, exc.description, **exc.parameters))
        return web.json_response({"ok": True, "result": result})

    async def _params(self, request: web.Request, method: str) -> dict[str, str]:
        if request.content_type == "application/json":
            data = await request.json()
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        form: MultiDictProxy[Any] = await request.post()
        params: dict[str, str] = {}
        files: dict[str, web.FileField] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value
            else:
                params[key] = str(value)
        for param, value in params.items():
            field = (
                files.get(value.removeprefix("attach://"))
                if value.startswith("attach://")
                else None
            )
            if field is not None:
                upload = Upload(
                    method,
                    param,
                    field.name,
                    field.filename,
                    field.content_type,
                    field.file.read(),
                )
                self.uploads.append(upload)
        return params

    def _error(self, error: QueuedError) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": error.code,
            "description": error.description,
        }
        parameters = {
            name: value
            for name, value in (
                ("retry_after", error.retry_after),
                ("migrate_to_chat_id", error.migrate_to_chat_id),
            )
            if value is not None
        }
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=error.code)

    async def _file(self, request: web.Request) -> web.Response:
        if self.file_error is not None:
            return web.Response(status=self.file_error, text="error")
        file_id = self._paths.get(request.match_info["path"])
        if file_id is None or file_id not in self.files:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    # Telegram objects.

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Helpdesk Van Dijk",
            "username": self.bot_username,
        }

    def _chat(self, chat_id: str | None) -> dict[str, Any]:
        if not chat_id:
            raise TelegramError(400, "Bad Request: chat_id is empty")
        if chat_id.startswith("@"):
            return {
                "id": -1001555666777,
                "title": "Kanaal",
                "username": chat_id[1:],
                "type": "channel",
            }
        number = int(chat_id)
        if number > 0:
            return {"id": number, "first_name": "Klant", "type": "private"}
        return {"id": number, "title": "Groep", "type": "supergroup"}

    def _message(self, params: dict[str, str], **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": self._bot_user(),
            "chat": self._chat(params.get("chat_id")),
            "date": int(time.time()),
            **content,
        }
        if "reply_markup" in params:
            message["reply_markup"] = json.loads(params["reply_markup"])
        if "reply_parameters" in params:
            replied = json.loads(params["reply_parameters"]).get("message_id")
            message["reply_to_message"] = {
                "message_id": replied,
                "chat": message["chat"],
                "date": message["date"] - 60,
                "text": "…",
            }
        return message

    def _formatted(self, params: dict[str, str], name: str) -> str:
        text = params.get(name, "")
        if params.get("parse_mode", "").upper() == "HTML":
            if problem := html_problem(text):
                raise TelegramError(400, f"Bad Request: can't parse entities: {problem}")
            return plain(text)
        return text

    def _new_file(self, content: bytes, filename: str) -> tuple[str, str]:
        number = next(self._file_numbers)
        file_id = f"BQACAgQAAxkBAAI{number:04d}sent"
        self.files[file_id] = content
        self._paths[f"documents/file_{number}{_suffix(filename)}"] = file_id
        return file_id, f"AgAD{number:04d}"

    # Bot API methods (named _<method in lower case>).

    async def _getme(self, params: dict[str, str]) -> dict[str, Any]:
        return self._bot_user() | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _sendmessage(self, params: dict[str, str]) -> dict[str, Any]:
        text = self._formatted(params, "text")
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            raise TelegramError(400, "Bad Request: message is too long")
        return self._message(params, text=text)

    async def _senddocument(self, params: dict[str, str]) -> dict[str, Any]:
        document = params.get("document", "")
        field = document.removeprefix("attach://")
        upload = next((u for u in self.uploads if u.field == field), None)
        if upload is not None:
            file_id, unique = self._new_file(upload.content, upload.filename)
            sent = {
                "file_name": upload.filename,
                "mime_type": mimetypes.guess_type(upload.filename)[0] or "application/octet-stream",
                "file_id": file_id,
                "file_unique_id": unique,
                "file_size": len(upload.content),
            }
        elif document in self.files:
            sent = {
                "file_id": document,
                "file_unique_id": "AgADknown",
                "file_size": len(self.files[document]),
            }
        else:
            raise TelegramError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        content: dict[str, Any] = {"document": sent}
        if caption := self._formatted(params, "caption"):
            content["caption"] = caption
        return self._message(params, **content)

    async def _getfile(self, params: dict[str, str]) -> dict[str, Any]:
        file_id = params.get("file_id", "")
        if file_id not in self.files:
            raise TelegramError(400, "Bad Request: invalid file_id")
        path = next((p for p, f in self._paths.items() if f == file_id), None)
        if path is None:
            path = f"documents/file_{next(self._file_numbers)}.bin"
            self._paths[path] = file_id
        return {
            "file_id": file_id,
            "file_unique_id": f"AgAD{file_id[-6:]}",
            "file_size": len(self.files[file_id]),
            "file_path": path,
        }

    async def _setwebhook(self, params: dict[str, str]) -> bool:
        url = params.get("url", "")
        if not url:
            self.webhook = None
            return True
        if not url.startswith("https://") and not url.startswith("http://"):
            raise TelegramError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        self.webhook = params
        return True

    async def _deletewebhook(self, params: dict[str, str]) -> bool:
        self.webhook = None
        return True

    async def _answercallbackquery(self, params: dict[str, str]) -> bool:
        if not params.get("callback_query_id"):
            raise TelegramError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        return True

    async def _getupdates(self, params: dict[str, str]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset", "0"))
        if offset:  # confirmed: Telegram forgets them
            self.updates[:] = [u for u in self.updates if u["update_id"] >= offset]
        limit = int(params.get("limit", "100"))
        if not self.updates and (timeout := int(params.get("timeout", "0"))):
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout)
            except TimeoutError:
                pass
        return self.updates[:limit]


def _suffix(filename: str) -> str:
    match = re.search(r"\.[A-Za-z0-9]{1,8}$", filename)
    return match.group(0) if match else ""
