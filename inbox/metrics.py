"""Prometheus metrics: deliveries by channel and status, job durations, event outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

DELIVERIES = Counter(
    "switchboard_deliveries",
    "Webhook deliveries by channel kind and how they were answered",
    ["kind", "status"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "switchboard_job_seconds",
    "Duration of worker jobs",
    ["job"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS = Counter(
    "switchboard_events", "Journaled events by processing outcome", ["status"], registry=REGISTRY
)


class HasStatus(Protocol):
    @property
    def status(self) -> str: ...


def observe_job(job: str, seconds: float, outcomes: Iterable[HasStatus] = ()) -> None:
    JOB_SECONDS.labels(job).observe(seconds)
    for outcome in outcomes:
        EVENTS.labels(outcome.status).inc()
