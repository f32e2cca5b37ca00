"""Reports: conversations per channel, first-response and resolution times in business hours,
SLA breaches, lead sources and their conversion, pipeline value per stage and agent workload.

Each report is one set-based statement over an indexed range of rows; business time is the
default business calendar's opening time, computed in SQL from a small table of the calendar's
days (the open seconds before each day and its opening spans) joined on the local date.
`GET /api/reports/{name}` answers JSON, CSV (`Accept: text/csv` or `format=csv`) or an SVG chart
(`Accept: image/svg+xml` or `format=svg`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.access import Principal
from inbox.api.charts import Chart, svg
from inbox.api.router import API, ApiError, ApiRequest, not_found
from inbox.routing.sla import DEFAULT_TZ, Hours, calendar_hours, zone

MAX_DAYS = 1100
WORK_MEM = "64MB"
Interval = Literal["day", "week", "month"]
Language = Literal["en", "nl"]
MANUAL = "manual"  # the source of a lead entered by hand
# The reports' titles and chart texts in the web inbox's other language (lang=nl); the data
# (columns, codes) stays as it is in every language.
DUTCH = {
    "Conversations per channel": "Gesprekken per kanaal",
    "First response and resolution (business hours, minutes)":
        "Eerste reactie en afhandeling (kantooruren, minuten)",
    "First response and resolution, median (business minutes)":
        "Eerste reactie en afhandeling, mediaan (kantoorminuten)",
    "SLA breaches": "SLA-overschrijdingen",
    "Leads per source channel and their conversion": "Leads per bronkanaal en hun conversie",
    "Leads per source": "Leads per bron",
    "Pipeline value per stage": "Pijplijnwaarde per fase",
    "Agent workload": "Werklast per medewerker",
    "first response": "eerste reactie",
    "resolution": "afhandeling",
    "leads": "leads",
    "to opportunity": "naar kans",
    "won": "gewonnen",
    "amount": "bedrag",
    "weighted": "gewogen",
    "open conversations": "open gesprekken",
    "replies": "antwoorden",
    "open tasks": "open taken",
    MANUAL: "handmatig",
}  # fmt: skip


def say(text: str, lang: str | None) -> str:
    return DUTCH.get(text, text) if lang == "nl" else text


def localized(chart: Chart, lang: str | None) -> Chart:
    """The chart with its title, series and the hand-entered source in the language asked."""
    return Chart(
        chart.kind,
        say(chart.title, lang),
        [say(c, lang) if c == MANUAL else c for c in chart.categories],
        {say(name, lang): values for name, values in chart.series.items()},
        chart.unit,
    )


class ReportQuery(BaseModel):
    model_config = {"populate_by_name": True}

    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    team: int | None = None
    channel: str | None = Field(default=None, max_length=32)
    interval: Interval = "day"
    format: Literal["json", "csv", "svg"] | None = None
    lang: Language | None = None  # of the chart's texts; English without it


class ReportListQuery(BaseModel):
    lang: Language | None = None  # of the titles; English without it


class ReportOut(BaseModel):
    name: str
    title: str
    start: date
    end: date
    interval: str
    columns: list[str]
    rows: list[list[Any]]


class ReportInfo(BaseModel):
    name: str
    title: str
    chart: str


@dataclass(frozen=True)
class Scope:
    """The period (local dates, both inclusive) and filters of one report request."""

    start: date
    end: date
    interval: str
    tz: str
    teams: list[int] | None  # None: every team
    channel: str | None

    @property
    def since(self) -> datetime:
        return local_midnight(self.start, self.tz)

    @property
    def until(self) -> datetime:
        return local_midnight(self.end + timedelta(days=1), self.tz)

    def periods(self) -> list[date]:
        """The first local day of every period the report's days fall in (date_trunc's)."""
        if self.interval == "month":
            day = self.start.replace(day=1)
        elif self.interval == "week":
            day = self.start - timedelta(days=self.start.weekday())
        else:
            day = self.start
        found = []
        while day <= self.end:
            found.append(day)
            if self.interval == "month":
                day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
            else:
                day += timedelta(days=7 if self.interval == "week" else 1)
        return found

    def params(self) -> dict[str, Any]:
        periods = self.periods()
        return {
            "since": self.since,
            "until": self.until,
            "teams": self.teams,
            "channel": self.channel,
            "period_labels": periods,
            "period_starts": [local_midnight(day, self.tz) for day in periods],
        }

    def where(self, alias: str = "c", team: bool = True) -> str:
        """The period and filters on a conversations alias."""
        parts = [f"{alias}.created_at >= :since", f"{alias}.created_at < :until"]
        if team and self.teams is not None:
            parts.append(f"{alias}.team_id = ANY(:teams)")
        if self.channel:
            parts.append(f"{alias}.channel_id = :channel")
        return " AND ".join(parts)


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), zone(tz)).astimezone(UTC)


def period(column: str) -> str:
    """The local first day of the column's period: a binary search in the periods' starts (as
    instants), which costs a fraction of a time zone conversion per row."""
    return (
        "(CAST(:period_labels AS date[]))"
        f"[width_bucket({column}, CAST(:period_starts AS timestamptz[]))]"
    )


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    chart: Chart


Builder = Callable[[AsyncSession, Scope], Awaitable[Table]]
REPORTS: dict[str, tuple[str, str, Builder]] = {}


def report(name: str, title: str, chart: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        REPORTS[name] = (title, chart, fn)
        return fn

    return register


async def rows(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[list[Any]]:
    return [list(r) for r in (await session.execute(text(sql), params)).all()]


def pivot(table: list[list[Any]], title: str, kind: str = "stacked", unit: str = "") -> Chart:
    """Rows of (category, series, value) as a chart with one series per distinct name."""
    categories = sorted({str(r[0]) for r in table})
    index = {c: i for i, c in enumerate(categories)}
    series: dict[str, list[float | None]] = {}
    for category, name, value in table:
        values = series.setdefault(str(name), [None] * len(categories))
        values[index[str(category)]] = float(value)
    return Chart(kind, title, categories, series, unit)


def columns_chart(
    table: list[list[Any]], columns: list[str], title: str, kind: str, unit: str = ""
) -> Chart:
    """Rows of (category, value, value, ...) as a chart with one series per named column."""
    return Chart(
        kind,
        title,
        [str(r[0]) for r in table],
        {
            name: [None if r[i] is None else float(r[i]) for r in table]
            for i, name in enumerate(columns)
            if i > 0
        },
        unit,
    )


# --- business time --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessTime:
    """Seconds of opening time since the calendar's first day, as SQL over epoch seconds.

    The calendar is its opening and closing instants in order (each day's spans, between a
    doubled first midnight and a doubled last one) with the open seconds before each. A
    moment's place among them (a binary search, `width_bucket`) is odd inside an opening span
    and even outside; its business seconds are those at that instant, plus the time since it
    when inside. Outside the calendar's days the answer is NULL. No join and no time zone
    conversion per row."""

    params: dict[str, Any]
    spans: int  # 0: open around the clock, the wall clock is business time

    def place(self, epoch: str) -> str:
        """The moment's place among the calendar's instants (0 before them)."""
        if not self.spans:
            return "NULL"
        return f"width_bucket({epoch}, CAST(:cal_at AS float8[]))"

    def seconds(self, epoch: str, place: str) -> str:
        if not self.spans:
            return epoch
        return (
            f"((CAST(:cal_sum AS float8[]))[{place}]"
            f" + ({place} % 2) * ({epoch} - (CAST(:cal_at AS float8[]))[{place}]))"
        )


async def business_time(session: AsyncSession, first: date, last: date) -> BusinessTime:
    """The default calendar's days from `first` to `last` (around the clock without one)."""
    hours = await calendar_hours(session)
    if hours is None or (hours.around_the_clock and not hours.holidays):
        return BusinessTime({}, 0)
    return calendar_arrays(hours, first, last)


def calendar_arrays(hours: Hours, first: date, last: date) -> BusinessTime:
    begin = local_midnight(first, str(hours.tz)).timestamp()
    end = local_midnight(last + timedelta(days=1), str(hours.tz)).timestamp()
    at, total = [begin, begin], [0.0, 0.0]
    spans, day = 0, first
    while day <= last:
        for opens, closes in sorted(hours.spans(day)):
            o, c = max(opens.timestamp(), at[-1]), closes.timestamp()
            if c > o:  # an opening span: its start (odd place), then its end (even place)
                at += [o, c]
                total += [total[-1], total[-1] + c - o]
                spans += 1
        day += timedelta(days=1)
    # The last midnight twice: from it on the place is past the sums, so NULL.
    at += [end, end]
    total.append(total[-1])
    return BusinessTime({"cal_at": at, "cal_sum": total}, min(spans, 1))


# --- the reports ----------------------------------------------------------------------------------


@report("conversations", "Conversations per channel", "stacked")
async def conversations_per_channel(session: AsyncSession, s: Scope) -> Table:
    table = await rows(
        session,
        f"""SELECT n.period, ch.name AS channel, sum(n.conversations)::bigint AS conversations
        FROM (
            SELECT {period("c.created_at")} AS period, c.channel_id, count(*) AS conversations
            FROM conversations c WHERE {s.where()} GROUP BY 1, 2
        ) n JOIN channels ch ON ch.id = n.channel_id
        GROUP BY 1, 2 ORDER BY 1, 2""",
        s.params(),
    )
    columns = ["period", "channel", "conversations"]
    return Table(columns, table, pivot(table, "Conversations per channel"))


@report("response-times", "First response and resolution (business hours, minutes)", "line")
async def response_times(session: AsyncSession, s: Scope) -> Table:
    clock = await business_time(
        session,
        s.start - timedelta(days=1),
        max(s.end, datetime.now(UTC).date()) + timedelta(days=1),
    )
    # Each level is computed once per row (OFFSET 0 keeps the planner from inlining it into the
    # next, where its columns are used more than once); one sort per measure gives both
    # percentiles.
    found = await rows(
        session,
        f"""SELECT period, count(*),
            percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY (fs - bs) / 60.0),
            percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY (rs - bs) / 60.0)
        FROM (
            SELECT period, {clock.seconds("b", "bd")} AS bs, {clock.seconds("f", "fd")} AS fs,
                {clock.seconds("r", "rd")} AS rs
            FROM (
                SELECT period, b, f, r, {clock.place("b")} AS bd, {clock.place("f")} AS fd,
                    {clock.place("r")} AS rd
                FROM (
                    SELECT {period("c.created_at")} AS period, date_part('epoch', c.created_at) AS b,
                        date_part('epoch', c.first_response_at) AS f,
                        date_part('epoch', c.resolved_at) AS r
                    FROM conversations c WHERE {s.where()} OFFSET 0
                ) e OFFSET 0
            ) d OFFSET 0
        ) m GROUP BY 1 ORDER BY 1""",
        s.params() | clock.params,
    )
    table = [[r[0], r[1], *spread(r[2]), *spread(r[3])] for r in found]
    columns = [
        "period",
        "conversations",
        "first_response_median_min",
        "first_response_p90_min",
        "resolution_median_min",
        "resolution_p90_min",
    ]
    chart = Chart(
        "line",
        "First response and resolution, median (business minutes)",
        [str(r[0]) for r in table],
        {
            "first response": [r[2] for r in table],
            "resolution": [r[4] for r in table],
        },
        "min",
    )
    return Table(columns, table, chart)


@report("sla-breaches", "SLA breaches", "bar")
async def sla_breaches(session: AsyncSession, s: Scope) -> Table:
    table = await rows(
        session,
        f"""SELECT period, count(*) FILTER (WHERE sla) AS with_sla,
            count(*) FILTER (WHERE first_late) AS first_response_breaches,
            count(*) FILTER (WHERE resolution_late) AS resolution_breaches
        FROM (
            SELECT {period("c.created_at")} AS period, s.conversation_id IS NOT NULL AS sla,
                s.first_response_due_at < coalesce(c.first_response_at, now()) AS first_late,
                s.resolution_breached_at IS NOT NULL
                    OR s.resolution_due_at < coalesce(c.resolved_at, now()) AS resolution_late
            FROM conversations c LEFT JOIN conversation_slas s ON s.conversation_id = c.id
            WHERE {s.where()}
            OFFSET 0  -- a handful of periods: grouped in a hash table, not sorted
        ) b GROUP BY 1 ORDER BY 1""",
        s.params(),
    )
    columns = ["period", "with_sla", "first_response_breaches", "resolution_breaches"]
    chart = columns_chart(
        [[r[0], r[2], r[3]] for r in table],
        ["period", "first response", "resolution"],
        "SLA breaches",
        "bar",
    )
    return Table(columns, table, chart)


@report("lead-sources", "Leads per source channel and their conversion", "bar")
async def lead_sources(session: AsyncSession, s: Scope) -> Table:
    channel = " AND l.source_channel_id = :channel" if s.channel else ""
    # A lead is a team's when its owner is in the team or it came in by one of its conversations.
    team = (
        """ AND (l.owner_id IN (SELECT user_id FROM team_members WHERE team_id = ANY(:teams))
            OR l.id IN (SELECT lead_id FROM conversations
                        WHERE team_id = ANY(:teams) AND lead_id IS NOT NULL))"""
        if s.teams is not None
        else ""
    )
    table = await rows(
        session,
        f"""SELECT coalesce(ch.name, '{MANUAL}') AS source, sum(n.leads)::bigint AS leads,
            sum(n.converted)::bigint AS converted, sum(n.opportunities)::bigint AS opportunities,
            sum(n.won)::bigint AS won
        FROM (
            SELECT l.source_channel_id, count(*) AS leads,
                count(*) FILTER (WHERE l.status = 'converted') AS converted,
                count(o.lead_id) AS opportunities, count(*) FILTER (WHERE o.won) AS won
            FROM leads l LEFT JOIN (
                    SELECT lead_id, bool_or(status = 'won') AS won FROM opportunities
                    WHERE lead_id IS NOT NULL GROUP BY lead_id
                ) o ON o.lead_id = l.id
            WHERE l.created_at >= :since AND l.created_at < :until{channel}{team}
            GROUP BY 1
        ) n LEFT JOIN channels ch ON ch.id = n.source_channel_id
        GROUP BY 1 ORDER BY 2 DESC, 1""",
        s.params(),
    )
    table = [[*r, rate(r[2], r[1]), rate(r[3], r[1]), rate(r[4], r[1])] for r in table]
    columns = [
        "source",
        "leads",
        "converted",
        "opportunities",
        "won",
        "converted_pct",
        "to_opportunity_pct",
        "to_won_pct",
    ]
    chart = columns_chart(
        [[r[0], r[1], r[3], r[4]] for r in table],
        ["source", "leads", "to opportunity", "won"],
        "Leads per source",
        "bar",
    )
    return Table(columns, table, chart)


@report("pipeline", "Pipeline value per stage", "bar")
async def pipeline_per_stage(session: AsyncSession, s: Scope) -> Table:
    team = " AND o.team_id = ANY(:teams)" if s.teams is not None else ""
    channel = " AND o.source_channel_id = :channel" if s.channel else ""
    table = await rows(
        session,
        f"""SELECT CASE WHEN (SELECT count(*) FROM pipelines) > 1 THEN p.name || ' · ' ELSE '' END
                || st.name AS stage,
            count(o.id) AS opportunities, coalesce(sum(o.amount), 0)::float8 AS amount,
            coalesce(sum(o.amount * o.probability / 100), 0)::float8 AS weighted
        FROM pipeline_stages st JOIN pipelines p ON p.id = st.pipeline_id
            LEFT JOIN opportunities o ON o.stage_id = st.id
                AND (o.status = 'open' OR (o.closed_at >= :since AND o.closed_at < :until)){team}{channel}
        GROUP BY p.position, p.id, p.name, st.position, st.id, st.name
        ORDER BY p.position, p.id, st.position, st.id""",
        s.params(),
    )
    table = [[r[0], r[1], round(r[2], 2), round(r[3], 2)] for r in table]
    columns = ["stage", "opportunities", "amount", "weighted"]
    chart = columns_chart(
        [[r[0], r[2], r[3]] for r in table],
        ["stage", "amount", "weighted"],
        "Pipeline value per stage",
        "bar",
    )
    return Table(columns, table, chart)


def spread(percentiles: list[float | None] | None) -> list[float | None]:
    """[median, p90] in minutes, one decimal; None where nothing was measured."""
    values = percentiles or [None, None]
    return [None if v is None else round(float(v), 1) for v in values]


def rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


@report("workload", "Agent workload", "bar")
async def workload(session: AsyncSession, s: Scope) -> Table:
    members = (
        " AND u.id IN (SELECT user_id FROM team_members WHERE team_id = ANY(:teams))"
        if s.teams is not None
        else ""
    )
    # Open conversations now, of the team and channel asked for; replies in the channel; open
    # tasks are the agent's whatever their team (a task has no channel).
    open_scope = (" AND team_id = ANY(:teams)" if s.teams is not None else "") + (
        " AND channel_id = :channel" if s.channel else ""
    )
    reply_channel = " AND channel_id = :channel" if s.channel else ""
    table = await rows(
        session,
        f"""WITH assigned AS (
            SELECT c.assignee_id AS id, count(*) AS assigned,
                count(*) FILTER (WHERE c.status = 'resolved') AS resolved
            FROM conversations c WHERE {s.where()} AND c.assignee_id IS NOT NULL GROUP BY 1),
        open AS (
            SELECT assignee_id AS id, count(*) AS n FROM conversations
            WHERE status IN ('open', 'pending', 'snoozed') AND assignee_id IS NOT NULL{open_scope}
            GROUP BY 1),
        replies AS (
            SELECT author_id AS id, count(*) AS n FROM messages
            WHERE direction = 'outbound' AND author_id IS NOT NULL
                AND sent_at >= :since AND sent_at < :until{reply_channel} GROUP BY 1),
        tasks AS (
            SELECT assignee_id AS id, count(*) AS n,
                count(*) FILTER (WHERE due_at < now()) AS overdue
            FROM tasks WHERE status = 'open' AND assignee_id IS NOT NULL GROUP BY 1)
        SELECT u.name, coalesce(o.n, 0), coalesce(a.assigned, 0), coalesce(a.resolved, 0),
            coalesce(r.n, 0), coalesce(t.n, 0), coalesce(t.overdue, 0)
        FROM users u
            LEFT JOIN assigned a ON a.id = u.id LEFT JOIN open o ON o.id = u.id
            LEFT JOIN replies r ON r.id = u.id LEFT JOIN tasks t ON t.id = u.id
        WHERE u.is_active{members}
            AND (a.id IS NOT NULL OR o.id IS NOT NULL OR r.id IS NOT NULL OR t.id IS NOT NULL)
        ORDER BY 2 DESC, 1""",
        s.params(),
    )
    columns = [
        "agent",
        "open_conversations",
        "assigned",
        "resolved",
        "replies",
        "open_tasks",
        "overdue_tasks",
    ]
    chart = columns_chart(
        [[r[0], r[1], r[4], r[5]] for r in table],
        ["agent", "open conversations", "replies", "open tasks"],
        "Agent workload",
        "bar",
    )
    return Table(columns, table, chart)


# --- the routes -----------------------------------------------------------------------------------


def scope_of(p: Principal, q: ReportQuery, tz: str) -> Scope:
    today = datetime.now(UTC).date()
    end = q.to or today
    start = q.from_ or end - timedelta(days=29)
    if start > end:
        raise ApiError(
            422,
            "invalid",
            "from is after to",
            [{"loc": ["query", "from"], "msg": "from is after to", "type": "value_error"}],
        )
    if (end - start).days > MAX_DAYS:
        raise ApiError(422, "invalid", f"at most {MAX_DAYS} days in one report")
    teams: list[int] | None = None
    if q.team is not None:
        if not p.is_admin and q.team not in p.team_ids:
            raise ApiError(403, "forbidden", "not one of your teams")
        teams = [q.team]
    elif not p.is_admin:
        teams = list(p.team_ids)  # managers and agents: their own teams' figures
    return Scope(start, end, q.interval, tz, teams, q.channel)


@API.route(
    "GET",
    "/api/reports",
    summary="The reports there are (titles in lang=en|nl)",
    tag="reports",
    query=ReportListQuery,
)
async def list_reports(req: ApiRequest) -> list[dict[str, Any]]:
    lang = req.query.lang
    return [
        ReportInfo(name=name, title=say(title, lang), chart=chart).model_dump()
        for name, (title, chart, _) in REPORTS.items()
    ]


@API.route(
    "GET",
    "/api/reports/{name}",
    summary="A report (from, to, team, channel, interval=day|week|month); CSV with Accept:"
    " text/csv, an SVG chart with Accept: image/svg+xml",
    tag="reports",
    query=ReportQuery,
    response=ReportOut,
)
async def get_report(req: ApiRequest) -> ReportOut | web.Response:
    q: ReportQuery = req.query
    name = req.request.match_info["name"]
    if name not in REPORTS:
        raise not_found("report")
    title, _, build = REPORTS[name]
    async with req.sessions() as session, session.begin():
        # Grouping and percentiles over a year of conversations sort in memory, not on disk.
        await session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        hours = await calendar_hours(session)
        scope = scope_of(req.principal, q, str(hours.tz) if hours else DEFAULT_TZ)
        table = await build(session, scope)
    accept = req.request.headers.get("Accept", "")
    wanted = q.format or (
        "csv" if "text/csv" in accept else "svg" if "image/svg+xml" in accept else "json"
    )
    if wanted == "csv":
        return web.Response(
            text=as_csv(table),
            content_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{name}-{scope.start}-{scope.end}.csv"'
            },
        )
    if wanted == "svg":
        return web.Response(
            text=svg(localized(table.chart, q.lang)),
            content_type="image/svg+xml",
            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
        )
    return ReportOut(
        name=name,
        title=say(title, q.lang),
        start=scope.start,
        end=scope.end,
        interval=scope.interval,
        columns=table.columns,
        rows=table.rows,
    )


def as_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    writer.writerows(["" if v is None else v for v in r] for r in table.rows)
    return out.getvalue()
