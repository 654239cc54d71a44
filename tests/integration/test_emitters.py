"""The domains emit their events in the transaction of the change: payments, refunds,
plans (created, defaulted, completed), consent revocations and disputes. Payloads carry no
PHI: a canary person's name, birth date, phone and e-mail appear in no body, no header,
no stored event and no job argument."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from carecollect.consent.service import consent_service
from carecollect.kit.jobs.models import Job
from carecollect.patient.service import patient_service
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment.service import payment_service
from carecollect.payment_plan.service import plan_service
from tests.factories import TEST_ACTOR, add_email, add_phone, create_guarantor
from tests.integration.conftest import Hooks
from tests.payment.world import World
from tests.payment_plan.helpers import create_plan, plan_state, set_policy

NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
CANARY = {
    "first_name": "Quillonex",
    "last_name": "Canarywick",
    "date_of_birth": date(1961, 7, 4),
}
CANARY_VALUES = ["Quillonex", "Canarywick", "1961-07-04", "6175550199", "617-555-0199",
                 "canary.person", "mail.example.org"]


def _world(hooks: Hooks, **guarantor: object) -> World:
    from carecollect.ledger.service import ledger_service

    with hooks.db.tenant_session(hooks.tenant.id) as s:
        g = create_guarantor(s, hooks.tenant, **guarantor)
        account = ledger_service.open_account(
            s, keys=hooks.tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id,
            account_number="ACC-7001", opened_at=datetime(2026, 1, 5, tzinfo=UTC))
        world = World(hooks.db, hooks.tenant, g.id, account.id)
    world.add_charge(10_000, datetime(2026, 1, 10, tzinfo=UTC))
    world.add_charge(5_000, datetime(2026, 2, 10, tzinfo=UTC))
    return world


def _pay(world: World, processor_id: str, cents: int) -> uuid.UUID:
    with world.db.tenant_session(world.org_id) as s:
        result = payment_service.record_payment(
            s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox",
            processor_payment_id=processor_id, account_id=world.account_id,
            amount_cents=cents, received_at=NOW, send_receipt=False)
        return result.payment.id


def _types(hooks: Hooks) -> list[str]:
    return [e.type for e in hooks.events()]


def test_payment_succeeded_once_per_posting_and_refunds(hooks: Hooks) -> None:
    world = _world(hooks)
    payment_id = _pay(world, "pi_sandbox_1", 4_000)
    _pay(world, "pi_sandbox_1", 4_000)  # the same processor payment again: no new event
    assert _types(hooks) == ["payment.succeeded"]
    assert hooks.events()[0].data == {
        "payment_id": str(payment_id), "account_id": str(world.account_id), "plan_id": None,
        "amount_cents": 4_000, "received_at": NOW.isoformat()}
    with world.db.tenant_session(world.org_id) as s:
        reversal = payment_service.record_reversal(
            s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox", kind="refund",
            processor_reversal_id="re_1", processor_payment_id="pi_sandbox_1",
            amount_cents=1_500, at=NOW).reversal
        payment_service.record_reversal(
            s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox",
            kind="chargeback", processor_reversal_id="dp_1",
            processor_payment_id="pi_sandbox_1", amount_cents=2_500, at=NOW)
    assert _types(hooks) == ["payment.succeeded", "payment.refunded", "payment.charged_back"]
    refunded = hooks.events()[1].data
    assert refunded == {
        "payment_id": str(payment_id), "reversal_id": str(reversal.id),
        "account_id": str(world.account_id), "amount_cents": 1_500,
        "reversed_cents": 1_500, "status": "partially_refunded",
        "reversed_at": NOW.isoformat()}
    assert hooks.events()[2].data["status"] == "charged_back"
    # No endpoint is registered: events are kept, nothing is queued.
    assert hooks.deliveries() == []
    assert hooks.jobs() == []


def test_a_rolled_back_change_leaves_no_event_and_no_job(hooks: Hooks) -> None:
    world = _world(hooks)
    hooks.add_endpoint(["payment.succeeded"])

    def failing_request() -> None:
        with world.db.tenant_session(world.org_id) as s:
            payment_service.record_payment(
                s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox",
                processor_payment_id="pi_rolled_back", account_id=world.account_id,
                amount_cents=1_000, received_at=NOW, send_receipt=False)
            raise RuntimeError("the request failed after the posting")

    with pytest.raises(RuntimeError):
        failing_request()
    assert hooks.events() == []
    assert hooks.deliveries() == []
    assert hooks.jobs() == []


def test_plan_created_defaulted_and_completed(hooks: Hooks) -> None:
    world = _world(hooks)
    set_policy(world)
    plan_id = create_plan(world, now=NOW, start_on=date(2026, 3, 10), installments=3)
    _, items = plan_state(world, plan_id)
    with world.db.tenant_session(world.org_id) as s:
        for item in items[:2]:  # the test policy defaults after two misses
            plan_service.mark_missed(s, installment_id=item.id, now=NOW)
    assert _types(hooks) == ["plan.created", "plan.defaulted"]
    created, defaulted = (e.data for e in hooks.events())
    assert created == {"plan_id": str(plan_id), "account_id": str(world.account_id),
                       "total_cents": 15_000, "installments": 3, "autopay": False,
                       "created_by": "staff", "created_at": NOW.isoformat()}
    assert defaulted == {"plan_id": str(plan_id), "account_id": str(world.account_id),
                         "misses": 2, "defaulted_at": NOW.isoformat()}


def test_plan_completed_on_payoff(hooks: Hooks) -> None:
    from carecollect.tenant.models import BusinessAssociate

    world = _world(hooks)
    with world.db.tenant_session(world.org_id) as s:
        s.add(BusinessAssociate(organization_id=world.org_id, name="Sandbox",
                                service="payments", baa_status="active",
                                baa_effective_on=date(2025, 1, 1)))
    set_policy(world)
    plan_id = create_plan(world, now=NOW, start_on=date(2026, 3, 10), installments=3)
    with world.db.tenant_session(world.org_id) as s:
        plan_service.pay_off(s, keys=world.tenant.keys, actor=TEST_ACTOR,
                             processor=SandboxProcessor(), plan_id=plan_id,
                             payment_method="pm_sandbox_visa", now=NOW)
    assert _types(hooks) == ["plan.created", "payment.succeeded", "plan.completed"]
    assert hooks.events()[1].data["plan_id"] == str(plan_id)
    assert hooks.events()[2].data == {"plan_id": str(plan_id),
                                      "account_id": str(world.account_id),
                                      "total_cents": 15_000, "completed_at": NOW.isoformat()}


def test_consent_revoked_and_dispute_received_but_not_other_flags(hooks: Hooks) -> None:
    world = _world(hooks)
    with world.db.tenant_session(world.org_id) as s:
        phone = add_phone(s, hooks.tenant, world.guarantor_id, "+16175550123")
        revocation = consent_service.revoke(
            s, keys=hooks.tenant.keys, actor=TEST_ACTOR, guarantor_id=world.guarantor_id,
            contact_point_id=phone.id, channel="sms", received_at=NOW, method="sms_keyword",
            text="STOP texting me")
        patient_service.raise_flag(
            s, keys=hooks.tenant.keys, actor=TEST_ACTOR, guarantor_id=world.guarantor_id,
            kind="bankruptcy", raised_at=NOW)
        dispute = patient_service.raise_flag(
            s, keys=hooks.tenant.keys, actor=TEST_ACTOR, guarantor_id=world.guarantor_id,
            kind="dispute", raised_at=NOW, account_id=world.account_id, in_writing=True)
    assert _types(hooks) == ["consent.revoked", "dispute.received"]
    revoked, disputed = (e.data for e in hooks.events())
    assert revoked == {"revocation_id": str(revocation.id),
                       "guarantor_id": str(world.guarantor_id),
                       "contact_point_id": str(phone.id), "channel": "sms",
                       "received_at": NOW.isoformat()}
    assert disputed == {"flag_id": str(dispute.id), "guarantor_id": str(world.guarantor_id),
                        "account_id": str(world.account_id), "in_writing": True,
                        "received_at": NOW.isoformat()}


def test_phi_canary_is_absent_from_payloads_headers_events_and_jobs(hooks: Hooks) -> None:
    world = _world(hooks, **CANARY)
    hooks.add_endpoint()
    with world.db.tenant_session(world.org_id) as s:
        phone = add_phone(s, hooks.tenant, world.guarantor_id, "+16175550199")
        add_email(s, hooks.tenant, world.guarantor_id, "canary.person@mail.example.org")
        consent_service.revoke(
            s, keys=hooks.tenant.keys, actor=TEST_ACTOR, guarantor_id=world.guarantor_id,
            contact_point_id=phone.id, channel="all", received_at=NOW, method="call",
            text="Quillonex Canarywick says stop calling 617-555-0199")
        patient_service.raise_flag(
            s, keys=hooks.tenant.keys, actor=TEST_ACTOR, guarantor_id=world.guarantor_id,
            kind="dispute", raised_at=NOW, in_writing=False)
    _pay(world, "pi_canary", 2_000)
    hooks.worker().drain()
    requests = hooks.receiver.requests
    assert sorted(json.loads(r.body)["type"] for r in requests) == [
        "consent.revoked", "dispute.received", "payment.succeeded"]
    stored = json.dumps([e.data for e in hooks.events()])
    with hooks.db.system_session() as s:
        job_args = json.dumps([j.args for j in s.scalars(select(Job))])
    for request in requests:
        seen = request.body.decode() + json.dumps(request.headers)
        for value in CANARY_VALUES:
            assert value not in seen
    for value in CANARY_VALUES:
        assert value not in stored
        assert value not in job_args
    assert all(d.state == "delivered" for d in hooks.deliveries())
