"""The job handlers through the real worker: charge (with a retryable outage), receipt and
missed-payment notice hand-offs, and the periodic sweep once installed."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from carecollect.kit.jobs import registry, scheduler
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.jobs.worker import Worker
from carecollect.payment import tasks as payment_tasks
from carecollect.payment.models import Payment
from carecollect.payment.receipts import ReceiptEmail
from carecollect.payment.sandbox import SandboxProcessor, sandbox_card
from carecollect.payment.service import RECEIPT_JOB
from carecollect.payment_plan import tasks as plan_tasks
from carecollect.payment_plan.service import CHARGE_JOB, NOTICE_JOB, SWEEP_JOB, plan_service
from tests.payment.world import World, make_world
from tests.payment_plan.helpers import create_plan, plan_state, save_card, set_policy

NOW = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


def _registry() -> TaskRegistry:
    reg = TaskRegistry()
    for kind in (RECEIPT_JOB, CHARGE_JOB, NOTICE_JOB, SWEEP_JOB):
        spec = registry.tasks[kind]
        reg.register(kind, spec.handler, queue=spec.queue, max_attempts=spec.max_attempts)
    return reg


def _world(db, card: str) -> tuple[World, SandboxProcessor, uuid.UUID]:  # type: ignore[no-untyped-def]
    world = make_world(db, mailing_tz="America/Chicago")
    set_policy(world)
    sandbox = SandboxProcessor()
    method = save_card(world, sandbox, card)
    plan_id = create_plan(world, now=datetime(2026, 3, 1, 18, tzinfo=UTC),
                          start_on=date(2026, 3, 10), installments=3, method_id=method)
    return world, sandbox, plan_id


def _worker(world: World, reg: TaskRegistry, resources: dict[str, Any],
            now: datetime = NOW) -> Worker:
    return Worker(world.db, world.tenant.manager, registry=reg, resources=resources,
                  clock=lambda: now, run_scheduler=False)


def test_charge_job_retries_an_outage_then_receipt_is_handed_off(db) -> None:  # type: ignore[no-untyped-def]
    assert payment_tasks.send_receipt is not None
    assert plan_tasks.charge is not None
    world, sandbox, plan_id = _world(db, "pm_sandbox_network_error")
    reg = _registry()
    sent: list[tuple[uuid.UUID, uuid.UUID, ReceiptEmail, str]] = []
    resources = {"payment_processor": sandbox,
                 "receipt_sender": lambda *args: sent.append(args)}
    plan_service.sweep(db, now=NOW)
    worker = _worker(world, reg, resources)
    worker.drain()
    [job] = world.jobs(CHARGE_JOB)
    assert (job.state, [e["code"] for e in job.errors]) == ("available", ["processor_unavailable"])
    assert world.count(Payment) == 0
    # The card works again (same saved method id in the sandbox): the retry charges once.
    for method_id, (customer, _card) in list(sandbox._methods.items()):
        sandbox._methods[method_id] = (customer, sandbox_card("pm_sandbox_visa"))
    later = datetime(2026, 3, 11, 17, 0, tzinfo=UTC)
    _worker(world, reg, resources, later).drain()
    assert [j.state for j in world.jobs(CHARGE_JOB)] == ["completed"]
    _, items = plan_state(world, plan_id)
    assert items[0].status == "paid"
    assert [j.state for j in world.jobs(RECEIPT_JOB)] == ["completed"]
    [(org_id, guarantor_id, email, key)] = sent
    assert (org_id, guarantor_id) == (world.org_id, world.guarantor_id)
    assert email.subject == "Your payment receipt"
    assert key.startswith("receipt:")


def test_missing_sender_keeps_the_receipt_job_visible(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, _plan_id = _world(db, "pm_sandbox_visa")
    plan_service.sweep(db, now=NOW)
    _worker(world, _registry(), {"payment_processor": sandbox}).drain()
    [receipt] = world.jobs(RECEIPT_JOB)
    assert (receipt.state, receipt.errors[-1]["code"]) == ("available",
                                                           "receipt_sender_not_configured")


def test_missed_notice_is_handed_off(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, plan_id = _world(db, "pm_sandbox_decline")
    notices: list[tuple[Any, ...]] = []
    later = datetime(2026, 3, 21, 17, 0, tzinfo=UTC)
    plan_service.sweep(db, now=later)
    _, items = plan_state(world, plan_id)
    assert items[0].status == "missed"
    _worker(world, _registry(), {"payment_processor": sandbox,
                                 "plan_notice_sender": lambda *a: notices.append(a)},
            later).drain()
    assert notices == [(world.org_id, world.guarantor_id, items[0].id,
                        f"plan-missed:{items[0].id}")]


def test_install_periodic_schedules_the_sweep(db) -> None:  # type: ignore[no-untyped-def]
    reg = _registry()
    assert reg.periodic == {}
    plan_tasks.install_periodic(reg)
    assert scheduler.tick(db, reg, NOW) == 1
    assert scheduler.tick(db, reg, NOW) == 0
    assert "payment_plan_sweep" not in registry.periodic  # the global registry is untouched
