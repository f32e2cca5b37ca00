"""Fault benchmark: deliveries under injected faults, and the fault suite with many examples.

    uv run python bench/faults.py [--quick] [--deliveries N] [--examples N] [--no-suite]

What it does (loopback only, every wait bounded, everything it starts is stopped):
  * the crash-and-restart scenario of tests/crash_scenario.py: a throw-away database on the
    machine's PostgreSQL (SWITCHBOARD_BENCH_PG, default postgresql://postgres@127.0.0.1:5432),
    a redis-server of its own, `switchboard web` and `switchboard worker` as real processes;
    N mixed deliveries (web form, Twilio, generic telephony, Telegram; 2,000, quick 400) sent
    by 8 senders that retry until a 2xx like the providers, one forged delivery in 50; meanwhile
    the worker is SIGKILLed 3 times, Redis stopped and restarted, the service's PostgreSQL
    backends terminated, the web process SIGKILLed mid-request; then counted by SQL;
  * unless --no-suite: `pytest tests/faults` with SWITCHBOARD_FAULT_EXAMPLES (200, quick 50)
    hypothesis examples per property (schemathesis, fuzzed webhooks, generated MIME trees).

It prints one table; the goal is 0 in the last four columns (lost, duplicated, 5xx,
unauthorized 2xx). Set SWITCHBOARD_TEST_REDIS_DB for the suite's Redis database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This folder holds bench/inbox.py, which would shadow the inbox package: the tests' folder
# (the scenario and its helpers) and the project root instead.
sys.path[:] = [str(ROOT / "tests"), str(ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"
]

from crash_scenario import run_scenario  # noqa: E402


def table(rows: list[dict[str, object]]) -> str:
    heads = list(rows[0])
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in heads]
    line = " | ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))
    out = [line, "-+-".join("-" * w for w in widths)]
    out += [
        " | ".join(str(r[h]).rjust(w) for h, w in zip(heads, widths, strict=True)) for r in rows
    ]
    return "\n".join(out)


def suite(examples: int) -> tuple[str, float]:
    env = os.environ | {"CI": "true", "SWITCHBOARD_FAULT_EXAMPLES": str(examples)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults",
         "--deselect", "tests/faults/test_crash.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    return last, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 deliveries, 50 examples")
    parser.add_argument("--deliveries", type=int, help="deliveries (2,000; quick 400)")
    parser.add_argument("--examples", type=int, help="hypothesis examples (200; quick 50)")
    parser.add_argument("--no-suite", action="store_true", help="only the crash scenario")
    args = parser.parse_args()
    n = args.deliveries or (400 if args.quick else 2_000)
    with tempfile.TemporaryDirectory(prefix="sb-faults-") as work:
        figures = asyncio.run(run_scenario(n, Path(work)))
    print(f"crash and restart, {n} deliveries, {figures.seconds} s (machine shared; not timed)")
    print("faults: " + ", ".join(figures.faults))
    print(f"/healthz while Redis was down: {figures.health_while_redis_down}")
    print(f"requests left unanswered by a fault and sent again: {figures.unanswered}")
    if figures.lost_by:
        print(f"lost: {dict(figures.lost_by)}")
    print()
    print(table([figures.row()]))
    print("goal: 0 lost, 0 duplicated, 0 5xx, 0 unauthorized 2xx")
    if not args.no_suite:
        examples = args.examples or (50 if args.quick else 200)
        result, seconds = suite(examples)
        print(f"\nfault suite, {examples} examples per property: {result} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
