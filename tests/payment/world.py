"""Builders shared by the payment and payment-plan tests (synthetic people only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from carecollect.db import Database
from carecollect.kit.jobs.models import Job
from carecollect.ledger.models import LedgerEntry
from carecollect.ledger.service import ledger_service
from carecollect.patient.models import Guarantor
from carecollect.payment.models import Payment, PaymentAllocation
from carecollect.tenant.models import BusinessAssociate
from tests.factories import TEST_ACTOR, Tenant, create_guarantor, create_tenant

OPENED = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@dataclass
class World:
    db: Database
    tenant: Tenant
    guarantor_id: uuid.UUID
    account_id: uuid.UUID
    charges: list[uuid.UUID] = field(default_factory=list)

    @property
    def org_id(self) -> uuid.UUID:
        return self.tenant.id

    def balance(self) -> int:
        with self.db.tenant_session(self.org_id) as s:
            return ledger_service.balance_cents(s, account_id=self.account_id)

    def add_charge(self, cents: int, posted_at: datetime) -> uuid.UUID:
        with self.db.tenant_session(self.org_id) as s:
            entry = ledger_service.post(s, keys=self.tenant.keys, actor=TEST_ACTOR,
                                        account_id=self.account_id, kind="charge",
                                        amount_cents=cents, posted_at=posted_at,
                                        description="Cleaning")
            self.charges.append(entry.id)
            return entry.id

    def count(self, model: type, **where: object) -> int:
        with self.db.system_session() as s:
            stmt = select(func.count()).select_from(model)
            for key, value in where.items():
                stmt = stmt.where(getattr(model, key) == value)
            return int(s.scalar(stmt) or 0)

    def payments(self) -> list[Payment]:
        with self.db.tenant_session(self.org_id) as s:
            return list(s.scalars(select(Payment).order_by(Payment.created_at)))

    def allocations(self) -> dict[uuid.UUID, int]:
        """Net allocated cents per charge."""
        with self.db.tenant_session(self.org_id) as s:
            rows = s.execute(select(PaymentAllocation.charge_entry_id,
                                    func.sum(PaymentAllocation.amount_cents))
                             .group_by(PaymentAllocation.charge_entry_id)).all()
        return {r[0]: int(r[1]) for r in rows if int(r[1]) != 0}

    def ledger_kinds(self) -> list[tuple[str, int]]:
        with self.db.tenant_session(self.org_id) as s:
            return [(k, int(a)) for k, a in s.execute(
                select(LedgerEntry.kind, LedgerEntry.amount_cents)
                .order_by(LedgerEntry.posted_at, LedgerEntry.id))]

    def jobs(self, kind: str) -> list[Job]:
        with self.db.system_session() as s:
            return list(s.scalars(select(Job).where(Job.kind == kind).order_by(Job.created_at)))


def make_world(
    db: Database,
    charges: tuple[tuple[int, datetime], ...] = ((10_000, datetime(2026, 1, 10, tzinfo=UTC)),
                                                  (5_000, datetime(2026, 2, 10, tzinfo=UTC))),
    *,
    state: str = "MA",
    mailing_tz: str | None = None,
    payments_baa: bool = False,
) -> World:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g = create_guarantor(s, tenant, state=state)
        if mailing_tz:
            s.get(Guarantor, g.id).mailing_tz = mailing_tz  # type: ignore[union-attr]
        account = ledger_service.open_account(s, keys=tenant.keys, actor=TEST_ACTOR,
                                              guarantor_id=g.id, account_number="ACC-1001",
                                              opened_at=OPENED)
        if payments_baa:
            s.add(BusinessAssociate(organization_id=tenant.id, name="Stripe",
                                    service="payments", baa_status="active",
                                    baa_effective_on=date(2025, 1, 1)))
        world = World(db, tenant, g.id, account.id)
    for cents, posted_at in charges:
        world.add_charge(cents, posted_at)
    return world
