"""Webhooks: verified with the signature scheme (the SDK's for Stripe); forged, replayed,
stale and future-dated events are refused and post nothing."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carecollect.payment.models import Payment, PaymentReversal, WebhookEvent
from carecollect.payment.processor import PaymentProcessor, WebhookRejected
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment.service import payment_service
from carecollect.payment.stripe_adapter import StripeProcessor
from carecollect.payment.webhooks import router
from tests.factories import audit_events
from tests.payment.world import World, make_world

SECRET = "whsec_test_secret"


def _intent(world: World, amount: int, pid: str = "pi_hook_1") -> dict[str, Any]:
    return {"id": pid, "object": "payment_intent", "amount": amount, "amount_received": amount,
            "status": "succeeded",
            "metadata": {"organization_id": str(world.org_id),
                         "account_id": str(world.account_id),
                         "guarantor_id": str(world.guarantor_id), "source": "portal"}}


def _body(event_type: str, obj: dict[str, Any], event_id: str = "evt_1",
          created: int | None = None) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": event_type,
                       "created": created or int(time.time()), "livemode": False,
                       "data": {"object": obj}}).encode()


def _handle(world: World, processor: PaymentProcessor, payload: bytes, header: str | None,
            now: datetime | None = None) -> str:
    return payment_service.handle_webhook(world.db, keys_for=lambda _org: world.tenant.keys,
                                          processor=processor, payload=payload,
                                          signature_header=header, now=now)


def _stripe_header(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    # The SDK's own signing helper (what the stripe CLI uses for test events).
    return stripe.WebhookSignature.generate_signature_header(  # type: ignore[no-any-return]
        payload.decode(), secret, timestamp=timestamp)


@pytest.fixture
def stripe_processor() -> StripeProcessor:
    return StripeProcessor("sk_test_local", SECRET, api_base="http://127.0.0.1:9")


def test_signed_stripe_event_posts_once_and_replay_is_refused(db, stripe_processor) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db, payments_baa=True)
    payload = _body("payment_intent.succeeded", _intent(world, 4_000))
    header = _stripe_header(payload)
    assert _handle(world, stripe_processor, payload, header) == "posted"
    assert world.balance() == 11_000
    with pytest.raises(WebhookRejected) as replay:
        _handle(world, stripe_processor, payload, header)
    assert replay.value.reason == "replayed"
    # A replay re-signed with a fresh timestamp is still the same event id.
    with pytest.raises(WebhookRejected, match="replayed"):
        _handle(world, stripe_processor, payload, _stripe_header(payload))
    assert world.count(Payment) == 1
    assert world.count(WebhookEvent) == 1
    assert world.balance() == 11_000
    [event] = audit_events(db, "payment.post")
    assert (event["actor_type"], event["actor_id"]) == ("webhook", "stripe")


def test_same_payment_in_two_events_posts_once(db, stripe_processor) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db, payments_baa=True)
    for event_id in ("evt_a", "evt_b"):
        payload = _body("payment_intent.succeeded", _intent(world, 4_000), event_id=event_id)
        _handle(world, stripe_processor, payload, _stripe_header(payload))
    assert world.count(Payment) == 1
    assert world.count(WebhookEvent) == 2
    assert world.balance() == 11_000


@pytest.mark.parametrize(("mutate", "reason"), [
    ("wrong_secret", "bad signature"),
    ("tampered_body", "bad signature"),
    ("no_header", "bad signature"),
    ("garbage_header", "bad signature"),
    ("stale", "stale"),
    ("future", "timestamp in the future"),
])
def test_forged_or_stale_stripe_events_post_nothing(db, stripe_processor, mutate: str,  # type: ignore[no-untyped-def]
                                                    reason: str) -> None:
    world = make_world(db, payments_baa=True)
    payload = _body("payment_intent.succeeded", _intent(world, 4_000))
    header: str | None = _stripe_header(payload)
    if mutate == "wrong_secret":
        header = _stripe_header(payload, secret="whsec_attacker")
    elif mutate == "tampered_body":
        payload = payload.replace(b'"amount": 4000', b'"amount": 1')
    elif mutate == "no_header":
        header = None
    elif mutate == "garbage_header":
        header = "t=abc,v0=zzz"
    elif mutate == "stale":
        header = _stripe_header(payload, timestamp=int(time.time()) - 301)
    elif mutate == "future":
        header = _stripe_header(payload, timestamp=int(time.time()) + 600)
    with pytest.raises(WebhookRejected) as info:
        _handle(world, stripe_processor, payload, header)
    assert info.value.reason == reason
    assert world.count(Payment) == 0
    assert world.count(WebhookEvent) == 0
    assert world.balance() == 15_000


def test_sandbox_events_use_the_same_scheme(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    sandbox = SandboxProcessor(webhook_secret=SECRET)
    now = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    ts = int(now.timestamp())
    payload = sandbox.event_payload("payment_intent.succeeded", _intent(world, 2_500, "sbx_pi_1"),
                                    event_id="evt_s1", created=ts)
    assert sandbox.sign(payload, timestamp=ts) == _stripe_header(payload, timestamp=ts)
    with pytest.raises(WebhookRejected, match="stale"):
        _handle(world, sandbox, payload, sandbox.sign(payload, timestamp=ts),
                now=now + timedelta(minutes=6))
    header = sandbox.sign(payload, timestamp=ts)
    assert _handle(world, sandbox, payload, header, now=now) == "posted"
    assert world.balance() == 12_500


def test_refund_and_dispute_events_reverse_the_payment(db, stripe_processor) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db, payments_baa=True)
    paid = _body("payment_intent.succeeded", _intent(world, 8_000, "pi_r"), event_id="evt_p")
    _handle(world, stripe_processor, paid, _stripe_header(paid))
    refund = _body("refund.created", {"id": "re_1", "object": "refund", "amount": 3_000,
                                      "payment_intent": "pi_r", "status": "succeeded"},
                   event_id="evt_r")
    assert _handle(world, stripe_processor, refund, _stripe_header(refund)) == "posted"
    dispute = _body("charge.dispute.created", {"id": "dp_1", "object": "dispute",
                                               "amount": 5_000, "payment_intent": "pi_r",
                                               "reason": "fraudulent"}, event_id="evt_d")
    assert _handle(world, stripe_processor, dispute, _stripe_header(dispute)) == "posted"
    assert world.count(PaymentReversal) == 2
    assert world.balance() == 15_000
    [payment] = world.payments()
    assert (payment.status, payment.reversed_cents) == ("charged_back", 8_000)


def test_events_for_unknown_accounts_are_ignored(db, stripe_processor) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db, payments_baa=True)
    obj = _intent(world, 1_000)
    obj["metadata"] = {}
    payload = _body("payment_intent.succeeded", obj)
    assert _handle(world, stripe_processor, payload, _stripe_header(payload)) == "ignored"
    other = _body("customer.created", {"id": "cus_1", "metadata": {
        "organization_id": str(world.org_id)}}, event_id="evt_2")
    assert _handle(world, stripe_processor, other, _stripe_header(other)) == "ignored"
    assert world.count(Payment) == 0


def test_router_answers_400_and_posts_nothing_on_a_forgery(db, stripe_processor) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db, payments_baa=True)
    app = FastAPI()
    app.include_router(router)
    app.state.db = db
    app.state.keys_for = lambda _org: world.tenant.keys
    app.state.payment_processors = {"stripe": stripe_processor}
    client = TestClient(app)
    payload = _body("payment_intent.succeeded", _intent(world, 4_000))
    forged = client.post("/hooks/stripe", content=payload,
                         headers={"Stripe-Signature": _stripe_header(payload, "whsec_x")})
    assert (forged.status_code, forged.json()) == (400, {"error": "bad signature"})
    good = client.post("/hooks/stripe", content=payload,
                       headers={"Stripe-Signature": _stripe_header(payload)})
    assert (good.status_code, good.json()) == (200, {"outcome": "posted"})
    again = client.post("/hooks/stripe", content=payload,
                        headers={"Stripe-Signature": _stripe_header(payload)})
    assert (again.status_code, again.json()) == (400, {"error": "replayed"})
    assert client.post("/hooks/nope", content=b"{}").status_code == 404
    assert world.count(Payment) == 1
