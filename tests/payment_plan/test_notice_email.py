"""The missed-payment notice of a plan by e-mail, end to end: a declined autopay card, the
sweep marks the installment missed, the real worker runs the notice job through the
outreach e-mail channel to an aiosmtpd relay on loopback. Synthetic people only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from carecollect.consent.service import consent_service
from carecollect.db import Database
from carecollect.kit.jobs import registry
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.jobs.worker import Worker
from carecollect.outreach.dispatch import DispatchResources, DispatchSettings
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.outreach.ratelimit import RateLimiter
from carecollect.patient.models import Flag, Guarantor
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment_plan import tasks as plan_tasks
from carecollect.payment_plan.service import NOTICE_JOB, plan_service
from carecollect.tenant.models import BusinessAssociate
from carecollect.worker_resources import add_email_senders
from tests.channel.fakes import smtp_server
from tests.channel.world import smtp_provider
from tests.factories import TEST_ACTOR, add_email, audit_events
from tests.payment.world import World, make_world
from tests.payment_plan.helpers import create_plan, plan_state, save_card, set_policy

# Saturday 21 March 2026, 12:00 in Chicago: the first installment (10 March) is past grace.
LATER = datetime(2026, 3, 21, 17, 0, tzinfo=UTC)
ADDRESS = "robin.plan@example.org"
CANARIES = ("Robin", "Testperson", "ACC-1001", "Cleaning", "1980-05-17", "Lakeside Dental")


def _missed(db: Database, *, language: str = "en") -> tuple[World, Any]:
    world = make_world(db, mailing_tz="America/Chicago")
    set_policy(world)
    with db.tenant_session(world.org_id) as s:
        email = add_email(s, world.tenant, world.guarantor_id, ADDRESS)
        consent_service.grant(s, keys=world.tenant.keys, actor=TEST_ACTOR,
                              guarantor_id=world.guarantor_id, contact_point_id=email.id,
                              kind="email_use", granted_at=LATER - timedelta(days=60),
                              method="intake_form")
        s.get(Guarantor, world.guarantor_id).preferred_language = language  # type: ignore[union-attr]
        s.add(BusinessAssociate(organization_id=world.org_id, name="Mail vendor",
                                service="email", baa_status="active",
                                baa_effective_on=date(2025, 1, 1)))
    method = save_card(world, SandboxProcessor(), "pm_sandbox_decline")
    plan_id = create_plan(world, now=datetime(2026, 3, 1, 18, tzinfo=UTC),
                          start_on=date(2026, 3, 10), installments=3, method_id=method)
    plan_service.sweep(db, now=LATER)
    _, items = plan_state(world, plan_id)
    assert items[0].status == "missed"
    return world, items[0]


def _drain(world: World, port: int) -> None:
    outreach = DispatchResources(channels={"email": smtp_provider(port)},
                                 settings=DispatchSettings(link_secret=b"k" * 32,
                                                           callback_phone="+1 617 555 0100"),
                                 limiter=RateLimiter({}))
    resources: dict[str, Any] = {"outreach": outreach}
    add_email_senders(resources, world.db, world.tenant.manager)
    resources["plan_notice_sender"].transactional.clock = lambda: LATER
    reg = TaskRegistry()
    spec = registry.tasks[NOTICE_JOB]
    reg.register(NOTICE_JOB, spec.handler, queue=spec.queue, max_attempts=spec.max_attempts)
    Worker(world.db, world.tenant.manager, registry=reg, resources=resources,
           clock=lambda: LATER, run_scheduler=False).drain()


def _attempts(world: World) -> list[OutreachAttempt]:
    with world.db.tenant_session(world.org_id) as s:
        return list(s.scalars(select(OutreachAttempt)))


def _text(msg: Any) -> str:
    return str(next(p.get_payload(decode=True).decode() for p in msg.walk()
                    if p.get_content_type() == "text/plain")).replace("\r\n", "\n")


def test_missed_notice_is_emailed_once_without_phi(db: Database) -> None:
    assert plan_tasks.missed_notice is not None
    world, installment = _missed(db)
    with smtp_server() as (controller, inbox):
        _drain(world, controller.port)
        _drain(world, controller.port)  # a second worker run sends nothing more
    [(mail_from, rcpt, msg)] = inbox.messages
    assert (mail_from, rcpt) == ("billing@example.org", [ADDRESS])
    assert msg["From"] == "Lakeside Billing <billing@example.org>"
    assert msg["Subject"] == "A message from Lakeside Billing"
    text = _text(msg)
    amount = installment.amount_cents
    assert (f"We did not receive the payment of ${amount // 100:,}.{amount % 100:02d} that "
            "was due on 2026-03-10 under your payment plan.") in text
    assert "call us at +1 617 555 0100" in text
    assert "ask us about financial help" in text
    assert "To stop receiving these e-mails, use this link: https://" in text
    raw = msg.as_string()
    for canary in CANARIES:
        assert canary not in raw
    for word in ("past due", "collection", "$"):
        assert word not in msg["Subject"].lower()
    [attempt] = _attempts(world)
    assert (attempt.state, attempt.template_key, attempt.idempotency_key) == (
        "sent", "plan_missed_notice_email", f"plan-missed:{installment.id}")
    assert [j.state for j in world.jobs(NOTICE_JOB)] == ["completed"]
    assert len(audit_events(db, "message.send")) == 1


def test_missed_notice_in_spanish(db: Database) -> None:
    world, _installment = _missed(db, language="es")
    with smtp_server() as (controller, inbox):
        _drain(world, controller.port)
    [(_, _, msg)] = inbox.messages
    assert msg["Subject"] == "Un mensaje de Lakeside Billing"
    assert "No recibimos el pago de $" in _text(msg)


def test_a_dispute_suppresses_the_missed_notice(db: Database) -> None:
    world, _installment = _missed(db)
    with db.tenant_session(world.org_id) as s:
        s.add(Flag(organization_id=world.org_id, guarantor_id=world.guarantor_id,
                   kind="dispute", in_writing=True, raised_at=LATER - timedelta(days=2)))
    with smtp_server() as (controller, inbox):
        _drain(world, controller.port)
        assert inbox.messages == []
    [attempt] = _attempts(world)
    assert (attempt.state, attempt.reasons, attempt.error_code) == (
        "blocked", ["REGF-DISPUTE-CEASE"], "flag_in_force")
    assert attempt.contact_event_id is None
    assert audit_events(db, "message.send") == []
