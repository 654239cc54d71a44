"""The planner's column reads give the same plan whether they are restricted to the due
guarantors in SQL (few due) or read the organization's rows and keep the due ones in
Polars (most due)."""

from __future__ import annotations

import datetime as dt

import pytest

from carecollect.db import Database
from carecollect.outreach import planner
from carecollect.outreach.cadence import cadence_service
from carecollect.outreach.service import contact_history_service
from carecollect.patient.models import Flag
from tests.factories import TEST_ACTOR, create_tenant
from tests.outreach.helpers import email_opted_out_debtor, make_debtor, simple_campaign

UTC = dt.UTC
AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("share", [0.0, 2.0], ids=["whole-organization", "due-only"])
def test_reads_restricted_in_sql_or_in_polars_plan_the_same(
    db: Database, monkeypatch: pytest.MonkeyPatch, share: float
) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("sms", "email", "letter"))
        texted = make_debtor(s, tenant, n=1, phone_consent_at=AT - dt.timedelta(days=3))
        opted_out = email_opted_out_debtor(s, tenant, n=2, at=AT)
        bankrupt = make_debtor(s, tenant, n=3)
        s.add(
            Flag(
                organization_id=tenant.id,
                guarantor_id=bankrupt.guarantor_id,
                kind="bankruptcy",
                raised_at=AT - dt.timedelta(days=2),
            )
        )
        contact_history_service.record_contact(
            s,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            guarantor_id=texted.guarantor_id,
            contact_point_id=texted.phone_id,
            occurred_at=AT - dt.timedelta(days=2),
            channel="sms",
            direction="outbound",
            outcome="delivered",
            account_ids=[texted.account_id],
        )
        paid = make_debtor(s, tenant, n=4, balance_cents=0)  # never enrolled: not due
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    monkeypatch.setattr(planner, "WHOLE_ORG_SHARE", share)
    with db.tenant_session(tenant.id) as s:
        plan = planner.build_plan(s, organization_id=tenant.id, at=AT)
    got = {a.account_id: (a.outcome, a.channel, a.reasons, a.tried) for a in plan.attempts()}
    assert paid.account_id not in got
    assert got[texted.account_id] == ("send", "sms", (), ())
    assert got[opted_out.account_id][:2] == ("send", "letter")
    outcome, channel, reasons, tried = got[bankrupt.account_id]
    assert (outcome, channel, reasons[0]) == ("blocked", None, "PLAT-BANKRUPTCY")
    assert tried[1:] == ("email:PLAT-BANKRUPTCY", "letter:PLAT-BANKRUPTCY")
