"""The staff app in a real browser: Playwright driving Debian's Chromium (never a
downloaded browser) against uvicorn on 127.0.0.1.

Walks: lockout after repeated failures; sign-in with a password and a TOTP code; a
patient search (POST); masked PHI, a reveal, and the reveal's row in the access log; the
account page; the dashboard charts; the audit-trail verify button; a crawl of every page
checking that no URL, request or title carries the canary patient's values; sign-out by
idle timeout. Every screen is saved under test-artifacts/screenshots/. No CSP violation
may be reported by the browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carecollect.identity.service import IdentityPolicy
from tests.browser_support import fresh_totp, launch, needs_chromium, serve, sign_in
from tests.web.conftest import PASSWORD, Web, make_web

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CANARY = {
    "first_name": "Quillonia",
    "last_name": "Zebrowskiova",
    "date_of_birth": date(1971, 7, 9),
    "state": "MA",
}
CANARY_PHONE = "+16175550199"
CANARY_EMAIL = "quillonia.canary@mail.example.org"
CANARY_VALUES = [
    "Quillonia",
    "Zebrowskiova",
    "1971-07-09",
    "07/09/1971",
    "6175550199",
    "555-0199",
    "quillonia.canary",
    "mail.example.org",
]

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]


def _seed_canary(web: Web) -> str:
    from carecollect.ledger.service import ledger_service
    from carecollect.outreach.service import contact_history_service
    from tests.factories import TEST_ACTOR, add_email, add_phone, create_guarantor

    tenant, now = web.tenant, datetime.now(UTC)
    with web.db.tenant_session(tenant.id) as session:
        g = create_guarantor(session, tenant, **CANARY)
        phone = add_phone(session, tenant, g.id, CANARY_PHONE)
        add_email(session, tenant, g.id, CANARY_EMAIL)
        account = ledger_service.open_account(
            session,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            guarantor_id=g.id,
            account_number="RFD-204811",
            opened_at=now - timedelta(days=200),
        )
        for days, cents in ((190, 42_000), (95, 18_500), (40, 9_900), (10, 12_000)):
            ledger_service.post(
                session,
                keys=tenant.keys,
                actor=TEST_ACTOR,
                account_id=account.id,
                kind="charge",
                amount_cents=cents,
                posted_at=now - timedelta(days=days),
                procedure_codes="D2740",
                description="Crown",
            )
        for days in (150, 60, 20):
            ledger_service.post(
                session,
                keys=tenant.keys,
                actor=TEST_ACTOR,
                account_id=account.id,
                kind="patient_payment",
                amount_cents=5_000,
                posted_at=now - timedelta(days=days),
            )
        for outcome in ("no_answer", "voicemail_lcm", "conversation_rpc", "no_answer"):
            contact_history_service.record_contact(
                session,
                keys=tenant.keys,
                actor=TEST_ACTOR,
                guarantor_id=g.id,
                contact_point_id=phone.id,
                occurred_at=now - timedelta(days=5),
                channel="call",
                direction="outbound",
                outcome=outcome,
            )
        return str(g.id)


@pytest.fixture
def live(db: Any, tmp_path: Path) -> Iterator[tuple[Web, str, str]]:
    web = make_web(db, tmp_path, real_time=True, policy=IdentityPolicy(touch_interval=timedelta(0)))
    guarantor_id = _seed_canary(web)
    with serve(web.app) as base:
        yield web, base, guarantor_id


def test_staff_app_in_chromium(live: tuple[Web, str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    web, base, guarantor_id = live
    SHOTS.mkdir(parents=True, exist_ok=True)
    urls: list[str] = []
    titles: list[str] = []
    csp_errors: list[str] = []

    with sync_playwright() as pw:
        browser = launch(pw)

        def new_page() -> Any:
            context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("request", lambda request: urls.append(request.url))
            page.on("framenavigated", lambda frame: urls.append(frame.url))
            page.on(
                "console",
                lambda msg: (
                    csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None
                ),
            )
            return page

        def shot(page: Any, name: str) -> None:
            titles.append(page.title())
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

        # 1. Lockout after five wrong passwords.
        page = new_page()
        page.goto("/app/login")
        shot(page, "01-login")
        for _ in range(5):
            page.fill("input[name=email]", web.emails["billing_manager"])
            page.fill("input[name=password]", "not the password at all")
            page.click("main button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("locked")
        shot(page, "02-locked-out")

        # 2. A collector signs in with password + TOTP, searches, opens, reveals.
        page = new_page()
        page.goto("/app/login")
        page.fill("input[name=email]", web.emails["collector"])
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/app/login/mfa$"))
        shot(page, "03-second-factor")
        page.fill("input[name=code]", fresh_totp(web.secrets["collector"]))
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/app/$"))
        expect(page.locator("#chart-aging[data-drawn='1']")).to_have_count(1)
        shot(page, "04-dashboard-collector")
        page.click("text=Find a patient")
        page.fill("input[name=last_name]", CANARY["last_name"])
        page.fill("input[name=date_of_birth]", "1971-07-09")
        page.click("#search-button")
        expect(page.locator("#search-results tbody tr")).to_have_count(1)
        expect(page).to_have_url(re.compile(r"/app/search$"))
        shot(page, "05-search-results-masked")
        page.click("#search-results a.open-account")
        expect(page).to_have_url(re.compile(rf"/app/guarantors/{guarantor_id}$"))
        expect(page.locator("#last-name")).to_contain_text("Z•••")
        shot(page, "06-account-masked")
        page.click("#reveal-last_name")
        expect(page.locator("#revealed-last_name")).to_have_text(CANARY["last_name"])
        shot(page, "07-account-revealed")
        page.click("#logout")
        expect(page).to_have_url(re.compile(r"/app/login\?m=signed_out$"))

        # 3. The compliance officer sees the reveal in the access log and verifies the log.
        page = new_page()
        sign_in(page, web, "compliance_officer", PASSWORD)
        page.goto(f"/app/guarantors/{guarantor_id}")
        reveal_row = page.locator(
            "#access-log tr", has=page.locator("td.action", has_text="patient.reveal")
        )
        expect(reveal_row).to_have_count(1)
        expect(reveal_row).to_contain_text(f"staff {web.users['collector']}")
        shot(page, "08-access-log-with-reveal")
        page.goto("/app/compliance")
        page.click("#verify-button")
        expect(page.locator("#verify-ok")).to_contain_text("Audit trail intact")
        shot(page, "09-compliance-verified")
        page.click("#logout")

        # 4. The owner crawls every page the app links to.
        page = new_page()
        sign_in(page, web, "owner", PASSWORD)
        seen: set[str] = set()
        queue = ["/app/", f"/app/guarantors/{guarantor_id}"]
        while queue:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            page.goto(path)
            name = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "app"
            shot(page, f"crawl-{name[:60]}")
            hrefs = page.eval_on_selector_all(
                "a[href]", "els => els.map(e => e.getAttribute('href'))"
            )
            queue.extend(
                href
                for href in hrefs
                if href.startswith("/app/") and not href.endswith(".csv") and "#" not in href
            )
            for attribute in ("action", "hx-post"):
                urls.extend(
                    page.eval_on_selector_all(
                        f"[{attribute}]", f"els => els.map(e => e.getAttribute('{attribute}'))"
                    )
                )
        assert len(seen) >= 9
        page.goto("/app/search")
        page.fill("input[name=phone]", "(617) 555-0199")
        page.click("#search-button")
        expect(page.locator("#search-results tbody tr")).to_have_count(1)
        shot(page, "10-search-by-phone-owner")

        # 5. Idle timeout: the page follows the server and lands on the sign-in page.
        web.app.state.context.policy = IdentityPolicy(
            idle_timeout=timedelta(seconds=3), touch_interval=timedelta(0)
        )
        page.goto("/app/")
        page.wait_for_url(re.compile(r"/app/login\?m=expired$"), timeout=15_000)
        expect(page.locator("#login-message")).to_contain_text("session ended")
        shot(page, "11-signed-out-idle")
        browser.close()

    leaks = [(u, v) for u in urls + titles for v in CANARY_VALUES if v.lower() in u.lower()]
    assert leaks == []
    assert all(t.endswith("· carecollect") for t in titles)
    assert csp_errors == []
