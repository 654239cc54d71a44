"""Autopay in the portal: with Stripe, setting up a plan with autopay links to a hosted
Checkout page in `setup` mode and shows a pending state until the signed webhook (through
the app's `/hooks/stripe`) saves the card; the patient turns autopay off and replaces the
card (CSRF on every form, all audited); with the sandbox, the same page uses test cards.
Refusals (no consent, no BAA, no CSRF, another guarantor's plan) store nothing."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import stripe
from fastapi.testclient import TestClient
from sqlalchemy import select

from carecollect.db import Database
from carecollect.payment.models import AutopayEnrollment, SavedPaymentMethod, WebhookEvent
from carecollect.payment_plan.models import PaymentPlan
from carecollect.tenant.models import BusinessAssociate
from tests.factories import audit_events
from tests.payment.stripe_server import FakeStripe, fake_stripe
from tests.portal.conftest import PortalWorld, csrf_of, make_portal_world, title_of

ATTEMPT_RE = re.compile(r'name="attempt" value="([^"]+)"')
SETUP_LINK_RE = re.compile(r'id="setup-link" href="([^"]+)"')
SECRET = "whsec_test"


@pytest.fixture
def stripe_world(db: Database, tmp_path: Path) -> Iterator[tuple[PortalWorld, FakeStripe]]:
    with fake_stripe() as (fake, base):
        world = make_portal_world(
            db,
            tmp_path,
            app_settings={
                "payment_processor": "stripe",
                "stripe_api_key": "sk_test_local",
                "stripe_webhook_secret": SECRET,
                "stripe_api_base": base,
            },
        )
        yield world, fake


def _add_baa(world: PortalWorld) -> None:
    with world.db.tenant_session(world.org_id) as session:
        session.add(
            BusinessAssociate(
                organization_id=world.org_id,
                name="Stripe",
                service="payments",
                baa_status="active",
                baa_effective_on=date(2025, 1, 1),
            )
        )


def _form(client: TestClient, path: str) -> tuple[str, str, str]:
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    found = ATTEMPT_RE.search(page.text)
    return csrf_of(page.text), found.group(1) if found else "", page.text


def _plan_with_autopay(client: TestClient, world: PortalWorld, **extra: str) -> Any:
    csrf, attempt, page = _form(client, f"/pay/accounts/{world.alice.account_id}/plan")
    assert 'id="autopay"' in page
    assert 'name="card"' not in page
    data = {"csrf_token": csrf, "attempt": attempt, "installments": "6", "autopay": "yes"}
    return client.post(f"/pay/accounts/{world.alice.account_id}/plan", data={**data, **extra})


def _plan(world: PortalWorld) -> PaymentPlan:
    with world.db.system_session() as session:
        plans = list(session.scalars(select(PaymentPlan)))
    assert len(plans) == 1
    return plans[0]


def _enrollments(world: PortalWorld) -> list[AutopayEnrollment]:
    with world.db.system_session() as session:
        return list(
            session.scalars(
                select(AutopayEnrollment).order_by(
                    AutopayEnrollment.created_at, AutopayEnrollment.id
                )
            )
        )


def _webhook(client: TestClient, fake: FakeStripe, card: str) -> Any:
    cs, _ = fake.complete_setup(sorted(fake.sessions)[-1], card)
    body = json.dumps(
        {
            "id": f"evt_{cs['id']}",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": cs},
        }
    )
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    return client.post(
        "/hooks/stripe",
        content=body.encode(),
        headers={"stripe-signature": header, "content-type": "application/json"},
    )


def test_plan_with_autopay_through_stripe_setup_checkout(
    stripe_world: tuple[PortalWorld, FakeStripe],
) -> None:
    world, fake = stripe_world
    _add_baa(world)
    client = world.login()
    response = _plan_with_autopay(client, world)
    assert response.status_code == 200
    assert title_of(response.text) == "Autopay · Pay your bill"
    link = SETUP_LINK_RE.search(response.text)
    assert link
    assert link.group(1).startswith("https://checkout.stripe.test/c/cs_test")
    assert "Nothing has been charged" in response.text
    [session_request] = [r for r in fake.requests if r.path == "/v1/checkout/sessions"]
    assert session_request.form["mode"] == "setup"
    assert session_request.form["success_url"] == "http://127.0.0.1/pay/autopay/return"
    sent = " ".join(f"{k}={v}" for k, v in session_request.form.items())
    for value in ("Núñez", "Alicia", "5001", "Crown", "D2740", "1984", "Cambridge"):
        assert value not in sent
    plan = _plan(world)
    assert (plan.autopay, plan.payment_method_id) == (False, None)
    [enrollment] = _enrollments(world)
    assert (enrollment.status, enrollment.plan_id) == ("pending", plan.id)
    # Pending on the plan's autopay page; the processor's return page needs no session.
    page = client.get(f"/pay/plans/{plan.id}/autopay")
    assert 'id="autopay-pending"' in page.text
    assert "Autopay is off." in page.text
    assert f'href="/pay/plans/{plan.id}/autopay"' in client.get(f"/pay/plans/{plan.id}").text
    back = world.client().get("/pay/autopay/return")
    assert back.status_code == 200
    assert "autopay will show as on in a few minutes" in back.text
    # The signed webhook saves the card and turns autopay on.
    hook = _webhook(world.client(), fake, "pm_card_visa")
    assert (hook.status_code, hook.json()) == (200, {"outcome": "posted"})
    page = client.get(f"/pay/plans/{plan.id}/autopay")
    assert "Autopay is on with Visa •••• 4242. Expires 12/2031." in page.text
    assert 'id="autopay-pending"' not in page.text
    assert "4242 4242" not in page.text
    assert _plan(world).autopay is True
    views = [e["details"] for e in audit_events(world.db, "portal.view")]
    assert {"page": "autopay"} in views


def test_turn_off_needs_csrf_and_is_audited(stripe_world: tuple[PortalWorld, FakeStripe]) -> None:
    world, fake = stripe_world
    _add_baa(world)
    client = world.login()
    _plan_with_autopay(client, world)
    _webhook(world.client(), fake, "pm_card_visa")
    plan = _plan(world)
    refused = client.post(f"/pay/plans/{plan.id}/autopay/off", data={})
    assert refused.status_code == 403
    assert _plan(world).autopay is True
    csrf, _, _ = _form(client, f"/pay/plans/{plan.id}/autopay")
    done = client.post(f"/pay/plans/{plan.id}/autopay/off", data={"csrf_token": csrf})
    assert (done.status_code, done.headers["location"]) == (
        303,
        f"/pay/plans/{plan.id}/autopay?done=off",
    )
    page = client.get(done.headers["location"])
    assert "Autopay is now off." in page.text
    assert _plan(world).autopay is False
    [off] = audit_events(world.db, "plan.autopay_off")
    assert (off["actor_type"], off["actor_id"]) == ("patient", str(world.alice.guarantor_id))


def test_replace_the_card_through_a_new_setup_page(
    stripe_world: tuple[PortalWorld, FakeStripe],
) -> None:
    world, fake = stripe_world
    _add_baa(world)
    client = world.login()
    _plan_with_autopay(client, world)
    _webhook(world.client(), fake, "pm_card_visa")
    plan = _plan(world)
    csrf, attempt, page = _form(client, f"/pay/plans/{plan.id}/autopay")
    assert "Replace the card" in page
    # Without the authorization box ticked: refused, nothing called or stored.
    calls = len(fake.requests)
    refused = client.post(
        f"/pay/plans/{plan.id}/autopay/card", data={"csrf_token": csrf, "attempt": attempt}
    )
    assert refused.status_code == 422
    assert "Tick the box to authorize automatic payments." in refused.text
    assert len(fake.requests) == calls
    assert len(_enrollments(world)) == 1
    started = client.post(
        f"/pay/plans/{plan.id}/autopay/card",
        data={"csrf_token": csrf, "attempt": attempt, "autopay": "yes"},
    )
    assert started.status_code == 200
    assert SETUP_LINK_RE.search(started.text)
    assert sorted(e.kind for e in _enrollments(world)) == ["enroll", "replace"]
    hook = _webhook(world.client(), fake, "pm_card_mastercard")
    assert hook.json() == {"outcome": "posted"}
    page = client.get(f"/pay/plans/{plan.id}/autopay").text
    assert "Autopay is on with Mastercard •••• 4444. Expires 03/2030." in page
    with world.db.system_session() as session:
        statuses = {m.last4: m.status for m in session.scalars(select(SavedPaymentMethod))}
    assert statuses == {"4242": "removed", "4444": "active"}


def test_bad_webhooks_through_the_app_change_nothing(
    stripe_world: tuple[PortalWorld, FakeStripe],
) -> None:
    world, fake = stripe_world
    _add_baa(world)
    client = world.login()
    _plan_with_autopay(client, world)
    cs, _ = fake.complete_setup(sorted(fake.sessions)[-1], "pm_card_visa")
    body = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {"object": cs},
        }
    )
    hooks = world.client()
    unsigned = hooks.post("/hooks/stripe", content=body.encode())
    forged = hooks.post(
        "/hooks/stripe",
        content=body.encode(),
        headers={
            "stripe-signature": stripe.WebhookSignature.generate_signature_header(
                body, "whsec_attacker"
            )
        },
    )
    assert (unsigned.status_code, forged.status_code) == (400, 400)
    good = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    assert hooks.post(
        "/hooks/stripe", content=body.encode(), headers={"stripe-signature": good}
    ).json() == {"outcome": "posted"}
    replay = hooks.post(
        "/hooks/stripe",
        content=body.encode(),
        headers={
            "stripe-signature": stripe.WebhookSignature.generate_signature_header(body, SECRET)
        },
    )
    assert (replay.status_code, replay.json()) == (400, {"error": "replayed"})
    assert world.count(WebhookEvent) == 1
    assert world.count(SavedPaymentMethod) == 1


def test_no_business_associate_agreement_stores_nothing(
    stripe_world: tuple[PortalWorld, FakeStripe],
) -> None:
    world, fake = stripe_world
    client = world.login()
    response = _plan_with_autopay(client, world)
    assert response.status_code == 422
    assert "Online payments are not available right now." in response.text
    assert fake.requests == []
    assert world.count(PaymentPlan) == 0
    assert _enrollments(world) == []
    assert audit_events(world.db, "plan.create") == []


def test_another_guarantor_cannot_reach_the_autopay_page(
    stripe_world: tuple[PortalWorld, FakeStripe],
) -> None:
    world, fake = stripe_world
    _add_baa(world)
    alice = world.login()
    _plan_with_autopay(alice, world)
    _webhook(world.client(), fake, "pm_card_visa")
    plan = _plan(world)
    bob = world.login(world.bob)
    assert bob.get(f"/pay/plans/{plan.id}/autopay").status_code == 404
    csrf = csrf_of(bob.get("/pay/bill").text)
    assert (
        bob.post(f"/pay/plans/{plan.id}/autopay/off", data={"csrf_token": csrf}).status_code == 404
    )
    assert bob.get(f"/pay/plans/{uuid.uuid4()}/autopay").status_code == 404
    assert _plan(world).autopay is True
    assert audit_events(world.db, "plan.autopay_off") == []


def test_sandbox_autopay_page_turns_off_and_on_with_test_cards(world: PortalWorld) -> None:
    client = world.login()
    csrf, attempt, _ = _form(client, f"/pay/accounts/{world.alice.account_id}/plan")
    created = client.post(
        f"/pay/accounts/{world.alice.account_id}/plan",
        data={
            "csrf_token": csrf,
            "attempt": attempt,
            "installments": "6",
            "autopay": "yes",
            "card": "pm_sandbox_visa",
        },
    )
    assert created.status_code == 303
    plan = _plan(world)
    csrf, _, page = _form(client, f"/pay/plans/{plan.id}/autopay")
    assert "Autopay is on with Visa •••• 4242." in page
    client.post(f"/pay/plans/{plan.id}/autopay/off", data={"csrf_token": csrf})
    assert _plan(world).autopay is False
    csrf, attempt, page = _form(client, f"/pay/plans/{plan.id}/autopay")
    # Only the documented test-card tokens: a typed card number is refused unsent.
    refused = client.post(
        f"/pay/plans/{plan.id}/autopay/card",
        data={
            "csrf_token": csrf,
            "attempt": attempt,
            "autopay": "yes",
            "card": "4242424242424242",
        },
    )
    assert refused.status_code == 422
    assert "Choose a card for autopay, or leave autopay off." in refused.text
    assert _plan(world).autopay is False
    assert world.count(SavedPaymentMethod) == 1
    csrf, attempt, page = _form(client, f"/pay/plans/{plan.id}/autopay")
    on = client.post(
        f"/pay/plans/{plan.id}/autopay/card",
        data={
            "csrf_token": csrf,
            "attempt": attempt,
            "autopay": "yes",
            "card": "pm_sandbox_mastercard",
        },
    )
    assert (on.status_code, on.headers["location"]) == (
        303,
        f"/pay/plans/{plan.id}/autopay?done=on",
    )
    assert "Autopay is on with Mastercard •••• 4444." in client.get(on.headers["location"]).text
    assert _plan(world).autopay is True
    assert [e["details"]["kind"] for e in audit_events(world.db, "plan.autopay_on")] == ["enroll"]
    assert len(audit_events(world.db, "plan.autopay_off")) == 1


def test_spanish_pages(stripe_world: tuple[PortalWorld, FakeStripe]) -> None:
    world, fake = stripe_world
    _add_baa(world)
    client = world.login(lang="es")
    _, _, form = _form(client, f"/pay/accounts/{world.alice.account_id}/plan")
    assert "Escribirá su tarjeta en la página segura" in form
    started = _plan_with_autopay(client, world)
    assert "Continuar a la página segura de la tarjeta" in started.text
    plan = _plan(world)
    page = client.get(f"/pay/plans/{plan.id}/autopay").text
    assert title_of(page).startswith("Pago automático · ")
    assert "Estamos esperando que el procesador de tarjetas confirme su tarjeta." in page
    _webhook(world.client(), fake, "pm_card_visa")
    page = client.get(f"/pay/plans/{plan.id}/autopay").text
    assert "El pago automático está activado con Visa •••• 4242." in page
