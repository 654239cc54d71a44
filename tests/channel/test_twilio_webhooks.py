"""Twilio webhooks through the FastAPI router: signatures made with the SDK's own
RequestValidator; forged or unsigned callbacks are rejected and change nothing."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from carecollect.channel.webhooks import TwilioWebhooks, make_router
from carecollect.consent.models import Consent, Revocation
from carecollect.db import Database
from carecollect.outreach.outbox import OutreachAttempt, ReviewItem
from carecollect.tenant.models import Organization
from tests.channel.fakes import AUTH_TOKEN, fake_twilio
from tests.channel.world import (
    BASE,
    World,
    make_worker,
    make_world,
    moving_clock,
    plan,
    twilio_provider,
)

PUBLIC = "https://hooks.example.org"


def _client(world: World) -> TestClient:
    hooks = TwilioWebhooks(world.db, world.tenant.manager, AUTH_TOKEN,
                           callback_phone="+1 617 555 0100", clock=moving_clock(BASE))
    app = FastAPI()
    app.include_router(make_router(hooks, public_base_url=PUBLIC))
    return TestClient(app)


def _slug(world: World) -> str:
    with world.db.system_session() as session:
        org = session.get(Organization, world.tenant.id)
        assert org is not None
        return org.slug


def _signed(path: str, params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature":
            RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, params)}


def _revocations(db: Database) -> int:
    with db.system_session() as session:
        return len(session.scalars(select(Revocation)).all())


def test_signed_stop_revokes_and_replies_once(db: Database) -> None:
    world = make_world(db, 1)
    client = _client(world)
    path = f"/hooks/twilio/{_slug(world)}/inbound"
    params = {"From": world.debtors[0].phone, "To": "+16175550000", "Body": "STOP",
              "MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32}
    response = client.post(path, data=params, headers=_signed(path, params))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Message>Lakeside Billing: You are unsubscribed" in response.text
    assert _revocations(db) == 1
    again = client.post(path, data=params, headers=_signed(path, params))
    assert again.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'


def test_forged_and_unsigned_callbacks_are_rejected(db: Database) -> None:
    world = make_world(db, 1)
    client = _client(world)
    path = f"/hooks/twilio/{_slug(world)}/inbound"
    params = {"From": world.debtors[0].phone, "Body": "STOP"}
    unsigned = client.post(path, data=params)
    forged_sig = RequestValidator("not-the-token").compute_signature(PUBLIC + path, params)
    forged = client.post(path, data=params, headers={"X-Twilio-Signature": forged_sig})
    tampered = client.post(path, data={**params, "Body": "START"},
                           headers=_signed(path, params))
    wrong_url = client.post(path, data=params, headers={
        "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(
            "https://evil.example.org" + path, params)})
    assert [r.status_code for r in (unsigned, forged, tampered, wrong_url)] == [403] * 4
    assert _revocations(db) == 0


def test_inbound_attorney_message_enters_review_queue(db: Database) -> None:
    world = make_world(db, 1)
    client = _client(world)
    path = f"/hooks/twilio/{_slug(world)}/inbound"
    params = {"From": world.debtors[0].phone, "Body": "I have a lawyer now, contact my attorney"}
    assert client.post(path, data=params, headers=_signed(path, params)).status_code == 200
    with db.system_session() as session:
        items = session.scalars(select(ReviewItem)).all()
    assert [(i.kind, i.state) for i in items] == [("attorney", "open")]


def test_start_keyword_records_consent(db: Database) -> None:
    world = make_world(db, 1, consent=False)
    client = _client(world)
    path = f"/hooks/twilio/{_slug(world)}/inbound"
    params = {"From": world.debtors[0].phone, "Body": "START"}
    response = client.post(path, data=params, headers=_signed(path, params))
    assert "subscribed again" in response.text
    with db.system_session() as session:
        consents = session.scalars(select(Consent)).all()
    assert [(c.kind, c.method, c.source) for c in consents] == [
        ("tcpa_pec", "sms_keyword", "inbound_sms")]


def test_signed_status_callback_settles_an_unknown_attempt(db: Database) -> None:
    world = make_world(db, 1)
    slug = _slug(world)
    client = _client(world)
    with fake_twilio(faults=["timeout"], slow_seconds=1.5) as twilio:
        provider = twilio_provider(twilio.base_url, timeout=0.5, callback_base_url=PUBLIC)
        attempt_id = plan(world, world.debtors[0], "sms", "k")
        make_worker(world, {"sms": provider}).drain()
        [created] = twilio.messages
    callback = created["status_callback"]
    assert callback == f"{PUBLIC}/hooks/twilio/{slug}/status?attempt={attempt_id}"
    path = callback.removeprefix(PUBLIC)
    params = {"MessageSid": created["sid"], "MessageStatus": "delivered",
              "AccountSid": "AC" + "0" * 32}
    forged = client.post(path, data=params, headers={"X-Twilio-Signature": "AAAA"})
    assert forged.status_code == 403
    with db.system_session() as session:
        assert session.get(OutreachAttempt, attempt_id).state == "unknown"  # type: ignore[union-attr]
    ok = client.post(path, data=params, headers=_signed(path, params))
    assert ok.status_code == 204
    with db.system_session() as session:
        row = session.get(OutreachAttempt, attempt_id)
        assert row is not None
        assert (row.state, row.provider_message_id, row.delivery_status) == (
            "sent", created["sid"], "delivered")
    assert BASE - timedelta(days=1) < BASE
