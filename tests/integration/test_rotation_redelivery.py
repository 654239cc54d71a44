"""Signing-secret rotation (old and new secret both sign during the grace period, only the
new one after) and manual redelivery of finished deliveries, against the real receiver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from carecollect.errors import BadInput, NotFound
from carecollect.integration.models import WebhookEndpoint
from carecollect.integration.service import (
    MAX_DELIVERY_ATTEMPTS,
    MAX_ROTATION_GRACE_HOURS,
    SECRET_PREFIX,
    verify_signature,
    webhook_service,
)
from tests.factories import audit_events
from tests.integration.conftest import ADMIN, Hooks

PAID_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _data() -> dict[str, object]:
    return {"payment_id": uuid.uuid4(), "account_id": uuid.uuid4(), "amount_cents": 900,
            "received_at": PAID_AT}


def _rotate(hooks: Hooks, endpoint_id: uuid.UUID, grace_hours: int) -> str:
    with hooks.db.tenant_session(hooks.tenant.id) as session:
        _, secret = webhook_service.rotate_secret(
            session, keys=hooks.tenant.keys, actor=ADMIN, endpoint_id=endpoint_id,
            now=hooks.clock(), grace_hours=grace_hours)
    return secret


def _endpoint(hooks: Hooks, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    with hooks.db.system_session() as session:
        row = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
        assert row is not None
        return row


def test_both_secrets_sign_during_the_grace_period_then_only_the_new_one(hooks: Hooks) -> None:
    endpoint_id, old = hooks.add_endpoint(["payment.succeeded"])
    new = _rotate(hooks, endpoint_id, grace_hours=24)
    assert new.startswith(SECRET_PREFIX)
    assert new != old
    hooks.emit("payment.succeeded", _data())
    worker = hooks.worker()
    worker.drain()
    [first] = hooks.receiver.requests
    header = first.headers["carecollect-signature"]
    assert header.count("v1=") == 2
    assert verify_signature(new, header, first.body)
    assert verify_signature(old, header, first.body)
    # After the grace period the old secret no longer signs.
    hooks.clock.advance(24 * 3600 + 1)
    hooks.emit("payment.succeeded", _data())
    worker.drain()
    second = hooks.receiver.requests[1]
    header = second.headers["carecollect-signature"]
    assert header.count("v1=") == 1
    assert verify_signature(new, header, second.body, now=hooks.clock().timestamp())
    assert not verify_signature(old, header, second.body, now=hooks.clock().timestamp())


def test_rotation_with_no_grace_drops_the_old_secret_at_once(hooks: Hooks) -> None:
    endpoint_id, old = hooks.add_endpoint(["payment.succeeded"])
    _rotate(hooks, endpoint_id, grace_hours=24)
    newest = _rotate(hooks, endpoint_id, grace_hours=0)
    row = _endpoint(hooks, endpoint_id)
    assert (row.previous_secret, row.previous_secret_expires_at) == (None, None)
    assert row.secret_rotated_at is not None
    hooks.emit("payment.succeeded", _data())
    hooks.worker().drain()
    [request] = hooks.receiver.requests
    header = request.headers["carecollect-signature"]
    assert header.count("v1=") == 1
    assert verify_signature(newest, header, request.body)
    assert not verify_signature(old, header, request.body)


def test_rotation_keeps_only_the_last_previous_secret_sealed(hooks: Hooks) -> None:
    endpoint_id, first = hooks.add_endpoint(["payment.succeeded"])
    second = _rotate(hooks, endpoint_id, grace_hours=1)
    third = _rotate(hooks, endpoint_id, grace_hours=1)
    row = _endpoint(hooks, endpoint_id)
    assert row.previous_secret is not None
    stored = bytes(row.previous_secret.ciphertext) + bytes(row.secret.ciphertext)
    for secret in (first, second, third):
        assert secret.encode() not in stored
    cipher = hooks.tenant.keys.cipher()
    assert cipher.open_row(row, "previous_secret") == second
    assert cipher.open_row(row, "secret") == third
    events = audit_events(hooks.db, "webhook_endpoint.rotate_secret")
    assert len(events) == 2
    assert all(e["details"] == {"grace_hours": 1} for e in events)


@pytest.mark.parametrize("grace_hours", [-1, MAX_ROTATION_GRACE_HOURS + 1])
def test_rotation_refuses_a_bad_grace_period_and_changes_nothing(
    hooks: Hooks, grace_hours: int
) -> None:
    endpoint_id, secret = hooks.add_endpoint(["payment.succeeded"])
    with pytest.raises(BadInput, match="grace period is 0 to 168 hours"):
        _rotate(hooks, endpoint_id, grace_hours=grace_hours)
    row = _endpoint(hooks, endpoint_id)
    assert hooks.tenant.keys.cipher().open_row(row, "secret") == secret
    assert (row.previous_secret, row.secret_rotated_at) == (None, None)


def test_rotation_of_an_unknown_endpoint_is_not_found(hooks: Hooks) -> None:
    with pytest.raises(NotFound):
        _rotate(hooks, uuid.uuid4(), grace_hours=1)


def _redeliver(hooks: Hooks, delivery_id: uuid.UUID) -> None:
    with hooks.db.tenant_session(hooks.tenant.id) as session:
        webhook_service.redeliver(session, actor=ADMIN, delivery_id=delivery_id,
                                  now=hooks.clock())


def test_a_failed_delivery_is_redelivered_with_a_fresh_attempt_budget(hooks: Hooks) -> None:
    hooks.add_endpoint(["payment.succeeded"])
    hooks.receiver.script = [503] * MAX_DELIVERY_ATTEMPTS + [503, 200]
    event_id = hooks.emit("payment.succeeded", _data())
    worker = hooks.worker()
    for _ in range(MAX_DELIVERY_ATTEMPTS):
        worker.drain()
        hooks.clock.advance(7 * 3600)
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts) == ("failed", MAX_DELIVERY_ATTEMPTS)
    _redeliver(hooks, delivery.id)
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.failed_at, delivery.attempt_limit) == (
        "pending", None, 2 * MAX_DELIVERY_ATTEMPTS)
    worker.drain()  # one more 503: retried, not failed at once
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts) == ("pending", MAX_DELIVERY_ATTEMPTS + 1)
    hooks.clock.advance(60)
    worker.drain()
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts) == ("delivered", MAX_DELIVERY_ATTEMPTS + 2)
    ids = {r.headers["carecollect-event-id"] for r in hooks.receiver.requests}
    assert ids == {str(event_id)}  # the same event id: receivers drop duplicates
    assert [e["details"] for e in audit_events(hooks.db, "webhook_delivery.redeliver")] == [
        {"previous_state": "failed"}]


def test_a_delivered_delivery_can_be_sent_again(hooks: Hooks) -> None:
    hooks.add_endpoint(["payment.succeeded"])
    hooks.emit("payment.succeeded", _data())
    worker = hooks.worker()
    worker.drain()
    [delivery] = hooks.deliveries()
    _redeliver(hooks, delivery.id)
    worker.drain()
    assert len(hooks.receiver.requests) == 2
    assert hooks.receiver.requests[0].body == hooks.receiver.requests[1].body
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)


def test_redelivery_refuses_pending_and_paused_and_unknown(hooks: Hooks) -> None:
    endpoint_id, _ = hooks.add_endpoint(["payment.succeeded"])
    hooks.emit("payment.succeeded", _data())
    [delivery] = hooks.deliveries()
    jobs_before = len(hooks.jobs())
    with pytest.raises(BadInput, match="still pending"):
        _redeliver(hooks, delivery.id)
    hooks.worker().drain()
    with hooks.db.tenant_session(hooks.tenant.id) as session:
        webhook_service.set_active(session, actor=ADMIN, endpoint_id=endpoint_id, active=False)
    with pytest.raises(BadInput, match="paused or deleted"):
        _redeliver(hooks, delivery.id)
    with pytest.raises(NotFound):
        _redeliver(hooks, uuid.uuid4())
    [after] = hooks.deliveries()
    assert (after.state, after.attempts, after.attempt_limit) == ("delivered", 1, None)
    assert len(hooks.jobs()) == jobs_before
    assert len(hooks.receiver.requests) == 1
