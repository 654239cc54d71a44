"""A card retired from autopay is detached at the processor by a job, so it can never be
charged there again: with Stripe (the official SDK against the local Stripe test server)
and with the sandbox; idempotent, retried while the processor is down, left alone when
another live plan still uses the card or when it is in use again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from carecollect.audit import Actor
from carecollect.kit.jobs import enqueue, registry
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.jobs.worker import Worker
from carecollect.payment import autopay
from carecollect.payment import tasks as payment_tasks
from carecollect.payment.autopay import DETACH_JOB
from carecollect.payment.models import SavedPaymentMethod
from carecollect.payment.processor import PaymentDeclined, ProcessorError
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment.stripe_adapter import StripeProcessor
from carecollect.payment_plan.models import PaymentPlan
from tests.factories import audit_events
from tests.payment.stripe_server import FakeStripe, fake_stripe
from tests.payment.world import World, make_world
from tests.payment_plan.helpers import create_plan, save_card, set_policy

NOW = datetime(2026, 3, 5, 16, 0, tzinfo=UTC)


def _registry() -> TaskRegistry:
    assert payment_tasks.detach_method is not None
    reg = TaskRegistry()
    spec = registry.tasks[DETACH_JOB]
    reg.register(DETACH_JOB, spec.handler, queue=spec.queue, max_attempts=spec.max_attempts)
    return reg


def _drain(world: World, processor: Any, *, hours_later: int = 0) -> None:
    # The job is queued at the wall-clock time of the replacement (the queue's own clock).
    now = datetime.now(UTC) + timedelta(hours=hours_later)
    Worker(world.db, world.tenant.manager, registry=_registry(),
           resources={"payment_processor": processor}, clock=lambda: now,
           run_scheduler=False).drain()


def _methods(world: World) -> list[tuple[str, str]]:
    with world.db.system_session() as s:
        return [(m.processor_method_id, m.status) for m in s.query(SavedPaymentMethod)
                .order_by(SavedPaymentMethod.created_at, SavedPaymentMethod.id)]


def _replace(world: World, processor: Any, plan_id: uuid.UUID, token: str, key: str) -> None:
    with world.db.tenant_session(world.org_id) as s:
        method = autopay.replace_with_token(
            s, keys=world.tenant.keys, actor=Actor.patient(world.guarantor_id),
            processor=processor, guarantor_id=world.guarantor_id, plan_id=plan_id,
            payment_method=token, consent=True, idempotency_key=key, now=NOW)
        assert method is not None


def _plan(world: World, processor: Any, token: str, *, installments: int = 3) -> uuid.UUID:
    method = save_card(world, processor, token)
    return create_plan(world, now=datetime(2026, 3, 1, 18, tzinfo=UTC),
                       start_on=date(2026, 3, 10), installments=installments,
                       method_id=method)


def sandbox_new(world: World) -> str:
    with world.db.system_session() as s:
        plan = s.query(PaymentPlan).one()
        method = s.get(SavedPaymentMethod, plan.payment_method_id)
        assert method is not None
        return method.processor_method_id


# -- sandbox -----------------------------------------------------------------------


@pytest.fixture
def sandbox_world(db) -> tuple[World, SandboxProcessor]:  # type: ignore[no-untyped-def]
    world = make_world(db, mailing_tz="America/Chicago")
    set_policy(world)
    return world, SandboxProcessor()


def test_replacing_the_card_detaches_the_old_one_at_the_sandbox(
    sandbox_world: tuple[World, SandboxProcessor],
) -> None:
    world, sandbox = sandbox_world
    plan_id = _plan(world, sandbox, "pm_sandbox_visa")
    [(old_pm, _)] = _methods(world)
    _replace(world, sandbox, plan_id, "pm_sandbox_mastercard", "replace-1")
    [job] = world.jobs(DETACH_JOB)
    assert (job.state, job.queue) == ("available", "payments")
    assert sandbox.detached == []  # nothing at the processor inside the transaction
    _drain(world, sandbox)
    assert [j.state for j in world.jobs(DETACH_JOB)] == ["completed"]
    assert sandbox.detached == [old_pm]
    assert sorted(_methods(world)) == sorted([(old_pm, "removed"), (sandbox_new(world), "active")])
    [event] = audit_events(world.db, "payment_method.detach")
    assert event["details"] == {"processor": "sandbox"}
    # The retired card cannot be charged any more; the new one can.
    with pytest.raises(ProcessorError):
        sandbox.charge_saved_method(customer_id="x", processor_method_id=old_pm,
                                    amount_cents=100, idempotency_key="k", metadata={})


def test_a_card_still_used_by_another_live_plan_is_not_detached(
    sandbox_world: tuple[World, SandboxProcessor],
) -> None:
    world, sandbox = sandbox_world
    method = save_card(world, sandbox, "pm_sandbox_visa")
    first = create_plan(world, now=datetime(2026, 3, 1, 18, tzinfo=UTC),
                        start_on=date(2026, 3, 10), installments=2, method_id=method)
    with world.db.tenant_session(world.org_id) as s:
        plan = s.get(PaymentPlan, first)
        assert plan is not None
        second = PaymentPlan(**{c.key: getattr(plan, c.key) for c in PaymentPlan.__table__.columns
                                if c.key not in {"id"}})
        s.add(second)
        s.flush()
        second_id = second.id
    _replace(world, sandbox, second_id, "pm_sandbox_mastercard", "replace-2")
    assert world.jobs(DETACH_JOB) == []
    assert [status for _, status in _methods(world)] == ["active", "active"]


def test_a_card_in_use_again_before_the_job_runs_is_left_alone(
    sandbox_world: tuple[World, SandboxProcessor],
) -> None:
    world, sandbox = sandbox_world
    plan_id = _plan(world, sandbox, "pm_sandbox_visa")
    _replace(world, sandbox, plan_id, "pm_sandbox_mastercard", "replace-3")
    with world.db.system_session() as s:
        old = s.query(SavedPaymentMethod).filter_by(status="removed").one()
        old.status = "active"
    _drain(world, sandbox)
    assert [j.state for j in world.jobs(DETACH_JOB)] == ["completed"]
    assert sandbox.detached == []
    assert audit_events(world.db, "payment_method.detach") == []


def test_a_worker_without_the_cards_processor_leaves_the_job_waiting(
    sandbox_world: tuple[World, SandboxProcessor],
) -> None:
    world, sandbox = sandbox_world
    plan_id = _plan(world, sandbox, "pm_sandbox_visa")
    _replace(world, sandbox, plan_id, "pm_sandbox_mastercard", "replace-4")
    with fake_stripe() as (_fake, base):
        _drain(world, StripeProcessor("sk_test_local", "whsec_x", api_base=base))
    [job] = world.jobs(DETACH_JOB)
    assert (job.state, [e["code"] for e in job.errors]) == (
        "available", ["payment_processor_mismatch"])
    assert sandbox.detached == []


# -- Stripe ------------------------------------------------------------------------


@pytest.fixture
def stripe_world(db) -> Iterator[tuple[World, StripeProcessor, FakeStripe]]:  # type: ignore[no-untyped-def]
    with fake_stripe() as (fake, base):
        world = make_world(db, payments_baa=True, mailing_tz="America/New_York")
        set_policy(world)
        yield world, StripeProcessor("sk_test_local", "whsec_x", api_base=base), fake


def _stripe_plan(world: World, stripe: StripeProcessor) -> uuid.UUID:
    return _plan(world, stripe, "pm_card_visa")


def test_stripe_detaches_the_replaced_card_once_and_a_retry_is_harmless(
    stripe_world: tuple[World, StripeProcessor, FakeStripe],
) -> None:
    world, stripe, fake = stripe_world
    plan_id = _stripe_plan(world, stripe)
    _replace(world, stripe, plan_id, "pm_card_mastercard", "replace-5")
    # The first try meets an outage: retried later, nothing recorded.
    fake.fail_next = 1
    _drain(world, stripe)
    [job] = world.jobs(DETACH_JOB)
    assert (job.state, [e["code"] for e in job.errors]) == ("available", ["processor_unavailable"])
    assert fake.detached == set()
    _drain(world, stripe, hours_later=2)
    assert [j.state for j in world.jobs(DETACH_JOB)] == ["completed"]
    assert fake.detached == {"pm_card_visa"}
    detach_calls = [r for r in fake.requests if r.path.endswith("/detach")]
    assert [(r.method, r.path, r.form) for r in detach_calls] == [
        ("POST", "/v1/payment_methods/pm_card_visa/detach", {}),
        ("POST", "/v1/payment_methods/pm_card_visa/detach", {})]  # the 500, then the real one
    assert len(audit_events(world.db, "payment_method.detach")) == 1
    # Detaching again (a lost response retried) is done, not an error.
    stripe.detach_method("pm_card_visa")
    # Stripe refuses charges of the detached card.
    with pytest.raises(ProcessorError) as refused:
        stripe.charge_saved_method(customer_id="cus_test0001", processor_method_id="pm_card_visa",
                                   amount_cents=100, idempotency_key="after-detach", metadata={})
    assert not isinstance(refused.value, PaymentDeclined)
    assert refused.value.code == "payment_method_unexpected_state"


def test_stripe_detach_of_an_unknown_method_is_done() -> None:
    with fake_stripe() as (fake, base):
        stripe = StripeProcessor("sk_test_local", "whsec_x", api_base=base)
        fake.detached.add("pm_gone")
        stripe.detach_method("pm_gone")  # already detached
        assert [r.path for r in fake.requests] == [
            "/v1/payment_methods/pm_gone/detach", "/v1/payment_methods/pm_gone"]


@pytest.mark.parametrize("args", [{}, {"payment_method_id": "not-a-uuid"}])
def test_a_job_with_bad_arguments_is_discarded_and_changes_nothing(
    sandbox_world: tuple[World, SandboxProcessor], args: dict[str, str],
) -> None:
    world, sandbox = sandbox_world
    _plan(world, sandbox, "pm_sandbox_visa")
    before = _methods(world)
    with world.db.system_session() as session:
        enqueue(session, DETACH_JOB, args, queue="payments", organization_id=world.org_id)
    _drain(world, sandbox)
    [job] = world.jobs(DETACH_JOB)
    assert (job.state, [e["code"] for e in job.errors]) == ("discarded", ["bad_arguments"])
    assert _methods(world) == before
    assert sandbox.detached == []
