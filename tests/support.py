"""Small helpers shared by test modules (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(channel: str, name: str) -> bytes:
    return (FIXTURES / channel / name).read_bytes()
