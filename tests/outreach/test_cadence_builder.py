"""Service functions behind the staff campaign builder: edit, pause/resume, summaries,
the per-campaign dry run and the template draft checker (synthetic people only)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, update

from carecollect.db import Database
from carecollect.errors import BadInput, NotFound
from carecollect.outreach.cadence import (
    CampaignSpec,
    StepSpec,
    cadence_service,
    check_template,
    explain_rule,
    template_catalog,
)
from carecollect.outreach.cadence_models import Campaign, CampaignEnrollment, CampaignStep
from carecollect.outreach.outbox import OutreachAttempt
from tests.factories import TEST_ACTOR, audit_events, create_tenant
from tests.outreach.helpers import (
    bankrupt_debtor,
    email_opted_out_debtor,
    make_debtor,
    simple_campaign,
)

UTC = dt.UTC
AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # Monday, 06:00 in Boston
EMAIL = {"name": "A", "weight": 1, "templates": {"email": "reminder_email",
                                                  "letter": "statement_letter"}}


def _spec(**overrides: object) -> CampaignSpec:
    base = CampaignSpec(key="simple", name="simple", seed="seed-1", plan_status="any",
                        steps=(StepSpec(0, ("email", "letter"), (EMAIL,)),
                               StepSpec(7, ("email", "letter"), (EMAIL,))))
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def _state(db: Database, tenant_id: Any) -> tuple[Any, Any, Any]:
    with db.tenant_session(tenant_id) as s:
        campaigns = [(c.key, c.name, c.priority, c.active, c.min_balance_cents,
                      c.holdout_basis_points) for c in s.scalars(select(Campaign))]
        steps = [(st.position, st.wait_days, st.channels, st.send_hour, st.variants)
                 for st in s.scalars(select(CampaignStep).order_by(CampaignStep.position))]
        enrollments = [(e.status, e.status_reason, e.next_step, e.next_due_at)
                       for e in s.scalars(select(CampaignEnrollment)
                                          .order_by(CampaignEnrollment.account_id))]
    return campaigns, steps, enrollments


def test_update_campaign_replaces_criteria_and_steps_and_audits(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        campaign_id = simple_campaign(s, tenant, channels=("email", "letter"))
    new = _spec(name="Renamed", priority=40, min_balance_cents=5_000,
                steps=(StepSpec(2, ("letter",), ({"name": "A", "weight": 1,
                                                  "templates": {"letter": "statement_letter"}},),
                                send_hour=12),))
    with db.tenant_session(tenant.id) as s:
        cadence_service.update_campaign(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                        campaign_id=campaign_id, spec=new)
    campaigns, steps, _ = _state(db, tenant.id)
    assert campaigns == [("simple", "Renamed", 40, True, 5_000, 0)]
    assert steps == [(0, 2, ["letter"], 12, [{"name": "A", "weight": 1,
                                             "templates": {"letter": "statement_letter"}}])]
    event = [e for e in audit_events(db, "config.change")
             if e["details"].get("change") == "campaign_update"]
    assert [e["details"] for e in event] == [{
        "change": "campaign_update", "key": "simple",
        "fields": ["min_balance_cents", "name", "priority", "steps"], "steps": 1}]
    with db.tenant_session(tenant.id) as s:
        seed = s.get(Campaign, campaign_id).seed  # type: ignore[union-attr]
        again = cadence_service.spec_of(s, s.get(Campaign, campaign_id))  # type: ignore[arg-type]
    assert seed == "seed-1"  # the assignment seed survives an edit
    assert again.steps == new.steps


@pytest.mark.parametrize(("overrides", "message"), [
    ({"key": "other"}, "key cannot change"),
    ({"name": "  "}, "name is 1-200"),
    ({"min_balance_cents": 900, "max_balance_cents": 100}, "minimum balance is above"),
    ({"min_age_days": -1}, "minimum age cannot be negative"),
    ({"steps": (StepSpec(-1, ("email",), (EMAIL,)),)}, "step 1: the wait is 0-365"),
    ({"steps": (StepSpec(0, ("email", "email"), (EMAIL,)),)}, "listed twice"),
    ({"steps": (StepSpec(0, ("email",), (EMAIL, EMAIL)),)}, "variant names"),
    ({"steps": (StepSpec(0, ("email",), ({**EMAIL, "weight": 0},)),)}, "positive total"),
    ({"steps": (StepSpec(0, ("sms",), (EMAIL,)),)}, "variant A has no sms template"),
    ({"holdout_basis_points": 10_001}, "basis points"),
])
def test_update_campaign_refuses_bad_input_and_changes_nothing(
        db: Database, overrides: dict[str, object], message: str) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        campaign_id = simple_campaign(s, tenant, channels=("email", "letter"))
    before, audited = _state(db, tenant.id), len(audit_events(db))
    with db.tenant_session(tenant.id) as s, pytest.raises(BadInput, match=message):
        cadence_service.update_campaign(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                        campaign_id=campaign_id, spec=_spec(**overrides))
    assert _state(db, tenant.id) == before
    assert len(audit_events(db)) == audited


def test_update_refuses_to_drop_a_step_accounts_wait_at(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        campaign_id = simple_campaign(s, tenant, channels=("email", "letter"))
        make_debtor(s, tenant, n=1)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
        s.execute(update(CampaignEnrollment).values(next_step=1))
    before = _state(db, tenant.id)
    with db.tenant_session(tenant.id) as s, pytest.raises(
            BadInput, match="accounts are waiting at step 2; keep at least 2 steps"):
        cadence_service.update_campaign(
            s, organization_id=tenant.id, actor=TEST_ACTOR, campaign_id=campaign_id,
            spec=_spec(steps=(StepSpec(0, ("email",), (EMAIL,)),)))
    assert _state(db, tenant.id) == before


def test_pause_and_resume_a_campaign_with_its_enrollments(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        campaign_id = simple_campaign(s, tenant, channels=("email", "letter"))
        for n in (1, 2, 3):
            make_debtor(s, tenant, n=n)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
        third = s.scalars(select(CampaignEnrollment).order_by(
            CampaignEnrollment.account_id)).all()[2]
        # A staff pause of one account is not undone by resuming the campaign.
        cadence_service.pause(s, actor=TEST_ACTOR, account_id=third.account_id,
                              reason="staff_review", at=AT)
    with db.tenant_session(tenant.id) as s:
        assert cadence_service.set_active(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                          campaign_id=campaign_id, active=False, at=AT) == 2
    _, _, enrollments = _state(db, tenant.id)
    assert sorted(e[:2] for e in enrollments) == [
        ("paused", "campaign_paused"), ("paused", "campaign_paused"),
        ("paused", "staff_review")]
    with db.tenant_session(tenant.id) as s, pytest.raises(BadInput, match="already paused"):
        cadence_service.set_active(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                   campaign_id=campaign_id, active=False, at=AT)
    later = AT + dt.timedelta(days=3)
    with db.tenant_session(tenant.id) as s:
        assert cadence_service.set_active(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                          campaign_id=campaign_id, active=True,
                                          at=later) == 2
    campaigns, _, enrollments = _state(db, tenant.id)
    assert campaigns[0][3] is True
    assert sorted((e[0], e[1], e[3]) for e in enrollments) == [
        ("active", "resumed", later), ("active", "resumed", later),
        ("paused", "staff_review", AT)]
    changes = [(e["details"]["change"], e["details"]["enrollments"])
               for e in audit_events(db, "config.change")
               if e["details"]["change"] in ("campaign_pause", "campaign_resume")]
    assert changes == [("campaign_pause", 2), ("campaign_resume", 2)]


def test_summaries_count_steps_and_enrollments(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("email", "letter"), key="b_first")
        simple_campaign(s, tenant, channels=("sms",), key="a_second", wait_days=(0,))
        for n in (1, 2):
            make_debtor(s, tenant, n=n)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    with db.tenant_session(tenant.id) as s:
        got = [(x.campaign.key, x.step_channels, x.enrolled, x.enrollments)
               for x in cadence_service.summaries(s)]
    # Same priority: ordered by key; enrollment goes to the first by (priority, key).
    assert got == [
        ("a_second", (("sms",),), 2,
         {"active": 2, "paused": 0, "completed": 0, "stopped": 0}),
        ("b_first", (("email", "letter"), ("email", "letter")), 0,
         {"active": 0, "paused": 0, "completed": 0, "stopped": 0}),
    ]


def _counts(db: Database, tenant_id: object) -> tuple[int, int, int]:
    with db.tenant_session(tenant_id) as s:  # type: ignore[arg-type]
        return (s.scalar(select(func.count()).select_from(CampaignEnrollment)) or 0,
                s.scalar(select(func.count()).select_from(OutreachAttempt)) or 0,
                len(audit_events(db)))


def test_dry_run_shows_outcomes_reasons_and_writes_nothing(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        campaign_id = simple_campaign(s, tenant, channels=("email", "letter"))
        ok = make_debtor(s, tenant, n=1, email_consent_at=AT - dt.timedelta(days=3))
        opted_out = email_opted_out_debtor(s, tenant, n=2, at=AT)
        bankrupt = bankrupt_debtor(s, tenant, n=3, at=AT)
        # Paused before anything was enrolled: the dry run treats it as active.
        cadence_service.set_active(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                   campaign_id=campaign_id, active=False, at=AT)
    before = _counts(db, tenant.id)
    with db.tenant_session(tenant.id) as s:
        run = cadence_service.dry_run(s, organization_id=tenant.id, campaign_id=campaign_id,
                                      at=AT)
    assert _counts(db, tenant.id) == before == (0, 0, before[2])
    with db.tenant_session(tenant.id) as s:
        assert s.get(Campaign, campaign_id).active is False  # type: ignore[union-attr]
    assert (run.due_total, len(run.rows), run.sampled) == (3, 3, False)
    rows = {r.account_id: r for r in run.rows}
    assert (rows[ok.account_id].outcome, rows[ok.account_id].channel,
            rows[ok.account_id].template_id) == ("send", "email", "reminder_email")
    assert rows[ok.account_id].scheduled_for == dt.datetime(2026, 5, 4, 14, 0, tzinfo=UTC)
    assert (rows[opted_out.account_id].outcome, rows[opted_out.account_id].channel) == (
        "send", "letter")
    assert rows[opted_out.account_id].tried_channels() == [
        ("email", ["PLAT-HONOR-IMMEDIATELY", "REGF-MEDIUM-OPTOUT"])]
    assert (rows[bankrupt.account_id].outcome, rows[bankrupt.account_id].reasons) == (
        "blocked", ("PLAT-BANKRUPTCY",))
    assert [r.outcome for r in run.rows] == ["blocked", "send", "send"]
    assert run.outcome_totals() == {"blocked": 1, "retime": 0, "send": 2, "holdout": 0,
                                    "skipped": 0, "stopped": 0}
    assert [(rule, count) for rule, count, _, _ in run.rule_totals()] == [
        ("PLAT-BANKRUPTCY", 1), ("PLAT-HONOR-IMMEDIATELY", 1), ("REGF-MEDIUM-OPTOUT", 1)]
    assert all(citation for _, _, _, citation in run.rule_totals())


def test_dry_run_sample_and_other_campaigns(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        mine = simple_campaign(s, tenant, channels=("letter",), key="mine")
        for n in range(1, 6):
            make_debtor(s, tenant, n=n)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
        # A later, higher-priority campaign: newly eligible accounts would not go there
        # (they are enrolled already), and its own due rows are not in this dry run.
        other = cadence_service.create_campaign(
            s, organization_id=tenant.id, actor=TEST_ACTOR,
            spec=_spec(key="other", priority=1, steps=(StepSpec(0, ("letter",), (
                {"name": "A", "weight": 1, "templates": {"letter": "statement_letter"}},)),)))
        d6 = make_debtor(s, tenant, n=6)
    with db.tenant_session(tenant.id) as s:
        run = cadence_service.dry_run(s, organization_id=tenant.id, campaign_id=mine,
                                      at=AT, sample=2)
        full = cadence_service.dry_run(s, organization_id=tenant.id, campaign_id=other.id,
                                       at=AT)
    assert (run.due_total, len(run.rows), run.sampled, run.limit) == (5, 2, True, 2)
    assert sorted(r.account_id for r in run.rows) == [r.account_id for r in run.rows]
    assert [r.account_id for r in full.rows] == [d6.account_id]
    with db.tenant_session(tenant.id) as s:
        for bad in (0, 2_001):
            with pytest.raises(BadInput, match="the sample is 1 to 2000 accounts"):
                cadence_service.dry_run(s, organization_id=tenant.id, campaign_id=mine,
                                        at=AT, sample=bad)
        with pytest.raises(NotFound):
            cadence_service.dry_run(s, organization_id=tenant.id,
                                    campaign_id=d6.account_id, at=AT)


def test_explain_rule_cites_catalog_and_planner_reasons() -> None:
    assert explain_rule("PLAT-BANKRUPTCY") == (
        "No collection outreach or furnishing after a known filing",
        "11 USC 362(a)(6); 11 USC 524")
    assert explain_rule("PLAN-NO-CONTACT-POINT") == ("No contact point for this channel",
                                                     "planner")
    assert explain_rule("NOT-A-RULE") == ("Unknown rule", "")


def test_check_template_lints_and_previews_with_synthetic_sample() -> None:
    assert all(count == 0 for _, count in template_catalog())
    good = check_template(
        template_id="draft", language="en", channel="sms",
        surfaces={"sms_body": "{{ practice_name }}: your statement is ready: {{ payment_url }}"},
        phone_verified_and_consented=False, email_risk_acknowledged=False,
        display_name="Lakeside Billing")
    assert good.issues == ()
    assert good.preview == {"sms_body": "Lakeside Billing: your statement is ready: "
                            "https://pay.example.org/t/SAMPLEtoken0123456789abcd "
                            "Reply STOP to opt out."}
    bad = check_template(
        template_id="draft", language="en", channel="sms",
        surfaces={"sms_body": "You owe {{ balance_cents | money }} past due"},
        phone_verified_and_consented=False, email_risk_acknowledged=False,
        display_name="Lakeside Billing")
    assert [(i.surface, i.rule) for i in bad.issues] == [
        ("sms_body", "HIPAA-CONTENT-CLASS"), ("sms_body", "HIPAA-CONTENT-CLASS"),
        ("sms_body", "PLAT-NEUTRAL-NAME")]
    assert bad.preview["sms_body"].startswith("You owe $123.45 past due")
    verified = check_template(
        template_id="draft", language="en", channel="sms",
        surfaces={"sms_body": "{{ practice_name }}: {{ balance_cents | money }} is due"},
        phone_verified_and_consented=True, email_risk_acknowledged=False,
        display_name="Lakeside Billing")
    assert verified.issues == ()
    broken = check_template(
        template_id="draft", language="en", channel="email",
        surfaces={"email_subject": "{{ practice_name }", "from_name": "{{ practice_name }}",
                  "email_body": "{{ practice_name }} {{ nickname }}"},
        phone_verified_and_consented=False, email_risk_acknowledged=False,
        display_name="Lakeside Billing")
    assert ("email_subject", "TEMPLATE-SYNTAX") in [(i.surface, i.rule) for i in broken.issues]
    assert ("email_body", "TEMPLATE-UNTYPED") in [(i.surface, i.rule) for i in broken.issues]
    assert broken.preview == {}
    assert broken.preview_error is not None
    assert broken.preview_error.startswith("email_subject: TemplateSyntaxError")
    with pytest.raises(BadInput, match="en or es"):
        check_template(template_id="d", language="fr", channel="sms", surfaces={},
                       phone_verified_and_consented=False, email_risk_acknowledged=False,
                       display_name="X")
