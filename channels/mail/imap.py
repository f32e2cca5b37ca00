"""IMAP with imap-tools. Blocking: callers run these functions in a thread."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted, MailMessageFlags

FETCH_UID = re.compile(rb"UID (\d+)")
BOXES: dict[str, Callable[..., BaseMailBox]] = {
    "tls": MailBox,
    "starttls": MailBoxStartTls,
    "plain": MailBoxUnencrypted,
}


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int
    messages: int


def connect(imap: dict[str, Any], timeout: float = 30.0) -> BaseMailBox:
    box = BOXES[str(imap.get("security", "tls"))](
        str(imap["host"]), port=int(imap["port"]), timeout=timeout
    )
    box.login(str(imap.get("username", "")), str(imap.get("password", "")), initial_folder=None)
    return box


def folder_state(box: BaseMailBox, folder: str) -> FolderState:
    status = box.folder.status(folder, ["UIDVALIDITY", "UIDNEXT", "MESSAGES"])
    return FolderState(int(status["UIDVALIDITY"]), int(status["UIDNEXT"]), int(status["MESSAGES"]))


def fetch_new(box: BaseMailBox, folder: str, last_uid: int, limit: int) -> list[tuple[int, bytes]]:
    """Raw messages with a UID above last_uid, oldest first, at most `limit` of them.

    `UID n:*` answers the highest message even when it is below n, so the UIDs are filtered.
    """
    box.folder.set(folder, readonly=False)
    typ, data = box.client.uid("SEARCH", f"UID {last_uid + 1}:*")
    if typ != "OK" or not data or not data[0]:
        return []
    uids = sorted(u for u in (int(x) for x in data[0].split()) if u > last_uid)[:limit]
    if not uids:
        return []
    typ, fetched = box.client.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
    if typ != "OK":
        raise OSError(f"IMAP FETCH failed: {fetched!r}")
    found: list[tuple[int, bytes]] = []
    for item in fetched:
        if isinstance(item, tuple) and (match := FETCH_UID.search(item[0])):
            found.append((int(match.group(1)), bytes(item[1])))
    return sorted(found)


def after_import(box: BaseMailBox, folder: str, uids: list[int], action: str) -> None:
    if not uids or action == "leave":
        return
    box.folder.set(folder)
    keys = [str(u) for u in uids]
    if action == "seen":
        box.flag(keys, MailMessageFlags.SEEN, True)
    elif action.startswith("move:"):
        target = action[len("move:") :]
        if not box.folder.exists(target):
            box.folder.create(target)
        box.move(keys, target)


def has_idle(box: BaseMailBox) -> bool:
    typ, data = box.client.capability()
    return typ == "OK" and b"IDLE" in b" ".join(data).upper().split()


def wait_for_mail(box: BaseMailBox, folder: str, timeout: float) -> bool:
    """IDLE until the server reports new mail or the timeout passes (under 29 minutes)."""
    box.folder.set(folder)
    responses = box.idle.wait(timeout=int(max(1, min(timeout, 29 * 60))))
    return any(b"EXISTS" in r or b"RECENT" in r for r in responses)


def append(box: BaseMailBox, raw: bytes, folder: str) -> None:
    if not box.folder.exists(folder):
        box.folder.create(folder)
    box.append(raw, folder, dt=None, flag_set=[MailMessageFlags.SEEN])
