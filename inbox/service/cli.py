"""The `switchboard` command line."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select

from channels import ADAPTERS, egress
from crm.weights import Weights
from inbox.db import Sessions, make_engine, make_sessions, upgrade
from inbox.ingest.channels import add_channel, describe
from inbox.models import Channel, Event
from inbox.service.app import create_app, with_worker
from inbox.service.engines import EngineUrls, engines
from inbox.service.logs import configure
from inbox.settings import Settings, get_settings

T = TypeVar("T")


def data_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            os.environ["SWITCHBOARD_DATA_DIR"] = value
            get_settings.cache_clear()

    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        expose_value=False,
        is_eager=True,
        callback=remember,
        help="Folder for the embedded engines (default ./var; env SWITCHBOARD_DATA_DIR).",
    )(f)


def settings() -> Settings:
    s = get_settings()
    configure(s.log_level, s.log_json)
    egress.configure(s.allow_private_urls)  # Telegram's setWebhook on `channels add`
    return s


@contextlib.contextmanager
def migrated(s: Settings, *, redis: bool = False) -> Iterator[EngineUrls]:
    """Engines up (embedded when not configured) and the schema at the newest revision."""
    with engines(s, redis=redis) as urls:
        upgrade(urls.database_url)
        yield urls


@contextlib.asynccontextmanager
async def session_factory(url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(url, pool_size=2)
    try:
        yield make_sessions(engine)
    finally:
        await engine.dispose()


def base_url(s: Settings) -> str:
    return s.public_url or f"http://{s.host}:{s.port}"


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text(data))


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@click.group()
@data_dir_option
def main() -> None:
    """Switchboard: every inbound customer contact in one inbox and in the CRM."""


@main.command()
@data_dir_option
def migrate() -> None:
    """Bring the database schema to the newest revision."""
    with migrated(settings()):
        click.echo("database is up to date")


async def serve_until_stopped(
    app: web.Application, host: str, port: int, *, reuse_port: bool = False
) -> None:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    click.echo(f"Switchboard is listening on http://{host}:{port} (pid {os.getpid()})", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    try:
        await runner.cleanup()
    except (ConnectionError, RedisConnectionError) as exc:
        # An engine closing at the same moment must not turn a clean stop into a failure.
        click.echo(f"stopped; a connection closed during shutdown: {exc}", err=True)


def host_port_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--port", type=int, default=None, help="Port (default 8080).")(f)
    return click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")(f)


@main.command()
@data_dir_option
@host_port_options
@click.option("--demo", is_flag=True, help="Seed the demo company first (once).")
def serve(host: str | None, port: int | None, demo: bool) -> None:
    """Run the web server and one worker together (embedded engines when no URLs are set)."""
    from workers.worker import make_worker

    s = settings().model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v})
    with migrated(s, redis=True) as urls:
        if demo:
            run(seed_and_print(urls.database_url, s))
        app = create_app(s, urls.database_url, urls.redis_url)
        with_worker(
            app, lambda: make_worker(s, urls.database_url, urls.redis_url, handle_signals=False)
        )
        run(serve_until_stopped(app, s.host, s.port))


@main.command("web")
@data_dir_option
@host_port_options
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=None,
    help="Web processes sharing the port (SO_REUSEPORT); default: one per CPU.",
)
def web_(host: str | None, port: int | None, processes: int | None) -> None:
    """Run the web server only (webhooks, API, inbox)."""
    s = settings().model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v})
    with migrated(s, redis=True) as urls:
        serve_processes(
            processes or os.cpu_count() or 1,
            lambda: create_app(s, urls.database_url, urls.redis_url),
            s.host,
            s.port,
        )


def serve_processes(n: int, make_app: Callable[[], web.Application], host: str, port: int) -> None:
    """Serve in n processes on one port: the kernel spreads connections over them."""
    gc.freeze()  # what the imports made is never scanned again (and stays shared after a fork)
    if n <= 1:
        run(serve_until_stopped(make_app(), host, port))
        return
    forked = multiprocessing.get_context("fork")
    children = [
        forked.Process(target=_serve_child, args=(make_app, host, port), name=f"web-{i}")
        for i in range(n)
    ]
    for child in children:
        child.start()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = 0
    for child in children:
        child.join()
        failed += child.exitcode not in (0, -signal.SIGTERM)
    if failed:
        raise SystemExit(1)


def _serve_child(make_app: Callable[[], web.Application], host: str, port: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    run(serve_until_stopped(make_app(), host, port, reuse_port=True))


@main.command()
@data_dir_option
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run an arq worker: processes journaled events and runs the cron jobs."""
    from workers.worker import close_worker, make_worker

    s = settings()
    # The modules' objects (tens of thousands) stay out of every later collection: a full one
    # would otherwise pause a batch for tens of milliseconds now and then.
    gc.freeze()
    with migrated(s, redis=True) as urls:

        async def go() -> None:
            w = make_worker(s, urls.database_url, urls.redis_url, burst=burst)
            try:
                # async_run gives arq's SIGTERM/SIGINT handler the task it cancels to stop.
                await w.async_run()
            except asyncio.CancelledError:
                click.echo("worker stopped", err=True)
            finally:
                await close_worker(w)

        run(go())


async def seed_and_print(database_url: str, s: Settings) -> None:
    from inbox.service.demo import demo_summary, seed
    from inbox.service.demo_history import seed_history

    async with session_factory(database_url) as sessions, sessions() as session, session.begin():
        result = await seed(session)
        if result.created:
            await seed_history(session, result.channels)
    summary = demo_summary(result)
    click.echo(
        f"Demo company {'created' if result.created else 'already present'}: "
        f"{summary['users']} users, {summary['relations']} relations, {summary['contacts']} contacts."
    )
    click.echo(f"Log in as {summary['login']['email']} / {summary['login']['password']}")
    for channel in result.channels:
        info = describe(channel, base_url(s))
        click.echo(f"{info['kind']:10} {info['name']}: {info['webhook_url']}")
        for name, value in info["secrets"].items():
            click.echo(f"{'':10} {name} = {value}")


@main.command()
@data_dir_option
def demo() -> None:
    """Seed a realistic Dutch demo company and print its webhook URLs and secrets."""
    s = settings()
    with migrated(s) as urls:
        run(seed_and_print(urls.database_url, s))


@main.group()
def channels() -> None:
    """Channel instances: web forms, telephone systems, mailboxes, bots."""


@channels.command("add")
@data_dir_option
@click.argument("kind", type=click.Choice(sorted(ADAPTERS)))
@click.option("--name", required=True, help="A name people recognise.")
@click.option("--config", "config_json", default="{}", help="The kind's settings as a JSON object.")
@click.option("--team", default=None, help="Default team for work from this channel.")
@click.option("--json", "as_json", is_flag=True, help="Print the channel as JSON.")
def channels_add(kind: str, name: str, config_json: str, team: str | None, as_json: bool) -> None:
    """Add a channel; secrets are generated when not given."""
    try:
        config = json.loads(config_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--config") from None
    if not isinstance(config, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--config")
    s = settings()

    async def go(url: str) -> dict[str, Any]:
        async with session_factory(url) as sessions, sessions() as session, session.begin():
            channel = await add_channel(session, kind, name, config, team)
            return describe(channel, base_url(s))

    with migrated(s) as urls:
        try:
            info = run(go(urls.database_url))
        except (ValueError, LookupError) as exc:
            raise click.ClickException(str(exc)) from None
    emit(info, as_json, channel_text)


def channel_text(info: dict[str, Any]) -> str:
    lines = [f"{info['id']}  {info['kind']:10} {info['name']}", f"  webhook: {info['webhook_url']}"]
    lines += [f"  {k}: {v}" for k, v in info["secrets"].items()]
    return "\n".join(lines)


@channels.command("list")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the channels as JSON.")
def channels_list(as_json: bool) -> None:
    """List channels with their webhook paths and secrets."""
    s = settings()

    async def go(url: str) -> list[dict[str, Any]]:
        async with session_factory(url) as sessions, sessions() as session:
            rows = (await session.scalars(select(Channel).order_by(Channel.created_at))).all()
            return [describe(c, base_url(s)) for c in rows]

    with migrated(s) as urls:
        infos = run(go(urls.database_url))
    emit(infos, as_json, lambda xs: "\n".join(channel_text(x) for x in xs) or "no channels")


@main.group()
def events() -> None:
    """The event journal: every delivery as received."""


def event_row(e: Event, kind: str) -> dict[str, Any]:
    return {
        "id": e.id,
        "channel_id": e.channel_id,
        "kind": kind,
        "external_id": e.external_id,
        "status": e.status,
        "error": e.error,
        "attempts": e.attempts,
        "received_at": e.received_at.isoformat(),
        "processed_at": e.processed_at.isoformat() if e.processed_at else None,
        "size": len(e.payload),
    }


@events.command("list")
@data_dir_option
@click.option("--failed", is_flag=True, help="Only failed events.")
@click.option("--status", type=click.Choice(["pending", "processed", "failed", "ignored"]))
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def events_list(failed: bool, status: str | None, limit: int, as_json: bool) -> None:
    """List journaled events, newest first."""
    s = settings()

    async def go(url: str) -> list[dict[str, Any]]:
        query = select(Event, Channel.kind).join(Channel).order_by(Event.id.desc()).limit(limit)
        if failed or status:
            query = query.where(Event.status == ("failed" if failed else status))
        async with session_factory(url) as sessions, sessions() as session:
            return [event_row(e, kind) for e, kind in (await session.execute(query)).all()]

    with migrated(s) as urls:
        rows = run(go(urls.database_url))
    emit(
        rows,
        as_json,
        lambda xs: (
            "\n".join(
                f"{x['id']:>8} {x['status']:9} {x['kind']:10} {x['external_id'][:40]:40} {x['error'] or ''}"
                for x in xs
            )
            or "no events"
        ),
    )


@events.command("replay")
@data_dir_option
@click.argument("event_id", type=int, required=False)
@click.option("--failed", is_flag=True, help="Replay every failed event.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcomes as JSON.")
def events_replay(event_id: int | None, failed: bool, as_json: bool) -> None:
    """Process a failed event again (or all failed ones)."""
    from workers.jobs import replay_events
    from workers.worker import policy_from

    if (event_id is None) == (not failed):
        raise click.UsageError("give an event id or --failed")
    s = settings()

    async def go(url: str) -> list[dict[str, Any]]:
        async with session_factory(url) as sessions:
            async with sessions() as session:
                query = select(Event.id).order_by(Event.id)
                query = (
                    query.where(Event.status == "failed")
                    if failed
                    else query.where(Event.id == event_id)
                )
                ids = list((await session.scalars(query)).all())
            if not ids:
                return []
            ctx = {"sessions": sessions, "policy": policy_from(s)}
            outcomes: list[dict[str, Any]] = []
            for start in range(0, len(ids), 500):
                outcomes += await replay_events(ctx, ids[start : start + 500])
            return outcomes

    with migrated(s) as urls:
        outcomes = run(go(urls.database_url))
    if event_id is not None and not outcomes:
        raise click.ClickException(f"event {event_id} does not exist or is not failed")
    emit(
        outcomes,
        as_json,
        lambda xs: (
            "\n".join(f"{x['event_id']:>8} {x['status']} {x['error'] or ''}" for x in xs)
            or "nothing to replay"
        ),
    )


@main.group()
def users() -> None:
    """People who use the inbox."""


@users.command("add")
@data_dir_option
@click.argument("email")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "manager", "agent"]), default="agent")
@click.option("--json", "as_json", is_flag=True)
def users_add(email: str, name: str, role: str, as_json: bool) -> None:
    """Create a user; the password is read from standard input."""
    from inbox.users import add_user

    password = (
        sys.stdin.readline().rstrip("\r\n")
        if not sys.stdin.isatty()
        else click.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    s = settings()

    async def go(url: str) -> dict[str, Any]:
        async with session_factory(url) as sessions, sessions() as session, session.begin():
            user = await add_user(session, email, name, role, password or None)
            return {"id": user.id, "email": user.email, "name": user.name, "role": user.role}

    with migrated(s) as urls:
        try:
            info = run(go(urls.database_url))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    emit(info, as_json, lambda u: f"user {u['id']} {u['email']} ({u['role']}) created")


@main.command("search")
@data_dir_option
@click.argument("query", required=False)
@click.option("--file", "queries_file", type=click.File("r"), help="One query per line.")
@click.option("--limit", type=int, default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def search_command(query: str | None, queries_file: Any, limit: int, as_json: bool) -> None:
    """Search relations, contacts, projects, leads and conversations (every word, by prefix)."""
    from dataclasses import asdict

    from crm.search import BadQuery, search

    queries = (
        [line.strip() for line in queries_file if line.strip()] if queries_file else [query or ""]
    )
    s = settings()

    async def go(url: str) -> list[dict[str, Any]]:
        async with session_factory(url) as sessions, sessions() as session:
            out = []
            for q in queries:
                groups = await search(session, q, limit=limit)
                out.append(
                    {"query": q, "results": {k: [asdict(h) for h in v] for k, v in groups.items()}}
                )
            return out

    with migrated(s) as urls:
        try:
            answers = run(go(urls.database_url))
        except BadQuery as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        for answer in answers if queries_file else answers[:1]:
            click.echo(json.dumps(answer if queries_file else answer["results"], default=str))
        return
    for answer in answers:
        click.echo(f"# {answer['query']}")
        for kind, hits in answer["results"].items():
            for hit in hits:
                click.echo(
                    f"{kind:12} {hit['id']:>8}  {hit['title']}  ({hit['subtitle']})  {' '.join(hit['matched'])}"
                )


@main.command("import")
@data_dir_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dedup", is_flag=True, help="Do not create contacts that are likely already there.")
@click.option("--batch", type=click.IntRange(100, 50_000), default=5000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def import_command(file: Path, dedup: bool, batch: int, as_json: bool) -> None:
    """Import relations, contacts and projects from a CSV or XLSX file (columns: see README)."""

    from crm.import_files import read_file
    from crm.importer import import_rows

    s = settings()

    async def go(url: str) -> dict[str, Any]:
        with click.progressbar(
            length=count_rows(file), label="importing", file=sys.stderr, show_pos=True
        ) as bar:
            async with session_factory(url) as sessions:
                report = await import_rows(
                    sessions,
                    read_file(file),
                    dedup=dedup,
                    region=s.default_region,
                    batch=batch,
                    progress=bar.update,
                )
        return report.as_dict()

    with migrated(s) as urls:
        summary = run(go(urls.database_url))
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, default=str))
        return
    click.echo(
        f"{summary['rows']} rows: {summary['contacts_created']} contacts created, "
        f"{summary['contacts_updated']} updated, {summary['relations_created']} relations, "
        f"{summary['projects_created']} projects, {summary['identities_added']} addresses/numbers, "
        f"{summary['domains_added']} company domains, {summary['duplicates']} duplicates, "
        f"{summary['skipped']} skipped"
    )
    for error in summary["errors"][:20]:
        click.echo(f"  line {error['line']}: {error['error']}", err=True)


def count_rows(file: Path) -> int:
    """Data rows, for the progress bar (a quick line count; XLSX: the sheet's dimension)."""
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        book = load_workbook(file, read_only=True)
        try:
            return max((book.worksheets[0].max_row or 1) - 1, 0)
        finally:
            book.close()
    with file.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def refit_options(file: str, reader: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--out and --keep of a command that refits a weights file."""

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--keep",
            multiple=True,
            metavar="FIELD",
            help="A field whose weights stay as they are (e.g. city, when the decisions cannot "
            "tell how common a shared city is).",
        )(f)
        return click.option(
            "--out",
            type=click.Path(dir_okay=False),
            help=f"Where the weights go (default: {file} in the data folder, which the "
            f"{reader} then reads).",
        )(f)

    return add


def write_weights(fitted: Weights, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(fitted.to_json() + "\n", encoding="utf-8")


def show_weights(fitted: Weights) -> None:
    for name, levels in sorted(fitted.levels.items()):
        click.echo(f"  {name:10} " + "  ".join(f"{k} {v:+.2f}" for k, v in sorted(levels.items())))


@main.group("match", invoke_without_command=True)
@data_dir_option
@click.option(
    "--file",
    "senders_file",
    type=click.File("r"),
    help="JSON lines: one sender per line with any of email, phone, telegram_id, name, company, city.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON decision per line.")
@click.pass_context
def match_command(ctx: click.Context, senders_file: Any, as_json: bool) -> None:
    """Match senders to contacts: linked, review or unknown, with the score and the reasons."""
    from crm.matcher import Sender, match_senders

    if ctx.invoked_subcommand is not None:
        return
    if senders_file is None:
        raise click.UsageError("Missing option '--file'.")
    s = settings()
    config = s.match_config()

    def parse(number: int, line: str) -> Sender | str:
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("a line is one JSON object")
        except ValueError as exc:
            return f"not a sender: {exc}"
        return Sender.from_dict(data)

    def show(out: dict[str, Any]) -> None:
        number = out["line"]
        if as_json:
            click.echo(json.dumps(out, ensure_ascii=False))
        elif "error" in out:
            click.echo(f"{number}: {out['error']}")
        else:
            who = out["contact_id"] or out["relation_id"] or "-"
            click.echo(
                f"{number}: {out['decision']:8} {who}  {out['score']:.3f}  "
                + ", ".join(f"{k}: {v}" for k, v in out["reasons"].items())
            )

    async def go(url: str) -> None:
        # Matched a chunk of lines at a time: the matcher's queries are per chunk, not per line.
        async with session_factory(url) as sessions, sessions() as session:
            lines = ((n, line) for n, line in enumerate(senders_file, start=1) if line.strip())
            while chunk := [(n, parse(n, line)) for n, line in itertools.islice(lines, 500)]:
                senders = [sender for _, sender in chunk if isinstance(sender, Sender)]
                decisions = iter(await match_senders(session, senders, config=config))
                await session.rollback()  # read-only: no transaction stays open between chunks
                for number, sender in chunk:
                    show(
                        {"line": number} | next(decisions).as_meta()
                        if isinstance(sender, Sender)
                        else {"line": number, "error": sender}
                    )

    with migrated(s) as urls:
        run(go(urls.database_url))


@match_command.command("train")
@data_dir_option
@click.option(
    "--file",
    "labelled_file",
    type=click.File("r"),
    help='JSON lines {"sender": {...}, "external_id": "C-1" or null} instead of the review queue.',
)
@refit_options("match_weights.json", "matcher")
def match_train(labelled_file: Any, out: str | None, keep: tuple[str, ...]) -> None:
    """Refit the matcher's evidence weights from the review queue's confirmed and rejected
    decisions (or a labelled file) and write them where the matcher reads them."""
    from crm.matcher import Label, Sender, labelled_pairs, review_labels
    from crm.weights import fit

    s = settings()
    config = s.match_config()
    target = Path(out) if out else Path(config.weights_file or "match_weights.json")
    labelled: list[tuple[Sender, Label]] = []
    if labelled_file is not None:
        for line in labelled_file:
            if line.strip():
                row = json.loads(line)
                labelled.append(
                    (Sender.from_dict(row["sender"]), ("external_id", row.get("external_id")))
                )

    async def go(url: str) -> list[tuple[dict[str, str], bool]]:
        async with session_factory(url) as sessions, sessions() as session:
            if labelled_file is None:
                labelled.extend(await review_labels(session))
            return await labelled_pairs(session, labelled, config=config)

    with migrated(s) as urls:
        samples = run(go(urls.database_url))
    matches = sum(match for _, match in samples)
    if not matches or matches == len(samples):
        raise click.ClickException(
            f"{len(labelled)} decisions gave {len(samples)} pairs, {matches} of them matches: "
            "a refit needs both matches and non-matches"
        )
    fitted = fit(
        samples,
        start=config.weights,
        fitted_on=f"{len(samples)} pairs, {matches} matches",
        keep=keep,
    )
    write_weights(fitted, target)
    click.echo(
        f"{len(samples)} pairs ({matches} matches) from {len(labelled)} decisions → {target}"
    )
    show_weights(fitted)


@main.group("duplicates")
def duplicates_command() -> None:
    """Duplicate contacts: the weights the periodic duplicate job scores pairs with."""


@duplicates_command.command("train")
@data_dir_option
@refit_options("dedup_weights.json", "duplicate job")
def duplicates_train(out: str | None, keep: tuple[str, ...]) -> None:
    """Refit the duplicate job's weights from people's decisions: merged contacts (one person,
    unless the merge was undone) and dismissed duplicate pairs (two people)."""
    from crm.dedup import load_weights, refit, training_pairs
    from crm.weights import Sample

    s = settings()
    target = Path(out) if out else Path(s.dedup_weights_file())
    start = load_weights(s.dedup_weights_file())

    async def go(url: str) -> tuple[list[Sample], list[Sample]]:
        async with session_factory(url) as sessions, sessions() as session:
            return await training_pairs(session, start)

    with migrated(s) as urls:
        decided, unlisted = run(go(urls.database_url))
    matches = sum(match for _, match in decided)
    if not matches or matches == len(decided):
        raise click.ClickException(
            f"{len(decided)} decided pairs, {matches} of them merges: a refit needs both merges "
            "and dismissed pairs (or undone merges)"
        )
    fitted = refit(decided + unlisted, start, keep)
    write_weights(fitted, target)
    click.echo(
        f"{len(decided)} decided pairs ({matches} merges) and {len(unlisted)} the job did not "
        f"list → {target}"
    )
    show_weights(fitted)


if __name__ == "__main__":
    main()
