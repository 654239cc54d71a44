"""Self-service pages through the app: session and CSRF required, English and Spanish,
PRG redirects, errors re-rendered without storing anything, one guarantor cannot reach
another's charges. Synthetic people only."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from carecollect.consent.models import InconvenientDesignation, MediumOptOut
from carecollect.outreach.outbox import ReviewItem
from carecollect.patient.models import Flag
from tests.factories import add_email, add_phone, audit_events
from tests.portal.conftest import PortalWorld, csrf_of, title_of

PAGES = ("/pay/preferences", "/pay/dispute", "/pay/help", "/pay/access-log")


def _counts(world: PortalWorld) -> dict[str, int]:
    with world.db.system_session() as s:
        return {m.__name__: int(s.scalar(select(func.count()).select_from(m)) or 0)
                for m in (MediumOptOut, InconvenientDesignation, Flag, ReviewItem)}


def _contacts(world: PortalWorld) -> None:
    with world.db.tenant_session(world.org_id) as s:
        add_email(s, world.tenant, world.alice.guarantor_id, "alicia.test@example.org")
        add_phone(s, world.tenant, world.alice.guarantor_id, "+16175550123")


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_verified_session(world: PortalWorld, path: str) -> None:
    response = world.client().get(path)
    assert response.status_code == 404
    assert title_of(response.text) == "Link expired or invalid · Pay your bill"
    assert "Núñez" not in response.text


@pytest.mark.parametrize(("path", "title"), [
    ("/pay/preferences", "How we contact you"), ("/pay/dispute", "Question a charge"),
    ("/pay/help", "Ask for financial help"), ("/pay/access-log", "Who saw your record"),
])
def test_pages_render_with_neutral_titles(world: PortalWorld, path: str, title: str) -> None:
    client = world.login()
    response = client.get(path)
    assert response.status_code == 200
    assert title_of(response.text) == f"{title} · Pay your bill"
    assert '<html lang="en">' in response.text
    for phi in ("Núñez", "Alicia", "ACC-5001"):
        assert phi not in title_of(response.text)
    for nav in PAGES:
        assert f'href="{nav}"' in response.text


def test_spanish_pages(world: PortalWorld) -> None:
    client = world.login(lang="es")
    response = client.get("/pay/preferences")
    assert title_of(response.text) == "Cómo nos comunicamos · Pague su factura"
    assert '<html lang="es">' in response.text
    assert "Mensajes de texto" in response.text


def test_saving_preferences_redirects_and_writes_the_ledger(world: PortalWorld) -> None:
    _contacts(world)
    client = world.login()
    csrf = csrf_of(client.get("/pay/preferences").text)
    response = client.post("/pay/preferences", data={
        "csrf_token": csrf, "channel_email": "on", "best_start": "09:00", "best_end": "17:00",
        "avoid_day": ["sat", "sun"], "language": "es"})
    assert (response.status_code, response.headers["location"]) == (
        303, "/pay/preferences?saved=1")
    page = client.get("/pay/preferences?saved=1")
    # The portal now speaks the language the patient chose.
    assert "Sus preferencias se guardaron." in page.text
    assert '<html lang="es">' in page.text
    with world.db.tenant_session(world.org_id) as s:
        assert sorted(o.medium for o in s.scalars(select(MediumOptOut))) == ["call", "sms"]
        assert sorted(d.value for d in s.scalars(select(InconvenientDesignation))) == [
            "17:00-09:00", "sat", "sun"]
    checked = {m: bool(re.search(rf'id="channel_{m}"[^>]*\schecked', page.text))
               for m in ("email", "sms", "call")}
    assert checked == {"email": True, "sms": False, "call": False}


def test_a_bad_time_is_shown_in_the_page_language_and_stores_nothing(
        world: PortalWorld) -> None:
    _contacts(world)
    client = world.login(lang="es")
    csrf = csrf_of(client.get("/pay/preferences").text)
    before = _counts(world)
    response = client.post("/pay/preferences", data={
        "csrf_token": csrf, "best_start": "9am", "best_end": "5pm", "language": "es"})
    assert response.status_code == 422
    assert "Escriba horas como 09:00 y 17:00." in response.text
    assert 'role="alert"' in response.text
    assert _counts(world) == before


def test_a_form_without_its_csrf_token_is_refused(world: PortalWorld) -> None:
    _contacts(world)
    client = world.login()
    before = _counts(world)
    response = client.post("/pay/preferences", data={"csrf_token": "forged", "language": "es"})
    assert response.status_code == 403
    response = client.post("/pay/dispute", data={"charge": str(world.alice.charges[0]),
                                                 "reason": "not_mine"})
    assert response.status_code == 403
    assert _counts(world) == before


def test_filing_a_dispute(world: PortalWorld) -> None:
    client = world.login()
    page = client.get("/pay/dispute")
    assert "Crown (porcelain cap on a tooth)" in page.text  # the service in plain words
    csrf = csrf_of(page.text)
    response = client.post("/pay/dispute", data={
        "csrf_token": csrf, "charge": str(world.alice.charges[1]), "reason": "insurance"})
    assert (response.status_code, response.headers["location"]) == (303, "/pay/done/dispute")
    done = client.get("/pay/done/dispute")
    assert title_of(done.text) == "Dispute received · Pay your bill"
    assert "paused collection on this account" in done.text
    assert [e["details"]["reason"] for e in audit_events(world.db, "portal.dispute")] == [
        "insurance"]
    assert "Already under review" in client.get("/pay/dispute").text


@pytest.mark.parametrize(("charge", "status"), [("bob", 404), ("random", 404),
                                                ("not-an-id", 422), ("", 422)])
def test_a_dispute_of_someone_elses_or_no_charge_stores_nothing(
        world: PortalWorld, charge: str, status: int) -> None:
    client = world.login()
    csrf = csrf_of(client.get("/pay/dispute").text)
    value = {"bob": str(world.bob.charges[0]), "random": str(uuid.uuid4())}.get(charge, charge)
    before = _counts(world)
    response = client.post("/pay/dispute", data={"csrf_token": csrf, "charge": value,
                                                 "reason": "not_mine"})
    assert response.status_code == status
    assert "Quintanilla" not in response.text
    assert _counts(world) == before


def test_asking_for_help(world: PortalWorld) -> None:
    client = world.login()
    csrf = csrf_of(client.get("/pay/help").text)
    before = _counts(world)
    refused = client.post("/pay/help", data={"csrf_token": csrf, "reason": "lottery"})
    assert refused.status_code == 422
    assert "Choose what best describes your situation." in refused.text
    assert _counts(world) == before
    response = client.post("/pay/help", data={"csrf_token": csrf, "reason": "unemployment"})
    assert (response.status_code, response.headers["location"]) == (303, "/pay/done/help")
    assert _counts(world)["Flag"] == before["Flag"] + 1


def test_access_log_page_shows_this_patients_events_only(world: PortalWorld) -> None:
    world.login(world.bob)
    client = world.login()
    page = client.get("/pay/access-log")
    assert page.status_code == 200
    assert "Signed in to the portal" in page.text
    assert "You" in page.text
    assert "Quintanilla" not in page.text
    assert str(world.bob.guarantor_id) not in page.text
    [viewed] = audit_events(world.db, "audit.access_log")
    assert viewed["patient_id"] == str(world.alice.guarantor_id)
    assert viewed["details"]["via"] == "portal"


def test_unknown_done_page_is_not_found(world: PortalWorld) -> None:
    client = world.login()
    assert client.get("/pay/done/whatever").status_code == 404
