"""Plans: creation within policy (staff and self-service), CA contract term, agreement PDF,
hardship pause, early payoff and re-planning."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from carecollect.errors import BadInput, Forbidden
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment_plan.agreement import agreement_pdf, agreement_text
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.payment_plan.schedule import PolicyTerms
from carecollect.payment_plan.service import CA_MEDICAL_DEBT_TERM, plan_service
from tests.factories import TEST_ACTOR, audit_events
from tests.payment.world import make_world
from tests.payment_plan.helpers import (
    PATIENT,
    POLICY,
    create_plan,
    plan_state,
    save_card,
    set_policy,
)

NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_staff_plan_within_policy(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    set_policy(world)
    plan_id = create_plan(world, now=NOW, installments=4)
    plan, items = plan_state(world, plan_id)
    assert (plan.status, plan.total_cents, plan.installment_count, plan.autopay) == (
        "active", 15_000, 4, False)
    assert plan.timezone == "America/New_York"  # the organization's zone: no mailing zone
    assert [(i.sequence, i.due_on.isoformat(), i.amount_cents) for i in items] == [
        (1, "2026-03-02", 3_750), (2, "2026-04-02", 3_750), (3, "2026-05-02", 3_750),
        (4, "2026-06-02", 3_750)]
    assert sorted(plan.charge_entry_ids) == sorted(str(c) for c in world.charges)
    [event] = audit_events(db, "plan.create")
    assert event["details"]["installments"] == 4
    assert event["details"]["total_cents"] == 15_000
    with pytest.raises(BadInput, match="already has a payment plan"):
        create_plan(world, now=NOW)


def test_default_is_the_longest_term_the_policy_allows(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    set_policy(world)
    _plan, items = plan_state(world, create_plan(world, now=NOW))
    # 150.00 with a 25.00 minimum installment: six payments of 25.00 (tier max is 6).
    assert [i.amount_cents for i in items] == [2_500] * 6


def test_self_service_plans_only_when_policy_allows(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    set_policy(world, PolicyTerms(allow_self_service=False))
    with pytest.raises(Forbidden, match="call the office"):
        create_plan(world, now=NOW, created_by="patient")
    assert world.count(PaymentPlan) == 0
    set_policy(world, POLICY)
    plan_id = create_plan(world, now=NOW, created_by="patient", installments=3)
    plan, _ = plan_state(world, plan_id)
    assert plan.created_by == "patient"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"installments": 7}, "1 to 6 monthly payments"),
    ({"start_on": date(2026, 3, 1)}, "cannot start in the past"),
])
def test_plans_outside_policy_store_nothing(db, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    set_policy(world)
    with pytest.raises(BadInput, match=message):
        create_plan(world, now=NOW, **kwargs)
    assert world.count(PaymentPlan) == 0
    assert world.count(PlanInstallment) == 0


def test_fee_only_with_agreement_authorization(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    with pytest.raises(BadInput, match="REGF-UNAUTH-AMOUNT"):
        set_policy(world, PolicyTerms(setup_fee_cents=1_000))
    set_policy(world, PolicyTerms(setup_fee_cents=1_000, fee_authorized_by_agreement=True))
    plan, items = plan_state(world, create_plan(world, now=NOW, installments=2))
    assert plan.fee_cents == 1_000
    assert sum(i.amount_cents for i in items) == 16_000
    assert world.balance() == 16_000


def test_california_plan_carries_the_statutory_term(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db, state="CA")
    set_policy(world)
    plan_id = create_plan(world, now=NOW, installments=3)
    plan, _ = plan_state(world, plan_id)
    assert plan.ca_medical_debt_term is True
    with db.tenant_session(world.org_id) as s:
        text = agreement_text(s, keys=world.tenant.keys, actor=TEST_ACTOR, plan_id=plan_id)
        pdf = agreement_pdf(s, keys=world.tenant.keys, actor=TEST_ACTOR, plan_id=plan_id)
    assert ("Normal", CA_MEDICAL_DEBT_TERM) in text
    assert CA_MEDICAL_DEBT_TERM.startswith("A holder of this medical debt contract is prohibited")
    assert ("Normal", "Total: $150.00 in 3 payments. Interest: 0%. Fee: $0.00.") in text
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 1_500


def test_massachusetts_plan_has_no_california_term(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db, state="MA")
    set_policy(world)
    plan_id = create_plan(world, now=NOW, installments=3)
    with db.tenant_session(world.org_id) as s:
        text = agreement_text(s, keys=world.tenant.keys, actor=TEST_ACTOR, plan_id=plan_id)
    assert all(t != CA_MEDICAL_DEBT_TERM for _, t in text)
    assert text[1] == ("Normal", "Between Lakeside Dental Group (the practice) and Robin "
                                 "Testperson (the responsible party).")
    # Reading the name for the agreement is an audited PHI read.
    assert audit_events(db, "patient.read")[-1]["details"]["purpose"] == "plan_agreement"


def test_hardship_pause_and_resume_redates(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    set_policy(world)
    plan_id = create_plan(world, now=NOW, installments=3)
    with db.tenant_session(world.org_id) as s:
        plan_service.pause(s, actor=TEST_ACTOR, plan_id=plan_id, now=NOW)
        with pytest.raises(BadInput, match="Only an active plan"):
            plan_service.pause(s, actor=TEST_ACTOR, plan_id=plan_id, now=NOW)
    assert plan_state(world, plan_id)[0].status == "paused"
    later = datetime(2026, 6, 20, 16, 0, tzinfo=UTC)
    with db.tenant_session(world.org_id) as s:
        plan_service.resume(s, actor=TEST_ACTOR, plan_id=plan_id, now=later)
    plan, items = plan_state(world, plan_id)
    assert plan.status == "active"
    assert [(i.due_on.isoformat(), i.amount_cents) for i in items] == [
        ("2026-06-20", 5_000), ("2026-07-20", 5_000), ("2026-08-20", 5_000)]
    assert [e["action"] for e in audit_events(db) if e["action"].startswith("plan.")] == [
        "plan.create", "plan.pause", "plan.resume"]


def test_early_payoff_completes_the_plan(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    set_policy(world)
    sandbox = SandboxProcessor()
    method_id = save_card(world, sandbox)
    plan_id = create_plan(world, now=NOW, installments=3, method_id=method_id)
    with db.tenant_session(world.org_id) as s:
        plan_service.pay_off(s, keys=world.tenant.keys, actor=PATIENT, processor=sandbox,
                             plan_id=plan_id, now=NOW)
    plan, items = plan_state(world, plan_id)
    assert plan.status == "completed"
    assert [i.status for i in items] == ["paid", "paid", "paid"]
    assert world.balance() == 0
    [payment] = world.payments()
    assert (payment.amount_cents, payment.plan_id) == (15_000, plan_id)


def test_replan_when_charges_are_added(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    set_policy(world)
    plan_id = create_plan(world, now=NOW, installments=3)
    with db.tenant_session(world.org_id) as s:
        assert plan_service.needs_replan(s, plan_id) is False
    world.add_charge(6_000, datetime(2026, 3, 3, tzinfo=UTC))
    with db.tenant_session(world.org_id) as s:
        assert plan_service.needs_replan(s, plan_id) is True
        new = plan_service.replan(s, keys=world.tenant.keys, actor=TEST_ACTOR, plan_id=plan_id,
                                  created_by="staff", now=NOW, installments=4)
        new_id = new.id
    old, old_items = plan_state(world, plan_id)
    assert (old.status, old.replaced_by_id) == ("replaced", new_id)
    assert {i.status for i in old_items} == {"cancelled"}
    plan, items = plan_state(world, new_id)
    assert (plan.total_cents, [i.amount_cents for i in items]) == (21_000, [5_250] * 4)
