"""Autopay: due in the patient's zone, exactly once with two workers and with a crash
between charge and record, declines follow the retry schedule, then grace, notice and
default (outreach resumes)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from carecollect.kit.jobs import registry
from carecollect.kit.jobs.worker import Worker
from carecollect.ledger.models import LedgerEntry
from carecollect.payment.models import Payment
from carecollect.payment.processor import ProcessorUnavailable
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment_plan import tasks  # noqa: F401 - registers the handlers
from carecollect.payment_plan.models import ChargeAttempt
from carecollect.payment_plan.service import CHARGE_JOB, NOTICE_JOB, plan_service
from tests.factories import audit_events
from tests.payment.world import World, make_world
from tests.payment_plan.helpers import create_plan, plan_state, save_card, set_policy

START = date(2026, 3, 10)
CREATED = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def _at(day: date, hour_utc: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour_utc, 0, tzinfo=UTC)


def _setup(db, card: str = "pm_sandbox_visa", tz: str = "America/Los_Angeles"  # type: ignore[no-untyped-def]
           ) -> tuple[World, SandboxProcessor, uuid.UUID, list[uuid.UUID]]:
    world = make_world(db, mailing_tz=tz)
    set_policy(world)
    sandbox = SandboxProcessor()
    method_id = save_card(world, sandbox, card)
    plan_id = create_plan(world, now=CREATED, start_on=START, installments=3,
                          method_id=method_id)
    _, items = plan_state(world, plan_id)
    return world, sandbox, plan_id, [i.id for i in items]


def _charge(world: World, sandbox: SandboxProcessor, installment_id: uuid.UUID, now: datetime,
            after_charge=None) -> str:  # type: ignore[no-untyped-def]
    return plan_service.charge_installment(world.db, keys=world.tenant.keys, processor=sandbox,
                                           installment_id=installment_id, now=now,
                                           after_charge=after_charge).status


def _charges(sandbox: SandboxProcessor) -> int:
    return len(sandbox._charges)


def test_due_date_is_in_the_patients_zone(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, _plan_id, [first, *_] = _setup(db)
    # 2026-03-10 15:00 UTC is 08:00 in Los Angeles (PDT since March 8): before the 09:00
    # autopay hour; 16:00 UTC is 09:00 there.
    assert _charge(world, sandbox, first, _at(START, 15)) == "not_due"
    assert _charge(world, sandbox, first, _at(START - timedelta(days=1), 23)) == "not_due"
    assert _charge(world, sandbox, first, _at(START, 16)) == "paid"
    assert world.balance() == 10_000
    [payment] = world.payments()
    assert (payment.source, payment.installment_id) == ("autopay", first)


def test_sweep_enqueues_once_and_the_worker_charges(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, plan_id, [first, second, _third] = _setup(db)
    now = _at(START, 17)
    assert plan_service.sweep(db, now=now) == {"charges_enqueued": 1, "missed": 0}
    assert plan_service.sweep(db, now=now) == {"charges_enqueued": 0, "missed": 0}
    [job] = world.jobs(CHARGE_JOB)
    assert (job.args, job.unique_key, job.queue) == (
        {"installment_id": str(first), "attempt": 1}, f"plan-charge:{first}:1", "payments")
    worker = Worker(db, world.tenant.manager, registry=registry, queues=["payments"],
                    resources={"payment_processor": sandbox}, clock=lambda: now,
                    run_scheduler=False)
    worker.drain()
    assert [j.state for j in world.jobs(CHARGE_JOB)] == ["completed"]
    assert worker.stats.by_kind == {CHARGE_JOB: 1}
    _, items = plan_state(world, plan_id)
    assert [i.status for i in items] == ["paid", "scheduled", "scheduled"]
    assert world.balance() == 10_000
    assert second in {i.id for i in items}


def test_two_workers_charge_once(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, plan_id, [first, *_] = _setup(db)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            outcomes.append(_charge(world, sandbox, first, _at(START, 17)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Either the second worker found the installment paid (skipped), or it repeated the
    # call with the same idempotency key and recorded nothing new.
    assert sorted(outcomes) in (["paid", "skipped"], ["paid", "paid"])
    assert _charges(sandbox) == 1
    assert world.count(Payment) == 1
    assert world.count(LedgerEntry, kind="patient_payment") == 1
    assert world.count(ChargeAttempt) == 1
    assert world.balance() == 10_000
    _, items = plan_state(world, plan_id)
    assert items[0].status == "paid"


def test_crash_between_charge_and_record_charges_once(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, plan_id, [first, *_] = _setup(db)

    def crash(_result: object) -> None:
        raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError, match="worker killed"):
        _charge(world, sandbox, first, _at(START, 17), after_charge=crash)
    # The processor charged; we recorded nothing but the started attempt.
    assert _charges(sandbox) == 1
    assert world.count(Payment) == 0
    _, items = plan_state(world, plan_id)
    assert items[0].status == "scheduled"
    # The rescued job runs again: same attempt, same idempotency key, same charge.
    assert _charge(world, sandbox, first, _at(START, 18)) == "paid"
    assert _charges(sandbox) == 1
    keys = [k for op, k in sandbox.calls if op == "charge"]
    assert keys == [f"plan:{first}:1", f"plan:{first}:1"]
    assert world.count(Payment) == 1
    assert world.balance() == 10_000


def test_lost_response_is_retried_with_the_same_key(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, _plan_id, [first, *_] = _setup(db, card="pm_sandbox_lost_response")
    with pytest.raises(ProcessorUnavailable):
        _charge(world, sandbox, first, _at(START, 17))
    assert world.count(Payment) == 0
    assert _charge(world, sandbox, first, _at(START, 17, )) == "paid"
    assert _charges(sandbox) == 1
    assert world.count(Payment) == 1


def test_network_error_charges_nothing_and_keeps_the_attempt(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, _plan_id, [first, *_] = _setup(db, card="pm_sandbox_network_error")
    for _ in range(2):
        with pytest.raises(ProcessorUnavailable):
            _charge(world, sandbox, first, _at(START, 17))
    assert _charges(sandbox) == 0
    assert world.count(ChargeAttempt) == 1  # retried under the same attempt and key


def test_decline_follows_retry_schedule_then_grace_notice_and_default(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, plan_id, [first, second, third] = _setup(
        db, card="pm_sandbox_insufficient_funds")
    # Policy: retries 3 and 7 days after the due date, grace 10 days, default after 2 misses.
    assert _charge(world, sandbox, first, _at(START, 17)) == "declined"
    _, items = plan_state(world, plan_id)
    assert (items[0].attempts, items[0].next_attempt_on) == (1, date(2026, 3, 13))
    assert _charge(world, sandbox, first, _at(date(2026, 3, 12), 17)) == "not_due"
    assert _charge(world, sandbox, first, _at(date(2026, 3, 13), 17)) == "declined"
    _, items = plan_state(world, plan_id)
    assert (items[0].attempts, items[0].next_attempt_on) == (2, date(2026, 3, 17))
    assert _charge(world, sandbox, first, _at(date(2026, 3, 17), 17)) == "declined"
    _, items = plan_state(world, plan_id)
    assert (items[0].attempts, items[0].next_attempt_on) == (3, None)
    assert _charge(world, sandbox, first, _at(date(2026, 3, 19), 17)) == "not_due"
    # Within grace nothing is missed; the sweep does not re-charge a used-up schedule.
    assert plan_service.sweep(db, now=_at(date(2026, 3, 20), 17)) == {
        "charges_enqueued": 0, "missed": 0}
    # Day 11 after the due date (local): missed, notice queued, one miss counted.
    assert plan_service.sweep(db, now=_at(date(2026, 3, 21), 17)) == {
        "charges_enqueued": 0, "missed": 1}
    plan, items = plan_state(world, plan_id)
    assert (plan.status, plan.misses, items[0].status) == ("active", 1, "missed")
    assert [j.args for j in world.jobs(NOTICE_JOB)] == [{"installment_id": str(first)}]
    # The second installment (2026-04-10) declines three times and is missed too: default.
    for day in (date(2026, 4, 10), date(2026, 4, 13), date(2026, 4, 17)):
        assert _charge(world, sandbox, second, _at(day, 17)) == "declined"
    plan_service.sweep(db, now=_at(date(2026, 4, 21), 17))
    plan, items = plan_state(world, plan_id)
    assert (plan.status, plan.misses) == ("defaulted", 2)
    assert [i.status for i in items] == ["missed", "missed", "cancelled"]
    assert third == items[2].id
    assert _charge(world, sandbox, third, _at(date(2026, 5, 10), 17)) == "skipped"
    assert world.count(Payment) == 0
    assert world.balance() == 15_000
    assert len(world.jobs(NOTICE_JOB)) == 2
    assert len(audit_events(db, "plan.default")) == 1
    declines = audit_events(db, "plan.charge")
    assert [(e["outcome"], e["details"]["code"]) for e in declines] == [
        ("failure", "insufficient_funds")] * 6


def test_paused_plan_is_neither_charged_nor_missed(db) -> None:  # type: ignore[no-untyped-def]
    world, sandbox, plan_id, [first, *_] = _setup(db)
    from tests.factories import TEST_ACTOR

    with db.tenant_session(world.org_id) as s:
        plan_service.pause(s, actor=TEST_ACTOR, plan_id=plan_id, now=CREATED)
    assert plan_service.sweep(db, now=_at(date(2026, 4, 30), 17)) == {
        "charges_enqueued": 0, "missed": 0}
    assert _charge(world, sandbox, first, _at(START, 17)) == "skipped"
    assert _charges(sandbox) == 0
