"""Receipt e-mails end to end: a posted payment, the real job worker, the outreach e-mail
channel and an aiosmtpd relay on loopback. Headers are neutral, canary PHI never leaves,
and consent, compliance and the BAA gate are honoured. Synthetic people only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carecollect.audit import Actor
from carecollect.consent.service import consent_service
from carecollect.db import Database
from carecollect.kit.jobs import registry
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.jobs.worker import Worker
from carecollect.outreach.dispatch import DispatchResources, DispatchSettings
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.outreach.ratelimit import RateLimiter
from carecollect.outreach.transactional import TransactionalSender
from carecollect.patient.models import Flag, Guarantor
from carecollect.payment import tasks as payment_tasks
from carecollect.payment.models import Payment
from carecollect.payment.receipts import ReceiptSender
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment.service import RECEIPT_JOB, payment_service
from carecollect.tenant.models import BusinessAssociate
from carecollect.worker_resources import add_email_senders
from tests.channel.fakes import smtp_server
from tests.channel.world import smtp_provider
from tests.factories import TEST_ACTOR, add_email, audit_events
from tests.payment.world import World, make_world

# Tuesday 10 March 2026, 12:00 in Chicago: inside every e-mail window.
NOW = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
PATIENT = Actor.patient("00000000-0000-7000-8000-0000000000aa")
ADDRESS = "robin.receipt@example.org"
# Values that must never appear in a receipt e-mail (RULES.md section 8).
CANARIES = ("Robin", "Testperson", "ACC-1001", "Cleaning", "1980-05-17", "Lakeside Dental")


def _world(db: Database, *, baa: bool = True, language: str = "en") -> World:
    world = make_world(db, mailing_tz="America/Chicago")
    with db.tenant_session(world.org_id) as s:
        email = add_email(s, world.tenant, world.guarantor_id, ADDRESS)
        consent_service.grant(s, keys=world.tenant.keys, actor=TEST_ACTOR,
                              guarantor_id=world.guarantor_id, contact_point_id=email.id,
                              kind="email_use", granted_at=NOW - timedelta(days=30),
                              method="intake_form")
        s.get(Guarantor, world.guarantor_id).preferred_language = language  # type: ignore[union-attr]
        if baa:
            s.add(BusinessAssociate(organization_id=world.org_id, name="Mail vendor",
                                    service="email", baa_status="active",
                                    baa_effective_on=date(2025, 1, 1)))
    return world


def _pay(world: World, amount: str = "25.00") -> Payment:
    with world.db.tenant_session(world.org_id) as s:
        _, payment = payment_service.start_payment(
            s, keys=world.tenant.keys, actor=PATIENT, processor=SandboxProcessor(),
            account_id=world.account_id, amount=amount, idempotency_key="receipt-test",
            payment_method="pm_sandbox_visa", now=NOW)
        assert payment is not None
        s.expunge(payment)
        return payment


def _resources(world: World, port: int, now: datetime) -> dict[str, Any]:
    outreach = DispatchResources(channels={"email": smtp_provider(port)},
                                 settings=DispatchSettings(link_secret=b"k" * 32),
                                 limiter=RateLimiter({}))
    resources: dict[str, Any] = {"outreach": outreach}
    add_email_senders(resources, world.db, world.tenant.manager)
    # The senders use the worker's clock in tests (time-of-day rules are checked).
    resources["receipt_sender"].transactional.clock = lambda: now
    return resources


def _drain(world: World, resources: dict[str, Any], now: datetime = NOW) -> None:
    reg = TaskRegistry()
    spec = registry.tasks[RECEIPT_JOB]
    reg.register(RECEIPT_JOB, spec.handler, queue=spec.queue, max_attempts=spec.max_attempts)
    Worker(world.db, world.tenant.manager, registry=reg, resources=resources,
           clock=lambda: now, run_scheduler=False).drain()


def _attempts(world: World) -> list[OutreachAttempt]:
    with world.db.tenant_session(world.org_id) as s:
        return list(s.scalars(select(OutreachAttempt)))


def test_receipt_is_emailed_with_neutral_headers_and_no_phi(db: Database) -> None:
    assert payment_tasks.send_receipt is not None
    world = _world(db)
    payment = _pay(world)
    with smtp_server() as (controller, inbox):
        _drain(world, _resources(world, controller.port, NOW))
    [(mail_from, rcpt, msg)] = inbox.messages
    assert (mail_from, rcpt) == ("billing@example.org", [ADDRESS])
    assert msg["From"] == "Lakeside Billing <billing@example.org>"
    assert msg["Subject"] == "Your payment receipt"
    assert msg["List-Unsubscribe"].startswith(
        "<https://carecollect.localhost/hooks/email/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk()
             if not p.is_multipart()}
    text = parts["text/plain"].replace("\r\n", "\n")
    assert f"Receipt number: {payment.receipt_number}\n" in text
    assert "Date: 2026-03-10\n" in text  # the organization's zone
    assert "Amount paid: $25.00\n" in text
    assert "Paid with" not in text  # a one-time card: no saved method to name
    assert "Remaining balance: $125.00\n" in text
    assert "To stop receiving these e-mails, use this link: https://" in text
    assert "<p>Thank you. We received your payment.</p>" in parts["text/html"]
    raw = msg.as_string()
    for canary in CANARIES:
        assert canary not in raw
    for header in ("From", "Subject"):
        assert "$" not in msg[header]
    [attempt] = _attempts(world)
    assert (attempt.state, attempt.template_key, attempt.idempotency_key) == (
        "sent", "payment_receipt_email", f"receipt:{payment.id}")
    [sent] = audit_events(db, "message.send")
    assert sent["details"]["channel"] == "email"
    assert [j.state for j in world.jobs(RECEIPT_JOB)] == ["completed"]


def test_receipt_follows_the_preferred_language(db: Database) -> None:
    world = _world(db, language="es")
    _pay(world)
    with smtp_server() as (controller, inbox):
        _drain(world, _resources(world, controller.port, NOW))
    [(_, _, msg)] = inbox.messages
    assert msg["Subject"] == "Su recibo de pago"
    text = next(p.get_payload(decode=True).decode() for p in msg.walk()
                if p.get_content_type() == "text/plain")
    assert "Monto pagado: $25.00" in text
    assert "Para dejar de recibir estos correos, use este enlace: https://" in text


def test_without_an_email_baa_nothing_leaves(db: Database) -> None:
    world = _world(db, baa=False)
    _pay(world)
    with smtp_server() as (controller, inbox):
        _drain(world, _resources(world, controller.port, NOW))
        assert inbox.messages == []
    [attempt] = _attempts(world)
    assert (attempt.state, attempt.error_code) == ("failed", "baa_inactive")
    [job] = world.jobs(RECEIPT_JOB)
    assert (job.state, job.errors[-1]["code"]) == ("discarded", "baa_inactive")
    denied = [e for e in audit_events(db, "outreach.decision") if e["outcome"] == "denied"]
    assert [e["details"]["service"] for e in denied] == ["email"]
    assert audit_events(db, "message.send") == []


def test_an_email_revocation_blocks_the_receipt(db: Database) -> None:
    world = _world(db)
    with db.tenant_session(world.org_id) as s:
        consent_service.revoke(s, keys=world.tenant.keys, actor=TEST_ACTOR,
                               guarantor_id=world.guarantor_id, contact_point_id=None,
                               channel="email", received_at=NOW - timedelta(days=1),
                               method="portal")
    _pay(world)
    with smtp_server() as (controller, inbox):
        _drain(world, _resources(world, controller.port, NOW))
        assert inbox.messages == []
    [attempt] = _attempts(world)
    assert attempt.state == "blocked"
    assert attempt.reasons  # the engine's rule ids, e.g. the e-mail opt-out
    assert attempt.contact_event_id is None
    assert [j.state for j in world.jobs(RECEIPT_JOB)] == ["completed"]
    assert audit_events(db, "message.send") == []


def test_a_do_not_contact_flag_blocks_the_receipt(db: Database) -> None:
    world = _world(db)
    with db.tenant_session(world.org_id) as s:
        s.add(Flag(organization_id=world.org_id, guarantor_id=world.guarantor_id,
                   kind="do_not_contact", raised_at=NOW - timedelta(days=1)))
    _pay(world)
    with smtp_server() as (controller, inbox):
        _drain(world, _resources(world, controller.port, NOW))
        assert inbox.messages == []
    [attempt] = _attempts(world)
    assert (attempt.state, attempt.reasons) == ("blocked", ["PLAT-DO-NOT-CONTACT"])


def test_late_at_night_the_receipt_waits_for_the_morning(db: Database) -> None:
    world = _world(db)
    _pay(world)
    night = datetime(2026, 3, 11, 4, 30, tzinfo=UTC)  # 23:30 in Chicago
    with smtp_server() as (controller, inbox):
        _drain(world, _resources(world, controller.port, night), night)
        assert inbox.messages == []
    assert _attempts(world) == []  # nothing recorded: the job was snoozed
    [job] = world.jobs(RECEIPT_JOB)
    assert job.state == "available"
    assert job.scheduled_at.astimezone(UTC) == datetime(2026, 3, 11, 13, 0, tzinfo=UTC)


def test_a_second_send_with_the_same_key_sends_nothing(db: Database) -> None:
    world = _world(db)
    payment = _pay(world)
    with smtp_server() as (controller, inbox):
        resources = _resources(world, controller.port, NOW)
        sender: ReceiptSender = resources["receipt_sender"]
        from carecollect.payment.receipts import receipt_content

        with db.tenant_session(world.org_id) as s:
            email = receipt_content(s, payment.id)
        first = sender(world.org_id, world.guarantor_id, email, f"receipt:{payment.id}")
        second = sender(world.org_id, world.guarantor_id, email, f"receipt:{payment.id}")
        assert (first.state, second.state) == ("sent", "skipped")
        assert first.attempt_id == second.attempt_id
        assert len(inbox.messages) == 1


def test_a_from_name_other_than_the_billing_name_is_refused(db: Database) -> None:
    from carecollect.kit.jobs import TerminalError
    from carecollect.outreach.transactional import TransactionalEmail

    world = _world(db)
    with smtp_server() as (controller, inbox):
        resources = _resources(world, controller.port, NOW)
        sender: TransactionalSender = resources["receipt_sender"].transactional
        email = TransactionalEmail(template_key="payment_receipt_email", subject="Receipt",
                                   from_name="Lakeside Dental Group", text_body="Hello\n",
                                   language="en", contains=("neutral_notice",))
        with pytest.raises(TerminalError) as refused:
            sender.send(world.org_id, world.guarantor_id, email, "k-from")
        assert refused.value.code == "from_name_not_neutral"
        assert inbox.messages == []
    assert _attempts(world) == []


def test_worker_resources_carry_the_senders_only_with_database_and_keys(
        db: Database, tmp_path: Any) -> None:
    from carecollect.audit.keys import create_signing_key
    from carecollect.config import Settings
    from carecollect.payment_plan.notice import PlanNoticeSender
    from carecollect.worker_resources import build_worker_resources
    from tests.factories import key_manager

    settings = Settings(data_dir=tmp_path)
    create_signing_key(settings.resolved_audit_signing_key_path)
    without = build_worker_resources(settings)
    assert "receipt_sender" not in without
    assert "plan_notice_sender" not in without
    wired = build_worker_resources(settings, db, key_manager())
    assert isinstance(wired["receipt_sender"], ReceiptSender)
    assert isinstance(wired["plan_notice_sender"], PlanNoticeSender)
    assert wired["receipt_sender"].transactional.resources is wired["outreach"]


def test_without_an_email_channel_or_address_the_receipt_is_recorded_not_sent(
        db: Database) -> None:
    world = _world(db)
    _pay(world)
    outreach = DispatchResources(channels={}, settings=DispatchSettings(link_secret=b"k" * 32),
                                 limiter=RateLimiter({}))
    resources: dict[str, Any] = {"outreach": outreach}
    add_email_senders(resources, world.db, world.tenant.manager)
    resources["receipt_sender"].transactional.clock = lambda: NOW
    _drain(world, resources)
    [attempt] = _attempts(world)
    assert (attempt.state, attempt.error_code) == ("failed", "channel_not_configured")
    assert [j.state for j in world.jobs(RECEIPT_JOB)] == ["completed"]


def test_a_guarantor_without_an_email_address_gets_no_receipt_email(db: Database) -> None:
    world = make_world(db, mailing_tz="America/Chicago")
    with db.tenant_session(world.org_id) as s:
        s.add(BusinessAssociate(organization_id=world.org_id, name="Mail vendor",
                                service="email", baa_status="active",
                                baa_effective_on=date(2025, 1, 1)))
    _pay(world)
    with smtp_server() as (controller, inbox):
        _drain(world, _resources(world, controller.port, NOW))
        assert inbox.messages == []
    [attempt] = _attempts(world)
    assert (attempt.state, attempt.error_code, attempt.reasons) == (
        "blocked", "no_email_address", [])
