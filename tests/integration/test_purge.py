"""Retention of the outbound-webhook outbox: the daily job deletes events past retention
whose deliveries are all final (with their deliveries and attempts), keeps anything still
pending however old, stays inside the organization it runs for, and is audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from carecollect.integration.models import IntegrationEvent, WebhookDelivery
from carecollect.integration.service import EVENT_RETENTION
from carecollect.integration.tasks import DAILY_PURGE, PURGE_JOB, install_periodic
from carecollect.kit.jobs import enqueue
from carecollect.kit.jobs.registry import TaskRegistry
from tests.factories import audit_events, create_tenant
from tests.integration.conftest import Hooks

PAID_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _data() -> dict[str, object]:
    return {"payment_id": uuid.uuid4(), "account_id": uuid.uuid4(), "amount_cents": 2_500,
            "received_at": PAID_AT}


def _age(hooks: Hooks, event_id: uuid.UUID, days: int) -> None:
    with hooks.db.system_session() as session:
        session.execute(update(IntegrationEvent).where(IntegrationEvent.id == event_id)
                        .values(created_at=datetime.now(UTC) - timedelta(days=days)))


def _purge(hooks: Hooks, organization_id: uuid.UUID | None, **args: object) -> None:
    with hooks.db.system_session() as session:
        enqueue(session, PURGE_JOB, dict(args), queue=DAILY_PURGE.queue,
                organization_id=organization_id)
    hooks.worker().drain()


def _event_ids(hooks: Hooks) -> set[uuid.UUID]:
    return {e.id for e in hooks.events()}


def test_settled_events_past_retention_go_pending_and_recent_ones_stay(hooks: Hooks) -> None:
    hooks.add_endpoint(["payment.succeeded"])
    old_delivered = hooks.emit("payment.succeeded", _data())
    recent_delivered = hooks.emit("payment.succeeded", _data())
    hooks.worker().drain()  # both delivered
    hooks.receiver.script = [500]
    old_pending = hooks.emit("payment.succeeded", _data())  # refused once: pending, retried
    hooks.worker().drain()
    old_without_endpoint = hooks.emit("dispute.received", {"account_id": uuid.uuid4()})
    for event_id in (old_delivered, old_pending, old_without_endpoint):
        _age(hooks, event_id, EVENT_RETENTION.days + 1)
    _age(hooks, recent_delivered, EVENT_RETENTION.days - 1)
    assert len(hooks.attempts()) == 3
    _purge(hooks, hooks.tenant.id)
    assert _event_ids(hooks) == {recent_delivered, old_pending}
    assert {d.event_id for d in hooks.deliveries()} == {recent_delivered, old_pending}
    assert sorted(a.delivery_id for a in hooks.attempts()) == sorted(
        d.id for d in hooks.deliveries())
    [event] = audit_events(hooks.db, "integration_event.purge")
    assert event["details"]["events"] == 2
    assert event["actor_id"] == PURGE_JOB
    # Nothing more to purge: no second audit event.
    _purge(hooks, hooks.tenant.id)
    assert _event_ids(hooks) == {recent_delivered, old_pending}
    assert len(audit_events(hooks.db, "integration_event.purge")) == 1


def test_a_failed_or_cancelled_delivery_is_settled_too(hooks: Hooks) -> None:
    hooks.add_endpoint(["payment.succeeded"])
    failed = hooks.emit("payment.succeeded", _data())
    cancelled = hooks.emit("payment.succeeded", _data())
    with hooks.db.system_session() as session:
        for event_id, state in ((failed, "failed"), (cancelled, "cancelled")):
            session.execute(update(WebhookDelivery).where(WebhookDelivery.event_id == event_id)
                            .values(state=state))
    for event_id in (failed, cancelled):
        _age(hooks, event_id, 200)
    _purge(hooks, None)
    assert _event_ids(hooks) == set()
    assert hooks.deliveries() == []


def test_the_job_stays_in_its_organization_and_the_daily_one_covers_all(hooks: Hooks) -> None:
    other = create_tenant(hooks.db)
    mine = hooks.emit("payment.succeeded", _data())
    theirs = hooks.emit("payment.succeeded", _data(), tenant=other)
    _age(hooks, mine, 100)
    _age(hooks, theirs, 100)
    _purge(hooks, other.id)
    assert _event_ids(hooks) == {mine}
    _purge(hooks, None)
    assert _event_ids(hooks) == set()
    assert sorted(e["subject_id"] for e in audit_events(hooks.db, "integration_event.purge")
                  ) == sorted([str(other.id), str(hooks.tenant.id)])


@pytest.mark.parametrize("bad", [0, -5, 3_651, 10**12, "30", True, None])
def test_a_bad_retention_is_refused_and_nothing_is_deleted(hooks: Hooks, bad: object) -> None:
    event_id = hooks.emit("payment.succeeded", _data())
    _age(hooks, event_id, 4_000)
    args = {"retention_days": bad} if bad is not None else {"retention_days": "none"}
    _purge(hooks, hooks.tenant.id, **args)
    assert _event_ids(hooks) == {event_id}
    [job] = [j for j in hooks.jobs() if j.kind == PURGE_JOB]
    assert (job.state, [e["code"] for e in job.errors]) == ("discarded", ["bad_retention_days"])
    assert audit_events(hooks.db, "integration_event.purge") == []


def test_retention_can_be_set_per_run_but_not_below_a_day(hooks: Hooks) -> None:
    event_id = hooks.emit("payment.succeeded", _data())
    _age(hooks, event_id, 10)
    _purge(hooks, hooks.tenant.id, retention_days=0)
    assert _event_ids(hooks) == {event_id}
    assert [(j.kind, j.state) for j in hooks.jobs() if j.kind == PURGE_JOB] == [
        (PURGE_JOB, "discarded")]
    _purge(hooks, hooks.tenant.id, retention_days=30)
    assert _event_ids(hooks) == {event_id}
    _purge(hooks, hooks.tenant.id, retention_days=7)
    assert _event_ids(hooks) == set()


def test_the_daily_schedule_is_installed_explicitly() -> None:
    target = TaskRegistry()
    install_periodic(target)
    assert target.periodic[DAILY_PURGE.name] == DAILY_PURGE
    assert (DAILY_PURGE.kind, DAILY_PURGE.every, DAILY_PURGE.offset) == (
        PURGE_JOB, timedelta(days=1), timedelta(hours=7))
