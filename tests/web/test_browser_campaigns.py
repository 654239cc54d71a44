"""The campaign screens in a real browser: Playwright driving Debian's Chromium (never a
downloaded browser) against uvicorn on 127.0.0.1.

A billing manager builds a campaign (a bad holdout first: the error is shown and nothing
is stored), opens it, runs a dry run at a chosen instant through htmx and reads the
blocked and re-timed accounts with their rule ids and citations; then checks a template
draft in the editor. Every screen is saved as a screenshot (CARECOLLECT_SCREENSHOT_DIR, or
test-artifacts/screenshots/). No CSP violation may be reported by the browser.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from carecollect.identity.service import IdentityPolicy
from carecollect.outreach.cadence_models import Campaign
from tests.browser_support import launch, needs_chromium, serve, sign_in
from tests.web.conftest import PASSWORD, Web, make_web
from tests.web.test_campaign_pages import AT_LOCAL, Portfolio, seed_portfolio

SHOTS = Path(os.environ.get("CARECOLLECT_SCREENSHOT_DIR") or (
    Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"))

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]


@pytest.fixture
def live(db: Any, tmp_path: Path) -> Iterator[tuple[Web, str, Portfolio]]:
    web = make_web(db, tmp_path, real_time=True,
                   policy=IdentityPolicy(touch_interval=timedelta(0)))
    portfolio = seed_portfolio(web)
    with serve(web.app) as base:
        yield web, base, portfolio


def _campaign_count(web: Web) -> int:
    with web.db.tenant_session(web.tenant.id) as s:
        return int(s.scalar(select(func.count()).select_from(Campaign)) or 0)


def test_build_a_campaign_and_dry_run_it_in_chromium(
        live: tuple[Web, str, Portfolio]) -> None:
    from playwright.sync_api import expect, sync_playwright

    web, base, portfolio = live
    SHOTS.mkdir(parents=True, exist_ok=True)
    csp_errors: list[str] = []
    titles: list[str] = []

    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("console", lambda msg: (
            csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None))

        def shot(name: str) -> None:
            titles.append(page.title())
            page.screenshot(path=str(SHOTS / f"campaigns-{name}.png"), full_page=True)

        sign_in(page, web, "billing_manager", PASSWORD)

        # 1. The campaign list, then the builder.
        page.click("nav >> text=Campaigns")
        expect(page).to_have_url(re.compile(r"/app/campaigns$"))
        expect(page.locator("#campaigns tbody")).to_contain_text("No campaigns yet.")
        shot("01-list-empty")
        page.click("#new-campaign")
        page.fill("input[name=key]", "browser_follow_up")
        page.fill("input[name=name]", "Browser follow-up")
        page.fill("input[name=holdout_percent]", "lots")  # refused: nothing stored
        page.select_option("select[name=step-0-channel-0]", "email")
        page.select_option("select[name=step-0-channel-1]", "letter")
        page.select_option("select[name=step-0-variant-0-template-email]", "reminder_email")
        page.select_option("select[name=step-0-variant-0-template-letter]",
                           "statement_letter")
        page.click("#save-campaign")
        expect(page.locator("#form-errors")).to_contain_text(
            "holdout: enter a percentage, like 5 or 2.5")
        assert _campaign_count(web) == 0
        shot("02-builder-error")
        page.fill("input[name=holdout_percent]", "0")
        page.click("#add-step")
        expect(page.locator("#step-1")).to_have_count(1)
        page.fill("input[name=step-1-wait_days]", "7")
        page.select_option("select[name=step-1-channel-0]", "letter")
        page.select_option("select[name=step-1-variant-0-template-letter]",
                           "statement_letter")
        shot("03-builder-two-steps")
        # Keyboard activation: after a full-page screenshot Chromium may scroll between the
        # mouse press and release, which would turn a click into a click on the form.
        page.locator("#save-campaign").press("Enter")
        expect(page).to_have_url(re.compile(r"/app/campaigns/[0-9a-f-]{36}$"))
        expect(page.locator("#campaign-name")).to_have_text("Browser follow-up")
        expect(page.locator("#steps tbody tr")).to_have_count(2)
        assert _campaign_count(web) == 1
        shot("04-campaign")

        # 2. A dry run at a chosen instant (htmx swaps the results in).
        page.fill("input[name=at]", AT_LOCAL)
        page.locator("#dry-run-button").press("Enter")
        expect(page.locator("#dry-run-rows tbody tr.dry-run-row")).to_have_count(4)
        expect(page.locator("#total-blocked")).to_have_text("1")
        expect(page.locator("#total-retime")).to_have_text("1")
        expect(page.locator("#total-send")).to_have_text("2")
        blocked = page.locator("tr.outcome-row-blocked")
        expect(blocked).to_contain_text("PLAT-BANKRUPTCY")
        expect(blocked).to_contain_text("11 USC 362(a)(6)")
        retimed = page.locator("tr.outcome-row-retime")
        expect(retimed).to_contain_text("REGF-TIME-DESIGNATED")
        expect(retimed).to_contain_text("2026-05-04 12:30 EDT")
        expect(page.locator("#rule-totals")).to_contain_text("REGF-MEDIUM-OPTOUT")
        # A billing manager reads unmasked names; the read is in the audit trail.
        expect(page.locator("#dry-run-rows")).to_contain_text("Test3 Testperson")
        expect(page).to_have_url(re.compile(r"/app/campaigns/[0-9a-f-]{36}$"))
        page.locator("#dry-run").scroll_into_view_if_needed()
        shot("05-dry-run")
        assert len(portfolio.guarantors) == 4

        # 3. Pause the campaign.
        page.locator("#pause-campaign").press("Enter")
        expect(page.locator("#campaign-status")).to_have_text("paused")
        shot("06-paused")

        # 4. The template editor refuses a balance in an SMS for an unverified number.
        page.goto("/app/campaigns")
        page.click("#templates-link")
        expect(page.locator("#template-list tbody tr")).to_have_count(12)
        shot("07-templates")
        page.click("a.template-link >> text=statement_ready_sms")
        expect(page.locator("#lint-ok")).to_have_count(1)
        page.fill("#surface-sms_body", "You owe {{ balance_cents | money }}")
        page.click("#check-template")
        expect(page.locator("#lint-issues")).to_contain_text("HIPAA-CONTENT-CLASS")
        expect(page.locator("#preview-sms_body")).to_have_text(
            "You owe $123.45 Reply STOP to opt out.")
        shot("08-template-lint")
        browser.close()

    assert csp_errors == []
    assert all("Testperson" not in t for t in titles)
