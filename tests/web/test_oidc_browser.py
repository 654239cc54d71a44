"""Single sign-on and the webhook screen in a real browser: Playwright driving Debian's
Chromium against the app and the local OIDC provider, both served by uvicorn on
127.0.0.1. A collector clicks "Sign in with ...", passes the provider, still gives our TOTP
code and reaches the dashboard; an owner registers a webhook endpoint and sees its secret
once. Screenshots go next to test_browser.py's; no CSP violation may be reported."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from carecollect.audit import Actor
from carecollect.identity import oidc
from carecollect.identity.service import IdentityPolicy
from tests.browser_support import fresh_totp, launch, needs_chromium, serve
from tests.factories import audit_events
from tests.web.conftest import PASSWORD, Web, make_web
from tests.web.oidc_provider import CLIENT_ID, CLIENT_SECRET, LocalProvider, serve_provider
from tests.web.test_browser import SHOTS

pytestmark = [
    pytest.mark.slow,
    needs_chromium,
]


@pytest.fixture
def live(db: Any, tmp_path: Path) -> Iterator[tuple[Web, str, LocalProvider]]:
    web = make_web(db, tmp_path, real_time=True,
                   policy=IdentityPolicy(touch_interval=timedelta(0)))
    with serve(web.app) as base, serve_provider() as idp:
        idp.user = {"sub": "browser-user-1", "email": web.emails["collector"],
                    "email_verified": True, "amr": ["pwd"]}
        with web.db.tenant_session(web.tenant.id) as session:
            oidc.configure_provider(
                session, keys=web.tenant.keys, actor=Actor.system("test"),
                display_name="Lakeside IdP", issuer=idp.issuer, client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET, link_by_verified_email=True,
                allow_loopback_http=True)
        yield web, base, idp


def test_sso_sign_in_and_webhook_screen_in_chromium(
    live: tuple[Web, str, LocalProvider]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    web, base, idp = live
    shots = Path(os.environ.get("CARECOLLECT_SCREENSHOT_DIR") or SHOTS)
    shots.mkdir(parents=True, exist_ok=True)
    csp_errors: list[str] = []
    with sync_playwright() as pw:
        browser = launch(pw)

        def new_page() -> Any:
            context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("console", lambda msg: csp_errors.append(msg.text)
                    if "Content Security Policy" in msg.text else None)
            return page

        # A collector signs in through the provider; our TOTP is still asked for.
        page = new_page()
        page.goto("/app/login")
        button = page.locator("a.sso")
        expect(button).to_have_text("Sign in with Lakeside IdP")
        page.screenshot(path=str(shots / "oidc-01-login-button.png"), full_page=True)
        button.click()
        expect(page).to_have_url(re.compile(r"/app/login/mfa$"))
        assert idp.authorize_params[-1]["code_challenge_method"] == "S256"
        page.screenshot(path=str(shots / "oidc-02-second-factor.png"), full_page=True)
        page.fill("input[name=code]", fresh_totp(web.secrets["collector"]))
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/app/$"))
        page.screenshot(path=str(shots / "oidc-03-dashboard.png"), full_page=True)
        successes = [e for e in audit_events(web.db, "staff.login")
                     if e["outcome"] == "success"]
        assert [e["details"].get("step") for e in successes] == ["oidc", "mfa"]

        # An owner registers a webhook endpoint on the staff screen.
        page = new_page()
        page.goto("/app/login")
        page.fill("input[name=email]", web.emails["owner"])
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.fill("input[name=code]", fresh_totp(web.secrets["owner"]))
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/app/$"))
        page.click("nav >> text=Webhooks")
        expect(page).to_have_url(re.compile(r"/app/admin/webhooks$"))
        page.fill("input[name=url]", "https://hooks.example.org/carecollect")
        page.check("input[value='payment.succeeded']")
        page.check("input[value='dispute.received']")
        page.click("main form[action='/app/admin/webhooks'] button[type=submit]")
        expect(page.locator("#webhook-secret")).to_contain_text("whsec_")
        page.screenshot(path=str(shots / "oidc-04-webhook-created.png"), full_page=True)
        page.goto("/app/admin/webhooks")
        expect(page.locator("#webhook-secret")).to_have_count(0)
        expect(page.locator("#webhook-endpoints")).to_contain_text("dispute.received")
        page.goto("/app/admin/sso")
        expect(page.locator("input[name=issuer]")).to_have_value(idp.issuer)
        page.screenshot(path=str(shots / "oidc-05-sso-settings.png"), full_page=True)
        browser.close()
    assert csp_errors == []
