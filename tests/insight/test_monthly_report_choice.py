"""The monthly report e-mail: each recipient can turn it off (and on again) on the
insights page, the sweep and the send both honour it, and "the first days of the month"
are the organization's own days, not UTC's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from carecollect.db import Database
from carecollect.identity.models import StaffUser
from carecollect.insight.tasks import local_date
from carecollect.tenant.models import Organization
from tests.channel.fakes import smtp_server
from tests.factories import audit_events
from tests.insight.test_monthly_report import (
    FIRST_OF_MONTH,
    _jobs,
    _schedule,
    _seed,
    _worker,
)
from tests.web.conftest import Web, csrf_of, make_web
from tests.web.helpers import snapshot

RECIPIENTS = ["billing_manager@staff.example.org", "compliance_officer@staff.example.org",
              "owner@staff.example.org"]


def _set_zone(db: Database, organization_id: Any, zone: str) -> None:
    with db.system_session() as session:
        org = session.get(Organization, organization_id)
        assert org is not None
        org.timezone = zone


def _opt_out(db: Database, tenant_id: Any, user_id: Any, value: bool) -> None:
    with db.tenant_session(tenant_id) as session:
        user = session.get(StaffUser, user_id)
        assert user is not None
        user.monthly_report_opt_out = value


def _send(db: Database, tenant: Any, now: datetime) -> list[str]:
    with smtp_server() as (controller, inbox):
        _schedule(db, now)
        _worker(db, tenant, controller.port, lambda: now).drain()
    return sorted(rcpt for _, [rcpt], _ in inbox.messages)


def test_an_opted_out_user_gets_no_job_and_no_mail(db: Database) -> None:
    tenant, users = _seed(db)
    _opt_out(db, tenant.id, users["owner"], True)
    assert _send(db, tenant, FIRST_OF_MONTH) == RECIPIENTS[:2]
    assert all(str(users["owner"]) not in key for _, key in _jobs(db, "insight.monthly_report"))
    # Back on during the first days: the next sweep sends the owner's copy only.
    _opt_out(db, tenant.id, users["owner"], False)
    later = FIRST_OF_MONTH.replace(hour=20)
    assert _send(db, tenant, later) == ["owner@staff.example.org"]


def test_an_opt_out_after_the_sweep_stops_the_queued_send(db: Database) -> None:
    tenant, users = _seed(db)
    with smtp_server() as (controller, inbox):
        _schedule(db, FIRST_OF_MONTH)
        worker = _worker(db, tenant, controller.port, lambda: FIRST_OF_MONTH)
        worker.run_once()  # the sweep only
        _opt_out(db, tenant.id, users["billing_manager"], True)
        worker.drain()
    assert sorted(rcpt for _, [rcpt], _ in inbox.messages) == [RECIPIENTS[1], RECIPIENTS[2]]
    assert len(audit_events(db, "insight.report_email")) == 2


def test_the_first_days_are_the_organizations_own(db: Database) -> None:
    tenant, _ = _seed(db)
    _set_zone(db, tenant.id, "Pacific/Honolulu")
    # 08:00 UTC on 1 November is 22:00 on 31 October in Honolulu: October is not over.
    assert local_date(FIRST_OF_MONTH, "Pacific/Honolulu").isoformat() == "2026-10-31"
    assert _send(db, tenant, FIRST_OF_MONTH) == []
    assert _jobs(db, "insight.monthly_report") == []
    # 11:00 UTC is 01:00 on 1 November there: October's report goes out.
    assert _send(db, tenant, datetime(2026, 11, 1, 11, 0, tzinfo=UTC)) == RECIPIENTS
    assert {key.split(":")[2] for _, key in _jobs(db, "insight.monthly_report")} == {"2026-10"}


def test_the_fourth_day_in_the_organizations_zone_sends_nothing(db: Database) -> None:
    tenant, _ = _seed(db)
    _set_zone(db, tenant.id, "Asia/Tokyo")
    # 16:00 UTC on 3 November is already 4 November in Tokyo.
    assert _send(db, tenant, datetime(2026, 11, 3, 16, 0, tzinfo=UTC)) == []


def test_an_unknown_zone_falls_back_to_utc() -> None:
    assert local_date(FIRST_OF_MONTH, "Not/AZone").isoformat() == "2026-11-01"


def test_the_insights_page_turns_the_e_mail_off_and_on(db: Database, tmp_path: Path) -> None:
    web: Web = make_web(db, tmp_path)
    client = web.login("owner")
    page = client.get("/app/insights")
    assert 'id="monthly-email-form"' in page.text
    assert 'name="receive" value="on" checked' in page.text
    token = csrf_of(page)
    off = client.post("/app/insights/monthly-email", data={"csrf_token": token},
                      follow_redirects=False)
    assert off.status_code == 303
    assert off.headers["location"] == "/app/insights#monthly-report"
    assert 'name="receive" value="on" checked' not in client.get("/app/insights").text
    with db.tenant_session(web.tenant.id) as session:
        user = session.scalar(select(StaffUser).where(StaffUser.id == web.users["owner"]))
        assert user is not None
        assert user.monthly_report_opt_out is True
    # The same choice again records nothing new.
    client.post("/app/insights/monthly-email", data={"csrf_token": token})
    client.post("/app/insights/monthly-email", data={"csrf_token": token, "receive": "on"})
    assert 'name="receive" value="on" checked' in client.get("/app/insights").text
    events = audit_events(db, "staff_user.report_preference")
    assert [e["details"] for e in events] == [{"monthly_report_email": False},
                                              {"monthly_report_email": True}]


def test_the_choice_needs_the_csrf_token_and_the_export_permission(
    db: Database, tmp_path: Path
) -> None:
    web: Web = make_web(db, tmp_path)
    owner = web.login("owner")
    collector = web.login("collector")
    page = collector.get("/app/insights")
    assert 'id="monthly-email-form"' not in page.text
    before = snapshot(db)
    assert owner.post("/app/insights/monthly-email", data={}).status_code == 403
    refused = collector.post("/app/insights/monthly-email",
                             data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 403
    assert snapshot(db) == before
