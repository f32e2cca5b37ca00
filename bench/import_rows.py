"""`switchboard import` speed: a generated CSV of contacts (seeded Dutch-looking names, companies,
cities, e-mail addresses, phones and projects) into a throw-away database, through the command a
user runs. Prints rows/s, the summary and the command's peak RSS.

    uv run python bench/import_rows.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, console_script, scratch_database
from bench.search import CITIES, GIVEN, PROJECTS, SURNAMES, company_name


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(11)
    companies = [company_name(rng) for _ in range(max(rows // 8, 1))]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(
            [
                "external_id",
                "relation",
                "first_name",
                "last_name",
                "email",
                "phone",
                "city",
                "project",
            ]
        )
        for i in range(rows):
            company = rng.choice(companies)
            first, last = rng.choice(GIVEN).title(), rng.choice(SURNAMES)
            domain = "".join(c for c in company.split(" ")[0].lower() if c.isalnum()) + ".nl"
            local = f"{first}.{last.replace(' ', '')}{i}".lower()
            writer.writerow(
                [
                    f"C-{i}", company, first, last, f"{local}@{domain}",
                    f"06{rng.randint(10_000_000, 99_999_999)}", rng.choice(CITIES).title(),
                    f"{rng.choice(PROJECTS)} {rng.choice(CITIES).title()}" if rng.random() < 0.3 else "",
                ]
            )  # fmt: skip


async def main(rows: int) -> dict[str, object]:
    work = RESULTS / "import"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"contacts-{rows}.csv"
    if not path.exists():
        write_csv(path, rows)
    async with scratch_database("switchboard_bench_import") as dsn:
        env = os.environ | {
            "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "REDIS_URL": "redis://127.0.0.1:6379/13",
        }
        started = time.perf_counter()
        done = subprocess.run(
            [console_script("switchboard"), "--data-dir", str(work / "var"), "import", str(path), "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    summary = json.loads(done.stdout)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mb": peak,
            "summary": {k: v for k, v in summary.items() if k not in ("errors", "conflicts")}}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    result = asyncio.run(main(args.rows))
    (RESULTS / "import.json").write_text(json.dumps(result, indent=2))
    print(
        f"imported {result['rows']:,} rows in {result['seconds']:.0f} s: "
        f"{result['rows_per_s']:,.0f} rows/s (target >= 5,000 at 200,000 rows), "
        f"peak RSS {result['peak_rss_mb']:.0f} MB; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(json.dumps(result["summary"]))
