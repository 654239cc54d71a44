"""The insights pages in a real browser: Playwright driving Debian's Chromium (never a
downloaded browser) against uvicorn on 127.0.0.1, as tests/web/test_browser.py does.

A billing manager signs in; the home dashboard draws the headline reports; the insights
page renders demo-like data (households from the demo builder plus accounts at two
locations); every report group's tab draws its charts; choosing a location changes the
chart data; a CSV and a PDF export download and hold the report; no URL, title or
download carries a patient's values; no CSP violation. Every screen is saved under
$CARECOLLECT_SCREENSHOT_DIR/insights (or the test's tmp dir).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carecollect.identity.service import IdentityPolicy
from tests.browser_support import fresh_totp, launch, needs_chromium, serve, sign_in
from tests.web.conftest import PASSWORD, Web, _cheap_password_hashing, make_web

__all__ = ["_cheap_password_hashing"]  # autouse: cheap Argon2 parameters for test users

CANARY = {"first_name": "Quillonia", "last_name": "Zebrowskiova",
          "date_of_birth": date(1971, 7, 9), "state": "MA"}
CANARY_VALUES = ["Quillonia", "Zebrowskiova", "1971-07-09", "07/09/1971", "6175550199",
                 "555-0199", "quillonia.canary", "mail.example.org", "RFD-204811"]

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]


def _shots(tmp_path: Path) -> Path:
    base = os.environ.get("CARECOLLECT_SCREENSHOT_DIR")
    folder = (Path(base) if base else tmp_path / "screenshots") / "insights"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def seed_portfolio(web: Web) -> dict[str, str]:
    """Demo households, two locations with accounts and payments, and the canary."""
    from carecollect.demo import DENTAL, DemoSummary, _household
    from carecollect.ledger.service import ledger_service
    from carecollect.tenant.models import Location
    from tests.factories import TEST_ACTOR, add_email, add_phone, create_guarantor

    tenant, now = web.tenant, datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(20261127)
    with web.db.tenant_session(tenant.id) as session:
        made = 0
        while made < 24:
            made += _household(session, tenant.keys, rng, now, DENTAL, DemoSummary(),
                               limit=24 - made)
        north = Location(organization_id=tenant.id, name="North Office", state="MA",
                         timezone="America/New_York", postal_code="02118")
        south = Location(organization_id=tenant.id, name="South Office", state="MA",
                         timezone="America/New_York", postal_code="01608")
        session.add_all([north, south])
        session.flush()
        canary = create_guarantor(session, tenant, **CANARY)
        add_phone(session, tenant, canary.id, "+16175550199")
        add_email(session, tenant, canary.id, "quillonia.canary@mail.example.org")
        plan = [(north, "RFD-204811", canary.id, 84_000, (40, 12)),
                (south, "SOU-000001", None, 30_000, (25,))]
        for location, number, guarantor_id, charge, paid_days in plan:
            owner = guarantor_id or create_guarantor(session, tenant, first_name="Sam",
                                                     last_name="Southward").id
            account = ledger_service.open_account(
                session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=owner,
                account_number=number, opened_at=now - timedelta(days=70),
                location_id=location.id)
            ledger_service.post(
                session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
                kind="charge", amount_cents=charge, posted_at=now - timedelta(days=60),
                procedure_codes="D2740", description="Crown")
            for days in paid_days:
                ledger_service.post(
                    session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
                    kind="patient_payment", amount_cents=7_500,
                    posted_at=now - timedelta(days=days))
        return {"north": str(north.id), "south": str(south.id)}


@pytest.fixture
def live(db: Any, tmp_path: Path) -> Iterator[tuple[Web, str, dict[str, str]]]:
    web = make_web(db, tmp_path, real_time=True,
                   policy=IdentityPolicy(touch_interval=timedelta(0)))
    locations = seed_portfolio(web)
    with serve(web.app) as base:
        yield web, base, locations


def _charts(page: Any) -> dict[str, Any]:
    """The data every drawn chart on the page holds, read from Chart.js itself."""
    return dict(page.evaluate(
        """() => Object.fromEntries(
            [...document.querySelectorAll('canvas[data-chart]')].map(c => {
              const chart = window.Chart.getChart(c);
              return [c.id, chart ? {labels: chart.data.labels,
                      data: chart.data.datasets.map(d => d.data)} : null];
            }))"""
    ))


def test_insights_in_chromium(live: tuple[Web, str, dict[str, str]], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright
    from pypdf import PdfReader

    web, base, locations = live
    shots = _shots(tmp_path)
    urls: list[str] = []
    titles: list[str] = []
    csp_errors: list[str] = []
    downloads: list[bytes] = []

    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 1000},
                                      accept_downloads=True)
        page = context.new_page()
        page.on("request", lambda request: urls.append(request.url))
        page.on("framenavigated", lambda frame: urls.append(frame.url))
        page.on("console", lambda msg: csp_errors.append(msg.text)
                if "Content Security Policy" in msg.text else None)

        def shot(name: str) -> None:
            titles.append(page.title())
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

        sign_in(page, web, "billing_manager", PASSWORD)

        # The home dashboard loads the headline reports after it has rendered.
        headline = page.locator("#insight-headline canvas[data-chart]")
        expect(headline.first).to_have_attribute("data-drawn", "1")
        assert headline.count() >= 3
        shot("00-home-headline")

        page.click("nav >> text=Insights")
        expect(page).to_have_url(re.compile(r"/app/insights$"))
        expect(page.locator("article.insight-report").first).to_be_visible()
        canvases = page.locator("canvas[data-chart]")
        assert canvases.count() >= 1
        expect(canvases.first).to_have_attribute("data-drawn", "1")
        shot("01-insights-recovery")
        everyone = _charts(page)
        assert all(v is not None for v in everyone.values()), everyone
        # The cards refresh themselves every minute.
        triggers = page.eval_on_selector_all(
            "article.insight-report", "els => els.map(e => e.getAttribute('hx-trigger'))")
        assert set(triggers) == {"every 60s"}

        # A location filter changes what the charts hold.
        page.select_option("#filter-location", locations["south"])
        expect(page).to_have_url(re.compile(rf"location={locations['south']}"))
        expect(page.locator("canvas[data-chart]").first).to_have_attribute("data-drawn", "1")
        south = _charts(page)
        shot("02-insights-south-office")
        assert south != everyone
        page.select_option("#filter-location", locations["north"])
        expect(page).to_have_url(re.compile(rf"location={locations['north']}"))
        expect(page.locator("canvas[data-chart]").first).to_have_attribute("data-drawn", "1")
        north = _charts(page)
        assert north not in (south, everyone)
        shot("03-insights-north-office")

        # Exports of the first report download, as CSV and as PDF.
        first_key = page.locator("article.insight-report").first.get_attribute("data-report")
        for export_format in ("csv", "pdf"):
            with page.expect_download() as info:
                page.click(f"#export-{first_key}-{export_format}")
            download = info.value
            assert download.suggested_filename.startswith(f"{first_key}-")
            assert download.suggested_filename.endswith(f".{export_format}")
            path = download.path()
            assert path is not None
            downloads.append(Path(path).read_bytes())
        csv_text = downloads[0].decode("utf-8")
        assert csv_text.splitlines()[0]  # the header row
        pdf_text = "\n".join(p.extract_text()
                             for p in PdfReader(io.BytesIO(downloads[1])).pages)
        assert "Location: North Office" in pdf_text

        # Every other group's tab draws its charts too.
        for group in ("outreach", "plans", "compliance"):
            page.click(f"#tab-{group}")
            expect(page).to_have_url(re.compile(rf"group={group}"))
            expect(page.locator(f"#tab-{group}.current")).to_have_count(1)
            drawn = page.locator("canvas[data-chart]")
            for index in range(drawn.count()):
                expect(drawn.nth(index)).to_have_attribute("data-drawn", "1")
            shot(f"04-insights-{group}")
            assert all(v is not None for v in _charts(page).values())

        # A bad filter value is refused with a clear message (and no PHI in the URL).
        page.goto("/app/insights?period=custom&start=2026-03-01&end=2026-02-01")
        expect(page.locator("#insights-error")).to_contain_text(
            "period_end must be after period_start")
        expect(page.locator("#filter-start")).to_have_value("2026-03-01")
        shot("05-insights-inverted-period")
        browser.close()

    texts = [*urls, *titles, *(d.decode("latin-1") for d in downloads[:1]),
             json.dumps(pdf_text)]
    leaks = [(t[:80], v) for t in texts for v in CANARY_VALUES if v.lower() in t.lower()]
    assert leaks == []
    assert all(t.endswith("· carecollect") for t in titles)
    assert csp_errors == []


def test_idle_insights_page_signs_out_despite_refreshes(
    live: tuple[Web, str, dict[str, str]], tmp_path: Path
) -> None:
    """Background refreshes keep the server session alive, so the page itself signs out
    once the person has been idle for the organization's timeout (insights.js)."""
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import select

    from carecollect.identity.models import StaffSession

    web, base, _ = live
    shots = _shots(tmp_path)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_context(base_url=base).new_page()
        page.goto("/app/login")
        page.fill("input[name=email]", web.emails["owner"])
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.fill("input[name=code]", fresh_totp(web.secrets["owner"]))
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/app/$"))
        web.app.state.context.policy = IdentityPolicy(
            idle_timeout=timedelta(seconds=6), touch_interval=timedelta(0))
        page.goto("/app/insights")
        expect(page.locator("#report-aging_balances")).to_have_count(1)
        # A card refresh (what the every-60s poll does) while the person is still there:
        # it reaches the server and extends the server-side session.
        page.wait_for_timeout(2_000)
        with page.expect_response(re.compile(r"/app/insights/reports/aging_balances")) as info:
            page.evaluate("""() => window.htmx.ajax('GET',
                '/app/insights/reports/aging_balances?period=last_90_days',
                {source: '#report-aging_balances', target: '#report-aging_balances',
                 swap: 'outerHTML'})""")
        assert info.value.status == 200
        # No input since the page loaded: the page signs out by itself (a logout, not the
        # server noticing an expired session) and shows the sign-in page.
        page.wait_for_url(re.compile(r"/app/login\?m=expired$"), timeout=15_000)
        expect(page.locator("#login-message")).to_contain_text("session ended")
        page.screenshot(path=str(shots / "06-insights-idle-signed-out.png"), full_page=True)
        browser.close()
    with web.db.tenant_session(web.tenant.id) as session:
        reasons = list(session.scalars(
            select(StaffSession.revoke_reason)
            .where(StaffSession.user_id == web.users["owner"],
                   StaffSession.mfa_passed.is_(True))))
    assert reasons == ["logout"]
