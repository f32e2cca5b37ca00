"""Service settings from the environment (SWITCHBOARD_* or the plain names below) and a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm.matcher import MatchConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SWITCHBOARD_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "SWITCHBOARD_REDIS_URL")
    )
    data_dir: Path = Path("var")
    public_url: str | None = None  # e.g. https://inbox.example.nl, for webhook URLs and signatures
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    default_region: str = "NL"
    # The matcher: at or above match_link the sender is linked to the contact automatically;
    # between match_review and match_link the candidates wait for a person in the review queue.
    match_link: float = 0.90
    match_review: float = 0.50
    task_due_hours: float = 4.0
    callback_due_hours: float = 1.0
    rate_limit_per_minute: int = 30  # web-form posts per client IP
    trust_forwarded: bool = False  # honour X-Forwarded-* behind a reverse proxy
    # Telegram files and external bots on loopback or private addresses (a bot beside the service)
    allow_private_urls: bool = False
    db_pool_size: int = 20
    worker_max_jobs: int = 50
    worker_drainers: int = 2  # journal-draining loops per worker process
    ingest_batch: int = 100  # events per drain transaction
    # Outbound webhooks: retried with exponential back-off for the window, then given up; a
    # subscription failing that long is disabled. Loopback destinations only when allowed.
    webhook_retry_window_s: float = 24 * 3600
    webhook_backoff_s: float = 10.0  # the first retry's delay; doubles per attempt, at most 1 h
    webhook_timeout_s: float = 10.0
    webhook_concurrency: int = 100
    webhook_allow_loopback: bool = False
    log_level: str = "INFO"
    log_json: bool = False

    def match_config(self) -> MatchConfig:
        """The matcher's thresholds and default phone region."""
        return MatchConfig(
            link=self.match_link,
            review=self.match_review,
            region=self.default_region,
            # `switchboard match train` writes its refit here; without one, the shipped weights.
            weights_file=str(self.data_dir / "match_weights.json"),
        )

    def dedup_weights_file(self) -> str:
        """Where `switchboard duplicates train` writes its refit and the duplicate job reads it."""
        return str(self.data_dir / "dedup_weights.json")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
