"""A constructed portfolio with hand-computed expected figures (see test_metrics.py).

Synthetic people only. The guarantors carry canary names, dates of birth and account
numbers that must never appear in any report.

Organization zone: America/New_York. Every line is posted at 12:00 UTC (08:00 local,
same local day) unless stated.

  A1 (location L1): charge 100.00 on 2026-01-10; patient payment 30.00 on 2026-02-15;
      patient payment 10.00 at 2026-03-10 03:30 UTC (= 2026-03-09 local).
  A2 (L1): charge 50.00 on 2026-03-05; charge 20.00 on 2026-04-20; insurance 10.00 on 04-25.
  A3 (L2): charge 200.00 on 2025-12-01; patient payment 200.00 on 2026-05-10.
  A4 (L2): charge 80.00 on 2026-02-01; patient payment 20.00 on 03-01; refund 5.00 on 03-03.

Campaign "c1" (holdout 50 %): A1 enrolled 2026-02-01 15:00 UTC (treatment), A4 enrolled
2026-02-10 15:00 UTC (holdout).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from carecollect.consent.models import MediumOptOut, Revocation
from carecollect.db import Database
from carecollect.insight.models import ChannelCost
from carecollect.kit.ids import uuid7
from carecollect.ledger.service import ledger_service
from carecollect.outreach.cadence_models import CampaignEnrollment, OutreachSignal
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.patient.models import Flag
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.tenant.models import Location
from tests.factories import TEST_ACTOR, Tenant, create_guarantor, create_tenant
from tests.outreach.helpers import simple_campaign

CANARY_FIRST = "Zebulon"
CANARY_LAST = "Canaryfield"
CANARY_DOB = date(1911, 11, 11)
CANARY_ACCOUNT = "CANARY-7731"
CANARIES = (CANARY_FIRST, CANARY_LAST, "1911-11-11", "11/11/1911", "CANARY-77", "7731")


def at(day: str, hour: int = 12, minute: int = 0) -> datetime:
    y, m, d = (int(p) for p in day.split("-"))
    return datetime(y, m, d, hour, minute, tzinfo=UTC)


@dataclass
class Portfolio:
    tenant: Tenant
    locations: dict[str, uuid.UUID] = field(default_factory=dict)
    accounts: dict[str, uuid.UUID] = field(default_factory=dict)
    guarantors: dict[str, uuid.UUID] = field(default_factory=dict)
    campaign_id: uuid.UUID | None = None


def add_location(session: Session, tenant: Tenant, name: str) -> uuid.UUID:
    location = Location(id=uuid7(), organization_id=tenant.id, name=name, state="MA",
                        timezone="America/New_York")
    session.add(location)
    session.flush()
    return location.id


def add_account(session: Session, tenant: Tenant, *, n: int, location_id: uuid.UUID | None,
                lines: list[tuple[str, int, datetime]]) -> tuple[uuid.UUID, uuid.UUID]:
    guarantor = create_guarantor(session, tenant, first_name=f"{CANARY_FIRST}{n}",
                                 last_name=CANARY_LAST, date_of_birth=CANARY_DOB)
    account = ledger_service.open_account(
        session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=guarantor.id,
        account_number=f"{CANARY_ACCOUNT}-{n}", opened_at=at("2025-11-01"),
        location_id=location_id)
    for kind, cents, posted_at in lines:
        ledger_service.post(session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
                            kind=kind, amount_cents=cents, posted_at=posted_at)
    return account.id, guarantor.id


def enroll(session: Session, tenant: Tenant, *, campaign_id: uuid.UUID, account_id: uuid.UUID,
           guarantor_id: uuid.UUID, cohort: str, enrolled_at: datetime) -> None:
    session.add(CampaignEnrollment(
        id=uuid7(), organization_id=tenant.id, campaign_id=campaign_id, account_id=account_id,
        guarantor_id=guarantor_id, cohort=cohort, variant="A", enrolled_at=enrolled_at,
        status="active"))
    session.flush()


def attempt(session: Session, tenant: Tenant, *, account_id: uuid.UUID, guarantor_id: uuid.UUID,
            channel: str, when: datetime, state: str = "sent", step: str = "0:A",
            delivery_status: str | None = "delivered", reasons: list[str] | None = None,
            planned_outcome: str = "send", campaign_key: str = "c1") -> uuid.UUID:
    row = OutreachAttempt(
        id=uuid7(), organization_id=tenant.id, guarantor_id=guarantor_id, account_id=account_id,
        channel=channel, template_key="t", cadence_key=campaign_key, step_key=step,
        idempotency_key=uuid.uuid4().hex, state=state, scheduled_for=when,
        delivery_status=delivery_status if state == "sent" else None,
        reasons=reasons or [], details={"planned_outcome": planned_outcome},
        next_allowed_at=when if planned_outcome == "retime" else None,
        sent_at=when if state == "sent" else None, created_at=when, updated_at=when)
    session.add(row)
    session.flush()
    return row.id


def signal(session: Session, tenant: Tenant, *, account_id: uuid.UUID, attempt_id: uuid.UUID,
           kind: str, when: datetime) -> None:
    session.add(OutreachSignal(id=uuid7(), organization_id=tenant.id, account_id=account_id,
                               kind=kind, occurred_at=when, attempt_id=attempt_id))
    session.flush()


def build(db: Database, **tenant_overrides: Any) -> Portfolio:
    tenant = create_tenant(db, **tenant_overrides)
    p = Portfolio(tenant)
    with db.tenant_session(tenant.id) as s:
        p.locations["L1"] = add_location(s, tenant, "North office")
        p.locations["L2"] = add_location(s, tenant, "South office")
        specs: dict[str, tuple[str, list[tuple[str, int, datetime]]]] = {
            "A1": ("L1", [("charge", 100_00, at("2026-01-10")),
                          ("patient_payment", 30_00, at("2026-02-15")),
                          ("patient_payment", 10_00, at("2026-03-10", 3, 30))]),
            "A2": ("L1", [("charge", 50_00, at("2026-03-05")),
                          ("charge", 20_00, at("2026-04-20")),
                          ("insurance_payment", 10_00, at("2026-04-25"))]),
            "A3": ("L2", [("charge", 200_00, at("2025-12-01")),
                          ("patient_payment", 200_00, at("2026-05-10"))]),
            "A4": ("L2", [("charge", 80_00, at("2026-02-01")),
                          ("patient_payment", 20_00, at("2026-03-01")),
                          ("refund", 5_00, at("2026-03-03"))]),
        }
        for n, (name, (location, lines)) in enumerate(specs.items(), start=1):
            account_id, guarantor_id = add_account(
                s, tenant, n=n, location_id=p.locations[location], lines=lines)
            p.accounts[name] = account_id
            p.guarantors[name] = guarantor_id
        p.campaign_id = simple_campaign(s, tenant, channels=("sms",), key="c1",
                                        holdout_basis_points=5000)
        enroll(s, tenant, campaign_id=p.campaign_id, account_id=p.accounts["A1"],
               guarantor_id=p.guarantors["A1"], cohort="treatment",
               enrolled_at=at("2026-02-01", 15))
        enroll(s, tenant, campaign_id=p.campaign_id, account_id=p.accounts["A4"],
               guarantor_id=p.guarantors["A4"], cohort="holdout",
               enrolled_at=at("2026-02-10", 15))
        a1, g1 = p.accounts["A1"], p.guarantors["A1"]
        a4, g4 = p.accounts["A4"], p.guarantors["A4"]
        sms = attempt(s, tenant, account_id=a1, guarantor_id=g1, channel="sms",
                      when=at("2026-02-10", 15))
        signal(s, tenant, account_id=a1, attempt_id=sms, kind="opened",
               when=at("2026-02-10", 16))
        signal(s, tenant, account_id=a1, attempt_id=sms, kind="clicked",
               when=at("2026-02-10", 17))
        attempt(s, tenant, account_id=a1, guarantor_id=g1, channel="email",
                when=at("2026-03-01", 15), step="1:A", delivery_status="bounced")
        attempt(s, tenant, account_id=a4, guarantor_id=g4, channel="sms",
                when=at("2026-02-20", 15), state="blocked", reasons=["REGF-7IN7"])
        attempt(s, tenant, account_id=a4, guarantor_id=g4, channel="letter",
                when=at("2026-02-25", 15), step="1:A", reasons=["REGF-TIME-8-9"],
                planned_outcome="retime")
        for channel, millicents in (("sms", 790), ("letter", 65_000), ("email", 100)):
            s.add(ChannelCost(id=uuid7(), organization_id=tenant.id, channel=channel,
                              effective_on=date(2026, 1, 1),
                              cost_per_attempt_millicents=millicents))
        s.add(Revocation(id=uuid7(), organization_id=tenant.id, guarantor_id=g1, channel="sms",
                         received_at=at("2026-02-20"), method="sms_keyword"))
        s.add(MediumOptOut(id=uuid7(), organization_id=tenant.id, guarantor_id=g4,
                           medium="email", received_at=at("2026-03-05"), method="phone"))
        s.add(Flag(id=uuid7(), organization_id=tenant.id, guarantor_id=p.guarantors["A2"],
                   account_id=p.accounts["A2"], kind="dispute", raised_at=at("2026-04-02"),
                   cleared_at=at("2026-04-05", 0)))
        s.add(Flag(id=uuid7(), organization_id=tenant.id, guarantor_id=p.guarantors["A3"],
                   account_id=p.accounts["A3"], kind="dispute", raised_at=at("2026-04-10")))
        _plans(s, tenant, p)
    return p


def _plans(s: Session, tenant: Tenant, p: Portfolio) -> None:
    def plan(account: str, status: str, total: int, created: datetime,
             installments: list[tuple[date, str, datetime | None]]) -> None:
        plan_id = uuid7()
        s.add(PaymentPlan(
            id=plan_id, organization_id=tenant.id, account_id=p.accounts[account],
            guarantor_id=p.guarantors[account], status=status, total_cents=total,
            installment_count=len(installments), start_on=installments[0][0],
            timezone="America/New_York", created_by="staff:test", created_at=created,
            updated_at=created))
        s.flush()
        for seq, (due_on, inst_status, paid_at) in enumerate(installments, start=1):
            s.add(PlanInstallment(id=uuid7(), organization_id=tenant.id, plan_id=plan_id,
                                  sequence=seq, due_on=due_on, amount_cents=20_00,
                                  status=inst_status, paid_at=paid_at))
        s.flush()

    plan("A2", "active", 60_00, at("2026-04-26"), [
        (date(2026, 5, 26), "paid", at("2026-05-26", 20)),
        (date(2026, 6, 26), "paid", at("2026-06-28")),
        (date(2026, 7, 26), "scheduled", None)])
    plan("A4", "defaulted", 65_00, at("2026-04-28"), [
        (date(2026, 5, 28), "missed", None),
        (date(2026, 6, 28), "missed", None)])
