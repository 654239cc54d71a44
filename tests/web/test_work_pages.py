"""Staff work lists: the review queue closed with outcomes, call tasks re-checked and
logged, failed autopay charges; authorization for every action and role."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from carecollect.outreach.cadence import cadence_service
from carecollect.outreach.cadence_models import OutreachExclusion
from carecollect.outreach.dispatch import create_attempt
from carecollect.outreach.models import ContactEvent
from carecollect.outreach.outbox import CallTask, ReviewItem
from carecollect.patient.models import Flag
from carecollect.patient.service import patient_service
from carecollect.payment_plan.models import ChargeAttempt, PaymentPlan, PlanInstallment
from tests.factories import TEST_ACTOR, audit_events
from tests.web.conftest import Seed, Web, csrf_of, seed
from tests.web.helpers import job_count, snapshot


def _flag(web: Web, ids: Seed, kind: str, *, account: bool = True,
          exclude: tuple[str, ...] = ()) -> uuid.UUID:
    """A flag in the review queue with its review item and the exclusions it caused."""
    tenant, now = web.tenant, web.clock()
    with web.db.tenant_session(tenant.id) as session:
        flag = patient_service.raise_flag(
            session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=ids.guarantor_id,
            kind=kind, raised_at=now - timedelta(days=2),
            account_id=ids.account_id if account else None, in_writing=True, source="portal")
        session.add(ReviewItem(organization_id=tenant.id, guarantor_id=ids.guarantor_id,
                               kind="dispute" if kind == "dispute" else "cease",
                               flag_id=flag.id, state="open", created_at=now))
        for reason in exclude:
            cadence_service.exclude(session, organization_id=tenant.id, actor=TEST_ACTOR,
                                    account_id=ids.account_id, reason=reason,
                                    at=now - timedelta(days=2))
        return flag.id


def _post(web: Web, client: Any, path: str, data: dict[str, str]) -> Any:
    token = csrf_of(client.get("/app/work"))
    return client.post(path, data={**data, "csrf_token": token})


def _exclusions(web: Web) -> dict[str, bool]:
    with web.db.system_session() as session:
        return {e.reason: e.lifted_at is not None
                for e in session.scalars(select(OutreachExclusion))}


def test_dispute_resolved_after_verification_resumes_outreach(web: Web) -> None:
    ids = seed(web)
    flag_id = _flag(web, ids, "dispute", exclude=("dispute",))
    client = web.login("billing_manager")
    page = client.get("/app/work")
    assert page.status_code == 200
    assert 'data-kind="dispute"' in page.text
    assert "Verification mailed to the consumer: resume" in page.text

    response = _post(web, client, f"/app/work/flags/{flag_id}/resolve",
                     {"outcome": "verification_sent"})
    assert (response.status_code, response.headers["location"]) == (303, "/app/work?m=resolved")
    with web.db.system_session() as session:
        flag = session.get(Flag, flag_id)
        assert flag is not None
        assert flag.cleared_at == web.clock()
        assert flag.attributes["review_outcome"] == "verification_sent"
        item = session.scalars(select(ReviewItem)).one()
        assert (item.state, item.resolved_at, item.resolved_by) == (
            "resolved", web.clock(), web.users["billing_manager"])
    assert _exclusions(web) == {"dispute": True}
    assert [e["details"] for e in audit_events(web.db, "flag.clear")] == [
        {"kind": "dispute", "outcome": "verification_sent"}]
    assert [e["details"] for e in audit_events(web.db, "outreach.exclude_lift")] == [
        {"lifted": 1, "reason": "dispute"}]
    after = client.get("/app/work?m=resolved")
    assert "Review recorded." in after.text
    assert "Nothing to review." in after.text


def test_confirmed_cease_stays_in_force_and_leaves_the_queue(web: Web) -> None:
    ids = seed(web)
    flag_id = _flag(web, ids, "cease_requested", account=False)
    client = web.login("compliance_officer")
    response = _post(web, client, f"/app/work/flags/{flag_id}/resolve", {"outcome": "confirmed"})
    assert response.status_code == 303
    with web.db.system_session() as session:
        flag = session.get(Flag, flag_id)
        assert flag is not None
        assert flag.cleared_at is None  # a cease is permanent
        assert flag.attributes["review_outcome"] == "confirmed"
    assert [e["details"] for e in audit_events(web.db, "flag.review")] == [
        {"kind": "cease_requested", "outcome": "confirmed"}]
    assert "Nothing to review." in client.get("/app/work").text
    # Reviewing it again is refused and changes nothing.
    before = snapshot(web.db)
    again = _post(web, client, f"/app/work/flags/{flag_id}/resolve", {"outcome": "confirmed"})
    assert again.status_code == 400
    assert "this flag is already reviewed" in again.text
    assert snapshot(web.db) == before


@pytest.mark.parametrize("outcome", ["", "bogus", "confirmed"])
def test_an_outcome_not_offered_for_the_kind_is_refused(web: Web, outcome: str) -> None:
    ids = seed(web)
    flag_id = _flag(web, ids, "dispute", exclude=("dispute",))
    client = web.login("collector")
    before, jobs = snapshot(web.db), job_count(web.db)
    response = _post(web, client, f"/app/work/flags/{flag_id}/resolve", {"outcome": outcome})
    assert response.status_code == 400
    assert ("is not an outcome for a dispute flag; choose one of: verification_sent, "
            "charge_corrected, withdrawn, keep_suspended") in response.text
    assert snapshot(web.db) == before
    assert job_count(web.db) == jobs


def test_unknown_flag_is_404_and_changes_nothing(web: Web) -> None:
    seed(web)
    client = web.login("billing_manager")
    before = snapshot(web.db)
    response = _post(web, client, f"/app/work/flags/{uuid.uuid4()}/resolve",
                     {"outcome": "withdrawn"})
    assert response.status_code == 404
    assert "no such flag in the review queue" in response.text
    assert snapshot(web.db) == before


def test_hardship_resolution_lifts_only_hardship_exclusions_and_resumes_plans(web: Web) -> None:
    ids = seed(web)
    flag_id = _flag(web, ids, "hardship", account=False, exclude=("hardship",))
    _flag(web, ids, "dispute", exclude=("dispute",))
    with web.db.tenant_session(web.tenant.id) as session:
        plan = PaymentPlan(organization_id=web.tenant.id, account_id=ids.account_id,
                           guarantor_id=ids.guarantor_id, status="paused", total_cents=12_500,
                           installment_count=1, start_on=date(2026, 1, 1),
                           timezone="America/New_York", created_by="staff",
                           paused_at=web.clock(), pause_reason="hardship")
        session.add(plan)
        session.flush()
        session.add(PlanInstallment(organization_id=web.tenant.id, plan_id=plan.id, sequence=1,
                                    due_on=date(2026, 1, 1), amount_cents=12_500))
        plan_id = plan.id
    client = web.login("billing_manager")
    response = _post(web, client, f"/app/work/flags/{flag_id}/resolve", {"outcome": "arranged"})
    assert response.status_code == 303
    assert _exclusions(web) == {"hardship": True, "dispute": False}
    with web.db.system_session() as session:
        resumed = session.get(PaymentPlan, plan_id)
        assert resumed is not None
        assert (resumed.status, resumed.pause_reason) == ("active", None)
    page = client.get("/app/work").text
    assert 'data-kind="dispute"' in page
    assert 'data-kind="hardship"' not in page


def _call_task(web: Web, ids: Seed) -> uuid.UUID:
    tenant = web.tenant
    with web.db.tenant_session(tenant.id) as session:
        attempt = create_attempt(session, organization_id=tenant.id,
                                 guarantor_id=ids.guarantor_id, channel="call",
                                 idempotency_key="call-1", contact_point_id=ids.phone_id,
                                 account_id=ids.account_id)
        task = CallTask(organization_id=tenant.id, attempt_id=attempt.id,
                        guarantor_id=ids.guarantor_id, contact_point_id=ids.phone_id,
                        due_at=web.clock() - timedelta(hours=1))
        session.add(task)
        session.flush()
        return task.id


def test_call_task_is_checked_then_logged_once(web: Web) -> None:
    ids = seed(web)
    task_id = _call_task(web, ids)
    client = web.login("collector")
    page = client.get("/app/work").text
    assert f'action="/app/work/calls/{task_id}/check"' in page
    check = _post(web, client, f"/app/work/calls/{task_id}/check", {})
    assert check.status_code == 200
    assert 'id="call-decision" data-decision="' in check.text
    assert 'id="voicemail-script"' in check.text
    assert [e["details"]["decision"] for e in audit_events(web.db, "call_task.check")] == [
        check.text.split('data-decision="')[1].split('"')[0]]

    logged = _post(web, client, f"/app/work/calls/{task_id}/outcome", {"outcome": "no_answer"})
    assert (logged.status_code, logged.headers["location"]) == (303, "/app/work?m=logged")
    with web.db.system_session() as session:
        task = session.get(CallTask, task_id)
        assert task is not None
        assert (task.state, task.outcome) == ("done", "no_answer")
        event = session.get(ContactEvent, task.contact_event_id)
        assert event is not None
        assert (event.channel, event.outcome) == ("call", "no_answer")
    assert [e["details"] for e in audit_events(web.db, "call_task.outcome")] == [
        {"outcome": "no_answer"}]
    assert "No calls due." in client.get("/app/work").text

    before = snapshot(web.db)
    again = _post(web, client, f"/app/work/calls/{task_id}/outcome", {"outcome": "no_answer"})
    assert again.status_code == 400
    assert "this call task is already closed" in again.text
    assert snapshot(web.db) == before


@pytest.mark.parametrize("outcome", ["", "delivered", "hung up"])
def test_call_outcome_not_offered_is_refused(web: Web, outcome: str) -> None:
    ids = seed(web)
    task_id = _call_task(web, ids)
    client = web.login("collector")
    before = snapshot(web.db)
    response = _post(web, client, f"/app/work/calls/{task_id}/outcome", {"outcome": outcome})
    assert response.status_code == 400
    assert "Choose what happened on the call." in response.text
    assert snapshot(web.db) == before


def test_failed_autopay_charges_are_listed(web: Web) -> None:
    ids = seed(web)
    now = web.clock()
    with web.db.tenant_session(web.tenant.id) as session:
        plan = PaymentPlan(organization_id=web.tenant.id, account_id=ids.account_id,
                           guarantor_id=ids.guarantor_id, total_cents=12_500,
                           installment_count=2, start_on=date(2026, 1, 1),
                           timezone="America/New_York", created_by="patient", autopay=True)
        session.add(plan)
        session.flush()
        installment = PlanInstallment(organization_id=web.tenant.id, plan_id=plan.id,
                                      sequence=1, due_on=date(2026, 1, 1), amount_cents=6_250,
                                      status="scheduled", attempts=1,
                                      next_attempt_on=date(2026, 1, 4))
        session.add(installment)
        session.flush()
        for number, (state, code, days) in enumerate(
                [("declined", "insufficient_funds", 2), ("succeeded", None, 1),
                 ("declined", "card_declined", 45)], start=1):
            session.add(ChargeAttempt(organization_id=web.tenant.id,
                                      installment_id=installment.id, attempt_number=number,
                                      idempotency_key=f"k{number}", amount_cents=6_250,
                                      state=state, failure_code=code,
                                      started_at=now - timedelta(days=days)))
    page = web.login("collector").get("/app/work").text
    table = page.split('id="failed-payments"')[1].split("</table>")[0]
    assert table.count("<tr>") == 2  # the header and the one failure within 30 days
    assert "$62.50" in table
    assert "insufficient_funds" in table
    assert "2026-01-04" in table
    assert "card_declined" not in table


ACTIONS = [
    ("/app/work/flags/{flag}/resolve", {"outcome": "withdrawn"}, Permission.FLAG_WRITE),
    ("/app/work/calls/{task}/check", {}, Permission.CALL_WORK),
    ("/app/work/calls/{task}/outcome", {"outcome": "no_answer"}, Permission.CALL_WORK),
]


@pytest.mark.parametrize("role", [r.value for r in Role] + ["anonymous"])
def test_work_actions_are_authorized_per_role(web: Web, role: str) -> None:
    ids = seed(web)
    flag_id = _flag(web, ids, "dispute", exclude=("dispute",))
    task_id = _call_task(web, ids)
    client = web.client() if role == "anonymous" else web.login(role)
    token = csrf_of(client.get("/app/login") if role == "anonymous" else client.get("/app/"))
    for path, data, permission in ACTIONS:
        url = path.format(flag=flag_id, task=task_id)
        allowed = role != "anonymous" and permission in ROLE_PERMISSIONS[Role(role)]
        if allowed:
            continue  # the allowed paths are exercised by the tests above
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.post(url, data={**data, "csrf_token": token})
        if role == "anonymous":
            assert response.status_code in (303, 401, 403), (url, response.status_code)
        else:
            assert response.status_code == 403, (url, role, response.status_code)
        assert snapshot(web.db) == before
        assert job_count(web.db) == jobs


def test_call_check_applies_the_organizations_quiet_days(web: Web) -> None:
    from zoneinfo import ZoneInfo

    from carecollect.compliance.overlay_settings import set_overlay
    from carecollect.tenant.models import Organization

    # A Wednesday at noon in New York (09:00 in California): inside every calling window,
    # so the organization's quiet day is the only thing that blocks, whatever hour the
    # suite runs at.
    web.clock.value = datetime.fromisoformat("2026-12-02T17:00:00+00:00")
    ids = seed(web)
    task_id = _call_task(web, ids)
    with web.db.tenant_session(web.tenant.id) as session:
        org = session.get(Organization, web.tenant.id)
        assert org is not None
        today = web.clock().astimezone(ZoneInfo(org.timezone)).weekday()
        set_overlay(session, actor=TEST_ACTOR, organization_id=web.tenant.id,
                    data={"quiet_weekdays": [today]})
    client = web.login("collector")
    check = _post(web, client, f"/app/work/calls/{task_id}/check", {})
    assert 'data-decision="block"' in check.text
    assert "<strong>ORG-QUIET-DAYS</strong>" in check.text
    assert [e["details"] for e in audit_events(web.db, "call_task.check")] == [
        {"decision": "block", "reasons": ["STATE-SUNDAY", "ORG-QUIET-DAYS"]}]
