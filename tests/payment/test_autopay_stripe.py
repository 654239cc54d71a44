"""Autopay enrollment with Stripe: a Checkout Session in `setup` mode on the guarantor's
Customer, the signed setup webhooks (idempotent by event id; forged, stale and replayed
ones change nothing), then off-session charges of the saved card, including a decline
that goes down the plan's retry, grace and missed-payment path. The official SDK talks to
the local Stripe test server; webhooks are signed with the SDK's signing helper."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
import stripe
from sqlalchemy import select

from carecollect.audit import Actor
from carecollect.errors import BadInput, Forbidden, NotFound
from carecollect.payment import autopay
from carecollect.payment.models import AutopayEnrollment, Payment, SavedPaymentMethod, WebhookEvent
from carecollect.payment.processor import ProcessorUnavailable, WebhookRejected
from carecollect.payment.service import payment_service
from carecollect.payment.stripe_adapter import StripeProcessor
from carecollect.payment_plan.models import ChargeAttempt
from carecollect.payment_plan.repository import plan_repository
from carecollect.payment_plan.service import NOTICE_JOB, plan_service
from carecollect.tenant.models import BusinessAssociate
from tests.factories import audit_events
from tests.payment.stripe_server import FakeStripe, fake_stripe
from tests.payment.world import World, make_world
from tests.payment_plan.helpers import create_plan, plan_state, set_policy

SECRET = "whsec_test_autopay"
CREATED = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
START = date(2026, 3, 10)
RETURN = "https://pay.example.test/pay/autopay/return"


@dataclass
class Env:
    world: World
    fake: FakeStripe
    stripe: StripeProcessor
    plan_id: uuid.UUID

    @property
    def patient(self) -> Actor:
        return Actor.patient(self.world.guarantor_id)


@pytest.fixture
def env(db) -> Iterator[Env]:  # type: ignore[no-untyped-def]
    with fake_stripe() as (fake, base):
        world = make_world(db, payments_baa=True, mailing_tz="America/New_York")
        set_policy(world)
        plan_id = create_plan(
            world, now=CREATED, start_on=START, installments=3, created_by="patient"
        )
        yield Env(world, fake, StripeProcessor("sk_test_local", SECRET, api_base=base), plan_id)


def _start(env: Env, key: str = "portal:s1:attempt-1", *, consent: bool = True) -> str:
    with env.world.db.tenant_session(env.world.org_id) as s:
        return autopay.start_hosted_enrollment(
            s,
            keys=env.world.tenant.keys,
            actor=env.patient,
            processor=env.stripe,
            guarantor_id=env.world.guarantor_id,
            plan_id=env.plan_id,
            consent=consent,
            idempotency_key=key,
            success_url=RETURN,
            cancel_url=RETURN,
            now=CREATED,
        )


def _enrollments(env: Env) -> list[AutopayEnrollment]:
    with env.world.db.system_session() as s:
        return list(
            s.scalars(
                select(AutopayEnrollment).order_by(
                    AutopayEnrollment.created_at, AutopayEnrollment.id
                )
            )
        )


def _methods(env: Env) -> list[tuple[str, str, str, int | None, int | None, str]]:
    with env.world.db.system_session() as s:
        return [
            (m.processor_method_id, m.brand, m.last4, m.exp_month, m.exp_year, m.status)
            for m in s.scalars(
                select(SavedPaymentMethod).order_by(
                    SavedPaymentMethod.created_at, SavedPaymentMethod.id
                )
            )
        ]


def _body(event_type: str, obj: dict[str, Any], event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


def _header(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(  # type: ignore[no-any-return]
        payload.decode(), secret, timestamp=timestamp
    )


def _deliver(env: Env, payload: bytes, header: str | None) -> str:
    return payment_service.handle_webhook(
        env.world.db,
        keys_for=lambda _org: env.world.tenant.keys,
        processor=env.stripe,
        payload=payload,
        signature_header=header,
    )


def _complete(
    env: Env, card: str = "pm_card_visa", session_id: str | None = None
) -> tuple[bytes, bytes]:
    """The patient saved `card` on the hosted page: the two signed-webhook bodies."""
    cs, seti = env.fake.complete_setup(session_id or sorted(env.fake.sessions)[-1], card)
    return (
        _body("checkout.session.completed", cs, f"evt_cs_{cs['id']}"),
        _body("setup_intent.succeeded", seti, f"evt_si_{seti['id']}"),
    )


def test_setup_mode_checkout_on_the_guarantors_customer_with_ids_only(env: Env) -> None:
    url = _start(env)
    assert url.startswith("https://checkout.stripe.test/c/cs_test")
    customer, checkout = env.fake.requests
    assert customer.path == "/v1/customers"
    assert customer.headers["idempotency-key"] == (
        f"customer:{env.world.org_id}:{env.world.guarantor_id}"
    )
    assert checkout.path == "/v1/checkout/sessions"
    form = checkout.form
    assert (form["mode"], form["payment_method_types[0]"]) == ("setup", "card")
    assert form["customer"] == "cus_test0001"
    assert (form["success_url"], form["cancel_url"]) == (RETURN, RETURN)
    [enrollment] = _enrollments(env)
    expected = {
        "organization_id": str(env.world.org_id),
        "guarantor_id": str(env.world.guarantor_id),
        "plan_id": str(env.plan_id),
        "enrollment_id": str(enrollment.id),
        "source": "portal",
    }
    assert {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")} == expected
    assert {
        k[28:-1]: v for k, v in form.items() if k.startswith("setup_intent_data[metadata][")
    } == expected
    # Ids only: no amount, no name, no account number, no care details, no card fields.
    assert set(form) == {
        "mode",
        "customer",
        "payment_method_types[0]",
        "success_url",
        "cancel_url",
        *(f"metadata[{k}]" for k in expected),
        *(f"setup_intent_data[metadata][{k}]" for k in expected),
    }
    assert checkout.headers["idempotency-key"] == "autopay:portal:s1:attempt-1"
    assert (
        enrollment.status,
        enrollment.kind,
        enrollment.processor_customer_id,
        enrollment.processor_setup_id,
    ) == ("pending", "enroll", "cus_test0001", "seti_test0003")
    plan, _ = plan_state(env.world, env.plan_id)
    assert (plan.autopay, plan.payment_method_id) == (False, None)  # until the webhook
    [event] = audit_events(env.world.db, "plan.autopay_setup")
    assert event["details"] == {
        "enrollment_id": str(enrollment.id),
        "kind": "enroll",
        "processor": "stripe",
    }


def test_double_submit_is_one_session_and_the_customer_id_is_reused(env: Env) -> None:
    first = _start(env)
    assert _start(env) == first  # same key: Stripe answers with its first session
    assert len(_enrollments(env)) == 1
    assert len(audit_events(env.world.db, "plan.autopay_setup")) == 1
    _start(env, key="portal:s1:attempt-2")  # a new form: a new session, same Customer
    assert [r.path for r in env.fake.requests].count("/v1/customers") == 1
    assert {e.processor_customer_id for e in _enrollments(env)} == {"cus_test0001"}


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("no_consent", BadInput),
        ("no_baa", Forbidden),
        ("plan_not_live", BadInput),
        ("other_guarantor", NotFound),
    ],
)
def test_refused_enrollment_calls_nothing_and_stores_nothing(
    env: Env, case: str, error: type[Exception]
) -> None:
    consent = case != "no_consent"
    with env.world.db.tenant_session(env.world.org_id) as s:
        if case == "no_baa":
            for row in s.scalars(select(BusinessAssociate)):
                row.baa_status = "terminated"
        if case == "plan_not_live":
            plan = plan_repository.plan(s, env.plan_id)
            assert plan is not None
            plan.status = "completed"
    guarantor = uuid.uuid4() if case == "other_guarantor" else env.world.guarantor_id
    with pytest.raises(error), env.world.db.tenant_session(env.world.org_id) as s:
        autopay.start_hosted_enrollment(
            s,
            keys=env.world.tenant.keys,
            actor=env.patient,
            processor=env.stripe,
            guarantor_id=guarantor,
            plan_id=env.plan_id,
            consent=consent,
            idempotency_key="k1",
            success_url=RETURN,
            cancel_url=RETURN,
            now=CREATED,
        )
    assert env.fake.requests == []
    assert _enrollments(env) == []
    assert audit_events(env.world.db, "plan.autopay_setup") == []


def test_signed_webhooks_save_the_card_and_turn_autopay_on_once(env: Env) -> None:
    _start(env)
    completed, succeeded = _complete(env)
    assert _deliver(env, completed, _header(completed)) == "posted"
    # The SetupIntent and its method were fetched from Stripe, not taken from the body.
    assert [r.path for r in env.fake.requests[-2:]] == [
        "/v1/setup_intents/seti_test0003",
        "/v1/payment_methods/pm_card_visa",
    ]
    assert _methods(env) == [("pm_card_visa", "visa", "4242", 12, 2031, "active")]
    plan, _ = plan_state(env.world, env.plan_id)
    [enrollment] = _enrollments(env)
    assert (plan.autopay, plan.payment_method_id) == (True, enrollment.payment_method_id)
    assert enrollment.status == "completed"
    with env.world.db.system_session() as s:
        method = s.get(SavedPaymentMethod, enrollment.payment_method_id)
        assert method is not None
        assert method.autopay_consented_at == enrollment.consented_at
        assert method.processor_customer_id == "cus_test0001"
    # The second event of the same setup is recorded and changes nothing.
    assert _deliver(env, succeeded, _header(succeeded)) == "duplicate"
    # A replay (same event id, even freshly signed) is refused before any Stripe call.
    calls = len(env.fake.requests)
    with pytest.raises(WebhookRejected, match="replayed"):
        _deliver(env, completed, _header(completed))
    assert len(env.fake.requests) == calls
    assert len(_methods(env)) == 1
    assert env.world.count(WebhookEvent) == 2
    [on] = audit_events(env.world.db, "plan.autopay_on")
    assert (on["actor_type"], on["actor_id"]) == ("webhook", "stripe")
    assert on["details"]["kind"] == "enroll"
    assert len(audit_events(env.world.db, "payment_method.create")) == 1


def test_setup_intent_event_alone_also_completes(env: Env) -> None:
    _start(env)
    _completed, succeeded = _complete(env, card="pm_card_mastercard")
    assert _deliver(env, succeeded, _header(succeeded)) == "posted"
    assert _methods(env) == [("pm_card_mastercard", "mastercard", "4444", 3, 2030, "active")]
    assert plan_state(env.world, env.plan_id)[0].autopay is True


@pytest.mark.parametrize("mutate", ["unsigned", "wrong_secret", "tampered", "stale"])
def test_forged_or_stale_setup_webhooks_change_nothing(env: Env, mutate: str) -> None:
    _start(env)
    completed, _ = _complete(env)
    header: str | None = _header(completed)
    if mutate == "unsigned":
        header = None
    elif mutate == "wrong_secret":
        header = _header(completed, secret="whsec_attacker")
    elif mutate == "tampered":
        completed = completed.replace(b"seti_test", b"seti_evil")
    elif mutate == "stale":
        header = _header(completed, timestamp=int(time.time()) - 301)
    calls = len(env.fake.requests)
    with pytest.raises(WebhookRejected):
        _deliver(env, completed, header)
    assert len(env.fake.requests) == calls
    assert env.world.count(WebhookEvent) == 0
    assert _methods(env) == []
    assert [e.status for e in _enrollments(env)] == ["pending"]
    assert plan_state(env.world, env.plan_id)[0].autopay is False


def test_mismatched_setup_is_ignored(env: Env) -> None:
    _start(env)
    cs, _seti = env.fake.complete_setup(sorted(env.fake.sessions)[-1], "pm_card_visa")
    # Signed, but naming a Checkout Session that is not the enrollment's.
    forged = _body("checkout.session.completed", {**cs, "id": "cs_test_other"}, "evt_x1")
    assert _deliver(env, forged, _header(forged)) == "ignored"
    # A payment-mode session is not an enrollment.
    payment_mode = _body("checkout.session.completed", {**cs, "mode": "payment"}, "evt_x2")
    assert _deliver(env, payment_mode, _header(payment_mode)) == "ignored"
    assert _methods(env) == []
    assert plan_state(env.world, env.plan_id)[0].autopay is False


def test_stripe_unreachable_records_nothing_and_the_redelivery_completes(env: Env) -> None:
    _start(env)
    completed, _ = _complete(env)
    env.fake.fail_next = 1
    with pytest.raises(ProcessorUnavailable):
        _deliver(env, completed, _header(completed))
    assert env.world.count(WebhookEvent) == 0
    assert _methods(env) == []
    assert _deliver(env, completed, _header(completed)) == "posted"


def test_turning_off_cancels_a_pending_enrollment_and_a_late_webhook_changes_nothing(
    env: Env,
) -> None:
    _start(env)
    with env.world.db.tenant_session(env.world.org_id) as s:
        assert (
            autopay.turn_off(
                s, actor=env.patient, guarantor_id=env.world.guarantor_id, plan_id=env.plan_id
            )
            is True
        )
    completed, _ = _complete(env)
    assert _deliver(env, completed, _header(completed)) == "ignored"
    assert [e.status for e in _enrollments(env)] == ["canceled"]
    assert _methods(env) == []
    assert plan_state(env.world, env.plan_id)[0].autopay is False
    [off] = audit_events(env.world.db, "plan.autopay_off")
    assert off["details"] == {"was_on": False, "cancelled_enrollments": 1}


def test_replacing_the_card_retires_the_old_one_and_off_stops_charges(env: Env) -> None:
    _start(env)
    completed, _ = _complete(env)
    _deliver(env, completed, _header(completed))
    _start(env, key="portal:s1:attempt-2")
    [second] = [e for e in _enrollments(env) if e.status == "pending"]
    assert second.kind == "replace"
    completed, _ = _complete(env, card="pm_card_mastercard")
    assert _deliver(env, completed, _header(completed)) == "posted"
    assert _methods(env) == [
        ("pm_card_visa", "visa", "4242", 12, 2031, "removed"),
        ("pm_card_mastercard", "mastercard", "4444", 3, 2030, "active"),
    ]
    plan, items = plan_state(env.world, env.plan_id)
    [replaced] = [e for e in _enrollments(env) if e.kind == "replace"]
    assert plan.payment_method_id == replaced.payment_method_id
    assert [e["details"]["kind"] for e in audit_events(env.world.db, "plan.autopay_on")] == [
        "enroll",
        "replace",
    ]
    with env.world.db.tenant_session(env.world.org_id) as s:
        assert (
            autopay.turn_off(
                s, actor=env.patient, guarantor_id=env.world.guarantor_id, plan_id=env.plan_id
            )
            is True
        )
        assert (
            autopay.turn_off(
                s, actor=env.patient, guarantor_id=env.world.guarantor_id, plan_id=env.plan_id
            )
            is False
        )
    outcome = plan_service.charge_installment(
        env.world.db,
        keys=env.world.tenant.keys,
        processor=env.stripe,
        installment_id=items[0].id,
        now=datetime(2026, 3, 10, 15, 0, tzinfo=UTC),
    )
    assert outcome.status == "skipped"
    assert not [r for r in env.fake.requests if r.path == "/v1/payment_intents"]
    assert len(audit_events(env.world.db, "plan.autopay_off")) == 1


def test_installment_charged_off_session_with_the_saved_card(env: Env) -> None:
    _start(env)
    completed, _ = _complete(env)
    _deliver(env, completed, _header(completed))
    _, items = plan_state(env.world, env.plan_id)
    due = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York: past the 09:00 hour
    outcome = plan_service.charge_installment(
        env.world.db,
        keys=env.world.tenant.keys,
        processor=env.stripe,
        installment_id=items[0].id,
        now=due,
    )
    assert outcome.status == "paid"
    [charge] = [r for r in env.fake.requests if r.path == "/v1/payment_intents"]
    assert (charge.form["off_session"], charge.form["confirm"]) == ("true", "true")
    assert (charge.form["customer"], charge.form["payment_method"]) == (
        "cus_test0001",
        "pm_card_visa",
    )
    assert charge.form["amount"] == str(items[0].amount_cents)
    assert charge.headers["idempotency-key"] == f"plan:{items[0].id}:1"
    [payment] = env.world.payments()
    assert (payment.source, payment.amount_cents, payment.installment_id) == (
        "autopay",
        items[0].amount_cents,
        items[0].id,
    )
    assert plan_state(env.world, env.plan_id)[1][0].status == "paid"


@pytest.mark.parametrize(
    ("card", "code"),
    [
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_authenticationRequired", "authentication_required"),
    ],
)
def test_declined_off_session_charge_goes_down_the_failed_payment_path(
    env: Env,
    card: str,
    code: str,
) -> None:
    _start(env)
    completed, _ = _complete(env, card=card)
    assert _deliver(env, completed, _header(completed)) == "posted"
    _, items = plan_state(env.world, env.plan_id)
    first = items[0].id
    for day in (10, 13, 17):  # the due date, then the policy's retries (3 and 7 days)
        outcome = plan_service.charge_installment(
            env.world.db,
            keys=env.world.tenant.keys,
            processor=env.stripe,
            installment_id=first,
            now=datetime(2026, 3, day, 15, 0, tzinfo=UTC),
        )
        assert (outcome.status, outcome.code) == ("declined", code)
    assert env.world.count(Payment) == 0
    assert env.world.balance() == 15_000
    with env.world.db.tenant_session(env.world.org_id) as s:
        failed = plan_repository.failed_charges(s, since=CREATED)
        assert len(failed) == 3  # the staff work list of failed payments
        assert {a.failure_code for a in s.scalars(select(ChargeAttempt))} == {code}
    # Grace over (10 days after the due date): missed, and the missed-payment e-mail job.
    assert plan_service.sweep(env.world.db, now=datetime(2026, 3, 21, 15, 0, tzinfo=UTC)) == {
        "charges_enqueued": 0,
        "missed": 1,
    }
    assert [j.args for j in env.world.jobs(NOTICE_JOB)] == [{"installment_id": str(first)}]
    assert [e["details"]["code"] for e in audit_events(env.world.db, "plan.charge")] == [code] * 3


def test_an_expired_setup_page_ends_the_pending_state(env: Env) -> None:
    _start(env)
    [enrollment] = _enrollments(env)
    session = dict(env.fake.sessions[enrollment.processor_session_id], status="expired")
    other = _body("checkout.session.expired", {**session, "id": "cs_test_other"}, "evt_e0")
    assert _deliver(env, other, _header(other)) == "ignored"
    expired = _body("checkout.session.expired", session, "evt_e1")
    calls = len(env.fake.requests)
    assert _deliver(env, expired, _header(expired)) == "posted"
    assert len(env.fake.requests) == calls  # nothing to fetch from Stripe
    assert [e.status for e in _enrollments(env)] == ["expired"]
    with env.world.db.tenant_session(env.world.org_id) as s:
        view = autopay.autopay_view(s, guarantor_id=env.world.guarantor_id, plan_id=env.plan_id)
    assert (view.autopay, view.pending) == (False, False)
    # The setup can no longer complete: its late success event changes nothing.
    completed, _ = _complete(env)
    assert _deliver(env, completed, _header(completed)) == "ignored"
    assert _methods(env) == []
