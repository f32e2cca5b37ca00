"""Real mail peers for the tests: a Dovecot IMAP server and an aiosmtpd SMTP sink, on loopback."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    """One Dovecot instance with its own config, passwd file and maildirs."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    users: dict[str, str] = field(default_factory=dict)

    def add_user(self, user: str, password: str) -> None:
        self.users[user] = password
        (self.root / "passwd").write_text(
            "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items())
        )

    def start(self) -> None:
        root = self.root
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        if os.geteuid() == 0:
            login_user, internal_user, internal_group = "dovenull", "dovecot", "dovecot"
            mail_uid, mail_gid = "nobody", "nogroup"
            shutil.chown(root / "mail", "nobody", "nogroup")
        else:
            me = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            login_user, internal_user, internal_group, mail_uid, mail_gid = me, me, group, me, group
        (root / "passwd").touch()
        (root / "dovecot.conf").write_text(
            f"""protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = dovecot-{self.port}
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(
            f"dovecot did not start: {(root / 'dovecot.log').read_text(errors='replace')}"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def imap_config(self, user: str) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "plain",
            "username": user,
            "password": self.users[user],
        }


def start_dovecot() -> Dovecot:
    dovecot = Dovecot(Path(tempfile.mkdtemp(prefix="dovecot-")), free_port())
    dovecot.start()
    return dovecot


class Sink:
    """An SMTP server that keeps what it is sent, with AUTH."""

    def __init__(self, user: str = "bot", password: str = "smtp-secret") -> None:
        self.user, self.password = user, password
        self.messages: list[Envelope] = []
        self.port = free_port()
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.authenticate,
            auth_require_tls=False,
        )

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (self.user, self.password)
        return AuthResult(success=True) if ok else AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def smtp_config(self, sender: str) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "plain",
            "username": self.user,
            "password": self.password,
            "from": sender,
            "quote_history": True,
        }
