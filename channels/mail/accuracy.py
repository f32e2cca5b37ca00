"""How well reply stripping does on paired fixtures: NAME.eml beside NAME.expected.txt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from channels.mail.parse import parse_message


def reply_pairs(fixtures_dir: Path | str) -> Iterator[tuple[str, str, str]]:
    """(name, stripped text parse_message gives, expected text) for every pair, by name."""
    for eml in sorted(Path(fixtures_dir).glob("*.eml")):
        expected_file = eml.with_suffix(".expected.txt")
        expected = expected_file.read_text(encoding="utf-8").removesuffix("\n")
        yield eml.stem, parse_message(eml.read_bytes()).text, expected


def reply_accuracy(fixtures_dir: Path | str) -> tuple[int, int]:
    """(exactly right, total) over the pairs in a folder."""
    results = [got == expected for _, got, expected in reply_pairs(fixtures_dir)]
    return sum(results), len(results)
