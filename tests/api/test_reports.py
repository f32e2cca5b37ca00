"""Reports against figures computed by hand on a small fixture: a Mon-Fri 09:00-17:00 calendar
in Amsterdam with a holiday, four conversations on two channels and two teams, SLA clocks,
leads and the agents' work; JSON, CSV and the SVG chart, scoped per role."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from sqlalchemy import delete, select

from crm.models import Lead, Task, Team, TeamMember, User
from crm.opportunities import Opportunity, default_pipeline
from inbox.api.auth import create_api_token
from inbox.db import Sessions
from inbox.ingest.channels import add_channel
from inbox.models import Conversation, Message
from inbox.routing.models import BusinessCalendar, ConversationSla, Holiday

Client = TestClient[Any, Any]
AMS = ZoneInfo("Europe/Amsterdam")
WEEK = {"from": "2026-11-02", "to": "2026-11-08"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in November 2026 (Monday the 2nd), in UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=AMS).astimezone(UTC)


async def world(sessions: Sessions) -> dict[str, Any]:
    async with sessions() as session, session.begin():
        calendar = BusinessCalendar(
            name="Kantoor",
            timezone="Europe/Amsterdam",
            is_default=True,
            hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        )
        session.add(calendar)
        sales, service = Team(name="Verkoop"), Team(name="Service")
        session.add_all([sales, service])
        await session.flush()
        session.add(Holiday(calendar_id=calendar.id, day=date(2026, 11, 9), name="Sluitingsdag"))
        people = {
            name: User(email=f"{name}@switchboard.test", name=name.title(), role=role)
            for name, role in (("ank", "agent"), ("mia", "manager"), ("sam", "agent"), ("root", "admin"))
        }  # fmt: skip
        session.add_all(people.values())
        await session.flush()
        session.add_all(
            [
                TeamMember(team_id=sales.id, user_id=people["ank"].id),
                TeamMember(team_id=sales.id, user_id=people["mia"].id),
                TeamMember(team_id=service.id, user_id=people["sam"].id),
            ]
        )
        mail = await add_channel(session, "webform", "Mail", {})
        form = await add_channel(session, "webform", "Website", {})
        # created, first response, resolved — business minutes to answer / resolve:
        # A Mon 10:00 → 10:30, resolved 12:00: 30 / 120
        # B Fri 16:00 → Tue 10:00 (Mon a holiday), resolved Tue 17:00: 120 / 540
        # C Sat 12:00 → Tue 09:15, open: 15 / –
        # D Tue 08:00 → 09:45, resolved 17:30 (Service): 45 / 480
        a = Conversation(
            channel_id=mail.id, team_id=sales.id, assignee_id=people["ank"].id,
            status="resolved", created_at=at(2, 10), first_response_at=at(2, 10, 30),
            resolved_at=at(2, 12),
        )  # fmt: skip
        b = Conversation(
            channel_id=form.id, team_id=sales.id, assignee_id=people["ank"].id, status="open",
            created_at=at(6, 16), first_response_at=at(10, 10), resolved_at=at(10, 17),
        )  # fmt: skip
        c = Conversation(
            channel_id=form.id, team_id=sales.id, assignee_id=people["mia"].id,
            created_at=at(7, 12), first_response_at=at(10, 9, 15),
        )  # fmt: skip
        d = Conversation(
            channel_id=mail.id, team_id=service.id, status="resolved", created_at=at(3, 8),
            first_response_at=at(3, 9, 45), resolved_at=at(3, 17, 30),
        )  # fmt: skip
        late = Conversation(channel_id=mail.id, team_id=sales.id, created_at=at(12, 9))
        session.add_all([a, b, c, d, late])
        await session.flush()
        session.add_all(
            [
                ConversationSla(
                    conversation_id=a.id, started_at=a.created_at,
                    first_response_due_at=at(2, 10, 15), resolution_due_at=at(2, 17),
                ),
                ConversationSla(
                    conversation_id=b.id, started_at=b.created_at,
                    first_response_due_at=at(10, 9, 30), resolution_due_at=at(10, 17, 30),
                ),
                ConversationSla(
                    conversation_id=d.id, started_at=at(3, 9),
                    first_response_due_at=at(3, 10), resolution_due_at=at(3, 12),
                ),
            ]
        )  # fmt: skip
        for n, (conversation, sent) in enumerate(((a, at(2, 10, 30)), (b, at(10, 10)))):
            session.add(
                Message(
                    conversation_id=conversation.id, channel_id=conversation.channel_id,
                    external_id=f"r{n}", direction="outbound", kind="message", text="Dank u",
                    sent_at=sent, author_id=people["ank"].id, status="sent",
                )
            )  # fmt: skip
        session.add(
            Task(kind="follow_up", title="Bellen", assignee_id=people["ank"].id, due_at=at(3, 9))
        )
        session.add_all(
            [
                Lead(name="Karin", source_channel_id=form.id, status="converted", created_at=at(2, 11)),
                Lead(name="Piet", source_channel_id=form.id, created_at=at(3, 11)),
                Lead(name="Joke", source_channel_id=form.id, created_at=at(4, 11)),
                Lead(name="Kees", created_at=at(5, 11)),
                Lead(name="Later", source_channel_id=form.id, created_at=at(20, 11)),
            ]
        )  # fmt: skip
        await session.flush()
        pipeline = await default_pipeline(session)
        stage = {st.code: st for st in pipeline.stages}
        karin, piet = (
            await session.scalars(select(Lead).where(Lead.name.in_(["Karin", "Piet"])).order_by(Lead.name))
        ).all()  # fmt: skip

        def deal(code: str, amount: int, **fields: Any) -> Opportunity:
            st = stage[code]
            return Opportunity(
                name=f"{code} {amount}", pipeline_id=pipeline.id, stage_id=st.id,
                status=st.outcome, probability=st.probability, amount=amount, **fields,
            )  # fmt: skip

        session.add_all(
            [
                deal("gewonnen", 5000, lead_id=karin.id, team_id=sales.id, closed_at=at(5, 12)),
                deal("offerte", 10000, lead_id=piet.id, team_id=sales.id),
                deal("nieuw", 2000, team_id=service.id),
                deal("verloren", 3000, team_id=sales.id, closed_at=at(20, 12)),
            ]
        )
        tokens = {
            name: {
                "Authorization": f"Bearer {await create_api_token(session, u.id, 't', 'api', None)}"
            }
            for name, u in people.items()
        }
        return {"tokens": tokens, "sales": sales.id, "service": service.id, "form": form.id}


async def report(client: Client, name: str, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get(f"/api/reports/{name}", params=params, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_response_times_are_business_minutes_median_and_p90(
    client: Client, sessions: Sessions
) -> None:
    w = await world(sessions)
    root = w["tokens"]["root"]
    week = await report(client, "response-times", root, interval="week", **WEEK)
    # first response [15, 30, 45, 120]: median 37.5, p90 45 + 0.7 * 75 = 97.5;
    # resolution [120, 480, 540]: median 480, p90 480 + 0.8 * 60 = 528.
    assert week["rows"] == [["2026-11-02", 4, 37.5, 97.5, 480.0, 528.0]]
    days = await report(client, "response-times", root, interval="day", **WEEK)
    assert days["rows"] == [
        ["2026-11-02", 1, 30.0, 30.0, 120.0, 120.0],
        ["2026-11-03", 1, 45.0, 45.0, 480.0, 480.0],
        ["2026-11-06", 1, 120.0, 120.0, 540.0, 540.0],
        ["2026-11-07", 1, 15.0, 15.0, None, None],
    ]
    sales = await report(client, "response-times", root, interval="week", team=w["sales"], **WEEK)
    assert sales["rows"] == [["2026-11-02", 3, 30.0, 102.0, 330.0, 498.0]]
    # Without a business calendar the clock runs around the clock: C (Sat 12:00 → Tue 09:15)
    # waited 69 h 15 min.
    async with sessions() as session, session.begin():
        await session.execute(delete(BusinessCalendar))
    weekend = await report(
        client, "response-times", root, **{"from": "2026-11-07", "to": "2026-11-07"}
    )
    assert weekend["rows"] == [["2026-11-07", 1, 4155.0, 4155.0, None, None]]


async def test_volume_breaches_leads_and_workload(client: Client, sessions: Sessions) -> None:
    w = await world(sessions)
    root = w["tokens"]["root"]
    volume = await report(client, "conversations", root, interval="week", **WEEK)
    assert volume["columns"] == ["period", "channel", "conversations"]
    assert volume["rows"] == [["2026-11-02", "Mail", 2], ["2026-11-02", "Website", 2]]
    month = await report(
        client,
        "conversations",
        root,
        interval="month",
        **{"from": "2026-11-01", "to": "2026-11-30"},
    )
    assert month["rows"] == [["2026-11-01", "Mail", 3], ["2026-11-01", "Website", 2]]
    only_form = await report(client, "conversations", root, channel=w["form"], **WEEK)
    assert only_form["rows"] == [["2026-11-06", "Website", 1], ["2026-11-07", "Website", 1]]

    breaches = await report(client, "sla-breaches", root, interval="week", **WEEK)
    # A answered late, B answered late, D resolved late; C has no SLA.
    assert breaches["rows"] == [["2026-11-02", 3, 2, 1]]

    leads = await report(client, "lead-sources", root, **WEEK)
    assert leads["columns"] == [
        "source", "leads", "converted", "opportunities", "won", "converted_pct",
        "to_opportunity_pct", "to_won_pct",
    ]  # fmt: skip
    # Website: Karin (converted, won), Piet (an open opportunity), Joke; Kees came in by hand.
    assert leads["rows"] == [
        ["Website", 3, 1, 2, 1, 33.3, 66.7, 33.3],
        ["manual", 1, 0, 0, 0, 0.0, 0.0, 0.0],
    ]

    pipeline = await report(client, "pipeline", root, **WEEK)
    assert pipeline["columns"] == ["stage", "opportunities", "amount", "weighted"]
    # Open ones whenever they close; won and lost ones closed in the period (the loss is later).
    assert pipeline["rows"] == [
        ["Nieuw", 1, 2000.0, 200.0],
        ["Offerte", 1, 10000.0, 4000.0],
        ["Onderhandeling", 0, 0.0, 0.0],
        ["Gewonnen", 1, 5000.0, 5000.0],
        ["Verloren", 0, 0.0, 0.0],
    ]
    sales = await report(client, "pipeline", root, team=w["sales"], **WEEK)
    assert [r[1] for r in sales["rows"]] == [0, 1, 0, 1, 0]

    load = await report(client, "workload", root, **WEEK)
    assert load["columns"] == [
        "agent", "open_conversations", "assigned", "resolved", "replies", "open_tasks",
        "overdue_tasks",
    ]  # fmt: skip
    # Ank: B open; A and B assigned, A resolved; one reply in the week (B's is on the 10th).
    assert load["rows"] == [["Ank", 1, 2, 1, 1, 1, 1], ["Mia", 1, 1, 0, 0, 0, 0]]


async def test_csv_and_svg_and_team_scope(client: Client, sessions: Sessions) -> None:
    w = await world(sessions)
    t = w["tokens"]
    response = await client.get(
        "/api/reports/conversations",
        params={"interval": "week", **WEEK},
        headers=t["root"] | {"Accept": "text/csv"},
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert list(csv.reader(io.StringIO(await response.text()))) == [
        ["period", "channel", "conversations"],
        ["2026-11-02", "Mail", "2"],
        ["2026-11-02", "Website", "2"],
    ]
    chart = await client.get(
        "/api/reports/conversations",
        params={"interval": "day", **WEEK},
        headers=t["root"] | {"Accept": "image/svg+xml"},
    )
    assert chart.content_type == "image/svg+xml"
    drawn = await chart.text()
    assert drawn.startswith("<svg") and drawn.count('class="bar"') == 4 * 2  # 4 days x 2 channels
    assert "Website" in drawn and "Mail" in drawn
    lines = await client.get(
        "/api/reports/response-times", params={"format": "svg", **WEEK}, headers=t["root"]
    )
    assert (await lines.text()).count('class="series"') == 2

    # Agents and managers see their teams' figures; another team's are refused.
    sam = await report(client, "conversations", t["sam"], interval="week", **WEEK)
    assert sam["rows"] == [["2026-11-02", "Mail", 1]]
    refused = await client.get(
        "/api/reports/conversations", params={"team": w["sales"]}, headers=t["sam"]
    )
    assert refused.status == 403
    mia = await report(client, "workload", t["mia"], **WEEK)
    assert [r[0] for r in mia["rows"]] == ["Ank", "Mia"]
    assert (await client.get("/api/reports/nothing", headers=t["root"])).status == 404
    bad = await client.get(
        "/api/reports/conversations",
        params={"from": "2026-11-09", "to": "2026-11-01"},
        headers=t["root"],
    )
    assert bad.status == 422
    assert (
        await client.get(
            "/api/reports/conversations", params={"interval": "year"}, headers=t["root"]
        )
    ).status == 422
    listed = await (await client.get("/api/reports", headers=t["sam"])).json()
    assert {r["name"] for r in listed} >= {
        "conversations", "response-times", "sla-breaches", "lead-sources", "pipeline", "workload",
    }  # fmt: skip
    assert date.fromisoformat(sam["end"]) - date.fromisoformat(sam["start"]) == timedelta(days=6)
    # Titles and chart texts in Dutch when asked; the data (columns, values) stays the same.
    dutch = await (await client.get("/api/reports", params={"lang": "nl"}, headers=t["sam"])).json()
    assert {r["name"]: r["title"] for r in dutch}["sla-breaches"] == "SLA-overschrijdingen"
    leads = await client.get(
        "/api/reports/lead-sources",
        params={"format": "svg", "lang": "nl", **WEEK},
        headers=t["root"],
    )
    drawn_nl = await leads.text()
    assert "<title>Leads per bron</title>" in drawn_nl and ">handmatig<" in drawn_nl
    assert "manual" not in drawn_nl
    as_json = await report(client, "lead-sources", t["root"], lang="nl", **WEEK)
    assert as_json["title"] == "Leads per bronkanaal en hun conversie"
    assert as_json["rows"][-1][0] == "manual"


async def test_demo_history_gives_every_report_and_project_something(
    client: Client, sessions: Sessions
) -> None:
    from inbox.service.demo import seed
    from inbox.service.demo_history import seed_history

    async with sessions() as session, session.begin():
        result = await seed(session)
        assert await seed_history(session, result.channels) > 100
        admin = (await session.scalars(select(User).where(User.role == "admin"))).first()
        assert admin is not None
        headers = {
            "Authorization": f"Bearer {await create_api_token(session, admin.id, 't', 'api', None)}"
        }
    names = [r["name"] for r in await (await client.get("/api/reports", headers=headers)).json()]
    for name in names:
        figures = await report(client, name, headers, interval="week")
        assert figures["rows"], name
    projects = await (
        await client.get("/api/projects", params={"q": "almere poort"}, headers=headers)
    ).json()
    (almere,) = projects["items"]
    timeline = await (
        await client.get(f"/api/projects/{almere['id']}/timeline", headers=headers)
    ).json()
    kinds = {i["kind"] for i in timeline["items"]}
    assert {"activity", "task"} <= kinds and kinds & {"message", "call"}, kinds


async def test_lead_sources_and_workload_honour_team_and_channel(
    client: Client, sessions: Sessions
) -> None:
    w = await world(sessions)
    t = w["tokens"]
    async with sessions() as session, session.begin():
        leads = {lead.name: lead for lead in await session.scalars(select(Lead))}
        users = {u.name: u for u in await session.scalars(select(User))}
        # Karin is Ank's (Verkoop); Joke is Sam's (Service); Piet came in by a Service
        # conversation; Kees has no owner and no conversation: only in the all-teams figures.
        leads["Karin"].owner_id = users["Ank"].id
        leads["Joke"].owner_id = users["Sam"].id
        service = (
            await session.scalars(select(Conversation).where(Conversation.team_id == w["service"]))
        ).one()
        service.lead_id = leads["Piet"].id
        # Sam (Service) holds an open Verkoop conversation (created after the week).
        late = (
            await session.scalars(select(Conversation).where(Conversation.created_at == at(12, 9)))
        ).one()
        late.assignee_id = users["Sam"].id
    everyone = await report(client, "lead-sources", t["root"], **WEEK)
    assert everyone["rows"] == [
        ["Website", 3, 1, 2, 1, 33.3, 66.7, 33.3],
        ["manual", 1, 0, 0, 0, 0.0, 0.0, 0.0],
    ]
    sales = await report(client, "lead-sources", t["root"], team=w["sales"], **WEEK)
    assert sales["rows"] == [["Website", 1, 1, 1, 1, 100.0, 100.0, 100.0]]
    service_leads = await report(client, "lead-sources", t["root"], team=w["service"], **WEEK)
    # Piet (an open opportunity) and Joke (none).
    assert service_leads["rows"] == [["Website", 2, 0, 1, 0, 0.0, 50.0, 0.0]]
    # Sam (Service) sees his team's leads without asking for the team.
    assert (await report(client, "lead-sources", t["sam"], **WEEK))["rows"] == service_leads["rows"]
    form = await report(client, "lead-sources", t["root"], channel=w["form"], **WEEK)
    assert [r[0] for r in form["rows"]] == ["Website"]

    # Workload in the Website channel: Ank's open conversation B and no reply there within the
    # week (A's reply is by mail); Mia's open C. Her open task is Ank's whatever the channel.
    by_form = await report(client, "workload", t["root"], channel=w["form"], **WEEK)
    assert by_form["rows"] == [["Ank", 1, 1, 0, 0, 1, 1], ["Mia", 1, 1, 0, 0, 0, 0]]
    # Sam's open conversation is Verkoop's: it counts for Verkoop, not for his own team.
    assert (await report(client, "workload", t["sam"], **WEEK))["rows"] == []
    verkoop = await report(client, "workload", t["root"], team=w["sales"], **WEEK)
    assert verkoop["rows"] == [["Ank", 1, 2, 1, 1, 1, 1], ["Mia", 1, 1, 0, 0, 0, 0]]
    everyone_load = await report(client, "workload", t["root"], **WEEK)
    assert ["Sam", 1, 0, 0, 0, 0, 0] in everyone_load["rows"]


async def test_business_seconds_over_split_days_holidays_and_the_calendar_edges(
    sessions: Sessions,
) -> None:
    """The SQL business clock against hand-computed seconds: Mon-Fri 09:00-12:00 and
    13:00-17:00 (7 h a day) in Amsterdam, Wednesday 4 November a holiday."""
    from sqlalchemy import text

    from inbox.api.reports import calendar_arrays
    from inbox.routing.sla import Hours

    hours = Hours.from_json(
        {d: [["09:00", "12:00"], ["13:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        holidays=[date(2026, 11, 4)],
        tz="Europe/Amsterdam",
    )
    clock = calendar_arrays(hours, date(2026, 11, 2), date(2026, 11, 6))
    hour = 3600.0
    cases = [
        (at(2, 8), 0.0),  # Monday before opening
        (at(2, 10, 30), 1.5 * hour),
        (at(2, 12, 30), 3 * hour),  # the lunch break counts nothing
        (at(2, 13, 30), 3.5 * hour),
        (at(2, 20), 7 * hour),
        (at(4, 11), 14 * hour),  # the holiday
        (at(5, 9, 15), 14.25 * hour),
        (at(6, 17), 28 * hour),
        (at(7, 0, 0) - timedelta(seconds=1), 28 * hour),  # the last second of the calendar
        (at(7, 0), None),  # after the calendar's last day
        (at(2, 0) - timedelta(seconds=1), None),  # before its first
        (None, None),
    ]
    async with sessions() as session:
        for moment, expected in cases:
            epoch = "CAST(date_part('epoch', CAST(:moment AS timestamptz)) AS float8)"
            sql = f"SELECT {clock.seconds('e', clock.place('e'))} FROM (SELECT {epoch} AS e) x"
            found = await session.scalar(text(sql), {"moment": moment} | clock.params)
            assert found == expected, (moment, found, expected)
