"""The relation dashboard and the reports pages in Chromium against the real service, on the
demo company with its history: the dashboard opened from the customer panel, the reports'
charts drawn (and redrawn for a team), screenshots saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from crm.models import Project, Relation, User
from crm.opportunities import Opportunity
from inbox.db import Sessions
from inbox.models import Channel, Conversation
from inbox.service.demo import DEMO_PASSWORD, seed
from inbox.service.demo_history import seed_history


async def demo_with_history(sessions: Sessions) -> int:
    async with sessions() as session, session.begin():
        result = await seed(session)
        await seed_history(session, result.channels)
        await session.execute(update(User).values(language="en"))
        hamerslag = (
            await session.scalars(select(Relation.id).where(Relation.name == "Hamerslag B.V."))
        ).one()
    return int(hamerslag)


async def log_in(page: Any, server: str, email: str, target: str) -> None:
    await page.goto(f"{server}{target}")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server}{target}")


async def test_relation_dashboard_page_shows_the_relation_at_a_glance(
    page: Any, server: str, sessions: Sessions, screenshots: Path
) -> None:
    relation_id = await demo_with_history(sessions)
    await log_in(page, server, "admin@switchboard.test", f"/relations/{relation_id}")
    await page.locator(".board-head h1", has_text="Hamerslag B.V.").wait_for()
    head = await page.locator(".board-head").inner_text()
    assert "Account manager: Mohamed el Amrani" in head
    # Among them Kozijnen Almere Poort 48,000 at Offerte (40 %) and Dakkapellen fase 2 12,000
    # at Nieuw (10 %) from the history; the totals are those of every open one.
    async with sessions() as session:
        deals = (
            await session.execute(
                select(Opportunity.amount, Opportunity.probability).where(
                    Opportunity.relation_id == relation_id, Opportunity.status == "open"
                )
            )
        ).all()
    total = sum(a for a, _ in deals)
    weighted = sum(a * p / 100 for a, p in deals)
    assert total >= 60_000
    assert await page.locator(".open-value").inner_text() == f"€{total:,.0f}"
    assert await page.locator(".weighted-value").inner_text() == f"€{weighted:,.0f}"
    names = await page.locator(".card.opportunities td:first-child").all_inner_texts()
    assert {"Kozijnen Almere Poort", "Dakkapellen fase 2"} <= set(names)
    assert len(names) == len(deals)
    contacts = await page.locator(".card.contacts li").all_inner_texts()
    assert any(c.startswith("Jan Visser") for c in contacts), contacts
    assert await page.locator(".card.complaints li").count() >= 1
    assert await page.locator(".card.activities li").count() >= 3
    projects = await page.locator(".card.projects").inner_text()
    assert "Nieuwbouw Almere Poort" in projects
    links = await page.locator(".card.links").inner_text()
    assert "dealer" in links
    await page.screenshot(path=str(screenshots / "relation-dashboard.png"), full_page=True)
    # The project's timeline: its meetings, call and note, its task, the linked conversations.
    await page.locator(".card.projects a", has_text="Nieuwbouw Almere Poort").click()
    await page.wait_for_url(lambda url: "/projects/" in url)
    await page.locator(".board-head h1", has_text="Nieuwbouw Almere Poort").wait_for()
    kinds = await page.locator("ul.timeline li").evaluate_all(
        "(nodes) => nodes.map((n) => n.dataset.kind)"
    )
    assert kinds.count("activity") == 4 and "task" in kinds, kinds
    assert {"message", "call"} & set(kinds), kinds
    assert "Bouwvergadering" in await page.locator("ul.timeline").inner_text()
    await page.screenshot(path=str(screenshots / "project-timeline.png"), full_page=True)
    await page.go_back()
    # A linked relation's dashboard is one click away.
    await page.locator(".card.links a").first.wait_for()
    await page.locator(".card.links a").first.click()
    await page.wait_for_url(lambda url: f"/relations/{relation_id}" not in url)
    await page.locator(".board-head h1").wait_for()


async def test_reports_page_draws_every_chart_and_filters_by_team(
    page: Any, server: str, sessions: Sessions, screenshots: Path
) -> None:
    await demo_with_history(sessions)
    await log_in(page, server, "admin@switchboard.test", "/reports")
    charts = page.locator("figure.chart img")
    await page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll('figure.chart img')];"
        " return imgs.length >= 6 && imgs.every((i) => i.complete && i.naturalWidth > 0); }"
    )
    names = await page.locator("figure.chart").evaluate_all(
        "(nodes) => nodes.map((n) => n.dataset.report)"
    )
    assert {
        "conversations", "response-times", "sla-breaches", "lead-sources", "pipeline", "workload",
    } <= set(names)  # fmt: skip
    assert await charts.count() == len(names)
    await page.screenshot(path=str(screenshots / "reports.png"), full_page=True)
    # The team filter redraws the charts for that team and keeps the choice in the address.
    await page.select_option("select[name=team]", label="Service")
    await page.select_option("select[name=interval]", "week")
    await page.click("form#filters button[type=submit]")
    await page.wait_for_function(
        "() => [...document.querySelectorAll('figure.chart img')].every((i) =>"
        " i.src.includes('team=') && i.src.includes('interval=week') && i.complete"
        " && i.naturalWidth > 0)"
    )
    assert "interval=week" in page.url and "team=" in page.url
    csv_link = await page.locator("figure[data-report=conversations] a").get_attribute("href")
    assert csv_link is not None and "format=csv" in csv_link
    response = await page.request.get(server + csv_link)
    assert response.ok
    assert (await response.text()).startswith("period,channel,conversations")
    await page.screenshot(path=str(screenshots / "reports-service-weekly.png"), full_page=True)


async def test_a_conversation_is_linked_to_a_project_from_the_customer_panel(
    page: Any, server: str, sessions: Sessions, screenshots: Path
) -> None:
    relation_id = await demo_with_history(sessions)
    async with sessions() as session, session.begin():
        channel = (await session.scalars(select(Channel).where(Channel.kind == "webform"))).one()
        conversation = Conversation(
            channel_id=channel.id, subject="Extra kozijnen blok B", relation_id=relation_id
        )
        session.add(conversation)
    await log_in(page, server, "admin@switchboard.test", f"/conversations/{conversation.id}")
    picker = page.locator("#project-link")
    await picker.wait_for()
    async with page.expect_response(
        lambda r: r.url.endswith(f"/api/conversations/{conversation.id}/project")
    ) as answer:
        await picker.select_option(label="Nieuwbouw Almere Poort")
    assert (await answer.value).ok
    async with sessions() as session:
        linked = await session.scalar(
            select(Conversation.project_id).where(Conversation.id == conversation.id)
        )
        almere = await session.scalar(
            select(Project.id).where(Project.name == "Nieuwbouw Almere Poort")
        )
    assert linked == almere
    await page.screenshot(path=str(screenshots / "project-link.png"))


async def test_the_crm_pages_speak_the_inbox_language(
    page: Any, server: str, sessions: Sessions, screenshots: Path
) -> None:
    relation_id = await demo_with_history(sessions)
    async with sessions() as session, session.begin():
        await session.execute(update(User).values(language="nl"))
    await log_in(page, server, "admin@switchboard.test", "/reports")
    await page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll('figure.chart img')];"
        " return imgs.length >= 6 && imgs.every((i) => i.complete && i.naturalWidth > 0); }"
    )
    captions = await page.locator("figure.chart figcaption span").all_inner_texts()
    assert "Gesprekken per kanaal" in captions and "Werklast per medewerker" in captions, captions
    assert await page.locator("nav.pages a[href='/pipeline']").inner_text() == "Pijplijn"
    src = await page.locator("figure[data-report=lead-sources] img").get_attribute("src")
    assert src is not None and "lang=nl" in src
    drawn = await (await page.request.get(server + src)).text()
    assert "<title>Leads per bron</title>" in drawn and "naar kans" in drawn
    await page.screenshot(path=str(screenshots / "reports-nl.png"), full_page=True)

    # Statuses and kinds on the relation dashboard are words of the language, not API codes.
    await page.goto(f"{server}/relations/{relation_id}")
    projects = page.locator(".card.projects li", has_text="Nieuwbouw Almere Poort")
    await projects.wait_for()
    assert (await projects.inner_text()).endswith("· Lopend")
    activities = " ".join(await page.locator(".card.activities li").all_inner_texts())
    assert "e-mail" in activities or "gesprek" in activities or "notitie" in activities

    # The pipeline board (built with the shared DOM helper) in Dutch, a link to the reports.
    await page.goto(f"{server}/pipeline")
    await page.wait_for_selector("body[data-ready=yes]")
    assert await page.locator("header a[href='/reports']").inner_text() == "Rapporten"
    assert await page.locator("section.stage .opp").count() >= 10
    assert await page.locator("#owners h3").inner_text() == "Per eigenaar"

    # The language last chosen in the inbox (kept in the browser) wins over the user's.
    await page.evaluate("() => localStorage.setItem('lang', 'en')")
    await page.goto(f"{server}/reports")
    await page.locator("figure[data-report=workload] figcaption span").wait_for()
    assert (
        await page.locator("figure[data-report=workload] figcaption span").inner_text()
        == "Agent workload"
    )
    assert await page.locator("[data-t=allTeams]").inner_text() == "All teams"
