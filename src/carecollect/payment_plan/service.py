"""Payment-plan rules: policy, quotes, creation (staff or patient self-service), autopay
charging exactly once, decline retries, grace, missed-payment notices, default, hardship
pause and resume, early payoff and re-planning.

Autopay runs in three steps so that a crash anywhere charges at most once and records
exactly once (docs/PAYMENTS.md, "Autopay"):

1. Under a lock on the installment (`SELECT ... FOR UPDATE`; SQLite's write lock) create
   or reuse the `ChargeAttempt` row for the installment's next attempt number, whose
   idempotency key is `plan:<installment id>:<attempt number>`; commit.
2. Call the processor with that key, outside any transaction.
3. Under the lock again, post the payment (idempotent by the processor's id) and mark the
   installment paid. A re-run after a crash in between repeats step 2 with the same key;
   the processor answers with the first charge, and step 3 records it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.db import Database
from carecollect.errors import BadInput, Conflict, Forbidden, NotFound
from carecollect.integration.service import emit_event
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs.sessions import write_locked_session
from carecollect.kit.models import utcnow
from carecollect.ledger.models import Account
from carecollect.ledger.service import ledger_service
from carecollect.patient.models import Guarantor
from carecollect.payment.models import SavedPaymentMethod
from carecollect.payment.processor import (
    ChargeResult,
    PaymentDeclined,
    PaymentProcessor,
    ProcessorUnavailable,
)
from carecollect.payment.repository import payment_repository
from carecollect.payment.service import account_of, payment_service, require_processor_baa
from carecollect.payment_plan.models import (
    ChargeAttempt,
    PaymentPlan,
    PlanInstallment,
    PlanPolicy,
)
from carecollect.payment_plan.repository import plan_repository
from carecollect.payment_plan.schedule import (
    PolicyTerms,
    Schedule,
    TermTier,
    build_schedule,
    redate,
)
from carecollect.tenant.models import Organization

CHARGE_JOB = "payment_plan.charge"
NOTICE_JOB = "payment_plan.missed_notice"
SWEEP_JOB = "payment_plan.sweep"
# Cal. Civ. Code 1785.27(c)(1) (SB 1061): the exact term every written contract creating
# a medical debt on or after 2025-07-01 must contain, or it is void (STATE-CA-MEDDEBT-CR).
CA_MEDICAL_DEBT_TERM = (
    "A holder of this medical debt contract is prohibited by Section 1785.27 of the Civil "
    "Code from furnishing any information related to this debt to a consumer credit "
    "reporting agency. In addition to any other penalties allowed by law, if a person "
    "knowingly violates that section by furnishing information regarding this debt to a "
    "consumer credit reporting agency, the debt shall be void and unenforceable."
)
CA_TERM_FROM = date(2025, 7, 1)
ACTOR = Actor.system("payment_plan.autopay")


def terms_of(policy: PlanPolicy | None) -> PolicyTerms:
    if policy is None:
        return PolicyTerms()
    tiers = tuple(TermTier(t.get("up_to_cents"), int(t["max_months"] or 1))
                  for t in policy.term_tiers) or PolicyTerms().term_tiers
    return PolicyTerms(
        min_down_payment_cents=policy.min_down_payment_cents,
        min_down_payment_bps=policy.min_down_payment_bps,
        min_installment_cents=policy.min_installment_cents,
        term_tiers=tiers,
        interest_bps=policy.interest_bps,
        setup_fee_cents=policy.setup_fee_cents,
        fee_authorized_by_agreement=policy.fee_authorized_by_agreement,
        grace_days=policy.grace_days,
        retry_days=tuple(policy.retry_days),
        misses_to_default=policy.misses_to_default,
        allow_self_service=policy.allow_self_service,
        autopay_hour_local=policy.autopay_hour_local,
    )


def local_now(zone: str, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(zone))


@dataclass(frozen=True, slots=True)
class ChargeOutcome:
    status: str  # paid | declined | skipped | not_due
    code: str | None = None


class PlanService:
    # -- policy ---------------------------------------------------------------------------
    def policy(self, session: Session) -> tuple[PlanPolicy | None, PolicyTerms]:
        row = plan_repository.policy(session)
        return row, terms_of(row)

    def set_policy(self, session: Session, *, organization_id: uuid.UUID, actor: Actor,
                   terms: PolicyTerms) -> PlanPolicy:
        terms.validate()
        row = plan_repository.policy(session)
        if row is None:
            row = PlanPolicy(id=uuid7(), organization_id=organization_id, key="default")
            session.add(row)
        row.min_down_payment_cents = terms.min_down_payment_cents
        row.min_down_payment_bps = terms.min_down_payment_bps
        row.min_installment_cents = terms.min_installment_cents
        row.term_tiers = [{"up_to_cents": t.up_to_cents, "max_months": t.max_months}
                          for t in terms.term_tiers]
        row.interest_bps = terms.interest_bps
        row.setup_fee_cents = terms.setup_fee_cents
        row.fee_authorized_by_agreement = terms.fee_authorized_by_agreement
        row.grace_days = terms.grace_days
        row.retry_days = list(terms.retry_days)
        row.misses_to_default = terms.misses_to_default
        row.allow_self_service = terms.allow_self_service
        row.autopay_hour_local = terms.autopay_hour_local
        session.flush()
        record(session, actor=actor, action="config.change",
               subject=Subject("plan_policy", row.id, organization_id=organization_id),
               details={"fields": ["plan_policy"]})
        return row

    # -- quotes and creation --------------------------------------------------------------
    def _zone(self, session: Session, account: Account) -> str:
        guarantor = session.get(Guarantor, account.guarantor_id)
        if guarantor is not None and guarantor.mailing_tz:
            return guarantor.mailing_tz
        org = session.get(Organization, account.organization_id)
        return org.timezone if org else "America/New_York"

    def quote(
        self,
        session: Session,
        *,
        account_id: uuid.UUID,
        now: datetime,
        installments: int | None = None,
        down_payment_cents: int | None = None,
        start_on: date | None = None,
        waive_down_payment: bool = False,
    ) -> Schedule:
        """The schedule a plan would have (nothing stored): for the portal and staff UI."""
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound("no such account")
        _, terms = self.policy(session)
        balance = ledger_service.balance_cents(session, account_id=account_id)
        start = start_on or local_now(self._zone(session, account), now).date()
        return build_schedule(terms, balance_cents=balance, start_on=start,
                              installments=installments, down_payment_cents=down_payment_cents,
                              waive_down_payment=waive_down_payment)

    def create_plan(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        account_id: uuid.UUID,
        created_by: str,
        now: datetime | None = None,
        installments: int | None = None,
        down_payment_cents: int | None = None,
        start_on: date | None = None,
        payment_method_id: uuid.UUID | None = None,
        waive_down_payment: bool = False,
        for_guarantor: uuid.UUID | None = None,
    ) -> PaymentPlan:
        """A plan within the organization's policy, by staff or by the patient (when the
        policy allows self-service). Autopay needs a saved method with autopay consent.
        The portal passes `for_guarantor`, the verified session's guarantor."""
        now = now or utcnow()
        if created_by not in ("staff", "patient"):
            raise BadInput("a plan is created by staff or by the patient")
        account = account_of(session, account_id, for_guarantor)
        policy, terms = self.policy(session)
        if created_by == "patient" and not terms.allow_self_service:
            raise Forbidden("Self-service plans are not offered; please call the office.")
        if plan_repository.live_plan(session, account_id) is not None:
            raise BadInput("This account already has a payment plan.")
        zone = self._zone(session, account)
        start = start_on or local_now(zone, now).date()
        if start < local_now(zone, now).date():
            raise BadInput("A plan cannot start in the past.")
        schedule = self.quote(session, account_id=account_id, now=now, installments=installments,
                              down_payment_cents=down_payment_cents, start_on=start,
                              waive_down_payment=waive_down_payment)
        method = None
        if payment_method_id is not None:
            method = session.get(SavedPaymentMethod, payment_method_id)
            if method is None or method.guarantor_id != account.guarantor_id \
                    or method.status != "active":
                raise BadInput("That payment method cannot be used for this plan.")
            if method.autopay_consented_at is None:
                raise BadInput("Autopay needs your authorization to charge this method.")
        guarantor = session.get(Guarantor, account.guarantor_id)
        state = guarantor.state if guarantor else None
        open_charges = payment_repository.open_charges(session, account_id)
        plan = PaymentPlan(
            id=uuid7(), organization_id=keys.organization_id, account_id=account_id,
            guarantor_id=account.guarantor_id, policy_id=policy.id if policy else None,
            status="active", total_cents=schedule.total_cents,
            down_payment_cents=schedule.down_payment_cents, fee_cents=schedule.fee_cents,
            interest_bps=0, installment_count=len(schedule.installments), start_on=start,
            timezone=zone, autopay=method is not None,
            payment_method_id=method.id if method else None, created_by=created_by,
            charge_entry_ids=[str(c.entry_id) for c in open_charges], misses=0,
            state_code=state,
            # STATE-CA-MEDDEBT-CR: the statutory term goes into every CA plan contract
            # made on or after 2025-07-01 (dental debt included: it is health care).
            ca_medical_debt_term=(state == "CA" and start >= CA_TERM_FROM),
        )
        session.add(plan)
        session.flush()
        for item in schedule.installments:
            session.add(PlanInstallment(
                id=uuid7(), organization_id=keys.organization_id, plan_id=plan.id,
                sequence=item.sequence, due_on=item.due_on, amount_cents=item.amount_cents,
                paid_cents=0, status="scheduled", attempts=0))
        if schedule.fee_cents:
            # Only reachable when the agreement authorizes the fee (REGF-UNAUTH-AMOUNT).
            ledger_service.post(session, keys=keys, actor=actor, account_id=account_id,
                                kind="adjustment", amount_cents=schedule.fee_cents,
                                posted_at=now, description="payment plan fee",
                                external_reference=f"plan-fee:{plan.id}")
        session.flush()
        record(session, actor=actor, action="plan.create",
               subject=Subject("payment_plan", plan.id, organization_id=keys.organization_id,
                               patient_id=account.guarantor_id),
               details={"account_id": str(account_id), "installments": plan.installment_count,
                        "total_cents": plan.total_cents, "autopay": plan.autopay,
                        "created_by": created_by})
        emit_event(session, organization_id=keys.organization_id, type="plan.created",
                   data={"plan_id": plan.id, "account_id": account_id,
                         "total_cents": plan.total_cents,
                         "installments": plan.installment_count, "autopay": plan.autopay,
                         "created_by": created_by, "created_at": now})
        _signal(session, keys.organization_id, account_id, "plan_active", now)
        return plan

    def installments(self, session: Session, plan_id: uuid.UUID) -> list[PlanInstallment]:
        return plan_repository.installments(session, plan_id)

    def outstanding_cents(self, session: Session, plan_id: uuid.UUID) -> int:
        return sum(i.amount_cents - i.paid_cents for i in plan_repository.installments(
            session, plan_id) if i.status in ("scheduled", "missed"))

    # -- autopay --------------------------------------------------------------------------
    def charge_installment(
        self,
        db: Database,
        *,
        keys: OrganizationKeys,
        processor: PaymentProcessor,
        installment_id: uuid.UUID,
        now: datetime | None = None,
        after_charge: Callable[[ChargeResult], None] | None = None,
    ) -> ChargeOutcome:
        """Charge one due installment exactly once (see the module docstring).
        `after_charge` is a test seam: it runs between the charge and the record."""
        now = now or utcnow()
        org_id = keys.organization_id
        with write_locked_session(db, org_id) as session:
            inst = plan_repository.installment(session, installment_id, lock=True)
            if inst is None:
                raise NotFound("no such installment")
            plan = plan_repository.plan(session, inst.plan_id)
            if plan is None:
                raise NotFound("no such plan")
            if inst.status != "scheduled" or plan.status != "active" or not plan.autopay \
                    or plan.payment_method_id is None:
                return ChargeOutcome("skipped")
            policy = session.get(PlanPolicy, plan.policy_id) if plan.policy_id else None
            terms = terms_of(policy)
            if not self._charge_due(inst, plan, terms, now):
                return ChargeOutcome("not_due")
            number = inst.attempts + 1
            attempt = plan_repository.attempt(session, inst.id, number)
            if attempt is None:
                attempt = ChargeAttempt(
                    id=uuid7(), organization_id=org_id, installment_id=inst.id,
                    attempt_number=number, idempotency_key=f"plan:{inst.id}:{number}",
                    amount_cents=inst.amount_cents - inst.paid_cents, state="started",
                    started_at=now)
                session.add(attempt)
                session.flush()
            method = session.get(SavedPaymentMethod, plan.payment_method_id)
            if method is None or method.status != "active":
                return ChargeOutcome("skipped", "no_payment_method")
            require_processor_baa(session, processor, now)
            key, amount = attempt.idempotency_key, attempt.amount_cents
            customer, method_ref = method.processor_customer_id, method.processor_method_id
            metadata = {"organization_id": str(org_id), "account_id": str(plan.account_id),
                        "guarantor_id": str(plan.guarantor_id), "plan_id": str(plan.id),
                        "installment_id": str(inst.id), "source": "autopay"}
        try:
            result = processor.charge_saved_method(
                customer_id=customer, processor_method_id=method_ref, amount_cents=amount,
                idempotency_key=key, metadata=metadata)
        except PaymentDeclined as exc:
            with write_locked_session(db, org_id) as session:
                self._declined(session, installment_id, number, exc.code, now)
            return ChargeOutcome("declined", exc.code)
        except ProcessorUnavailable:
            with write_locked_session(db, org_id) as session:
                found = plan_repository.attempt(session, installment_id, number)
                if found is not None and found.state == "started":
                    found.state = "error"
                    found.failure_code = "processor_unavailable"
            raise
        if after_charge is not None:
            after_charge(result)
        with write_locked_session(db, org_id) as session:
            self._succeeded(session, keys, processor.name, installment_id, number, result, now)
        return ChargeOutcome("paid")

    @staticmethod
    def _installment_and_plan(session: Session,
                              installment_id: uuid.UUID) -> tuple[PlanInstallment, PaymentPlan]:
        inst = plan_repository.installment(session, installment_id, lock=True)
        plan = plan_repository.plan(session, inst.plan_id) if inst is not None else None
        if inst is None or plan is None:
            raise NotFound("no such installment")
        return inst, plan

    @staticmethod
    def _charge_due(inst: PlanInstallment, plan: PaymentPlan, terms: PolicyTerms,
                    now: datetime) -> bool:
        local = local_now(plan.timezone, now)
        when = inst.due_on if inst.attempts == 0 else inst.next_attempt_on
        if when is None:
            return False  # the retry schedule is used up; the grace sweep decides
        return local.date() > when or (local.date() == when
                                       and local.hour >= terms.autopay_hour_local)

    def _succeeded(self, session: Session, keys: OrganizationKeys, processor: str,
                   installment_id: uuid.UUID, number: int, result: ChargeResult,
                   now: datetime) -> None:
        inst, plan = self._installment_and_plan(session, installment_id)
        attempt = plan_repository.attempt(session, installment_id, number)
        if attempt is not None:
            attempt.state = "succeeded"
            attempt.processor_payment_id = result.processor_payment_id
            attempt.failure_code = None
            attempt.finished_at = now
        posted = payment_service.record_payment(
            session, keys=keys, actor=ACTOR, processor=processor,
            processor_payment_id=result.processor_payment_id, account_id=plan.account_id,
            amount_cents=result.amount_cents, received_at=now, source="autopay",
            prefer_charges=tuple(uuid.UUID(c) for c in plan.charge_entry_ids),
            plan_id=plan.id, installment_id=inst.id,
            payment_method_id=plan.payment_method_id)
        if inst.status == "scheduled":
            inst.attempts = number
            inst.paid_cents = inst.amount_cents
            inst.status = "paid"
            inst.paid_at = now
            inst.next_attempt_on = None
            record(session, actor=ACTOR, action="plan.installment_paid",
                   subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                                   patient_id=plan.guarantor_id),
                   details={"installment_id": str(inst.id), "payment_id": str(posted.payment.id),
                            "attempt": number})
            self._maybe_complete(session, plan, now)

    def _declined(self, session: Session, installment_id: uuid.UUID, number: int,
                  code: str, now: datetime) -> None:
        inst, plan = self._installment_and_plan(session, installment_id)
        attempt = plan_repository.attempt(session, installment_id, number)
        if attempt is not None:
            if attempt.state == "declined":
                return  # a repeated run of the same attempt
            attempt.state = "declined"
            attempt.failure_code = code[:40]
            attempt.finished_at = now
        policy = session.get(PlanPolicy, plan.policy_id) if plan.policy_id else None
        terms = terms_of(policy)
        inst.attempts = number
        # Retry schedule: day offsets after the due date, one more attempt per entry.
        inst.next_attempt_on = (inst.due_on + timedelta(days=terms.retry_days[number - 1])
                                if number <= len(terms.retry_days) else None)
        record(session, actor=ACTOR, action="plan.charge", outcome="failure",
               subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                               patient_id=plan.guarantor_id),
               details={"installment_id": str(inst.id), "attempt": number, "code": code[:40],
                        "retry_on": inst.next_attempt_on.isoformat()
                        if inst.next_attempt_on else None})

    # -- the sweep: due charges, grace and misses -----------------------------------------
    def sweep(self, db: Database, *, now: datetime | None = None) -> dict[str, int]:
        """Enqueue due autopay charges (one job per installment attempt, idempotent) and
        mark installments missed once their grace period has passed, across every
        organization. Run by the periodic job `payment_plan.sweep`."""
        from carecollect.kit.jobs import enqueue

        now = now or utcnow()
        horizon = (now + timedelta(days=1)).date()  # every zone's "today" is at most this
        charges = 0
        to_miss: dict[uuid.UUID, list[uuid.UUID]] = {}
        with db.system_session() as session:
            policies = {p.id: terms_of(p) for p in session.scalars(select(PlanPolicy))}
            for inst, plan in plan_repository.open_installments_due_by(session, horizon):
                terms = policies.get(plan.policy_id) if plan.policy_id else None
                terms = terms or PolicyTerms()
                today = local_now(plan.timezone, now).date()
                if today > inst.due_on + timedelta(days=terms.grace_days):
                    to_miss.setdefault(plan.organization_id, []).append(inst.id)
                    continue
                if plan.autopay and self._charge_due(inst, plan, terms, now):
                    number = inst.attempts + 1
                    if enqueue(session, CHARGE_JOB, {"installment_id": str(inst.id),
                                                     "attempt": number},
                               queue="payments", organization_id=plan.organization_id,
                               max_attempts=10, scheduled_at=now,
                               unique_key=f"plan-charge:{inst.id}:{number}") is not None:
                        charges += 1
        missed = 0
        for org_id, ids in to_miss.items():
            with write_locked_session(db, org_id) as session:
                for inst_id in ids:
                    missed += self.mark_missed(session, installment_id=inst_id, now=now)
        return {"charges_enqueued": charges, "missed": missed}

    def mark_missed(self, session: Session, *, installment_id: uuid.UUID,
                    now: datetime) -> int:
        """Grace is over and the installment is unpaid: count a miss, queue the notice, and
        default the plan after the policy's number of misses (outreach then resumes)."""
        from carecollect.kit.jobs import enqueue

        inst = plan_repository.installment(session, installment_id, lock=True)
        if inst is None or inst.status != "scheduled":
            return 0
        plan = plan_repository.plan(session, inst.plan_id, lock=True)
        if plan is None or plan.status != "active":
            return 0
        terms = terms_of(session.get(PlanPolicy, plan.policy_id) if plan.policy_id else None)
        inst.status = "missed"
        inst.missed_at = now
        inst.next_attempt_on = None
        plan.misses += 1
        subject = Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                          patient_id=plan.guarantor_id)
        record(session, actor=ACTOR, action="plan.installment_missed", subject=subject,
               details={"installment_id": str(inst.id), "misses": plan.misses})
        enqueue(session, NOTICE_JOB, {"installment_id": str(inst.id)}, queue="outreach",
                organization_id=plan.organization_id, max_attempts=8, scheduled_at=now,
                unique_key=f"plan-missed:{inst.id}")
        if plan.misses >= terms.misses_to_default:
            self._default(session, plan, now)
        return 1

    def _default(self, session: Session, plan: PaymentPlan, now: datetime) -> None:
        plan.status = "defaulted"
        plan.ended_at = now
        for other in plan_repository.installments(session, plan.id):
            if other.status == "scheduled":
                other.status = "cancelled"
                other.next_attempt_on = None
        record(session, actor=ACTOR, action="plan.default",
               subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                               patient_id=plan.guarantor_id),
               details={"misses": plan.misses})
        emit_event(session, organization_id=plan.organization_id, type="plan.defaulted",
                   data={"plan_id": plan.id, "account_id": plan.account_id,
                         "misses": plan.misses, "defaulted_at": now})
        # The cadences select accounts whose plan is broken: collection outreach resumes.
        _signal(session, plan.organization_id, plan.account_id, "plan_broken", now)

    def _maybe_complete(self, session: Session, plan: PaymentPlan, now: datetime) -> None:
        if all(i.status in ("paid", "cancelled")
               for i in plan_repository.installments(session, plan.id)):
            plan.status = "completed"
            plan.ended_at = now
            record(session, actor=ACTOR, action="plan.complete",
                   subject=Subject("payment_plan", plan.id,
                                   organization_id=plan.organization_id,
                                   patient_id=plan.guarantor_id))
            emit_event(session, organization_id=plan.organization_id, type="plan.completed",
                       data={"plan_id": plan.id, "account_id": plan.account_id,
                             "total_cents": plan.total_cents, "completed_at": now})
            _signal(session, plan.organization_id, plan.account_id, "plan_completed", now)

    # -- patient and staff actions --------------------------------------------------------
    def pay_off(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        processor: PaymentProcessor,
        plan_id: uuid.UUID,
        payment_method: str | None = None,
        now: datetime | None = None,
        for_guarantor: uuid.UUID | None = None,
    ) -> PaymentPlan:
        """Early payoff: charge what is left (a method token, or the saved autopay method)
        and close the plan. No prepayment penalty: none is authorized (REGF-UNAUTH-AMOUNT)."""
        now = now or utcnow()
        plan = plan_repository.plan(session, plan_id, lock=True)
        if plan is None or (for_guarantor is not None and plan.guarantor_id != for_guarantor):
            raise NotFound("no such plan")
        if plan.status not in ("active", "paused"):
            raise BadInput("This plan is not open.")
        balance = ledger_service.balance_cents(session, account_id=plan.account_id)
        remaining = min(self.outstanding_cents(session, plan.id), balance)
        if remaining <= 0:
            raise BadInput("There is nothing left to pay on this plan.")
        key = f"payoff:{plan.id}:{remaining}"
        require_processor_baa(session, processor, now)
        metadata = {"organization_id": str(plan.organization_id),
                    "account_id": str(plan.account_id), "guarantor_id": str(plan.guarantor_id),
                    "plan_id": str(plan.id), "source": "payoff"}
        if payment_method is None:
            method = session.get(SavedPaymentMethod, plan.payment_method_id) \
                if plan.payment_method_id else None
            if method is None:
                raise BadInput("Choose a payment method to pay off the plan.")
            charge = processor.charge_saved_method(
                customer_id=method.processor_customer_id,
                processor_method_id=method.processor_method_id, amount_cents=remaining,
                idempotency_key=key, metadata=metadata)
            processor_id = charge.processor_payment_id
        else:
            result = processor.create_payment(amount_cents=remaining, idempotency_key=key,
                                              metadata=metadata, payment_method=payment_method)
            if result.status != "succeeded":
                raise PaymentDeclined(result.failure_code or "card_declined")
            processor_id = result.processor_payment_id
        payment_service.record_payment(
            session, keys=keys, actor=actor, processor=processor.name,
            processor_payment_id=processor_id, account_id=plan.account_id,
            amount_cents=remaining, received_at=now, source="portal", plan_id=plan.id,
            prefer_charges=tuple(uuid.UUID(c) for c in plan.charge_entry_ids))
        for inst in plan_repository.installments(session, plan.id):
            if inst.status in ("scheduled", "missed"):
                inst.paid_cents = inst.amount_cents
                inst.status = "paid"
                inst.paid_at = now
                inst.next_attempt_on = None
        record(session, actor=actor, action="plan.payoff",
               subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                               patient_id=plan.guarantor_id),
               details={"amount_cents": remaining})
        plan.status = "active"
        self._maybe_complete(session, plan, now)
        return plan

    def cancel(self, session: Session, *, actor: Actor, plan_id: uuid.UUID, now: datetime,
               reason: str) -> PaymentPlan:
        """Cancel an active or paused plan: its open installments are cancelled (autopay
        stops charging them) and the balance stays on the account. Recorded as
        `plan.cancel`. A plan in any other state is a Conflict and nothing changes."""
        plan = plan_repository.plan(session, plan_id, lock=True)
        if plan is None:
            raise NotFound("no such plan")
        if plan.status not in ("active", "paused"):
            raise Conflict(f"a {plan.status} plan cannot be cancelled")
        open_items = [i for i in plan_repository.installments(session, plan.id)
                      if i.status in ("scheduled", "missed")]
        for item in open_items:
            item.status = "cancelled"
            item.next_attempt_on = None
        plan.status = "cancelled"
        plan.ended_at = now
        session.flush()
        record(session, actor=actor, action="plan.cancel",
               subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                               patient_id=plan.guarantor_id),
               details={"reason": reason, "installments_cancelled": len(open_items)})
        return plan

    def pause(self, session: Session, *, actor: Actor, plan_id: uuid.UUID, now: datetime,
              reason: str = "hardship") -> PaymentPlan:
        """Hardship pause: no charges, no misses, and collection outreach paused, until
        staff resume the plan."""
        plan = plan_repository.plan(session, plan_id, lock=True)
        if plan is None:
            raise NotFound("no such plan")
        if plan.status != "active":
            raise BadInput("Only an active plan can be paused.")
        plan.status = "paused"
        plan.paused_at = now
        plan.pause_reason = reason[:32]
        record(session, actor=actor, action="plan.pause",
               subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                               patient_id=plan.guarantor_id),
               details={"reason": reason[:32]})
        _exclude(session, actor, plan.organization_id, plan.account_id, reason[:32], now)
        return plan

    def resume(self, session: Session, *, actor: Actor, plan_id: uuid.UUID, now: datetime,
               start_on: date | None = None) -> PaymentPlan:
        """Resume after a pause: the unpaid installments keep their amounts and move to
        monthly dates from `start_on` (default: the plan's local today)."""
        plan = plan_repository.plan(session, plan_id, lock=True)
        if plan is None:
            raise NotFound("no such plan")
        if plan.status != "paused":
            raise BadInput("This plan is not paused.")
        start = start_on or local_now(plan.timezone, now).date()
        pending = [i for i in plan_repository.installments(session, plan.id)
                   if i.status == "scheduled"]
        for inst, (due, _cents) in zip(pending, redate([i.amount_cents for i in pending],
                                                       start), strict=True):
            inst.due_on = due
            inst.attempts = 0
            inst.next_attempt_on = None
        plan.status = "active"
        plan.paused_at = None
        plan.pause_reason = None
        record(session, actor=actor, action="plan.resume",
               subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                               patient_id=plan.guarantor_id),
               details={"installments": len(pending)})
        # The hardship exclusion is not lifted here: the outreach API lifts every exclusion
        # of an account (a dispute's too). The resumed plan's `plan_active` signal keeps
        # cadences stopped; staff lift the exclusion when the hardship review closes.
        _signal(session, plan.organization_id, plan.account_id, "plan_active", now)
        return plan

    def needs_replan(self, session: Session, plan_id: uuid.UUID) -> bool:
        """True when charges were added (or credited) so the plan no longer matches what
        is owed."""
        plan = plan_repository.plan(session, plan_id)
        if plan is None or plan.status not in ("active", "paused"):
            return False
        balance = ledger_service.balance_cents(session, account_id=plan.account_id)
        return balance != self.outstanding_cents(session, plan.id)

    def replan(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        plan_id: uuid.UUID,
        created_by: str,
        now: datetime | None = None,
        installments: int | None = None,
        start_on: date | None = None,
    ) -> PaymentPlan:
        """Replace a plan by one for the whole current balance (new charges included),
        keeping the autopay method; no new down payment is required."""
        now = now or utcnow()
        old = plan_repository.plan(session, plan_id, lock=True)
        if old is None:
            raise NotFound("no such plan")
        if old.status not in ("active", "paused"):
            raise BadInput("This plan is not open.")
        old.status = "replaced"
        old.ended_at = now
        for inst in plan_repository.installments(session, old.id):
            if inst.status == "scheduled":
                inst.status = "cancelled"
                inst.next_attempt_on = None
        session.flush()
        new = self.create_plan(session, keys=keys, actor=actor, account_id=old.account_id,
                               created_by=created_by, now=now, installments=installments,
                               start_on=start_on, payment_method_id=old.payment_method_id,
                               waive_down_payment=True)
        old.replaced_by_id = new.id
        record(session, actor=actor, action="plan.replan",
               subject=Subject("payment_plan", old.id, organization_id=old.organization_id,
                               patient_id=old.guarantor_id),
               details={"new_plan_id": str(new.id)})
        return new


def _signal(session: Session, org_id: uuid.UUID, account_id: uuid.UUID, kind: str,
            at: datetime) -> None:
    from carecollect.payment.service import _signal as signal

    signal(session, org_id, account_id, kind, at)


def _exclude(session: Session, actor: Actor, org_id: uuid.UUID, account_id: uuid.UUID,
             reason: str, at: datetime) -> None:
    try:
        from carecollect.outreach.cadence import cadence_service
    except ImportError:
        return
    cadence_service.exclude(session, organization_id=org_id, actor=actor,
                            account_id=account_id, reason=reason, at=at)


plan_service = PlanService()
