"""Organization settings screens: quiet days and contact limits (the stored compliance
overlay) and saving / reverting the organization's versions of message templates.

Every route against every role and anonymous (denials change no table and enqueue
nothing), CSRF, exact page content, every bad input refused with its message and nothing
stored, audit events. Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from carecollect.compliance.overlay import OrgOverlay
from carecollect.compliance.overlay_settings import overlay_for, set_overlay
from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from carecollect.outreach.org_templates import organization_template, save_template
from carecollect.outreach.templates import Template
from tests.factories import TEST_ACTOR, audit_events
from tests.web.conftest import Web
from tests.web.helpers import job_count, snapshot

P = Permission
GOOD_SMS = "{{ practice_name }}: a new message is waiting for you: {{ payment_url }}"
OVERLAY_FORM: dict[str, Any] = {
    "quiet_weekdays": ["sat", "sun"], "extra_quiet_dates": "2026-12-24\n2026-12-31",
    "holiday_country": "US", "holiday_subdivision": "", "window_start": "09:00",
    "window_end": "20:00", "max_calls_per_7_days": "3", "max_contacts_per_7_days": "",
}
SAVE_FORM: dict[str, Any] = {
    "template_id": "statement_ready_sms", "channel": "sms", "language": "en",
    "surface-sms_body": GOOD_SMS,
}
ROUTES: list[tuple[str, str, Permission, Any]] = [
    ("GET", "/app/admin/compliance-settings", P.ORG_READ, None),
    ("POST", "/app/admin/compliance-settings", P.ORG_MANAGE, OVERLAY_FORM),
    ("POST", "/app/admin/templates/save", P.ORG_MANAGE,
     {**SAVE_FORM, "surface-sms_body": GOOD_SMS + " Thanks."}),
    ("POST", "/app/admin/templates/{template_id}/{language}/revert", P.ORG_MANAGE, {}),
]
ACTORS = [r.value for r in Role] + ["anonymous"]


def _csrf(web: Web, client: Any) -> dict[str, str]:
    cookie = client.cookies.get("cc_session") or "none"
    return {"X-CSRF-Token": web.app.state.context.sign("csrf", cookie)}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _errors(html: str) -> list[str]:
    return [_text(m) for m in re.findall(r'<li class="form-error">(.*?)</li>', html, re.S)]


def _overlay(web: Web) -> OrgOverlay | None:
    with web.db.tenant_session(web.tenant.id) as s:
        return overlay_for(s, organization_id=web.tenant.id)


def _override(web: Web, language: str = "en") -> Template | None:
    with web.db.tenant_session(web.tenant.id) as s:
        return organization_template(s, organization_id=web.tenant.id,
                                     key="statement_ready_sms", language=language)


def _seed_override(web: Web) -> None:
    with web.db.tenant_session(web.tenant.id) as s:
        save_template(s, actor=TEST_ACTOR, organization_id=web.tenant.id, template=Template(
            "statement_ready_sms", "en", "sms", "", {"sms_body": GOOD_SMS}))


# Authorization ------------------------------------------------------------------------


def test_every_org_settings_route_is_in_the_table() -> None:
    from carecollect.staff_ui.org_settings_pages import router

    routes = {(method, route.path) for route in router.routes if isinstance(route, APIRoute)
              for method in route.methods or ()}
    assert routes == {(method, path) for method, path, _, _ in ROUTES}


def _allowed(actor: str, permission: Permission) -> bool:
    return actor != "anonymous" and permission in ROLE_PERMISSIONS[Role(actor)]


@pytest.mark.slow
@pytest.mark.parametrize("actor", ACTORS)
def test_org_settings_routes(actor: str, web: Web) -> None:
    _seed_override(web)
    names = {"template_id": "statement_ready_sms", "language": "en"}
    client = web.client() if actor == "anonymous" else web.login(actor)
    for method, path, permission, form in ROUTES:
        url = path.format(**names)
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.request(method, url, data=form, headers=_csrf(web, client))
        if _allowed(actor, permission):
            assert response.status_code in (200, 303), (method, path, response.text[:500])
            if response.status_code == 303:
                assert not response.headers["location"].startswith("/app/login")
            continue
        if actor == "anonymous" and method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/app/login")
        else:
            assert response.status_code == 403, (method, path, response.text[:300])
        assert snapshot(web.db) == before, (method, path)
        assert job_count(web.db) == jobs
    allowed = _allowed(actor, P.ORG_MANAGE)
    assert (_overlay(web) is not None) is allowed
    # The owner saved version 2 and then reverted it; everyone else changed nothing.
    assert (_override(web) is None) is allowed


def test_csrf_is_required_on_org_settings_posts(web: Web) -> None:
    _seed_override(web)
    client = web.login("owner")
    before = snapshot(web.db)
    for path, form in (("/app/admin/compliance-settings", OVERLAY_FORM),
                       ("/app/admin/templates/save", SAVE_FORM),
                       ("/app/admin/templates/statement_ready_sms/en/revert", {})):
        assert client.post(path, data=form).status_code == 403, path
    assert snapshot(web.db) == before


# Quiet days and contact limits -----------------------------------------------------------


def test_compliance_settings_page_saves_and_shows_the_overlay(web: Web) -> None:
    client = web.login("owner")
    org_page = client.get("/app/admin/organization")
    assert 'href="/app/admin/compliance-settings"' in org_page.text
    assert "not configurable" not in org_page.text
    page = client.get("/app/admin/compliance-settings")
    assert page.status_code == 200
    assert 'id="overlay-off"' in page.text
    assert '<option value="US" >United States (US)</option>' in page.text
    response = client.post("/app/admin/compliance-settings", data=OVERLAY_FORM,
                           headers=_csrf(web, client))
    assert response.status_code == 303
    assert response.headers["location"] == "/app/admin/compliance-settings"
    assert _overlay(web) == OrgOverlay.from_json({
        "window_start": "09:00", "window_end": "20:00", "quiet_weekdays": ["sat", "sun"],
        "extra_quiet_dates": ["2026-12-24", "2026-12-31"], "holiday_country": "US",
        "max_calls_per_7_days": 3})
    page = client.get("/app/admin/compliance-settings")
    shown = _text(re.search(r'<dl class="facts" id="overlay-in-force">(.*?)</dl>', page.text,
                            re.S).group(1))  # type: ignore[union-attr]
    assert shown == (
        "Contact window 09:00\u201320:00 (the recipient's local time) Quiet weekdays Saturday, "
        "Sunday Extra quiet dates 2026-12-24, 2026-12-31 Holiday calendar United States (US) "
        "Calls per 7 days 3 Contacts per 7 days no cap")
    assert 'id="quiet-sat" checked' in page.text
    assert 'id="quiet-mon" checked' not in page.text
    # The subdivisions of the saved country are offered next.
    assert '<option value="MA" >MA</option>' in page.text
    [event] = audit_events(web.db, "organization.overlay_update")
    assert event["details"] == {
        "fields": ["window_start", "window_end", "quiet_weekdays", "extra_quiet_dates",
                   "holiday_country", "max_calls_per_7_days"], "enabled": True}
    assert event["actor_id"] == str(web.users["owner"])
    # Everything back to the defaults turns the overlay off.
    off = client.post("/app/admin/compliance-settings", headers=_csrf(web, client), data={
        "window_start": "08:00", "window_end": "21:00", "extra_quiet_dates": "",
        "holiday_country": "", "max_calls_per_7_days": "", "max_contacts_per_7_days": ""})
    assert off.status_code == 303
    assert _overlay(web) is None
    assert 'id="overlay-off"' in client.get("/app/admin/compliance-settings").text


@pytest.mark.parametrize(("form", "errors"), [
    ({"window_start": "07:00"}, ["the overlay window must lie inside [08:00, 21:00)"]),
    ({"window_end": "22:00"}, ["the overlay window must lie inside [08:00, 21:00)"]),
    ({"window_start": "15:00", "window_end": "14:00"}, ["the overlay window is empty"]),
    ({"quiet_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
     ["an overlay cannot make every weekday quiet"]),
    ({"quiet_weekdays": ["xyz"]}, ["quiet weekdays: choose from the listed days"]),
    ({"extra_quiet_dates": "2026-13-01"},
     ["malformed overlay: month must be in 1..12"]),
    ({"holiday_country": "ZZ"}, ["unknown holiday calendar: choose a country from the list"]),
    ({"holiday_subdivision": "QQ"},
     ["unknown holiday subdivision for US: choose one from the list"]),
    ({"max_calls_per_7_days": "8"}, ["the call cap must be between 0 and 7 per 7 days"]),
    ({"max_calls_per_7_days": "lots"},
     ["call cap: enter a whole number (or leave it empty for no cap)"]),
    ({"max_contacts_per_7_days": "-1"}, ["the contact cap cannot be negative"]),
    ({"window_start": "06:00", "max_calls_per_7_days": "9", "max_contacts_per_7_days": "-3"},
     ["the overlay window must lie inside [08:00, 21:00)",
      "the call cap must be between 0 and 7 per 7 days", "the contact cap cannot be negative"]),
])
def test_refused_overlay_settings_show_every_message_and_store_nothing(
        web: Web, form: dict[str, Any], errors: list[str]) -> None:
    client = web.login("owner")
    with web.db.tenant_session(web.tenant.id) as s:
        set_overlay(s, actor=TEST_ACTOR, organization_id=web.tenant.id,
                    data={"quiet_weekdays": ["sun"]})
    before = snapshot(web.db)
    response = client.post("/app/admin/compliance-settings", headers=_csrf(web, client),
                           data={**OVERLAY_FORM, **form})
    assert response.status_code == 400
    assert "Nothing was saved" in response.text
    assert [e.replace("&#39;", "'") for e in _errors(response.text)] == errors
    assert snapshot(web.db) == before
    assert _overlay(web) == OrgOverlay(quiet_weekdays=frozenset({6}))
    # The typed values come back in the form.
    if "max_calls_per_7_days" in form:
        assert f'value="{form["max_calls_per_7_days"]}"' in response.text


def test_readers_see_the_overlay_without_the_form(web: Web) -> None:
    with web.db.tenant_session(web.tenant.id) as s:
        set_overlay(s, actor=TEST_ACTOR, organization_id=web.tenant.id,
                    data={"quiet_weekdays": ["sun"]})
    client = web.login("auditor")
    page = client.get("/app/admin/compliance-settings")
    assert page.status_code == 200
    assert 'id="overlay-form"' not in page.text
    assert "Quiet weekdays Sunday" in _text(page.text)


# Organization templates ------------------------------------------------------------------


def test_template_editor_saves_lists_and_reverts_an_organization_version(web: Web) -> None:
    client = web.login("owner")
    editor = client.get("/app/templates/statement_ready_sms/en")
    assert 'id="shipped-in-use"' in editor.text
    assert 'id="save-template"' in editor.text
    assert 'formaction="/app/admin/templates/save"' in editor.text
    saved = client.post("/app/admin/templates/save", data=SAVE_FORM, headers=_csrf(web, client))
    assert saved.status_code == 303
    assert saved.headers["location"] == "/app/templates/statement_ready_sms/en"
    assert _override(web) is not None
    editor = client.get("/app/templates/statement_ready_sms/en")
    assert "In use: the organization's version 1" in _text(editor.text).replace("&#39;", "'")
    assert (">" + GOOD_SMS + "</textarea>") in editor.text.replace("&#39;", "'")
    assert "Lakeside Billing: a new message is waiting for you:" in editor.text
    assert 'id="revert-template"' in editor.text
    listing = client.get("/app/templates")
    rows = re.findall(r"<tr>\s*<td><a href=\"/app/templates/([a-z_]+)/(en|es)\".*?"
                      r'<td class="in-use">(.*?)</td>', listing.text, re.S)
    in_use = {(key, language): _text(cell) for key, language, cell in rows}
    assert len(in_use) == 12
    assert in_use[("statement_ready_sms", "en")] == "organization version 1"
    assert {v for k, v in in_use.items() if k != ("statement_ready_sms", "en")} == {"shipped"}
    [event] = audit_events(web.db, "organization.template_save")
    assert event["details"] == {"template": "statement_ready_sms", "language": "en",
                                "version": 1, "surfaces": ["sms_body"]}
    reverted = client.post("/app/admin/templates/statement_ready_sms/en/revert",
                           headers=_csrf(web, client))
    assert reverted.status_code == 303
    assert _override(web) is None
    assert 'id="shipped-in-use"' in client.get("/app/templates/statement_ready_sms/en").text
    assert len(audit_events(web.db, "organization.template_revert")) == 1


def test_a_draft_with_findings_is_not_saved(web: Web) -> None:
    client = web.login("owner")
    before = snapshot(web.db)
    response = client.post("/app/admin/templates/save", headers=_csrf(web, client), data={
        **SAVE_FORM, "surface-sms_body": "Your balance of {{ balance_cents | money }} is due"})
    assert response.status_code == 400
    assert 'id="save-error"' in response.text
    issues = [_text(m) for m in re.findall(r'<tr class="lint-issue">(.*?)</tr>',
                                           response.text, re.S)]
    assert issues == [
        "sms_body HIPAA-CONTENT-CLASS balance_cents is C1; sms_body allows up to C0",
        "sms_body PLAT-NEUTRAL-NAME surface must name {{ practice_name }}"]
    assert snapshot(web.db) == before


@pytest.mark.parametrize(("form", "status"), [
    ({"template_id": "no_such_template"}, 404),
    ({"language": "fr"}, 400),
    ({"channel": "fax"}, 400),
    ({"channel": "email"}, 400),  # statement_ready_sms is an SMS template
])
def test_malformed_template_saves_are_refused(web: Web, form: dict[str, Any],
                                              status: int) -> None:
    client = web.login("owner")
    before = snapshot(web.db)
    response = client.post("/app/admin/templates/save", headers=_csrf(web, client),
                           data={**SAVE_FORM, **form})
    assert response.status_code == status, response.text[:300]
    assert snapshot(web.db) == before


def test_revert_without_an_organization_version_is_404(web: Web) -> None:
    client = web.login("owner")
    before = snapshot(web.db)
    for path in ("/app/admin/templates/statement_ready_sms/en/revert",
                 "/app/admin/templates/nope/en/revert"):
        assert client.post(path, headers=_csrf(web, client)).status_code == 404
    assert snapshot(web.db) == before


def test_only_organization_managers_see_save_and_revert(web: Web) -> None:
    _seed_override(web)
    for role in ("billing_manager", "collector", "compliance_officer", "auditor"):
        editor = web.login(role).get("/app/templates/statement_ready_sms/en")
        assert editor.status_code == 200
        assert 'id="override-in-use"' in editor.text
        assert 'id="save-template"' not in editor.text
        assert 'id="revert-template"' not in editor.text


# In a real browser -------------------------------------------------------------------------


@pytest.fixture
def live(db: Any, tmp_path: Any) -> Any:
    from datetime import timedelta

    from carecollect.identity.service import IdentityPolicy
    from tests.browser_support import serve
    from tests.web.conftest import make_web

    web = make_web(db, tmp_path, real_time=True,
                   policy=IdentityPolicy(touch_interval=timedelta(0)))
    with serve(web.app) as base:
        yield web, base


@pytest.mark.slow
def test_quiet_days_and_an_organization_template_in_chromium(live: Any) -> None:
    import os
    import shutil
    from pathlib import Path

    from playwright.sync_api import expect, sync_playwright

    from tests.browser_support import CHROMIUM, launch, sign_in
    from tests.web.conftest import PASSWORD

    if shutil.which(CHROMIUM) is None:
        pytest.skip("needs Debian's chromium")
    web, base = live
    shots = Path(os.environ.get("CARECOLLECT_SCREENSHOT_DIR") or (
        Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    csp_errors: list[str] = []
    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("console", lambda msg: (
            csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None))

        def shot(name: str) -> None:
            page.screenshot(path=str(shots / f"org-settings-{name}.png"), full_page=True)

        sign_in(page, web, "owner", PASSWORD)

        # 1. Quiet days: a window that starts before 08:00 is refused, nothing stored.
        page.goto("/app/admin/organization")
        page.click("#compliance-settings-link")
        expect(page).to_have_url(re.compile(r"/app/admin/compliance-settings$"))
        expect(page.locator("#overlay-off")).to_have_count(1)
        page.check("#quiet-sun")
        page.fill("#window-start", "07:00")
        page.select_option("#holiday-country", "US")
        page.locator("#save-overlay").press("Enter")
        expect(page.locator("#form-errors")).to_contain_text(
            "the overlay window must lie inside [08:00, 21:00)")
        assert _overlay(web) is None
        shot("01-refused")
        page.fill("#window-start", "09:00")
        page.locator("#save-overlay").press("Enter")
        expect(page.locator("#in-force-weekdays")).to_have_text("Sunday")
        expect(page.locator("#in-force-holidays")).to_have_text("United States (US)")
        expect(page.locator("#in-force-window")).to_contain_text("09:00")
        assert _overlay(web) == OrgOverlay(window_start=dt.time(9),
                                           quiet_weekdays=frozenset({6}),
                                           holiday_country="US")
        shot("02-saved")

        # 2. An organization version of a template: refused with findings, then saved.
        page.goto("/app/templates/statement_ready_sms/en")
        expect(page.locator("#shipped-in-use")).to_have_count(1)
        page.fill("#surface-sms_body", "You owe {{ balance_cents | money }}")
        page.locator("#save-template").press("Enter")
        expect(page.locator("#save-error")).to_have_count(1)
        expect(page.locator("#lint-issues")).to_contain_text("HIPAA-CONTENT-CLASS")
        assert _override(web) is None
        shot("03-template-refused")
        page.fill("#surface-sms_body", GOOD_SMS)
        page.locator("#save-template").press("Enter")
        expect(page.locator("#override-in-use")).to_contain_text(
            "the organization's version 1")
        assert _override(web) is not None
        shot("04-template-saved")
        page.locator("#revert-template").press("Enter")
        expect(page.locator("#shipped-in-use")).to_have_count(1)
        assert _override(web) is None
        browser.close()
    assert csp_errors == []
