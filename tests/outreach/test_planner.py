from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select

from carecollect.consent.preferences import preferences_service
from carecollect.db import Database
from carecollect.kit.jobs.models import Job
from carecollect.outreach.cadence import cadence_service
from carecollect.outreach.cadence_models import CampaignEnrollment
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.outreach.planner import build_plan, persist_plan, plan_and_persist
from tests.factories import TEST_ACTOR, audit_events, create_tenant
from tests.outreach.helpers import (
    bankrupt_debtor,
    email_opted_out_debtor,
    make_debtor,
    simple_campaign,
)

UTC = dt.UTC
# Monday 2026-05-04, 06:00 in Boston (EDT, UTC-4).
AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
TEN_LOCAL = dt.datetime(2026, 5, 4, 14, 0, tzinfo=UTC)


def _by_account(plan):  # type: ignore[no-untyped-def]
    return {a.account_id: a for a in plan.attempts()}


def test_channel_fallbacks_blocks_and_reasons(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("email", "letter"))
        ok = make_debtor(s, tenant, n=1, email_consent_at=AT - dt.timedelta(days=3))
        no_email = make_debtor(s, tenant, n=2, email=False)
        opted_out = email_opted_out_debtor(s, tenant, n=3, at=AT)
        bankrupt = bankrupt_debtor(s, tenant, n=4, at=AT)
        confidential = make_debtor(s, tenant, n=5)
        preferences_service.request_confidential(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=confidential.guarantor_id,
            received_at=AT - dt.timedelta(days=5), method="phone",
            allowed_channels=["letter"])
        nothing = make_debtor(s, tenant, n=6, email=False, postal=False)
        paid = make_debtor(s, tenant, n=7, balance_cents=0)
        assert cadence_service.enroll_eligible(s, organization_id=tenant.id,
                                               actor=TEST_ACTOR, at=AT) == 6  # not `paid`
    with db.tenant_session(tenant.id) as s:
        plan = build_plan(s, organization_id=tenant.id, at=AT)
    got = _by_account(plan)
    assert paid.account_id not in got
    a = got[ok.account_id]
    assert (a.outcome, a.channel, a.contact_point_id, a.template_id, a.scheduled_for) == (
        "send", "email", ok.email_id, "reminder_email", TEN_LOCAL)
    assert a.reasons == ()
    a = got[no_email.account_id]
    assert (a.outcome, a.channel, a.contact_point_id, a.tried) == (
        "send", "letter", no_email.postal_id, ("email:PLAN-NO-CONTACT-POINT",))
    a = got[opted_out.account_id]
    assert (a.outcome, a.channel) == ("send", "letter")
    assert a.tried == ("email:PLAT-HONOR-IMMEDIATELY+REGF-MEDIUM-OPTOUT",)
    a = got[bankrupt.account_id]
    assert (a.outcome, a.channel, a.scheduled_for) == ("blocked", None, None)
    assert a.reasons == ("PLAT-BANKRUPTCY",)
    assert a.tried == ("email:PLAT-BANKRUPTCY", "letter:PLAT-BANKRUPTCY")
    a = got[confidential.account_id]
    assert (a.outcome, a.channel, a.tried) == ("send", "letter", ("email:HIPAA-CONF-COMM",))
    a = got[nothing.account_id]
    assert (a.outcome, a.reasons) == ("blocked", ("PLAN-NO-CONTACT-POINT",))
    assert plan.counts() == {"send": 4, "retime": 0, "blocked": 2, "holdout": 0,
                             "skipped": 0, "stopped": 0}


def test_persist_creates_attempts_jobs_audit_and_is_idempotent(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("email", "letter"), wait_days=(0, 7))
        d1 = make_debtor(s, tenant, n=1)
        d2 = make_debtor(s, tenant, n=2, email=False, postal=False)
    with db.tenant_session(tenant.id) as s:
        plan, counts = plan_and_persist(s, organization_id=tenant.id, at=AT)
    assert counts == {"created": 1, "already_planned": 0, "send": 1, "retime": 0,
                      "blocked": 1, "holdout": 0, "skipped": 0, "stopped": 0}
    with db.tenant_session(tenant.id) as s:
        attempts = list(s.scalars(select(OutreachAttempt)))
        assert [(x.account_id, x.channel, x.template_key, x.state, x.scheduled_for,
                 x.cadence_key, x.step_key) for x in attempts] == [
            (d1.account_id, "email", "reminder_email", "planned", TEN_LOCAL, "simple", "0:A")]
        key = attempts[0].idempotency_key
        assert len(key) == 48
        jobs = list(s.scalars(select(Job).where(Job.kind == "outreach.deliver")))
        assert [(j.args, j.queue, j.scheduled_at) for j in jobs] == [
            ({"attempt_id": str(attempts[0].id)}, "outreach", TEN_LOCAL)]
        enrollments = {e.account_id: e for e in s.scalars(select(CampaignEnrollment))}
        assert (enrollments[d1.account_id].next_step,
                enrollments[d1.account_id].next_due_at) == (1, TEN_LOCAL + dt.timedelta(days=7))
        assert (enrollments[d2.account_id].next_step, enrollments[d2.account_id].next_due_at,
                enrollments[d2.account_id].status_reason) == (
            0, AT + dt.timedelta(days=1), "blocked")
    plans = audit_events(db, "outreach.plan")
    assert [(e["details"]["channel"], e["details"]["outcome"]) for e in plans] == [
        ("email", "send")]
    decisions = audit_events(db, "outreach.decision")
    assert decisions[-1]["details"]["created"] == 1
    # Same night again: the same plan persisted twice creates nothing new.
    with db.tenant_session(tenant.id) as s:
        again = persist_plan(s, plan)
    assert (again["created"], again["already_planned"]) == (0, 1)
    with db.tenant_session(tenant.id) as s:
        assert s.scalar(select(func.count()).select_from(OutreachAttempt)) == 1
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_dry_run_writes_nothing(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("email",))
        make_debtor(s, tenant, n=1)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    before = len(audit_events(db))
    with db.tenant_session(tenant.id) as s:
        plan, counts = plan_and_persist(s, organization_id=tenant.id, at=AT, dry_run=True)
    assert counts["send"] == 1
    assert counts["created"] == 0
    assert len(audit_events(db)) == before
    with db.tenant_session(tenant.id) as s:
        assert s.scalar(select(func.count()).select_from(OutreachAttempt)) == 0
        e = s.scalars(select(CampaignEnrollment)).one()
        assert (e.next_step, e.next_due_at) == (0, AT)
    rows = plan.to_json()
    assert rows[0]["scheduled_for"] == "2026-05-04T10:00:00-04:00"
    assert plan.to_csv().splitlines()[0].startswith("account_id,guarantor_id,campaign,step")
    json.dumps(rows)


def test_retime_outside_window_and_designated_time(db: Database) -> None:
    tenant = create_tenant(db)
    late = dt.datetime(2026, 5, 5, 2, 30, tzinfo=UTC)  # 22:30 in Boston on May 4
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("sms",), send_hour=10, key="sms")
        texted = make_debtor(s, tenant, n=1, phone_consent_at=late - dt.timedelta(days=5))
        no_consent = make_debtor(s, tenant, n=2)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                        at=late - dt.timedelta(hours=1))
    with db.tenant_session(tenant.id) as s:
        got = _by_account(build_plan(s, organization_id=tenant.id, at=late))
    a = got[texted.account_id]
    # 22:30 is past the step's 10:00 and outside [08:00, 21:00): moved to 08:00 next day.
    assert (a.outcome, a.channel, a.scheduled_for) == (
        "retime", "sms", dt.datetime(2026, 5, 5, 12, 0, tzinfo=UTC))
    assert "REGF-TIME-8TO9" in a.reasons
    b = got[no_consent.account_id]
    assert b.outcome == "blocked"
    assert "TCPA-CONSENT-WIRELESS" in b.reasons

    tenant2 = create_tenant(db)
    with db.tenant_session(tenant2.id) as s:
        simple_campaign(s, tenant2, channels=("email",))
        d = make_debtor(s, tenant2, n=3)
        preferences_service.designate_inconvenient(
            s, keys=tenant2.keys, actor=TEST_ACTOR, guarantor_id=d.guarantor_id, kind="time",
            value="09:00-12:30", designated_at=AT - dt.timedelta(days=1), method="call")
        cadence_service.enroll_eligible(s, organization_id=tenant2.id, actor=TEST_ACTOR,
                                        at=AT)
    with db.tenant_session(tenant2.id) as s:
        got = _by_account(build_plan(s, organization_id=tenant2.id, at=AT))
    a = got[d.account_id]
    assert (a.outcome, a.scheduled_for, a.reasons) == (
        "retime", dt.datetime(2026, 5, 4, 16, 30, tzinfo=UTC), ("REGF-TIME-DESIGNATED",))


def test_holdout_stop_signal_exclusion_pause_and_resume(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("email",), holdout_basis_points=10_000,
                        key="all_holdout")
        make_debtor(s, tenant, n=1)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    with db.tenant_session(tenant.id) as s:
        plan, counts = plan_and_persist(s, organization_id=tenant.id, at=AT, enroll=False)
    assert (counts["holdout"], counts["created"]) == (1, 0)
    with db.tenant_session(tenant.id) as s:
        e = s.scalars(select(CampaignEnrollment)).one()
        assert (e.cohort, e.next_step, e.status) == ("holdout", 1, "active")

    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("email",))
        paid = make_debtor(s, tenant, n=1)
        excluded = make_debtor(s, tenant, n=2)
        paused = make_debtor(s, tenant, n=3)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
        cadence_service.record_signal(s, organization_id=tenant.id,
                                      account_id=paid.account_id, kind="paid",
                                      occurred_at=AT)
        cadence_service.exclude(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                account_id=excluded.account_id, reason="staff_hold", at=AT)
        cadence_service.pause(s, actor=TEST_ACTOR, account_id=paused.account_id,
                              reason="hardship", at=AT)
    with db.tenant_session(tenant.id) as s:
        plan = build_plan(s, organization_id=tenant.id, at=AT + dt.timedelta(minutes=1))
        assert len(plan.frame) == 0  # stopped, excluded and paused: nothing due
        statuses = {e.account_id: (e.status, e.status_reason)
                    for e in s.scalars(select(CampaignEnrollment))}
        assert statuses[paid.account_id] == ("stopped", "paid")
        assert statuses[paused.account_id] == ("paused", "hardship")
        cadence_service.resume(s, actor=TEST_ACTOR, account_id=paused.account_id,
                               at=AT + dt.timedelta(days=2))
        cadence_service.lift_exclusion(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                       account_id=excluded.account_id,
                                       at=AT + dt.timedelta(days=2))
    with db.tenant_session(tenant.id) as s:
        plan = build_plan(s, organization_id=tenant.id, at=AT + dt.timedelta(days=2))
    assert sorted(str(a.account_id) for a in plan.attempts()) == sorted(
        [str(excluded.account_id), str(paused.account_id)])
    changes = [e["details"]["change"] for e in audit_events(db, "outreach.enrollment_change")]
    assert changes == ["pause", "resume"]


def test_nightly_job_plans_each_organization_once_per_day(db: Database) -> None:
    import uuid

    from carecollect.kit.jobs import ClaimedJob, JobContext
    from carecollect.outreach.planner_tasks import NIGHTLY, PLAN_JOB, plan_nightly

    assert (NIGHTLY.kind, NIGHTLY.every) == (PLAN_JOB, dt.timedelta(days=1))
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("email",))
        make_debtor(s, tenant, n=1)
    ctx = JobContext(db=db, keys=None, worker_id="w1", clock=lambda: AT)
    job = ClaimedJob(id=uuid.uuid4(), queue="default", kind=PLAN_JOB, args={}, attempt=1,
                     max_attempts=3, organization_id=None)
    plan_nightly(ctx, job)
    plan_nightly(ctx, job)  # a retried run the same night creates nothing new
    with db.tenant_session(tenant.id) as s:
        assert s.scalar(select(func.count()).select_from(OutreachAttempt)) == 1
        e = s.scalars(select(CampaignEnrollment)).one()
        assert (e.next_step, e.status) == (1, "active")
