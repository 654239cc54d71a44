"""The Stripe adapter with the official SDK against a local test server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from carecollect.audit import Actor
from carecollect.payment.models import Payment
from carecollect.payment.processor import PaymentDeclined, ProcessorUnavailable
from carecollect.payment.service import payment_service
from carecollect.payment.stripe_adapter import StripeProcessor
from tests.payment.stripe_server import FakeStripe, fake_stripe
from tests.payment.world import make_world

NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
PATIENT = Actor.patient("00000000-0000-7000-8000-0000000000aa")


@pytest.fixture
def stripe_env() -> Iterator[tuple[FakeStripe, StripeProcessor]]:
    with fake_stripe() as (fake, base):
        yield fake, StripeProcessor("sk_test_local", "whsec_test", api_base=base)


def test_payment_intent_for_the_payment_element(db, stripe_env) -> None:  # type: ignore[no-untyped-def]
    fake, processor = stripe_env
    world = make_world(db, payments_baa=True)
    with db.tenant_session(world.org_id) as s:
        session, payment = payment_service.start_payment(
            s, keys=world.tenant.keys, actor=PATIENT, processor=processor,
            account_id=world.account_id, amount="42.10", idempotency_key="portal-1", now=NOW)
    # Not confirmed yet: the browser confirms with the client secret in Stripe's iframe,
    # and the payment posts when the signed webhook arrives.
    assert (session.status, session.amount_cents, payment) == ("requires_action", 4_210, None)
    assert session.client_secret == f"{session.processor_payment_id}_secret_abc"
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/payment_intents")
    assert request.headers["idempotency-key"] == "portal-1"
    assert request.headers["authorization"] == "Bearer sk_test_local"
    assert request.form["amount"] == "4210"
    assert request.form["currency"] == "usd"
    assert request.form["automatic_payment_methods[enabled]"] == "true"
    assert request.form["statement_descriptor_suffix"] == "Lakeside Billing"
    assert request.form["metadata[organization_id]"] == str(world.org_id)
    assert request.form["metadata[account_id]"] == str(world.account_id)
    # Ids and amounts only: no card data, no name, no care details.
    sent = " ".join(f"{k}={v}" for k, v in request.form.items())
    for word in ("card[number]", "Robin", "Testperson", "Cleaning", "ACC-1001"):
        assert word not in sent
    assert world.count(Payment) == 0


def test_confirmed_payment_posts_once_even_when_retried(db, stripe_env) -> None:  # type: ignore[no-untyped-def]
    fake, processor = stripe_env
    world = make_world(db, payments_baa=True)
    ids = []
    for _ in range(2):
        with db.tenant_session(world.org_id) as s:
            session, _ = payment_service.start_payment(
                s, keys=world.tenant.keys, actor=PATIENT, processor=processor,
                account_id=world.account_id, amount="25", idempotency_key="portal-2",
                payment_method="pm_card_visa", now=NOW)
            ids.append(session.processor_payment_id)
    assert ids[0] == ids[1]
    assert [r.form.get("confirm") for r in fake.requests] == ["true", "true"]
    assert world.count(Payment) == 1
    assert world.balance() == 12_500


def test_setup_intent_saves_a_method_for_autopay_and_charges_off_session(db, stripe_env) -> None:  # type: ignore[no-untyped-def]
    fake, processor = stripe_env
    world = make_world(db, payments_baa=True)
    with db.tenant_session(world.org_id) as s:
        setup, method = payment_service.setup_method(
            s, keys=world.tenant.keys, actor=PATIENT, processor=processor,
            guarantor_id=world.guarantor_id, idempotency_key="setup-1",
            payment_method="pm_card_visa", now=NOW)
    assert setup.status == "succeeded"
    assert method is not None
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == ("visa", "4242",
                                                                               12, 2031)
    paths = [r.path for r in fake.requests]
    assert paths == ["/v1/customers", "/v1/setup_intents", "/v1/payment_methods/pm_card_visa"]
    assert fake.requests[1].form["usage"] == "off_session"
    result = processor.charge_saved_method(
        customer_id="cus_test0001", processor_method_id="pm_card_visa", amount_cents=2_500,
        idempotency_key="plan:x:1", metadata={"installment_id": "x"})
    assert (result.status, result.amount_cents) == ("succeeded", 2_500)
    charge = fake.requests[-1].form
    assert (charge["off_session"], charge["confirm"], charge["customer"]) == (
        "true", "true", "cus_test0001")


def test_declines_and_outages_map_to_our_errors(stripe_env) -> None:  # type: ignore[no-untyped-def]
    fake, processor = stripe_env
    with pytest.raises(PaymentDeclined) as declined:
        processor.charge_saved_method(
            customer_id="cus_1", processor_method_id="pm_card_chargeDeclinedInsufficientFunds",
            amount_cents=1_000, idempotency_key="plan:y:1", metadata={})
    assert declined.value.code == "insufficient_funds"
    with pytest.raises(PaymentDeclined) as needs_cardholder:
        processor.charge_saved_method(
            customer_id="cus_1", processor_method_id="pm_card_authenticationRequired",
            amount_cents=1_000, idempotency_key="plan:z:1", metadata={})
    assert needs_cardholder.value.code == "authentication_required"
    fake.fail_next = 1
    with pytest.raises(ProcessorUnavailable):
        processor.refund(processor_payment_id="pi_1", amount_cents=100, idempotency_key="r1")


def test_refund_and_checkout(db, stripe_env) -> None:  # type: ignore[no-untyped-def]
    fake, processor = stripe_env
    world = make_world(db, payments_baa=True)
    with db.tenant_session(world.org_id) as s:
        _, payment = payment_service.start_payment(
            s, keys=world.tenant.keys, actor=PATIENT, processor=processor,
            account_id=world.account_id, amount="60", idempotency_key="portal-3",
            payment_method="pm_card_visa", now=NOW)
        assert payment is not None
        reversal = payment_service.refund(s, keys=world.tenant.keys, actor=PATIENT,
                                          processor=processor, payment_id=payment.id,
                                          amount="10", now=NOW)
    assert reversal.reversal.amount_cents == 1_000
    refund_request = fake.requests[-1]
    assert refund_request.path == "/v1/refunds"
    assert refund_request.form["payment_intent"] == payment.processor_payment_id
    assert world.balance() == 10_000
    checkout = processor.create_checkout(
        amount_cents=5_000, idempotency_key="co-1", metadata={"account_id": "a"},
        success_url="https://pay.example.test/done", cancel_url="https://pay.example.test/",
        product_name="Account payment")
    assert checkout.redirect_url is not None
    assert checkout.redirect_url.startswith("https://checkout.stripe.test/c/cs_test")


def test_build_processor() -> None:
    from carecollect.errors import ConfigurationError
    from carecollect.payment.processors import build_processor
    from carecollect.payment.sandbox import SandboxProcessor

    assert isinstance(build_processor("sandbox"), SandboxProcessor)
    assert isinstance(build_processor("stripe", api_key="sk_test_x", webhook_secret="whsec_y"),
                      StripeProcessor)
    with pytest.raises(ConfigurationError, match="API key"):
        build_processor("stripe")
    with pytest.raises(ConfigurationError, match="live Stripe key"):
        build_processor("stripe", api_key="sk_live_x", webhook_secret="w",
                        api_base="http://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="unknown payment processor"):
        build_processor("paypal")


def test_declined_confirmation_is_a_failed_result_and_posts_nothing(db, stripe_env) -> None:  # type: ignore[no-untyped-def]
    _fake, processor = stripe_env
    world = make_world(db, payments_baa=True)
    with db.tenant_session(world.org_id) as s:
        session, payment = payment_service.start_payment(
            s, keys=world.tenant.keys, actor=PATIENT, processor=processor,
            account_id=world.account_id, amount="25", idempotency_key="portal-d",
            payment_method="pm_card_chargeDeclined", now=NOW)
    assert (session.status, session.failure_code, payment) == ("failed", "card_declined", None)
    assert world.count(Payment) == 0
    assert world.balance() == 15_000
