"""Every portal page: no PHI in any URL, redirect or title; strict CSP and no inline script
or style; labels, language and skip link for assistive technology; the portal's own
stylesheet served from the package."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from fastapi.testclient import TestClient

from carecollect.api.middleware import CONTENT_SECURITY_POLICY
from tests.portal.conftest import PortalWorld, csrf_of, title_of

TEMPLATES = Path(__file__).resolve().parents[2] / "src/carecollect/portal/templates/portal"
ATTEMPT_RE = re.compile(r'name="attempt" value="([^"]+)"')


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.inline: list[str] = []
        self.html_lang: str | None = None
        self._in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "action", "src"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "html":
            self.html_lang = values.get("lang")
        if tag == "label":
            self._in_label += 1
            if values.get("for"):
                self.label_for.add(str(values["for"]))
        if tag in ("input", "select", "textarea") and values.get("type") != "hidden":
            self.inputs.append({**values, "_wrapped": "yes" if self._in_label else None})
        if tag == "script" and not values.get("src"):
            self.inline.append("script")
        if tag == "style" or "style" in values or any(k.startswith("on") for k in values):
            self.inline.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label -= 1


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _canaries(world: PortalWorld) -> list[str]:
    alice = world.alice
    return ["Alicia", "Núñez", "Nunez", "N%C3%BA", "Ortiz", alice.zip_code,
            alice.date_of_birth.isoformat(), "02/29/1984", "ACC-5001", "5001", "Teeth",
            "Crown", "PROPHY", "D1110", "D2740", "Cambridge", "Harbor"]


def _walk(world: PortalWorld) -> list[tuple[str, object]]:
    """Visit every portal page of a full visit: (URL, response)."""
    seen: list[tuple[str, object]] = []
    client = TestClient(world.app, base_url="http://127.0.0.1", follow_redirects=False)
    link = world.issue()
    alice = world.alice

    def get(path: str) -> object:
        response = client.get(path)
        seen.append((path, response))
        return response

    def post(path: str, data: dict[str, str]) -> object:
        response = client.post(path, data=data)
        seen.append((path, response))
        location = response.headers.get("location")
        if location:
            seen.append((location, get(location)))
        return response

    form = get(f"/pay/{link.token}")
    birth = alice.date_of_birth
    post(f"/pay/{link.token}", {"csrf_token": csrf_of(form.text), "last_name": "wrong",  # type: ignore[attr-defined]
                                "zip": "99999"})
    post(f"/pay/{link.token}", {"csrf_token": csrf_of(form.text),  # type: ignore[attr-defined]
                                "last_name": alice.last_name, "dob_month": str(birth.month),
                                "dob_day": str(birth.day), "dob_year": str(birth.year)})
    bill = get("/pay/bill")
    csrf = csrf_of(bill.text)  # type: ignore[attr-defined]
    pay_path = f"/pay/accounts/{alice.account_id}/pay"
    pay_page = get(pay_path)
    attempt = ATTEMPT_RE.search(pay_page.text).group(1)  # type: ignore[attr-defined, union-attr]
    post(pay_path, {"csrf_token": csrf, "attempt": attempt, "amount": "-1",
                    "card": "pm_sandbox_visa"})
    post(pay_path, {"csrf_token": csrf, "attempt": attempt, "amount": "20",
                    "card": "pm_sandbox_visa"})
    plan_path = f"/pay/accounts/{alice.account_id}/plan"
    plan_page = get(plan_path)
    attempt = ATTEMPT_RE.search(plan_page.text).group(1)  # type: ignore[attr-defined, union-attr]
    post(plan_path, {"csrf_token": csrf, "attempt": attempt, "installments": "6",
                     "autopay": "yes", "card": "pm_sandbox_visa"})
    get("/pay/bill")
    post("/pay/language", {"csrf_token": csrf, "lang": "es", "next": "/pay/bill"})
    post("/pay/logout", {"csrf_token": csrf})
    get("/pay/bill")
    return seen


def test_no_phi_in_any_url_redirect_or_title(world: PortalWorld) -> None:
    canaries = _canaries(world)
    visited = _walk(world)
    assert len(visited) >= 15
    for path, response in visited:
        urls = [path, response.headers.get("location", "")]  # type: ignore[attr-defined]
        text = response.text if response.headers.get("content-type", "").startswith(  # type: ignore[attr-defined]
            "text/html") else ""
        if text:
            urls += _parse(text).urls
            title = title_of(text)
            for value in canaries:
                assert value.lower() not in title.lower(), (path, title)
        for url in urls:
            for value in canaries:
                assert value.lower() not in unquote(url).lower(), (path, url)
    # The bill itself does show the patient their own services (it is the point).
    bill = next(r for p, r in visited if p == "/pay/bill" and r.status_code == 200)  # type: ignore[attr-defined]
    assert "Teeth cleaning (adult)" in bill.text  # type: ignore[attr-defined]


def test_every_page_has_the_strict_csp_and_no_inline_code(world: PortalWorld) -> None:
    for path, response in _walk(world):
        headers = response.headers  # type: ignore[attr-defined]
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        if headers.get("content-type", "").startswith("text/html"):
            assert headers["cache-control"] == "no-store"
            assert _parse(response.text).inline == [], path  # type: ignore[attr-defined]
    for template in TEMPLATES.glob("*.html"):
        source = template.read_text()
        assert "<script" not in source, template.name
        assert "style=" not in source, template.name
        assert "<style" not in source, template.name


def test_pages_are_labelled_and_declare_their_language(world: PortalWorld) -> None:
    for path, response in _walk(world):
        if not response.headers.get("content-type", "").startswith("text/html"):  # type: ignore[attr-defined]
            continue
        page = _parse(response.text)  # type: ignore[attr-defined]
        assert page.html_lang in ("en", "es"), path
        assert 'class="skip" href="#main"' in response.text  # type: ignore[attr-defined]
        assert '<main id="main"' in response.text  # type: ignore[attr-defined]
        for field in page.inputs:
            labelled = field.get("id") in page.label_for or field.get("_wrapped")
            assert labelled, (path, field)


def test_the_stylesheet_is_served_from_the_package(world: PortalWorld) -> None:
    response = world.client().get("/static/portal/portal.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in response.text
    assert response.headers["cache-control"] == "public, max-age=3600"
