"""The planner's batch path applies the organization's stored compliance overlay (quiet
days, holidays, a narrower window, contact caps), like the dispatcher does at send time."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from carecollect.compliance.overlay import OrgOverlay
from carecollect.compliance.overlay_settings import set_overlay
from carecollect.db import Database
from carecollect.kit.jobs.models import Job
from carecollect.outreach.cadence import cadence_service
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.outreach.planner import build_plan, plan_and_persist
from carecollect.outreach.planner_overlay import cap_release, clear_instant
from carecollect.outreach.service import contact_history_service
from tests.factories import TEST_ACTOR, create_tenant
from tests.outreach.helpers import make_debtor, simple_campaign

UTC = dt.UTC
# Monday 2026-05-04, 06:00 in Boston (EDT, UTC-4); the step's 10:00 local is 14:00 UTC.
AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
TEN_LOCAL = dt.datetime(2026, 5, 4, 14, 0, tzinfo=UTC)
NY, LA = "America/New_York", "America/Los_Angeles"


def _by_account(plan):  # type: ignore[no-untyped-def]
    return {a.account_id: a for a in plan.attempts()}


def test_quiet_day_and_narrower_window_retime_what_is_planned(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        set_overlay(
            s,
            actor=TEST_ACTOR,
            organization_id=tenant.id,
            data={"quiet_weekdays": ["mon"], "window_start": "12:00", "window_end": "17:00"},
        )
        simple_campaign(s, tenant, channels=("email", "letter"))
        mailed = make_debtor(s, tenant, n=1)
        letter = make_debtor(s, tenant, n=2, email=False)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    with db.tenant_session(tenant.id) as s:
        without = _by_account(build_plan(s, organization_id=tenant.id, at=AT, overlay=None))
    assert (without[mailed.account_id].outcome, without[mailed.account_id].scheduled_for) == (
        "send",
        TEN_LOCAL,
    )
    with db.tenant_session(tenant.id) as s:
        plan, counts = plan_and_persist(s, organization_id=tenant.id, at=AT, enroll=False)
    got = _by_account(plan)
    a = got[mailed.account_id]
    # Monday is quiet: Tuesday, at the organization's 12:00 (16:00 UTC), not the legal 08:00.
    tuesday_noon = dt.datetime(2026, 5, 5, 16, 0, tzinfo=UTC)
    assert (a.outcome, a.channel, a.scheduled_for, a.reasons, a.tried) == (
        "retime",
        "email",
        tuesday_noon,
        ("ORG-QUIET-DAYS", "ORG-WINDOW"),
        (),
    )
    b = got[letter.account_id]  # letters are not time-restricted (PLAT-TIME-CHANNELS)
    assert (b.outcome, b.channel, b.scheduled_for, b.reasons) == (
        "send",
        "letter",
        TEN_LOCAL,
        ("PLAN-NO-CONTACT-POINT",),
    )
    assert (counts["created"], counts["send"], counts["retime"]) == (2, 1, 1)
    with db.tenant_session(tenant.id) as s:
        attempts = {x.account_id: x for x in s.scalars(select(OutreachAttempt))}
        retimed = attempts[mailed.account_id]
        assert (retimed.scheduled_for, retimed.next_allowed_at, retimed.reasons) == (
            tuesday_noon,
            tuesday_noon,
            ["ORG-QUIET-DAYS", "ORG-WINDOW"],
        )
        jobs = {j.args["attempt_id"]: j.scheduled_at for j in s.scalars(select(Job))}
        assert jobs[str(retimed.id)] == tuesday_noon
        assert jobs[str(attempts[letter.account_id].id)] == TEN_LOCAL


def _emailed(s, tenant, debtor, at: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    contact_history_service.record_contact(
        s,
        keys=tenant.keys,
        actor=TEST_ACTOR,
        guarantor_id=debtor.guarantor_id,
        contact_point_id=debtor.email_id,
        occurred_at=at,
        channel="email",
        direction="outbound",
        outcome="delivered",
        account_ids=[debtor.account_id],
    )


def test_contact_cap_retimes_within_the_horizon_else_falls_back(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        set_overlay(
            s, actor=TEST_ACTOR, organization_id=tenant.id, data={"max_contacts_per_7_days": 1}
        )
        simple_campaign(s, tenant, channels=("email", "letter"))
        recent = make_debtor(s, tenant, n=1)
        _emailed(s, tenant, recent, dt.datetime(2026, 5, 2, 15, 0, tzinfo=UTC))  # Saturday
        older = make_debtor(s, tenant, n=2)
        _emailed(s, tenant, older, dt.datetime(2026, 4, 28, 13, 0, tzinfo=UTC))  # Tuesday
        fresh = make_debtor(s, tenant, n=3)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    with db.tenant_session(tenant.id) as s:
        got = _by_account(build_plan(s, organization_id=tenant.id, at=AT))
    a = got[recent.account_id]
    # Free again on Saturday 2026-05-09: beyond the 3-day horizon, so the letter goes.
    assert (a.outcome, a.channel, a.tried) == ("send", "letter", ("email:ORG-CONTACT-CAP",))
    b = got[older.account_id]
    # The 04-28 e-mail leaves the 7 local days on 05-05: 08:00 Boston then.
    assert (b.outcome, b.channel, b.scheduled_for, b.reasons) == (
        "retime",
        "email",
        dt.datetime(2026, 5, 5, 12, 0, tzinfo=UTC),
        ("ORG-CONTACT-CAP",),
    )
    c = got[fresh.account_id]
    assert (c.outcome, c.channel, c.scheduled_for, c.reasons) == ("send", "email", TEN_LOCAL, ())


def test_a_cap_of_zero_blocks_the_channel(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        set_overlay(
            s, actor=TEST_ACTOR, organization_id=tenant.id, data={"max_contacts_per_7_days": 0}
        )
        simple_campaign(s, tenant, channels=("email",))
        only_email = make_debtor(s, tenant, n=1)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    with db.tenant_session(tenant.id) as s:
        plan, counts = plan_and_persist(s, organization_id=tenant.id, at=AT, enroll=False)
    a = _by_account(plan)[only_email.account_id]
    assert (a.outcome, a.channel, a.reasons, a.tried) == (
        "blocked",
        None,
        ("ORG-CONTACT-CAP",),
        ("email:ORG-CONTACT-CAP",),
    )
    assert (counts["created"], counts["blocked"]) == (0, 1)
    with db.tenant_session(tenant.id) as s:
        assert list(s.scalars(select(OutreachAttempt))) == []


def test_an_overlay_that_is_not_one_is_refused(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("email",))
        make_debtor(s, tenant, n=1)
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    with (
        db.tenant_session(tenant.id) as s,
        pytest.raises(TypeError, match="overlay must be an OrgOverlay or None"),
    ):
        build_plan(s, organization_id=tenant.id, at=AT, overlay={"quiet_weekdays": ["mon"]})
    with db.tenant_session(tenant.id) as s:
        assert list(s.scalars(select(OutreachAttempt))) == []


def test_clear_instant_holidays_and_every_zone() -> None:
    memorial_day = dt.datetime(2026, 5, 25, 14, 0, tzinfo=UTC)
    limit = memorial_day + dt.timedelta(days=3)
    got = clear_instant(OrgOverlay(holiday_country="US"), (NY,), memorial_day, limit)
    assert got == (dt.datetime(2026, 5, 26, 12, 0, tzinfo=UTC), ("ORG-HOLIDAYS",))
    early = dt.datetime(2026, 5, 4, 12, 30, tzinfo=UTC)  # 08:30 in New York, 05:30 in LA
    assert clear_instant(OrgOverlay(), (NY, LA), early, limit) == (
        dt.datetime(2026, 5, 4, 15, 0, tzinfo=UTC),
        ("ORG-WINDOW",),
    )
    assert clear_instant(OrgOverlay(), (NY,), early, early) == (early, ())
    # Nothing inside the limit: None, with the rule that moved it.
    assert clear_instant(
        OrgOverlay(quiet_weekdays=frozenset({0})),
        (NY,),
        TEN_LOCAL,
        TEN_LOCAL + dt.timedelta(hours=3),
    ) == (None, ("ORG-QUIET-DAYS",))


def test_cap_release_counts_local_days() -> None:
    sent = [dt.datetime(2026, 4, 28, 3, 30, tzinfo=UTC)]  # 04-27 23:30 in New York
    # In New York it falls on 04-27, outside 04-28..05-04; in UTC on 04-28, inside.
    assert cap_release((NY,), sent, 1, TEN_LOCAL) is None
    assert cap_release((NY, "UTC"), sent, 1, TEN_LOCAL) == dt.datetime(2026, 5, 5, 0, 0, tzinfo=UTC)
    assert cap_release((NY,), sent, 2, TEN_LOCAL) is None
    assert cap_release((NY,), [TEN_LOCAL], 1, TEN_LOCAL) is None  # only events before
