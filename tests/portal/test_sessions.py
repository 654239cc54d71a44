"""Portal sessions: idle and absolute expiry, logout, CSRF on every form, language, and
one guarantor's session never reaching another guarantor's records."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carecollect.ledger.models import LedgerEntry
from carecollect.payment.models import Payment, SavedPaymentMethod
from carecollect.payment_plan.models import PaymentPlan
from carecollect.portal.models import PortalSession
from tests.factories import audit_events
from tests.portal.conftest import PortalWorld, csrf_of, title_of

ATTEMPT_RE = re.compile(r'name="attempt" value="([^"]+)"')
INVALID_TITLE = "Link expired or invalid · Pay your bill"


def _form(client: TestClient, path: str) -> tuple[str, str]:
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    found = ATTEMPT_RE.search(page.text)
    assert found
    return csrf_of(page.text), found.group(1)


def test_without_a_session_every_page_shows_the_neutral_page(world: PortalWorld) -> None:
    client = world.client()
    account = world.alice.account_id
    for path in ("/pay/bill", f"/pay/accounts/{account}/pay", f"/pay/accounts/{account}/plan",
                 f"/pay/receipts/{uuid.uuid4()}", f"/pay/plans/{uuid.uuid4()}"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert title_of(response.text) == INVALID_TITLE
        assert "5001" not in response.text
    response = client.post("/pay/logout", data={"csrf_token": "x"})
    assert response.status_code == 404


def test_idle_timeout_ends_the_session(world: PortalWorld) -> None:
    client = world.login()
    world.clock.advance(minutes=14)
    assert client.get("/pay/bill").status_code == 200  # activity extends the idle limit
    world.clock.advance(minutes=14)
    assert client.get("/pay/bill").status_code == 200
    world.clock.advance(minutes=15)
    response = client.get("/pay/bill")
    assert response.status_code == 404
    assert "For your privacy, your session ended." in response.text
    with world.db.tenant_session(world.org_id) as session:
        assert session.scalars(select(PortalSession.revoke_reason)).one() == "idle_timeout"
    world.clock.advance(minutes=-30)  # a revoked session stays dead
    assert client.get("/pay/bill").status_code == 404


def test_absolute_timeout_ends_an_active_session(world: PortalWorld) -> None:
    client = world.login()
    for _ in range(5):
        world.clock.advance(minutes=10)
        assert client.get("/pay/bill").status_code == 200
    world.clock.advance(minutes=10)  # 60 minutes after verification
    assert client.get("/pay/bill").status_code == 404
    with world.db.tenant_session(world.org_id) as session:
        assert session.scalars(select(PortalSession.revoke_reason)).one() == "absolute_timeout"


def test_logout_revokes_the_session_server_side(world: PortalWorld) -> None:
    client = world.login()
    cookie = client.cookies.get("cc_portal")
    assert cookie
    page = client.get("/pay/bill")
    response = client.post("/pay/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 200
    assert title_of(response.text) == "Signed out · Pay your bill"
    cleared = response.headers["set-cookie"]
    assert cleared.startswith('cc_portal="";')
    assert "Max-Age=0" in cleared
    assert "Path=/pay" in cleared
    # The old cookie value, replayed, is dead.
    replay = TestClient(world.app, base_url="http://127.0.0.1", follow_redirects=False)
    replay.cookies.set("cc_portal", cookie, path="/pay")
    assert replay.get("/pay/bill").status_code == 404
    assert [e["actor_id"] for e in audit_events(world.db, "portal.logout")] == [
        str(world.alice.guarantor_id)]


def test_logout_needs_the_csrf_token(world: PortalWorld) -> None:
    client = world.login()
    response = client.post("/pay/logout", data={"csrf_token": "0" * 64})
    assert response.status_code == 403
    assert "This form expired" in response.text
    assert client.get("/pay/bill").status_code == 200
    assert audit_events(world.db, "portal.logout") == []


@pytest.mark.parametrize("token", [None, "", "f" * 64])
def test_payment_without_the_right_csrf_token_changes_nothing(
    world: PortalWorld, token: str | None
) -> None:
    client = world.login()
    path = f"/pay/accounts/{world.alice.account_id}/pay"
    _csrf, attempt = _form(client, path)
    data = {"attempt": attempt, "amount": "20.00", "card": "pm_sandbox_visa"}
    if token is not None:
        data["csrf_token"] = token
    response = client.post(path, data=data)
    assert response.status_code == 403
    assert "This form expired" in response.text
    assert world.count(Payment) == 0
    assert world.balance(world.alice) == 61_000


def test_csrf_token_of_one_session_is_refused_by_another(world: PortalWorld) -> None:
    alice = world.login(world.alice)
    alice_csrf, attempt = _form(alice, f"/pay/accounts/{world.alice.account_id}/pay")
    second = world.login(world.alice)  # the same person, a second session
    response = second.post(f"/pay/accounts/{world.alice.account_id}/pay",
                           data={"csrf_token": alice_csrf, "attempt": attempt,
                                 "amount": "20.00", "card": "pm_sandbox_visa"})
    assert response.status_code == 403
    assert world.count(Payment) == 0


def test_plan_form_without_csrf_creates_nothing(world: PortalWorld) -> None:
    client = world.login()
    path = f"/pay/accounts/{world.alice.account_id}/plan"
    _csrf, attempt = _form(client, path)
    response = client.post(path, data={"attempt": attempt, "installments": "6",
                                       "autopay": "yes", "card": "pm_sandbox_visa"})
    assert response.status_code == 403
    assert world.count(PaymentPlan) == 0
    assert world.count(SavedPaymentMethod) == 0


def test_the_bill_shows_only_the_session_guarantors_accounts(world: PortalWorld) -> None:
    client = world.login(world.alice)
    text = client.get("/pay/bill").text
    assert "Account ending in 5001" in text
    assert "5002" not in text
    assert str(world.bob.account_id) not in text


def _bob_payment_and_plan(world: PortalWorld) -> tuple[uuid.UUID, uuid.UUID]:
    bob = world.login(world.bob)
    csrf, attempt = _form(bob, f"/pay/accounts/{world.bob.account_id}/pay")
    paid = bob.post(f"/pay/accounts/{world.bob.account_id}/pay",
                    data={"csrf_token": csrf, "attempt": attempt, "amount": "10.00",
                          "card": "pm_sandbox_visa"})
    assert paid.status_code == 303
    csrf, attempt = _form(bob, f"/pay/accounts/{world.bob.account_id}/plan")
    planned = bob.post(f"/pay/accounts/{world.bob.account_id}/plan",
                       data={"csrf_token": csrf, "attempt": attempt, "installments": "6"})
    assert planned.status_code == 303
    return (uuid.UUID(paid.headers["location"].rsplit("/", 1)[1]),
            uuid.UUID(planned.headers["location"].rsplit("/", 1)[1]))


def test_one_guarantor_cannot_reach_anothers_records(world: PortalWorld) -> None:
    payment_id, plan_id = _bob_payment_and_plan(world)
    alice = world.login(world.alice)
    bob_account = world.bob.account_id
    for path in (f"/pay/accounts/{bob_account}/pay", f"/pay/accounts/{bob_account}/plan",
                 f"/pay/receipts/{payment_id}", f"/pay/receipts/{payment_id}/pdf",
                 f"/pay/plans/{plan_id}", f"/pay/plans/{plan_id}/agreement",
                 "/pay/accounts/not-a-uuid/pay"):
        response = alice.get(path)
        assert response.status_code == 404, path
        assert title_of(response.text) == "Something went wrong · Pay your bill"
        assert "We could not find that." in response.text
        assert "Quintanilla" not in response.text
        assert "5002" not in response.text
    with world.db.system_session() as session:
        entries_before = len(list(session.scalars(select(LedgerEntry.id))))
    csrf, attempt = _form(alice, f"/pay/accounts/{world.alice.account_id}/pay")
    response = alice.post(f"/pay/accounts/{bob_account}/pay",
                          data={"csrf_token": csrf, "attempt": attempt, "amount": "5.00",
                                "card": "pm_sandbox_visa"})
    assert response.status_code == 404
    response = alice.post(f"/pay/accounts/{bob_account}/plan",
                          data={"csrf_token": csrf, "attempt": attempt, "installments": "2"})
    assert response.status_code == 404
    assert world.count(Payment) == 1
    assert world.count(PaymentPlan) == 1
    with world.db.system_session() as session:
        assert len(list(session.scalars(select(LedgerEntry.id)))) == entries_before
    assert world.balance(world.bob) == 61_000 - 1_000


def test_language_switch_renders_spanish(world: PortalWorld) -> None:
    client = world.login()
    page = client.get("/pay/bill")
    response = client.post("/pay/language", data={"csrf_token": csrf_of(page.text),
                                                  "lang": "es", "next": "/pay/bill"})
    assert response.status_code == 303
    assert response.headers["location"] == "/pay/bill"
    text = client.get("/pay/bill").text
    assert '<html lang="es">' in text
    assert title_of(text) == "Su factura · Pague su factura"
    assert "Total que debe" in text
    assert "Limpieza dental (adulto)" in text
    assert "Corona (funda de porcelana en un diente)" in text
    assert "Su seguro pagó una parte." in text
    assert "30 de enero de 2026" in text
    assert "Total you owe" not in text
    plan = client.get(f"/pay/accounts/{world.alice.account_id}/plan").text
    assert "pagos mensuales de aproximadamente" in plan


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/pay/",
                                    "/app/", "/pay/../app", "javascript:alert(1)"])
def test_language_switch_never_redirects_off_the_portal(world: PortalWorld, target: str) -> None:
    client = world.login()
    page = client.get("/pay/bill")
    response = client.post("/pay/language", data={"csrf_token": csrf_of(page.text),
                                                  "lang": "es", "next": target})
    assert response.status_code == 303
    assert response.headers["location"] == "/pay/bill"


def test_identity_page_in_spanish_before_any_session(world: PortalWorld) -> None:
    link = world.issue()
    client = world.client()
    by_query = client.get(f"/pay/{link.token}?lang=es")
    assert title_of(by_query.text) == "Confirme que es usted · Pague su factura"
    assert "Fecha de nacimiento" in by_query.text
    by_header = client.get(f"/pay/{link.token}", headers={"accept-language": "es-MX,es;q=0.9"})
    assert '<html lang="es">' in by_header.text
    fallback = client.get(f"/pay/{link.token}", headers={"accept-language": "fr-FR"})
    assert '<html lang="en">' in fallback.text


def test_a_tampered_cookie_reaches_nothing(world: PortalWorld) -> None:
    from tests.factories import create_tenant

    client = world.login()
    value = client.cookies.get("cc_portal")
    assert value
    org_hex, token = value.split(".", 1)
    other = create_tenant(world.db)
    for forged in (f"{other.id.hex}.{token}", f"{org_hex}.{token[:-1]}x", f"{org_hex}.",
                   "garbage", f"{'0' * 32}.{token}", f"{org_hex}.{'A' * 200}"):
        intruder = TestClient(world.app, base_url="http://127.0.0.1", follow_redirects=False)
        intruder.cookies.set("cc_portal", forged, path="/pay")
        response = intruder.get("/pay/bill")
        assert response.status_code == 404, forged
        assert "5001" not in response.text
    assert client.get("/pay/bill").status_code == 200  # the real session is untouched
