"""The pipeline board in Chromium against the real service: the demo's opportunities per stage,
moving one by its stage menu and by dragging it, a lost deal's reason, and adding one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from crm.models import User
from crm.opportunities import Opportunity, StageChange
from inbox.db import Sessions
from inbox.service.demo import DEMO_PASSWORD, seed


async def open_board(page: Any, server: str, email: str) -> None:
    await page.goto(server + "/pipeline")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(server + "/pipeline")
    await page.wait_for_selector("body[data-ready=yes]")


async def test_moving_an_opportunity_through_the_stages_on_the_board(
    page: Any, server: str, sessions: Sessions, screenshots: Path
) -> None:
    async with sessions() as session, session.begin():
        await seed(session)
        await session.execute(update(User).values(language="en"))
        pieter = (await session.scalars(select(User).where(User.email.startswith("pieter@")))).one()
        deal = (
            await session.scalars(
                select(Opportunity).where(Opportunity.name == "Kozijnen nieuwbouw")
            )
        ).one()
    await open_board(page, server, "pieter@switchboard.test")
    nieuw = page.locator("section.stage", has=page.locator("h3 .name", has_text="Nieuw"))
    card = nieuw.locator(f".opp[data-id='{deal.id}']")
    await card.wait_for()
    assert "Kozijnen nieuwbouw" in await card.inner_text()
    assert await page.locator(".opp").count() == 12
    await page.screenshot(path=str(screenshots / "pipeline-board.png"))

    # By the stage menu: to Offerte; the column's figures follow.
    offerte = page.locator("section.stage", has=page.locator("h3 .name", has_text="Offerte"))
    before = await offerte.locator(".sum").inner_text()
    await card.locator("select.stage-pick").select_option(label="Offerte")
    moved = offerte.locator(f".opp[data-id='{deal.id}']")
    await moved.wait_for()
    assert "40%" in await moved.inner_text()
    assert await offerte.locator(".sum").inner_text() != before

    # By dragging: to Onderhandeling.
    negotiation = page.locator(
        "section.stage", has=page.locator("h3 .name", has_text="Onderhandeling")
    )
    await moved.drag_to(negotiation)
    await negotiation.locator(f".opp[data-id='{deal.id}']").wait_for()

    # To Verloren: the reason is asked on the card and kept.
    card = negotiation.locator(f".opp[data-id='{deal.id}']")
    await card.locator("select.stage-pick").select_option(label="Verloren")
    await card.locator("input[name=lost_reason]").fill("Budget bevroren")
    await card.locator("button[type=submit]").click()
    lost = page.locator(
        "section.stage[data-outcome=lost]", has=page.locator(f".opp[data-id='{deal.id}']")
    )
    await lost.locator(".reason", has_text="Budget bevroren").wait_for()
    await page.screenshot(path=str(screenshots / "pipeline-moved.png"))

    async with sessions() as session:
        stored = await session.get(Opportunity, deal.id)
        assert stored is not None
        assert (stored.status, stored.probability, stored.lost_reason) == (
            "lost",
            0,
            "Budget bevroren",
        )
        moves = (
            await session.execute(
                select(StageChange.to_stage, StageChange.user_id)
                .where(StageChange.opportunity_id == deal.id)
                .order_by(StageChange.id)
            )
        ).all()
    assert [tuple(m) for m in moves] == [
        ("Nieuw", None),
        ("Offerte", pieter.id),
        ("Onderhandeling", pieter.id),
        ("Verloren", pieter.id),
    ]


async def test_a_new_opportunity_lands_in_the_first_stage_and_bad_input_is_shown(
    page: Any, server: str, sessions: Sessions
) -> None:
    async with sessions() as session, session.begin():
        await seed(session)
        await session.execute(update(User).values(language="en"))
    await open_board(page, server, "mohamed@switchboard.test")
    await page.fill("#new input[name=name]", "Trappen nieuwbouw")
    await page.fill("#new input[name=amount]", "4200")
    await page.select_option("#new select[name=source]", label="Beurs")  # the lead_sources list
    await page.click("#new button[type=submit]")
    first = page.locator("section.stage").first
    await first.locator(".opp", has_text="Trappen nieuwbouw").wait_for()
    assert "€4,200" in await first.locator(".opp", has_text="Trappen nieuwbouw").inner_text()
    # The browser's own check is bypassed to see the API's answer.
    await page.eval_on_selector("#new input[name=amount]", "n => n.removeAttribute('min')")
    await page.fill("#new input[name=name]", "Negatief")
    await page.fill("#new input[name=amount]", "-5")
    await page.click("#new button[type=submit]")
    await page.locator("#error", has_text="(amount)").wait_for()
    assert await page.locator(".opp", has_text="Negatief").count() == 0
    async with sessions() as session:
        added = (
            await session.scalars(
                select(Opportunity).where(Opportunity.name == "Trappen nieuwbouw")
            )
        ).one()
    assert (added.source, float(added.amount), added.probability) == ("fair", 4200.0, 10)
