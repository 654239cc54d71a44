"""The patient portal in a real browser: Playwright driving Debian's Chromium (never a
downloaded browser) against uvicorn on 127.0.0.1.

One walk per viewport, phone (390x844) and desktop (1280x800), each as its own synthetic
patient: open the link, fail and then pass the identity check, read the bill, pay with a
sandbox card, set up a plan with autopay, change contact preferences, file a dispute,
ask for financial help and read the access log. Every page is saved as a screenshot
under $CARECOLLECT_SCREENSHOT_DIR/portal (or the test's tmp dir). On every page: the
<html> element has a lang attribute, every form control has a label, the title and every
URL requested carry no PHI, and the browser reports no CSP violation. A keyboard-only pass
fills and submits the verification form with Tab and Enter alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carecollect.db import Database
from carecollect.portal import service as portal_service
from tests.browser_support import launch, needs_chromium, serve
from tests.factories import add_email, add_phone
from tests.portal.conftest import Person, PortalWorld, make_portal_world

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]

# Runs in the page: the unlabeled form controls, by id or name (an axe-like check that
# needs no network: label[for], a wrapping label, aria-label or aria-labelledby).
UNLABELED_JS = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea')).filter(el => {
  if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
  if (el.closest('label')) return false;
  return !(el.id && document.querySelector('label[for="' + el.id + '"]'));
}).map(el => el.id || el.name)"""


def _shots_dir(tmp_path: Path) -> Path:
    base = os.environ.get("CARECOLLECT_SCREENSHOT_DIR")
    directory = (Path(base) if base else tmp_path) / "portal"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def live(db: Database, tmp_path: Path) -> Iterator[tuple[PortalWorld, str]]:
    world = make_portal_world(db, tmp_path)
    for person, number, email in ((world.alice, "+16175550123", "patient.a@example.org"),
                                  (world.bob, "+16175550188", "patient.b@example.org")):
        with db.tenant_session(world.org_id) as session:
            add_email(session, world.tenant, person.guarantor_id, email)
            add_phone(session, world.tenant, person.guarantor_id, number)
    with serve(world.app) as base:
        yield world, base


def _phi(world: PortalWorld, person: Person) -> list[str]:
    birth = person.date_of_birth
    return ["Alicia", "Núñez", "Nunez", "Bob", "Quintanilla", "ACC-5001", "ACC-5002",
            birth.isoformat(), f"{birth.month}/{birth.day}/{birth.year}", person.zip_code,
            "PROPHY", "CROWN"]


def _walk(browser: Any, world: PortalWorld, base: str, person: Person, viewport: dict[str, int],
          label: str, shots: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(base_url=base, viewport=viewport, locale="en-US")
    page = context.new_page()
    urls: list[str] = []
    titles: list[str] = []
    csp: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("console", lambda msg: csp.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    step = [0]

    def shot(name: str) -> None:
        step[0] += 1
        titles.append(page.title())
        assert page.locator("html").get_attribute("lang") in ("en", "es")
        assert page.evaluate(UNLABELED_JS) == [], name
        page.screenshot(path=str(shots / f"{label}-{step[0]:02d}-{name}.png"), full_page=True)

    link = world.issue(person)
    page.goto(portal_service.link_path(link.token))
    expect(page.locator("h1")).to_have_text("Confirm it is you")
    shot("verify")

    # A wrong last name first: refused, nothing shown.
    birth = person.date_of_birth
    page.fill("#last_name", "Wrongname")
    page.fill("#dob_month", str(birth.month))
    page.fill("#dob_day", str(birth.day))
    page.fill("#dob_year", str(birth.year))
    page.click("#verify-submit")
    expect(page.locator("#verify-error")).to_contain_text("We could not confirm")
    shot("verify-failed")

    page.fill("#last_name", person.last_name)
    page.fill("#dob_month", str(birth.month))
    page.fill("#dob_day", str(birth.day))
    page.fill("#dob_year", str(birth.year))
    page.click("#verify-submit")
    expect(page).to_have_url(re.compile(r"/pay/bill$"))
    expect(page.locator("#total-due")).to_have_text("$610.00")
    expect(page.locator("main")).to_contain_text("Why you owe this")
    shot("bill")

    # Pay part of the bill with the sandbox Visa.
    page.click(f"a[href='/pay/accounts/{person.account_id}/pay']")
    expect(page.locator("h1")).to_have_text("Make a payment")
    shot("pay")
    page.fill("#amount", "40.00")
    page.select_option("#card", "pm_sandbox_visa")
    page.click("#pay-submit")
    expect(page).to_have_url(re.compile(r"/pay/receipts/[0-9a-f-]{36}$"))
    expect(page.locator("main")).to_contain_text("Thank you. Your payment was received.")
    shot("receipt")

    # A plan for the rest, with autopay.
    page.goto("/pay/bill")
    expect(page.locator("#total-due")).to_have_text("$570.00")
    page.click(f"a[href='/pay/accounts/{person.account_id}/plan']")
    expect(page.locator("h1")).to_have_text("Set up a payment plan")
    shot("plan")
    page.check("#autopay")
    page.select_option("#card", "pm_sandbox_visa")
    page.click("#plan-submit")
    expect(page).to_have_url(re.compile(r"/pay/plans/[0-9a-f-]{36}$"))
    expect(page.locator("main")).to_contain_text("Your payment plan is set up.")
    expect(page.locator("main")).to_contain_text("Autopay is on.")
    shot("plan-created")

    # Contact preferences: no calls, the best time, no Sundays.
    page.goto("/pay/preferences")
    expect(page.locator("#channel_email")).to_be_checked()
    shot("preferences")
    page.uncheck("#channel_call")
    page.fill("#best_start", "09:00")
    page.fill("#best_end", "17:00")
    page.check("#avoid_sun")
    page.click("#prefs-submit")
    expect(page.locator("#prefs-saved")).to_have_text("Your choices are saved.")
    expect(page.locator("#channel_call")).not_to_be_checked()
    expect(page.locator("#avoid_sun")).to_be_checked()
    shot("preferences-saved")

    # Dispute the crown.
    page.goto("/pay/dispute")
    shot("dispute")
    page.check("#charge_2")
    page.select_option("#reason", "insurance")
    page.click("#dispute-submit")
    expect(page).to_have_url(re.compile(r"/pay/done/dispute$"))
    expect(page.locator("main")).to_contain_text("We received your dispute.")
    shot("dispute-filed")

    page.goto("/pay/help")
    shot("help")
    page.check("#reason_income")
    page.click("#help-submit")
    expect(page).to_have_url(re.compile(r"/pay/done/help$"))
    shot("help-sent")

    page.goto("/pay/access-log")
    expect(page.locator("#access-log")).to_contain_text("Signed in to the portal")
    shot("access-log")

    # Spanish, through the language switcher of the layout.
    page.select_option("#lang-select", "es")
    page.click(".lang button")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h1")).to_have_text("Quién vio su expediente")
    shot("access-log-es")
    context.close()

    for title in titles:
        for value in _phi(world, person):
            assert value not in title, (title, value)
    for url in urls:
        assert url.startswith(base), url  # nothing from a third party
        for value in _phi(world, person):
            assert value not in url, (url, value)
    assert csp == []


def test_portal_in_chromium_on_phone_and_desktop(live: tuple[PortalWorld, str],
                                                tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    world, base = live
    shots = _shots_dir(tmp_path)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            _walk(browser, world, base, world.bob, PHONE, "phone", shots)
            _walk(browser, world, base, world.alice, DESKTOP, "desktop", shots)
        finally:
            browser.close()
    steps = ["verify", "verify-failed", "bill", "pay", "receipt", "plan", "plan-created",
             "preferences", "preferences-saved", "dispute", "dispute-filed", "help",
             "help-sent", "access-log", "access-log-es"]
    expected = sorted(f"{label}-{n:02d}-{name}.png" for label in ("phone", "desktop")
                      for n, name in enumerate(steps, start=1))
    assert sorted(p.name for p in shots.glob("*-*-*.png")) == expected


def test_verification_by_keyboard_alone(live: tuple[PortalWorld, str], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    world, base = live
    person = world.alice
    birth = person.date_of_birth
    link = world.issue(person)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_context(base_url=base, viewport=PHONE).new_page()
            page.goto(portal_service.link_path(link.token))
            order: list[str] = []
            typed = {"last_name": person.last_name, "dob_month": str(birth.month),
                     "dob_day": str(birth.day), "dob_year": str(birth.year)}
            for _ in range(12):
                page.keyboard.press("Tab")
                focused = page.evaluate(
                    "() => document.activeElement.id || document.activeElement.className"
                    " || document.activeElement.tagName")
                order.append(focused)
                if focused in typed:
                    page.keyboard.type(typed[focused])
                if focused == "verify-submit":
                    break
            # The skip link comes first; the fields follow in reading order.
            assert order[0] == "skip"
            fields = [f for f in order if f in (*typed, "zip", "verify-submit")]
            assert fields == ["last_name", "dob_month", "dob_day", "dob_year", "zip",
                              "verify-submit"]
            # A visible focus indicator on the focused button (portal.css :focus-visible).
            outline = page.evaluate(
                "() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline == "solid"
            page.screenshot(path=str(_shots_dir(tmp_path) / "keyboard-verify.png"))
            page.keyboard.press("Enter")
            expect(page).to_have_url(re.compile(r"/pay/bill$"))
        finally:
            browser.close()
