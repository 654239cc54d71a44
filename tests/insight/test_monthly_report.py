"""The monthly insights report end to end: the periodic sweep, one job per recipient, the
e-mail channel to an aiosmtpd server on loopback, the PDF attachment, the audit event, and
no PHI anywhere in the message (canary)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select, text

from carecollect.audit import Actor
from carecollect.db import Database
from carecollect.identity import service as identity
from carecollect.identity.models import StaffUser
from carecollect.identity.permissions import Role
from carecollect.insight import tasks as insight_tasks
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.jobs.scheduler import tick
from carecollect.kit.jobs.worker import Worker
from carecollect.outreach.dispatch import DispatchResources, DispatchSettings
from carecollect.outreach.ratelimit import RateLimiter
from tests.channel.fakes import smtp_server
from tests.channel.world import smtp_provider
from tests.factories import TEST_ACTOR, Tenant, add_email, add_phone, audit_events, create_tenant

FIRST_OF_MONTH = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CANARY = {"first_name": "Quillonia", "last_name": "Zebrowskiova",
          "date_of_birth": date(1971, 7, 9)}
CANARY_VALUES = ["Quillonia", "Zebrowskiova", "1971-07-09", "07/09/1971", "6175550199",
                 "555-0199", "quillonia.canary", "mail.example.org", "RFD-204811"]


def _seed(db: Database) -> tuple[Tenant, dict[str, uuid.UUID]]:
    from carecollect.ledger.service import ledger_service
    from tests.factories import create_guarantor

    tenant = create_tenant(db)
    users: dict[str, uuid.UUID] = {}
    with db.tenant_session(tenant.id) as session:
        for role in Role:
            user, _ = identity.create_user(
                session, actor=Actor.system("test"), organization_id=tenant.id,
                email=f"{role.value}@staff.example.org", display_name=f"Test {role.value}",
                role=role.value, password="correct horse battery staple 42",
            )
            users[role.value] = user.id
        disabled, _ = identity.create_user(
            session, actor=Actor.system("test"), organization_id=tenant.id,
            email="former.owner@staff.example.org", display_name="Former", role="owner",
            password="correct horse battery staple 42",
        )
        disabled.state = "disabled"
        g = create_guarantor(session, tenant, **CANARY)
        add_phone(session, tenant, g.id, "+16175550199")
        add_email(session, tenant, g.id, "quillonia.canary@mail.example.org")
        account = ledger_service.open_account(
            session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id,
            account_number="RFD-204811", opened_at=datetime(2026, 8, 1, tzinfo=UTC),
        )
        ledger_service.post(
            session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
            kind="charge", amount_cents=42_000, posted_at=datetime(2026, 8, 2, tzinfo=UTC),
            procedure_codes="D2740", description="Crown",
        )
        for day in (5, 20):
            ledger_service.post(
                session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
                kind="patient_payment", amount_cents=5_000,
                posted_at=datetime(2026, 10, day, 15, tzinfo=UTC),
            )
    return tenant, users


def _worker(db: Database, tenant: Tenant, port: int | None,
            clock: Callable[[], datetime]) -> Worker:
    channels: dict[str, Any] = {} if port is None else {"email": smtp_provider(port)}
    resources = {"outreach": DispatchResources(
        channels=channels,
        settings=DispatchSettings(public_base_url="https://billing.example.org",
                                  link_secret=b"k" * 32),
        limiter=RateLimiter({}))}
    return Worker(db, tenant.manager, resources=resources, clock=clock, batch_size=20,
                  poll_interval=0.05)


def _schedule(db: Database, now: datetime) -> int:
    registry = TaskRegistry()
    insight_tasks.install_periodic(registry)
    assert sorted(registry.periodic) == ["insight_monthly_report", "insight_rollup_refresh"]
    return tick(db, registry, now)


def _jobs(db: Database, kind: str) -> list[tuple[str, str]]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT state, unique_key FROM job WHERE kind = :k "
                                 "ORDER BY unique_key"), {"k": kind}).all()
    return [(r[0], r[1]) for r in rows]


def _all_text(msg: Message) -> str:
    """Headers, every text part and the PDF's extracted text."""
    parts = [f"{k}: {v}" for k, v in msg.items()]
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_content_type() == "application/pdf":
            reader = PdfReader(io.BytesIO(payload))
            parts.extend(p.extract_text() for p in reader.pages)
            parts.append(str(reader.metadata))
        else:
            parts.append(payload.decode())
    return "\n".join(parts)


def test_monthly_report_reaches_each_recipient_once_with_the_pdf(db: Database) -> None:
    tenant, users = _seed(db)
    with smtp_server() as (controller, inbox):
        assert _schedule(db, FIRST_OF_MONTH) == 2  # the sweep and the rollup refresh
        worker = _worker(db, tenant, controller.port, lambda: FIRST_OF_MONTH)
        worker.drain()
        # The sweep's second run the same day and the next day enqueue nothing new.
        assert _schedule(db, FIRST_OF_MONTH + timedelta(days=1)) == 2
        _worker(db, tenant, controller.port, lambda: FIRST_OF_MONTH + timedelta(days=1)).drain()

    recipients = sorted(rcpt for _, [rcpt], _ in inbox.messages)
    assert recipients == ["billing_manager@staff.example.org",
                          "compliance_officer@staff.example.org", "owner@staff.example.org"]
    expected_keys = sorted(
        f"insight.monthly:{tenant.id}:2026-10:{users[role]}"
        for role in ("billing_manager", "compliance_officer", "owner")
    )
    assert _jobs(db, "insight.monthly_report") == [("completed", k) for k in expected_keys]

    for mail_from, _, msg in inbox.messages:
        assert mail_from == "billing@example.org"
        assert msg["Subject"] == "Monthly collections report, October 2026"
        assert msg["From"] == "Lakeside Billing <billing@example.org>"
        assert msg.get_content_type() == "multipart/mixed"
        [attachment] = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
        assert attachment.get_filename() == "insights-2026-10.pdf"
        pdf = attachment.get_payload(decode=True)
        assert isinstance(pdf, bytes)
        body = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
        assert "Lakeside Billing: monthly report, October 2026" in body
        assert "Period: 2026-10-01 to 2026-11-01 (end exclusive)" in body
        assert "Generated at: 2026-11-01 08:00 UTC" in body
        everything = _all_text(msg)
        assert "https://billing.example.org/app/insights" in everything
        leaks = [v for v in CANARY_VALUES if v.lower() in everything.lower()]
        assert leaks == []

    events = audit_events(db, "insight.report_email")
    assert sorted(e["details"]["recipient_user_id"] for e in events) == sorted(
        str(users[r]) for r in ("billing_manager", "compliance_officer", "owner"))
    assert {e["details"]["month"] for e in events} == {"2026-10"}
    assert all(e["details"]["reports"] >= 1 for e in events)


def test_sweep_sends_nothing_after_the_third_day(db: Database) -> None:
    tenant, _ = _seed(db)
    later = datetime(2026, 11, 4, 8, 0, tzinfo=UTC)
    with smtp_server() as (controller, inbox):
        assert _schedule(db, later) == 2
        _worker(db, tenant, controller.port, lambda: later).drain()
    assert inbox.messages == []
    assert _jobs(db, "insight.monthly_report") == []
    assert _jobs(db, "insight.monthly_sweep")[0][0] == "completed"


def test_a_recipient_whose_role_changed_is_skipped(db: Database) -> None:
    tenant, users = _seed(db)
    with smtp_server() as (controller, inbox):
        _schedule(db, FIRST_OF_MONTH)
        worker = _worker(db, tenant, controller.port, lambda: FIRST_OF_MONTH)
        # Run the sweep only, then demote the owner before the sends run.
        worker.run_once()
        with db.tenant_session(tenant.id) as session:
            owner = session.get(StaffUser, users["owner"])
            assert owner is not None
            owner.role = "collector"
        worker.drain()
    assert sorted(rcpt for _, [rcpt], _ in inbox.messages) == [
        "billing_manager@staff.example.org", "compliance_officer@staff.example.org"]
    assert len(audit_events(db, "insight.report_email")) == 2


def test_without_an_e_mail_channel_no_report_job_is_created(db: Database) -> None:
    tenant, _ = _seed(db)
    _schedule(db, FIRST_OF_MONTH)
    _worker(db, tenant, None, lambda: FIRST_OF_MONTH).drain()
    assert _jobs(db, "insight.monthly_sweep")[0][0] == "completed"
    assert _jobs(db, "insight.monthly_report") == []
    assert audit_events(db, "insight.report_email") == []


def test_a_report_job_without_an_e_mail_channel_fails_visibly(db: Database) -> None:
    from carecollect.kit.jobs import enqueue

    tenant, users = _seed(db)
    with db.tenant_session(tenant.id) as session:
        enqueue(session, insight_tasks.REPORT_JOB,
                {"month": "2026-10-01", "user_id": str(users["owner"])},
                organization_id=tenant.id, scheduled_at=FIRST_OF_MONTH,
                unique_key="insight.monthly:test")
    _worker(db, tenant, None, lambda: FIRST_OF_MONTH).drain()
    with db.engine.connect() as conn:
        state, errors = conn.execute(text(
            "SELECT state, errors FROM job WHERE kind = 'insight.monthly_report'")).one()
    assert state == "discarded"
    assert "channel_not_configured" in str(errors)
    assert audit_events(db, "insight.report_email") == []


def test_a_refusing_relay_is_retried_later(db: Database) -> None:
    tenant, _ = _seed(db)
    with smtp_server() as (controller, inbox):
        _schedule(db, FIRST_OF_MONTH)
        inbox.fail_next = [451, 451, 451]
        _worker(db, tenant, controller.port, lambda: FIRST_OF_MONTH).drain()
    assert inbox.messages == []
    states = sorted(state for state, _ in _jobs(db, "insight.monthly_report"))
    assert states == ["available", "available", "available"]
    assert audit_events(db, "insight.report_email") == []


@pytest.mark.parametrize(("today", "expected"), [
    (date(2026, 11, 1), date(2026, 10, 1)),
    (date(2026, 1, 3), date(2025, 12, 1)),
    (date(2026, 3, 31), date(2026, 2, 1)),
])
def test_previous_month(today: date, expected: date) -> None:
    assert insight_tasks.previous_month(today) == expected


def test_recipient_roles_follow_the_permission_matrix() -> None:
    assert insight_tasks.recipient_roles() == ["billing_manager", "compliance_officer", "owner"]


def test_disabled_users_get_no_job(db: Database) -> None:
    tenant, _ = _seed(db)
    with smtp_server() as (controller, _inbox):
        _schedule(db, FIRST_OF_MONTH)
        worker = _worker(db, tenant, controller.port, lambda: FIRST_OF_MONTH)
        worker.run_once()
    with db.tenant_session(tenant.id) as session:
        disabled = session.scalars(select(StaffUser.id).where(
            StaffUser.email == "former.owner@staff.example.org")).one()
    keys = [key for _, key in _jobs(db, "insight.monthly_report")]
    assert len(keys) == 3
    assert all(str(disabled) not in key for key in keys)
