"""Builders for outreach tests (synthetic people only)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from carecollect.consent.service import consent_service
from carecollect.ledger.service import ledger_service
from carecollect.outreach.cadence import CampaignSpec, StepSpec, cadence_service
from tests.factories import (
    TEST_ACTOR,
    Tenant,
    add_address,
    add_email,
    add_phone,
    create_guarantor,
)

UTC = dt.UTC


@dataclass
class Debtor:
    guarantor_id: uuid.UUID
    account_id: uuid.UUID
    phone_id: uuid.UUID | None = None
    email_id: uuid.UUID | None = None
    postal_id: uuid.UUID | None = None
    extra: dict[str, uuid.UUID] = field(default_factory=dict)


def email_opted_out_debtor(session: Session, tenant: Tenant, *, n: int, at: dt.datetime
                           ) -> Debtor:
    """A debtor who opted out of e-mail by free text the day before `at`."""
    from carecollect.consent.preferences import preferences_service

    debtor = make_debtor(session, tenant, n=n)
    preferences_service.opt_out_medium(
        session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=debtor.guarantor_id,
        medium="email", received_at=at - dt.timedelta(days=1), method="free_text")
    return debtor


def bankrupt_debtor(session: Session, tenant: Tenant, *, n: int, at: dt.datetime) -> Debtor:
    """A debtor with a bankruptcy flag raised two days before `at`."""
    from carecollect.patient.models import Flag

    debtor = make_debtor(session, tenant, n=n)
    session.add(Flag(organization_id=tenant.id, guarantor_id=debtor.guarantor_id,
                     kind="bankruptcy", raised_at=at - dt.timedelta(days=2)))
    return debtor


def make_debtor(session: Session, tenant: Tenant, *, n: int, phone: bool = True,
                email: bool = True, postal: bool = True, balance_cents: int = 84_500,
                phone_consent_at: dt.datetime | None = None,
                email_consent_at: dt.datetime | None = None,
                opened_at: dt.datetime = dt.datetime(2026, 1, 5, tzinfo=UTC),
                language: str = "en") -> Debtor:
    g = create_guarantor(session, tenant, first_name=f"Test{n}", preferred_language=language)
    debtor = Debtor(g.id, uuid.uuid4())
    if postal:
        debtor.postal_id = add_address(session, tenant, g.id, line1=f"{n} Elm St",
                                       city="Boston", state="MA", zip_code="02108").id
    if phone:
        debtor.phone_id = add_phone(session, tenant, g.id, f"+161755501{n:02d}",
                                    verified=True, is_primary=True).id
    if email:
        debtor.email_id = add_email(session, tenant, g.id, f"test{n}@example.org").id
    if phone_consent_at and debtor.phone_id:
        consent_service.grant(session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id,
                              contact_point_id=debtor.phone_id, kind="tcpa_pec",
                              granted_at=phone_consent_at, method="intake_form")
    if email_consent_at and debtor.email_id:
        consent_service.grant(session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id,
                              contact_point_id=debtor.email_id, kind="email_use",
                              granted_at=email_consent_at, method="intake_form")
    account = ledger_service.open_account(session, keys=tenant.keys, actor=TEST_ACTOR,
                                          guarantor_id=g.id, account_number=f"A-{n:05d}",
                                          opened_at=opened_at)
    if balance_cents:
        ledger_service.post(session, keys=tenant.keys, actor=TEST_ACTOR,
                            account_id=account.id, kind="charge", amount_cents=balance_cents,
                            posted_at=opened_at)
    debtor.account_id = account.id
    return debtor


def simple_campaign(session: Session, tenant: Tenant, *, channels: tuple[str, ...],
                    send_hour: int = 10, holdout_basis_points: int = 0, key: str = "simple",
                    wait_days: tuple[int, ...] = (0, 7)) -> uuid.UUID:
    templates = {"sms": "statement_ready_sms", "email": "reminder_email",
                 "letter": "statement_letter", "call": "callback_voicemail"}
    variant = {"name": "A", "weight": 1, "templates": {c: templates[c] for c in channels}}
    steps = tuple(StepSpec(w, channels, (variant,), send_hour=send_hour) for w in wait_days)
    campaign = cadence_service.create_campaign(
        session, organization_id=tenant.id, actor=TEST_ACTOR,
        spec=CampaignSpec(key=key, name=key, steps=steps, seed="seed-1",
                          holdout_basis_points=holdout_basis_points, plan_status="any"))
    return campaign.id
