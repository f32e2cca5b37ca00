"""Crash and restart with real processes (tests/crash_scenario.py): the worker SIGKILLed three
times, Redis stopped and restarted, the service's PostgreSQL backends terminated, the web process
SIGKILLed mid-request, while deliveries flow. Every delivery answered 2xx is journaled once and
processed once; nothing answered 5xx; no forged delivery answered 2xx; /healthz named Redis."""

from __future__ import annotations

from pathlib import Path

from crash_scenario import run_scenario
from fault_peers import examples


async def test_deliveries_survive_killed_workers_redis_postgres_and_web_restarts(
    tmp_path: Path,
) -> None:
    figures = await run_scenario(examples(20) * 10, tmp_path)
    assert len(figures.faults) == 7, figures.faults
    assert figures.health_while_redis_down.startswith("503"), figures.health_while_redis_down
    assert '"redis": "error' in figures.health_while_redis_down
    assert figures.accepted == figures.sent
    assert (figures.lost, figures.duplicated) == (0, 0), (figures.row(), figures.lost_by)
    assert figures.processed == figures.sent
    assert figures.server_errors == 0, figures.row()
    assert figures.unauthorized_2xx == 0
