"""Helpers of the fault suite (tests/faults) and its benchmark (bench/faults.py)."""

from __future__ import annotations

import os


def examples(ci: int) -> int:
    """Hypothesis examples per property: `ci` in CI, more with SWITCHBOARD_FAULT_EXAMPLES."""
    return int(os.environ.get("SWITCHBOARD_FAULT_EXAMPLES") or ci)
