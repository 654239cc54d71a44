"""Paying through a real processor's hosted page: Stripe Checkout with the official SDK
against the local test server. The card never reaches us; the payment posts later from
the signed webhook; a refused amount or a missing BAA calls nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carecollect.db import Database
from carecollect.payment.models import Payment
from carecollect.tenant.models import BusinessAssociate
from tests.factories import audit_events
from tests.payment.stripe_server import FakeStripe, fake_stripe
from tests.portal.conftest import PortalWorld, csrf_of, make_portal_world, title_of

ATTEMPT_RE = re.compile(r'name="attempt" value="([^"]+)"')


@pytest.fixture
def stripe_world(db: Database, tmp_path: Path) -> Iterator[tuple[PortalWorld, FakeStripe]]:
    with fake_stripe() as (fake, base):
        world = make_portal_world(db, tmp_path, app_settings={
            "payment_processor": "stripe", "stripe_api_key": "sk_test_local",
            "stripe_webhook_secret": "whsec_test", "stripe_api_base": base})
        yield world, fake


def _add_baa(world: PortalWorld) -> None:
    with world.db.tenant_session(world.org_id) as session:
        session.add(BusinessAssociate(organization_id=world.org_id, name="Stripe",
                                      service="payments", baa_status="active",
                                      baa_effective_on=date(2025, 1, 1)))


def _submit(client: TestClient, world: PortalWorld, amount: str) -> object:
    page = client.get(f"/pay/accounts/{world.alice.account_id}/pay")
    assert 'name="card"' not in page.text  # no card field of ours at all
    assert "Continue to the secure payment page" in page.text
    found = ATTEMPT_RE.search(page.text)
    assert found
    return client.post(f"/pay/accounts/{world.alice.account_id}/pay",
                       data={"csrf_token": csrf_of(page.text), "attempt": found.group(1),
                             "amount": amount})


def test_checkout_link_with_ids_only(stripe_world: tuple[PortalWorld, FakeStripe]) -> None:
    world, fake = stripe_world
    _add_baa(world)
    client = world.login()
    response = _submit(client, world, "125.00")
    assert response.status_code == 200  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    link = re.search(r'id="checkout-link" href="([^"]+)"', text)
    assert link
    assert link.group(1).startswith("https://checkout.stripe.test/c/cs_test")
    [request] = [r for r in fake.requests if r.path == "/v1/checkout/sessions"]
    assert request.form["line_items[0][price_data][unit_amount]"] == "12500"
    assert request.form["line_items[0][price_data][product_data][name]"] == "Account payment"
    assert request.form["success_url"] == "http://127.0.0.1/pay/return"
    assert request.form["metadata[guarantor_id]"] == str(world.alice.guarantor_id)
    assert request.form["payment_intent_data[metadata][account_id]"] == str(
        world.alice.account_id)
    sent = " ".join(f"{k}={v}" for k, v in request.form.items())
    for value in ("Núñez", "Alicia", "5001", "Crown", "D2740", "1984"):
        assert value not in sent
    assert world.count(Payment) == 0  # posts when the signed webhook arrives
    started = audit_events(world.db, "payment.checkout")
    assert [e["details"] for e in started] == [
        {"amount_cents": 12_500, "processor": "stripe", "source": "portal"}]
    # Coming back from the processor's page (no cookie on that cross-site navigation).
    back = world.client().get("/pay/return")
    assert back.status_code == 200
    assert title_of(back.text) == "Thank you · Pay your bill"
    assert 'href="/pay/bill"' in back.text


def test_refused_amount_calls_nothing(stripe_world: tuple[PortalWorld, FakeStripe]) -> None:
    world, fake = stripe_world
    _add_baa(world)
    client = world.login()
    response = _submit(client, world, "999.00")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "The amount is more than what is owed on this account." in response.text  # type: ignore[attr-defined]
    assert fake.requests == []
    assert audit_events(world.db, "payment.checkout") == []


def test_no_business_associate_agreement_no_processor_call(
    stripe_world: tuple[PortalWorld, FakeStripe]
) -> None:
    world, fake = stripe_world
    client = world.login()
    response = _submit(client, world, "25.00")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Online payments are not available right now." in response.text  # type: ignore[attr-defined]
    assert fake.requests == []
    assert audit_events(world.db, "payment.checkout") == []
