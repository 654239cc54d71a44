"""Plan-test builders: a policy, a saved sandbox method, a plan."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from carecollect.audit import Actor
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment.service import payment_service
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.payment_plan.schedule import PolicyTerms, TermTier
from carecollect.payment_plan.service import plan_service
from tests.factories import TEST_ACTOR
from tests.payment.world import World

PATIENT = Actor.patient("00000000-0000-7000-8000-0000000000aa")
POLICY = PolicyTerms(min_down_payment_cents=0, min_installment_cents=2_500,
                     term_tiers=(TermTier(50_000, 6), TermTier(None, 12)),
                     grace_days=10, retry_days=(3, 7), misses_to_default=2)


def set_policy(world: World, terms: PolicyTerms = POLICY) -> None:
    with world.db.tenant_session(world.org_id) as s:
        plan_service.set_policy(s, organization_id=world.org_id, actor=TEST_ACTOR, terms=terms)


def save_card(world: World, processor: SandboxProcessor, card: str = "pm_sandbox_visa",
              now: datetime | None = None) -> uuid.UUID:
    with world.db.tenant_session(world.org_id) as s:
        _, method = payment_service.setup_method(
            s, keys=world.tenant.keys, actor=PATIENT, processor=processor,
            guarantor_id=world.guarantor_id, idempotency_key=f"setup:{card}",
            payment_method=card, now=now)
        assert method is not None
        return method.id


def create_plan(world: World, *, now: datetime, start_on: date | None = None,
                installments: int | None = None, method_id: uuid.UUID | None = None,
                created_by: str = "staff", down_payment_cents: int | None = None) -> uuid.UUID:
    with world.db.tenant_session(world.org_id) as s:
        plan = plan_service.create_plan(
            s, keys=world.tenant.keys, actor=TEST_ACTOR if created_by == "staff" else PATIENT,
            account_id=world.account_id, created_by=created_by, now=now,
            installments=installments, start_on=start_on, payment_method_id=method_id,
            down_payment_cents=down_payment_cents)
        return plan.id


def plan_state(world: World, plan_id: uuid.UUID) -> tuple[PaymentPlan, list[PlanInstallment]]:
    with world.db.tenant_session(world.org_id) as s:
        plan = s.get(PaymentPlan, plan_id)
        assert plan is not None
        return plan, plan_service.installments(s, plan_id)
