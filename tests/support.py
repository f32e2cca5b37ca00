"""Small helpers shared by test modules (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(channel: str, name: str) -> bytes:
    return (FIXTURES / channel / name).read_bytes()


def stored_file(data_dir: Path, sha256: str) -> bytes:
    """The bytes the file store keeps under a digest."""
    return (data_dir.resolve() / "files" / sha256[:2] / sha256[2:4] / sha256).read_bytes()


def call_log(
    call_id: str, number: str, status: str = "answered", minute: int = 0, agent: str = "201"
) -> bytes:
    """One finished call in the generic telephony schema (channels/telephony/generic.py), as a
    PBX posts it; see tests/fixtures/telephony/generic__*.json."""
    started = datetime(2026, 3, 2, 9, 0, tzinfo=UTC) + timedelta(minutes=minute)
    body: dict[str, object] = {
        "call_id": call_id,
        "direction": "inbound",
        "status": status,
        "from": number,
        "to": "020-1234567",
        "started_at": started.isoformat(),
    }
    if status == "answered":
        body |= {"agent": agent, "duration": 30 + minute % 300}
    return json.dumps(body).encode()
