"""Talking to the Graph API: send replies (text, media, templates, buttons), download media.

Every call carries the channel's access token as a Bearer header; no error text leaves this
module with the token in it. Media URLs come from Meta: they are fetched only from the
configured api_base or from public https hosts (no private, loopback or link-local addresses).
Calls to the api_base go through the service's egress guard (channels.egress) like every channel
call: a private or loopback api_base only where SWITCHBOARD_ALLOW_PRIVATE_URLS allows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import ClientConnectorError, ClientError, ClientSession, ClientTimeout, FormData

from channels.base import Attachment, JsonObject, JsonValue, OutboundMessage, SendResult
from channels.egress import PUBLIC, NonPublicAddress, channels_policy
from channels.whatsapp.config import WINDOW_ERROR, CloudConfig

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
BUTTON_TITLE_LIMIT = 20
ROW_TITLE_LIMIT = 24
DOWNLOAD_LIMIT = 100 * 1024 * 1024  # the Cloud API's largest media (documents)
TIMEOUT = ClientTimeout(total=60)
# Graph error codes worth a retry: rate limits and temporary trouble.
TEMPORARY_CODES = frozenset({1, 2, 4, 17, 80007, 130429, 131000, 131016, 131056})
OUTSIDE_WINDOW = 131047  # "Re-engagement message": more than 24 hours since the customer wrote


class GraphError(Exception):
    """What the Graph API (or the way to it) refused; `temporary` errors are worth a retry."""

    def __init__(self, reason: str, *, temporary: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary


def redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def trusted(url: str, settings: CloudConfig) -> bool:
    """A URL on the configured api_base's own origin (operator-chosen: under the channels' egress
    policy rather than the public-https rule of Meta's media hosts)."""
    given, base = urlsplit(url), urlsplit(settings.api_base)
    return (given.scheme, given.netloc) == (base.scheme, base.netloc)


def check_media_url(url: str, settings: CloudConfig) -> bool:
    """Whether the URL needs the public-address guard; GraphError when it is never allowed."""
    if trusted(url, settings):
        return False
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise GraphError("media URL is not https on the configured api_base or a public host")
    try:
        reason = PUBLIC.refused(parts.hostname)
    except ValueError:
        return True  # a name: checked where it resolves, when connecting
    if reason:
        raise GraphError(f"media host {parts.hostname} is not a public address")
    return True


def graph_error(status: int, answer: JsonValue, token: str) -> GraphError:
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return GraphError(f"Graph API answered HTTP {status}", temporary=status >= 500)
    code = error.get("code")
    message = redact(str(error.get("message") or "error"), token)
    details = error.get("error_data")
    if isinstance(details, dict) and details.get("details"):
        message += f" ({redact(str(details['details']), token)})"
    if code == OUTSIDE_WINDOW:
        return GraphError(f"{WINDOW_ERROR} [{code}: {message}]")
    temporary = status >= 500 or status == 429 or code in TEMPORARY_CODES
    return GraphError(f"{code}: {message}", temporary=temporary)


async def call_graph(
    http: ClientSession,
    settings: CloudConfig,
    path: str,
    *,
    json: JsonObject | None = None,
    form: FormData | None = None,
) -> JsonObject:
    """POST to the Graph API; its JSON answer, or GraphError."""
    headers = {"Authorization": f"Bearer {settings.access_token}"}
    try:
        async with http.post(
            f"{settings.graph}/{path}", json=json, data=form, headers=headers, timeout=TIMEOUT
        ) as response:
            status = response.status
            answer: JsonValue = await response.json(content_type=None)
    except (ClientError, TimeoutError, ValueError) as exc:
        reason = redact(f"{type(exc).__name__}: {exc}", settings.access_token)
        raise GraphError(reason, temporary=True) from None
    if status >= 300 or not isinstance(answer, dict):
        raise graph_error(status, answer, settings.access_token)
    return answer


def media_type(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


async def upload(http: ClientSession, settings: CloudConfig, attachment: Attachment) -> str:
    """Upload an attachment's bytes; the media id to send it by."""
    if attachment.content is None:
        raise GraphError(f"attachment {attachment.filename!r} has no bytes to upload")
    form = FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", attachment.content_type)
    form.add_field(
        "file",
        attachment.content,
        filename=attachment.filename,
        content_type=attachment.content_type,
    )
    answer = await call_graph(http, settings, f"{settings.phone_number_id}/media", form=form)
    media_id = answer.get("id")
    if not isinstance(media_id, str):
        raise GraphError("media upload answered without an id")
    return media_id


def interactive(text: str, buttons: tuple[tuple[str, str], ...]) -> JsonObject:
    """Reply buttons (up to three), else a list; link buttons become lines of the text."""
    links = [
        f"{label}: {data}" for label, data in buttons if data.startswith(("https://", "http://"))
    ]
    replies = [
        (label, data) for label, data in buttons if not data.startswith(("https://", "http://"))
    ]
    body = "\n".join([text, *links]).strip()[:TEXT_LIMIT] or "…"
    if not replies:
        return {"type": "text", "text": {"body": body, "preview_url": False}}
    if len(replies) <= 3:
        action: JsonObject = {
            "buttons": [
                {"type": "reply", "reply": {"id": data, "title": label[:BUTTON_TITLE_LIMIT]}}
                for label, data in replies
            ]
        }
        kind = "button"
    else:
        rows: list[JsonValue] = [
            {"id": data, "title": label[:ROW_TITLE_LIMIT]} for label, data in replies[:10]
        ]
        action = {"button": "Menu", "sections": [{"title": "Menu", "rows": rows}]}
        kind = "list"
    return {
        "type": "interactive",
        "interactive": {"type": kind, "body": {"text": body[:CAPTION_LIMIT]}, "action": action},
    }


def text_parts(text: str) -> list[str]:
    rest, parts = text.strip(), []
    while len(rest) > TEXT_LIMIT:
        cut = rest.rfind("\n", 0, TEXT_LIMIT)
        cut = cut if cut > TEXT_LIMIT // 2 else TEXT_LIMIT
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*parts, rest] if rest else parts


async def bodies_of(
    http: ClientSession, settings: CloudConfig, message: OutboundMessage
) -> list[JsonObject]:
    """The Cloud API messages one reply becomes: a template; or text, media, then buttons."""
    if message.template is not None:
        return [{"type": "template", "template": dict(message.template)}]
    texts = text_parts(message.text)
    bodies: list[JsonObject] = []
    caption = (
        texts.pop()
        if message.attachments and len(texts) == 1 and len(texts[0]) <= CAPTION_LIMIT
        else None
    )
    if message.buttons:
        last = texts.pop() if texts else ""
        bodies.extend({"type": "text", "text": {"body": t, "preview_url": False}} for t in texts)
        texts = []
    bodies.extend({"type": "text", "text": {"body": t, "preview_url": False}} for t in texts)
    for index, attachment in enumerate(message.attachments):
        kind = media_type(attachment.content_type)
        media: JsonObject = {"id": await upload(http, settings, attachment)}
        if kind == "document":
            media["filename"] = attachment.filename
        if index == 0 and caption and kind != "audio":
            media["caption"] = caption
        bodies.append({"type": kind, kind: media})
    if message.buttons:
        bodies.append(interactive(last, message.buttons))
    if not bodies:
        raise GraphError("nothing to send: no text, attachments or template")
    return bodies


def recipient_of(to: str) -> str:
    number = "".join(ch for ch in to.removeprefix("wa:") if ch.isdigit())
    if not 6 <= len(number) <= 15:
        raise ValueError(f"not a WhatsApp number (wa_id): {to!r}")
    return number


async def send(config: JsonObject, message: OutboundMessage) -> SendResult:
    """Send a reply to /{phone_number_id}/messages; the external id is the first message's wamid.

    A reply to the customer's last message quotes it (context); a failure after the first part
    retries the whole.
    """
    try:
        settings = CloudConfig.from_json(config)
        to = recipient_of(message.to)
    except ValueError as exc:
        return SendResult("failed", error=str(exc))
    first: str | None = None
    async with channels_policy().session() as http:
        try:
            for body in await bodies_of(http, settings, message):
                payload: JsonObject = {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": to,
                    **body,
                }
                answer = await call_graph(
                    http, settings, f"{settings.phone_number_id}/messages", json=payload
                )
                sent = answer.get("messages")
                wamid = (
                    sent[0].get("id")
                    if isinstance(sent, list) and sent and isinstance(sent[0], dict)
                    else None
                )
                first = first or (str(wamid) if wamid else None)
        except GraphError as exc:
            status: Literal["retry", "failed"] = "retry" if exc.temporary else "failed"
            return SendResult(status, error=exc.reason)
    if first is None:
        return SendResult("retry", error="Graph API answered without a message id")
    return SendResult("sent", external_id=first)


async def fetch_media_info(
    http: ClientSession, settings: CloudConfig, media_id: str
) -> Mapping[str, JsonValue]:
    headers = {"Authorization": f"Bearer {settings.access_token}"}
    async with http.get(
        f"{settings.graph}/{media_id}", headers=headers, timeout=TIMEOUT
    ) as response:
        status = response.status
        answer: JsonValue = await response.json(content_type=None)
    if status >= 300 or not isinstance(answer, dict):
        raise graph_error(status, answer, settings.access_token)
    return answer


async def download(
    config: JsonObject, media_id: str, *, max_bytes: int = DOWNLOAD_LIMIT
) -> tuple[bytes, str | None]:
    """A media file's bytes by media id (its URL from the Graph API, then the URL itself)."""
    settings = CloudConfig.from_json(config)
    try:
        async with channels_policy().session() as http:
            info = await fetch_media_info(http, settings, media_id)
        url = info.get("url")
        if not isinstance(url, str):
            raise GraphError("media lookup answered without a url")
        # Meta's CDN is public: a media URL off the api_base gets no exemption from the setting.
        egress = PUBLIC if check_media_url(url, settings) else channels_policy()
        headers = {"Authorization": f"Bearer {settings.access_token}"}
        content = bytearray()
        async with (
            egress.session() as http,
            http.get(url, headers=headers, timeout=TIMEOUT, allow_redirects=False) as response,
        ):
            if response.status != 200:
                raise GraphError(
                    f"media download: HTTP {response.status}", temporary=response.status >= 500
                )
            async for chunk in response.content.iter_chunked(65536):
                content += chunk
                if len(content) > max_bytes:
                    raise GraphError(f"media over {max_bytes} bytes")
    except (ClientError, TimeoutError, ValueError) as exc:
        reason = redact(f"{type(exc).__name__}: {exc}", settings.access_token)
        refused = isinstance(exc, ClientConnectorError) and isinstance(
            exc.os_error, NonPublicAddress
        )  # a host the guard refuses stays refused: no retry
        raise GraphError(reason, temporary=not refused) from None
    mime = info.get("mime_type")
    return bytes(content), mime if isinstance(mime, str) else None
