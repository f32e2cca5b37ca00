"""Helpers shared by the benchmarks: throw-away databases, service subprocesses, latency
percentiles, per-process CPU accounting from /proc and py-spy profiles.

Everything here talks to loopback only and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("SWITCHBOARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_ms(seconds: Iterable[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    if not ordered:
        return {"p50_ms": float("nan"), "p90_ms": float("nan"), "p99_ms": float("nan")}
    return {
        "p50_ms": percentile(ordered, 50) * 1000,
        "p90_ms": percentile(ordered, 90) * 1000,
        "p95_ms": percentile(ordered, 95) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "mean_ms": sum(ordered) / len(ordered) * 1000,
    }


# ---------------------------------------------------------------------------------------------
# Throw-away database


@contextlib.asynccontextmanager
async def scratch_database(prefix: str) -> AsyncIterator[str]:
    """Create `<prefix>_<random>` on the machine's PostgreSQL; yield its DSN; drop it after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG_ADMIN}/postgres", timeout=10)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{PG_ADMIN}/{name}"
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def pg_facts(dsn: str) -> dict[str, str]:
    """The server settings that decide what a commit costs."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        facts = {"version": str(await conn.fetchval("SHOW server_version"))}
        for name in (
            "synchronous_commit",
            "fsync",
            "wal_sync_method",
            "commit_delay",
            "shared_buffers",
            "max_connections",
        ):
            facts[name] = str(await conn.fetchval(f"SHOW {name}"))
        return facts
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------
# Subprocesses


def console_script(name: str) -> str:
    """The project's console script in the running virtualenv (what `uv run NAME` executes),
    so the child is the Python process itself: signals, CPU accounting and py-spy reach it."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found; run this with `uv run`")
    return found


@dataclass
class Service:
    """A subprocess with its output in a log file; stop() is bounded and idempotent."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)
    started_at: float = 0.0
    terminated_at: float | None = None
    killed: bool = False
    exit_seconds: float | None = None  # from SIGTERM to exit

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM, once; stop() then waits for the exit (several services stop together)."""
        if self.proc is not None and self.proc.poll() is None and self.terminated_at is None:
            self.terminated_at = time.perf_counter()
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM (unless terminate() sent it), then SIGKILL `timeout` s after the SIGTERM."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            assert self.terminated_at is not None
            left = self.terminated_at + timeout - time.perf_counter()
            try:
                self.proc.wait(timeout=max(left, 0.01))
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.terminated_at is not None and self.exit_seconds is None:
            # Exited by now (while another service was being waited for: an upper bound).
            self.exit_seconds = round(time.perf_counter() - self.terminated_at, 1)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run_json(args: list[str], env: dict[str, str], timeout: float = 120) -> Any:
    out = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}… failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


async def wait_http_ok(url: str, seconds: float, service: Service | None = None) -> None:
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while time.monotonic() < deadline:
            if service is not None and not service.alive():
                raise RuntimeError(f"{service.name} exited:\n{service.tail()}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not healthy within {seconds:.0f} s")


# ---------------------------------------------------------------------------------------------
# CPU accounting from /proc


def _proc_stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds so far) of one process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(rest[11]), int(rest[12])
    return comm, int(rest[1]), (utime + stime) / CLOCK_TICKS


def _machine_busy() -> tuple[float, float]:
    """(busy seconds, total seconds) over all CPUs since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    idle = values[3] + values[4]
    total = sum(values)
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class CpuMeter:
    """CPU use per named group of processes between start() and stop(), in cores.

    Groups: fixed pids by name (the bench itself, the web server, a worker), each with its
    descendants (the processes `switchboard web --processes N` forks count as `server`; the
    nearest named ancestor wins, so a service started by the bench is not counted as the
    bench), plus every process whose command name is `postgres`, `redis-server` or `py-spy`.
    Given `database`, a PostgreSQL backend of another database (another session's tests on the
    same server) counts as `postgres-other`, and stop() also gives `unattributed`: the machine's
    busy cores that no group accounts for (other sessions' processes, the kernel). A process
    that exits between the two snapshots is lost, so the pools should be warm first. stop()
    also gives each process of a group with more than one (`per_process`).
    """

    BY_COMM: ClassVar[dict[str, str]] = {
        "postgres": "postgres",
        "redis-server": "redis",
        "py-spy": "py-spy",
    }

    def __init__(self, pids: dict[str, int], database: str | None = None) -> None:
        self.pids = pids
        self.database = database
        self._start: dict[int, tuple[str, float]] = {}
        self._t0 = 0.0
        self._busy0 = (0.0, 0.0)

    def _sample(self) -> dict[int, tuple[str, float]]:
        """pid -> (group, CPU seconds) for every process that belongs to a group."""
        fixed = {pid: name for name, pid in self.pids.items()}
        stats: dict[int, tuple[str, int, float]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (got := _proc_stat(int(entry.name))) is not None:
                stats[int(entry.name)] = got
        out: dict[int, tuple[str, float]] = {}
        for pid, (comm, _, cpu) in stats.items():
            group = self.BY_COMM.get(comm)
            if group == "postgres" and self.database and self._other_database(pid):
                group = "postgres-other"
            ancestor, hops = pid, 0
            while group is None and ancestor > 1 and hops < 64:
                group = fixed.get(ancestor)
                ancestor = stats[ancestor][1] if ancestor in stats else 0
                hops += 1
            if group is not None:
                out[pid] = (group, cpu)
        return out

    def _other_database(self, pid: int) -> bool:
        """A backend (or autovacuum worker) whose title names a database that is not ours."""
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            return False
        if f" {self.database} " in f"{title} ":
            return False
        return bool(re.search(r"\(\d+\)|\[local\]|autovacuum worker", title))

    def start(self) -> None:
        self._start = self._sample()
        self._t0 = time.perf_counter()
        self._busy0 = _machine_busy()

    def stop(self) -> dict[str, Any]:
        end = self._sample()
        wall = max(time.perf_counter() - self._t0, 1e-9)
        busy1 = _machine_busy()
        groups: dict[str, float] = {}
        members: dict[str, list[float]] = {}
        for pid, (group, cpu) in end.items():
            used = (cpu - self._start[pid][1]) if pid in self._start else cpu
            groups[group] = groups.get(group, 0.0) + used
            if group not in self.BY_COMM.values():
                members.setdefault(group, []).append(round(used / wall, 2))
        cores: dict[str, Any] = {name: round(groups[name] / wall, 2) for name in sorted(groups)}
        total = busy1[1] - self._busy0[1]
        cores["machine_busy"] = round(
            (busy1[0] - self._busy0[0]) / total * (os.cpu_count() or 1) if total else 0.0, 2
        )
        if self.database:
            cores["unattributed"] = round(
                max(0.0, cores["machine_busy"] - sum(groups.values()) / wall), 2
            )
        cores["per_process"] = {
            k: sorted(v, reverse=True) for k, v in sorted(members.items()) if len(v) > 1
        }
        return cores


CPU_ORDER = ("server", "bare", "worker", "postgres", "redis", "py-spy", "bench")
NOT_OURS = ("postgres-other", "unattributed")


def cpu_text(cores: dict[str, Any]) -> str:
    """One line: each group's cores (and each of its processes when there are several), then
    what other sessions on the machine used meanwhile."""
    names = [k for k in cores if k not in ("machine_busy", "per_process", *NOT_OURS)]
    names.sort(key=lambda k: (next((i for i, o in enumerate(CPU_ORDER) if k.startswith(o)), 99), k))
    per = cores.get("per_process", {})
    parts = []
    for k in names:
        text = f"{k} {cores[k]:.2f}"
        if k in per and any(per[k]):
            text += f" ({len(per[k])} processes: {'+'.join(f'{v:.2f}' for v in per[k])})"
        parts.append(text)
    others = [f"{k} {cores[k]:.2f}" for k in NOT_OURS if k in cores]
    return (
        f"CPU cores: {', '.join(parts)}; machine busy "
        f"{cores.get('machine_busy', 0):.2f}/{os.cpu_count()}"
        + (f" (not this bench: {', '.join(others)})" if others else "")
    )


# ---------------------------------------------------------------------------------------------
# py-spy


class Profiler:
    """py-spy record of one process to a collapsed-stack file, stopped with SIGINT."""

    def __init__(self, pid: int, out: Path, rate: int = 250, *, subprocesses: bool = False) -> None:
        self.out = out
        exe = shutil.which("py-spy") or str(Path.home() / ".local" / "bin" / "py-spy")
        self.proc: subprocess.Popen[bytes] | None = None
        if Path(exe).exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            self.proc = subprocess.Popen(
                [
                    exe,
                    "record",
                    "-p",
                    str(pid),
                    "-f",
                    "raw",
                    "-r",
                    str(rate),
                    "--nonblocking",
                    *(["--subprocesses"] if subprocesses else []),
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    @property
    def available(self) -> bool:
        return self.proc is not None

    def stop(self) -> Path | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return self.out if self.out.exists() else None


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep function and file.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        with contextlib.suppress(ValueError):
            path = str(Path(path).relative_to(ROOT))
    return f"{name} ({path})"


def top_frames(path: Path, n: int = 20, match: str | None = None) -> dict[str, Any]:
    """Self and inclusive shares of the samples in a py-spy raw file (per cent of samples)."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        frames = [_frame_name(f) for f in stack.split(";")]
        while frames and frames[0].startswith(("thread ", "process ")):
            frames = frames[1:]  # --threads and --subprocesses put these at the root
        total += k
        if frames:
            self_time[frames[-1]] += k
        for f in set(frames):
            if match is None or match in f:
                inclusive[f] += k
    pct = 100 / total if total else 0
    return {
        "samples": total,
        "self": [(f, round(c * pct, 1)) for f, c in self_time.most_common(n)],
        "inclusive": [(f, round(c * pct, 1)) for f, c in inclusive.most_common(n)],
    }


@contextlib.asynccontextmanager
async def served_app(database_url: str, redis_url: str) -> AsyncIterator[str]:
    """The real application in this process on a free loopback port; yields its base URL."""
    from aiohttp import web

    from inbox.service.app import create_app
    from inbox.settings import Settings

    settings = Settings(database_url=database_url, redis_url=redis_url, log_level="WARNING")
    runner = web.AppRunner(
        create_app(settings, database_url, redis_url), access_log=None, shutdown_timeout=1
    )
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def session_headers(
    http: aiohttp.ClientSession, base: str, email: str, password: str
) -> dict[str, str]:
    """Log in as the page does; the session cookie and CSRF token as headers of one's own."""
    async with http.post(
        f"{base}/api/auth/login", json={"email": email, "password": password}
    ) as r:
        assert r.status == 200, await r.text()
        return {
            "Cookie": f"sb_session={r.cookies['sb_session'].value}",
            "X-CSRF-Token": (await r.json())["csrf_token"],
        }
