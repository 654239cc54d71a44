"""Every query of the payment-plan domain."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.payment_plan.models import (
    ChargeAttempt,
    PaymentPlan,
    PlanInstallment,
    PlanPolicy,
)


class PlanRepository:
    def failed_charges(self, session: Session, *, since: datetime, limit: int = 200
                       ) -> list[tuple[ChargeAttempt, PlanInstallment, PaymentPlan]]:
        """Autopay charges declined or failed since `since`, newest first, with their
        installment and plan (the staff work list of failed payments)."""
        rows = session.execute(
            select(ChargeAttempt, PlanInstallment, PaymentPlan)
            .join(PlanInstallment, PlanInstallment.id == ChargeAttempt.installment_id)
            .join(PaymentPlan, PaymentPlan.id == PlanInstallment.plan_id)
            .where(ChargeAttempt.state.in_(("declined", "error")),
                   ChargeAttempt.started_at >= since)
            .order_by(ChargeAttempt.started_at.desc(), ChargeAttempt.id)
            .limit(limit)
        ).all()
        return [(attempt, installment, plan) for attempt, installment, plan in rows]

    def policy(self, session: Session, key: str = "default") -> PlanPolicy | None:
        return session.scalar(select(PlanPolicy).where(PlanPolicy.key == key))

    def plan(self, session: Session, plan_id: uuid.UUID, *,
             lock: bool = False) -> PaymentPlan | None:
        stmt = select(PaymentPlan).where(PaymentPlan.id == plan_id)
        if lock:
            stmt = stmt.with_for_update()
        return session.scalar(stmt)

    def live_plan(self, session: Session, account_id: uuid.UUID) -> PaymentPlan | None:
        return session.scalar(select(PaymentPlan).where(
            PaymentPlan.account_id == account_id,
            PaymentPlan.status.in_(("active", "paused"))))

    def installments(self, session: Session, plan_id: uuid.UUID) -> list[PlanInstallment]:
        return list(session.scalars(select(PlanInstallment).where(
            PlanInstallment.plan_id == plan_id).order_by(PlanInstallment.sequence)))

    def installment(self, session: Session, installment_id: uuid.UUID, *,
                    lock: bool = False) -> PlanInstallment | None:
        stmt = select(PlanInstallment).where(PlanInstallment.id == installment_id)
        if lock:
            stmt = stmt.with_for_update()
        return session.scalar(stmt)

    def attempt(self, session: Session, installment_id: uuid.UUID,
                number: int) -> ChargeAttempt | None:
        return session.scalar(select(ChargeAttempt).where(
            ChargeAttempt.installment_id == installment_id,
            ChargeAttempt.attempt_number == number))

    def attempts(self, session: Session, installment_id: uuid.UUID) -> list[ChargeAttempt]:
        return list(session.scalars(select(ChargeAttempt).where(
            ChargeAttempt.installment_id == installment_id)
            .order_by(ChargeAttempt.attempt_number)))

    def open_installments_due_by(
        self, session: Session, on: date
    ) -> list[tuple[PlanInstallment, PaymentPlan]]:
        """Scheduled installments of active plans due (or up for a retry) by `on`; the
        caller compares with each plan's local date. Works in a system session too."""
        rows = session.execute(
            select(PlanInstallment, PaymentPlan)
            .join(PaymentPlan, PaymentPlan.id == PlanInstallment.plan_id)
            .where(PlanInstallment.status == "scheduled", PaymentPlan.status == "active",
                   PlanInstallment.due_on <= on)
            .order_by(PlanInstallment.due_on, PlanInstallment.id)).all()
        return [(r[0], r[1]) for r in rows]


plan_repository = PlanRepository()
