from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from carecollect.db import Database
from carecollect.errors import BadInput
from carecollect.outreach.cadence import (
    DEFAULTS,
    CampaignSpec,
    StepSpec,
    assign,
    cadence_service,
)
from carecollect.outreach.cadence_models import Campaign, CampaignEnrollment, CampaignStep
from tests.factories import TEST_ACTOR, audit_events, create_tenant
from tests.outreach.helpers import make_debtor

AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
VARIANTS = [{"name": "A", "weight": 70}, {"name": "B", "weight": 30}]


def test_assignment_is_deterministic_and_follows_weights() -> None:
    ids = [uuid.UUID(int=i * 7919 + 13) for i in range(20_000)]
    first = [assign("seed-x", a, 500, VARIANTS) for a in ids]
    assert first == [assign("seed-x", a, 500, VARIANTS) for a in ids]
    assert first != [assign("seed-y", a, 500, VARIANTS) for a in ids]
    holdout = sum(c == "holdout" for c, _ in first)
    variant_a = sum(v == "A" for _, v in first)
    variant_b = sum(v == "B" for _, v in first)
    assert holdout + variant_a + variant_b == 20_000
    # 5 % holdout and a 70/30 split, within a few standard deviations.
    assert 850 <= holdout <= 1150
    assert 0.67 <= variant_a / (variant_a + variant_b) <= 0.73
    assert all(v is None for c, v in first if c == "holdout")
    assert assign("s", ids[0], 10_000, VARIANTS) == ("holdout", None)
    assert assign("s", ids[0], 0, [{"name": "only"}]) == ("treatment", "only")


def test_default_cadences_are_valid_for_both_practice_kinds(db: Database) -> None:
    assert sorted(DEFAULTS) == ["dental_practice", "physician_group"]
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        created = cadence_service.install_defaults(s, organization_id=tenant.id,
                                                   actor=TEST_ACTOR,
                                                   entity_kind="dental_practice")
        assert [c.key for c in created] == ["dental_plan_broken", "dental_standard"]
        again = cadence_service.install_defaults(s, organization_id=tenant.id,
                                                 actor=TEST_ACTOR,
                                                 entity_kind="dental_practice")
        assert again == []
        physician = cadence_service.install_defaults(s, organization_id=tenant.id,
                                                     actor=TEST_ACTOR,
                                                     entity_kind="physician_group")
        assert [c.key for c in physician] == ["physician_plan_broken", "physician_standard"]
        standard = s.scalars(select(Campaign).where(Campaign.key == "dental_standard")).one()
        steps = s.scalars(select(CampaignStep).where(CampaignStep.campaign_id == standard.id)
                          .order_by(CampaignStep.position)).all()
        assert [(st.wait_days, st.channels) for st in steps] == [
            (0, ["email", "letter"]), (10, ["sms", "email"]), (14, ["call", "letter"]),
            (21, ["letter"])]
        assert standard.holdout_basis_points == 500
        assert standard.stop_on == ["paid", "promised", "plan_active"]
    changes = [e["details"]["key"] for e in audit_events(db, "config.change")
               if e["details"].get("change") == "campaign_create"]
    assert changes == ["dental_plan_broken", "dental_standard", "physician_plan_broken",
                       "physician_standard"]


@pytest.mark.parametrize(("spec", "message"), [
    (CampaignSpec("k", "n", ()), "at least one step"),
    (CampaignSpec("k", "n", (StepSpec(0, ("fax",), ({"name": "A", "templates": {}},)),)),
     "known channels"),
    (CampaignSpec("k", "n", (StepSpec(0, ("sms",), ({"name": "A", "templates": {
        "sms": "statement_email"}},)),)), "not a sms template"),
    (CampaignSpec("k", "n", (StepSpec(0, ("sms",), ({"name": "A", "templates": {
        "sms": "nope"}},)),)), "unknown template"),
    (CampaignSpec("k", "n", (StepSpec(0, ("sms",), ({"name": "A", "templates": {
        "sms": "statement_ready_sms"}},), condition={"unless": ["danced"]}),)),
     "unknown behaviour"),
    (CampaignSpec("k", "n", (StepSpec(0, ("sms",), ({"name": "A", "templates": {
        "sms": "statement_ready_sms"}},)),), holdout_basis_points=20_000), "basis points"),
])
def test_campaign_validation(db: Database, spec: CampaignSpec, message: str) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s, pytest.raises(BadInput, match=message):
        cadence_service.create_campaign(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                        spec=spec)


def test_enrollment_by_balance_age_plan_status_and_priority(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        cadence_service.install_defaults(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                         entity_kind="dental_practice")
        big = make_debtor(s, tenant, n=1, balance_cents=84_500)
        tiny = make_debtor(s, tenant, n=2, balance_cents=500)  # under the $10 floor
        broken = make_debtor(s, tenant, n=3, balance_cents=12_000)
        cadence_service.record_signal(s, organization_id=tenant.id,
                                      account_id=broken.account_id, kind="plan_broken",
                                      occurred_at=AT - dt.timedelta(days=1))
        active_plan = make_debtor(s, tenant, n=4, balance_cents=12_000)
        cadence_service.record_signal(s, organization_id=tenant.id,
                                      account_id=active_plan.account_id, kind="plan_active",
                                      occurred_at=AT - dt.timedelta(days=1))
        count = cadence_service.enroll_eligible(s, organization_id=tenant.id,
                                                actor=TEST_ACTOR, at=AT)
        assert count == 2
        rows = s.execute(select(CampaignEnrollment.account_id, Campaign.key,
                                CampaignEnrollment.next_due_at)
                         .join(Campaign, Campaign.id == CampaignEnrollment.campaign_id)).all()
        assert {(a, k, d) for a, k, d in rows} == {
            (big.account_id, "dental_standard", AT),
            (broken.account_id, "dental_plan_broken", AT)}
        assert tiny.account_id not in {a for a, _, _ in rows}
        # Enrolling again does not duplicate live enrollments.
        assert cadence_service.enroll_eligible(s, organization_id=tenant.id,
                                               actor=TEST_ACTOR, at=AT) == 0
    enrolled = audit_events(db, "outreach.enroll")
    assert enrolled[0]["details"]["enrolled"] == 2


def test_reply_pauses_and_promise_stops(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        cadence_service.install_defaults(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                         entity_kind="physician_group")
        a = make_debtor(s, tenant, n=1, balance_cents=84_500)
        b = make_debtor(s, tenant, n=2, balance_cents=84_500)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
        cadence_service.record_signal(s, organization_id=tenant.id, account_id=a.account_id,
                                      kind="replied", occurred_at=AT)
        cadence_service.record_signal(s, organization_id=tenant.id, account_id=b.account_id,
                                      kind="promised", occurred_at=AT)
        with pytest.raises(BadInput):
            cadence_service.record_signal(s, organization_id=tenant.id,
                                          account_id=b.account_id, kind="waved",
                                          occurred_at=AT)
        got = {e.account_id: (e.status, e.status_reason)
               for e in s.scalars(select(CampaignEnrollment))}
    assert got == {a.account_id: ("paused", "replied"), b.account_id: ("stopped", "promised")}
