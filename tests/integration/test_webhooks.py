"""Outbound webhooks against a real HTTP receiver on 127.0.0.1: signature, retries after a
500 and after a timeout, give-up, no second POST when a job re-runs, disabled and deleted
endpoints, subscriptions, tenant isolation, PHI-free payloads, endpoint validation."""

from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from carecollect.errors import BadInput
from carecollect.integration.models import WebhookEndpoint
from carecollect.integration.service import (
    DELIVER_JOB,
    DELIVER_QUEUE,
    MAX_DELIVERY_ATTEMPTS,
    SECRET_PREFIX,
    clean_event_data,
    retry_delay,
    signature_header,
    verify_signature,
    webhook_service,
)
from carecollect.integration.tasks import deliver_webhook
from carecollect.kit.jobs import ClaimedJob
from tests.factories import audit_events, create_tenant
from tests.integration.conftest import ADMIN, Hooks

PAID_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _payment_data() -> dict[str, object]:
    return {"payment_id": uuid.uuid4(), "account_id": uuid.uuid4(), "amount_cents": 2_500,
            "received_at": PAID_AT}


# -- signature ----------------------------------------------------------------------------


def test_signature_known_answer() -> None:
    # Computed independently: printf '1700000000.{"id":"evt_1"}' |
    #   openssl dgst -sha256 -hmac whsec_known_answer
    header = signature_header("whsec_known_answer", b'{"id":"evt_1"}', 1_700_000_000)
    assert header == (
        "t=1700000000,v1=b9a1350d1d8b33e38577292ab22745a18a63d34be6f8d184f8260a8ce35d8796"
    )


def test_verify_signature_refuses_tampering_staleness_and_garbage() -> None:
    body = b'{"id":"evt_1"}'
    header = signature_header("whsec_a", body, 1_700_000_000)
    assert verify_signature("whsec_a", header, body, now=1_700_000_100)
    assert not verify_signature("whsec_a", header, b'{"id":"evt_2"}', now=1_700_000_100)
    assert not verify_signature("whsec_b", header, body, now=1_700_000_100)
    assert not verify_signature("whsec_a", header, body, now=1_700_000_301)  # replay window
    assert not verify_signature("whsec_a", "t=1700000000", body, now=1_700_000_000)
    assert not verify_signature("whsec_a", "garbage", body, now=1_700_000_000)
    # Rotation: any matching v1 among several is accepted.
    good = header.rpartition("v1=")[2]
    assert verify_signature("whsec_a", f"t=1700000000,v1={'0' * 64},v1={good}", body,
                            now=1_700_000_000)


def test_retry_delay_doubles_from_30_seconds_and_caps_at_6_hours() -> None:
    import random

    rng = random.Random(7)
    for attempt, base in [(1, 30), (2, 60), (3, 120), (5, 480), (10, 15_360), (11, 21_600),
                          (30, 21_600)]:
        delay = retry_delay(attempt, rng)
        assert base <= delay <= base * 1.1, (attempt, delay)


# -- delivery ---------------------------------------------------------------------------


def test_delivery_is_signed_and_carries_the_event(hooks: Hooks) -> None:
    endpoint_id, secret = hooks.add_endpoint(["payment.succeeded"])
    assert secret.startswith(SECRET_PREFIX)
    data = _payment_data()
    event_id = hooks.emit("payment.succeeded", data)
    [job] = hooks.jobs()
    assert (job.kind, job.args, job.organization_id) == (
        DELIVER_JOB, {"delivery_id": str(hooks.deliveries()[0].id)}, hooks.tenant.id)
    stats = hooks.worker().drain()
    assert stats.completed == 1
    [request] = hooks.receiver.requests
    assert request.path == "/hooks/carecollect"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["carecollect-event-id"] == str(event_id)
    assert request.headers["carecollect-event-type"] == "payment.succeeded"
    assert verify_signature(secret, request.headers["carecollect-signature"], request.body)
    # The receiver's own check, as docs/WEB.md shows it.
    parts = dict(p.split("=", 1) for p in request.headers["carecollect-signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + request.body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    assert json.loads(request.body) == {
        "id": str(event_id),
        "type": "payment.succeeded",
        "created_at": hooks.events()[0].created_at.isoformat(),
        "organization_id": str(hooks.tenant.id),
        "data": {
            "payment_id": str(data["payment_id"]),
            "account_id": str(data["account_id"]),
            "amount_cents": 2_500,
            "received_at": "2026-03-02T15:00:00+00:00",
        },
    }
    [delivery] = hooks.deliveries()
    assert (delivery.endpoint_id, delivery.state, delivery.attempts, delivery.last_status_code) \
        == (endpoint_id, "delivered", 1, 200)
    [attempt] = hooks.attempts()
    assert (attempt.attempt, attempt.status_code, attempt.outcome) == (1, 200, "delivered")
    assert [j.state for j in hooks.jobs()] == ["completed"]


def test_500_is_retried_with_backoff_then_delivered(hooks: Hooks) -> None:
    _, secret = hooks.add_endpoint(["payment.succeeded"])
    hooks.receiver.script = [500]
    event_id = hooks.emit("payment.succeeded", _payment_data())
    worker = hooks.worker()
    worker.drain()
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_status_code, delivery.last_error) \
        == ("pending", 1, 500, "http_status")
    [first] = hooks.attempts()
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - first.attempted_at).total_seconds()
    assert 30 <= wait <= 33
    [job] = hooks.jobs()
    assert job.state == "available"  # snoozed for the backoff, not discarded
    assert job.attempt == 0  # a snooze does not use up the job's own attempts
    # Not due yet: nothing is sent.
    worker.drain()
    assert len(hooks.receiver.requests) == 1
    hooks.clock.advance(wait + 1)
    worker.drain()
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert [(a.attempt, a.status_code, a.outcome) for a in hooks.attempts()] == [
        (1, 500, "http_status"), (2, 200, "delivered")]
    requests = hooks.receiver.requests
    assert [r.headers["carecollect-event-id"] for r in requests] == [str(event_id)] * 2
    assert requests[0].body == requests[1].body  # the same bytes on every attempt
    assert all(verify_signature(secret, r.headers["carecollect-signature"], r.body)
               for r in requests)
    assert [j.state for j in hooks.jobs()] == ["completed"]


def test_timeout_is_retried(hooks: Hooks) -> None:
    hooks.add_endpoint(["payment.succeeded"])
    hooks.receiver.script = [("sleep", 2.0, 200)]
    hooks.emit("payment.succeeded", _payment_data())
    worker = hooks.worker(webhook_timeout_seconds=0.3)
    worker.drain()
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_status_code, delivery.last_error) \
        == ("pending", 1, None, "timeout")
    [attempt] = hooks.attempts()
    assert (attempt.status_code, attempt.outcome) == (None, "timeout")
    hooks.clock.advance(40)
    worker.drain()
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    assert len(hooks.receiver.requests) == 2


def test_gives_up_after_the_last_attempt_and_marks_failed(hooks: Hooks) -> None:
    hooks.add_endpoint(["payment.succeeded"])
    hooks.receiver.script = [503] * (MAX_DELIVERY_ATTEMPTS + 5)
    hooks.emit("payment.succeeded", _payment_data())
    worker = hooks.worker()
    for _ in range(MAX_DELIVERY_ATTEMPTS):
        worker.drain()
        hooks.clock.advance(7 * 3600)
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == (
        "failed", MAX_DELIVERY_ATTEMPTS, 503)
    assert delivery.failed_at is not None
    assert delivery.next_attempt_at is None
    assert len(hooks.receiver.requests) == MAX_DELIVERY_ATTEMPTS
    assert [j.state for j in hooks.jobs()] == ["completed"]
    hooks.clock.advance(7 * 3600)
    worker.drain()
    assert len(hooks.receiver.requests) == MAX_DELIVERY_ATTEMPTS


def test_a_rerun_of_a_delivered_job_posts_nothing(hooks: Hooks) -> None:
    hooks.add_endpoint(["payment.succeeded"])
    hooks.emit("payment.succeeded", _payment_data())
    worker = hooks.worker()
    worker.drain()
    [job] = hooks.jobs()
    assert len(hooks.receiver.requests) == 1
    # The queue runs a job again after a lost completion or an expired lease.
    rerun = ClaimedJob(job.id, DELIVER_QUEUE, DELIVER_JOB, dict(job.args), 2, 5,
                       hooks.tenant.id)
    deliver_webhook(worker.context, rerun)
    deliver_webhook(worker.context, rerun)
    assert len(hooks.receiver.requests) == 1
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts) == ("delivered", 1)
    assert len(hooks.attempts()) == 1


def test_disabled_endpoint_gets_nothing(hooks: Hooks) -> None:
    endpoint_id, _ = hooks.add_endpoint(["payment.succeeded"])
    with hooks.db.tenant_session(hooks.tenant.id) as session:
        webhook_service.set_active(session, actor=ADMIN, endpoint_id=endpoint_id, active=False)
    hooks.emit("payment.succeeded", _payment_data())
    assert len(hooks.events()) == 1  # the outbox keeps the event
    assert hooks.deliveries() == []
    assert hooks.jobs() == []
    hooks.worker().drain()
    assert hooks.receiver.requests == []


def test_endpoint_disabled_after_the_event_cancels_the_delivery(hooks: Hooks) -> None:
    endpoint_id, _ = hooks.add_endpoint(["payment.succeeded"])
    hooks.emit("payment.succeeded", _payment_data())
    with hooks.db.tenant_session(hooks.tenant.id) as session:
        webhook_service.set_active(session, actor=ADMIN, endpoint_id=endpoint_id, active=False)
    hooks.worker().drain()
    assert hooks.receiver.requests == []
    [delivery] = hooks.deliveries()
    assert (delivery.state, delivery.attempts) == ("cancelled", 0)
    assert hooks.attempts() == []


def test_deleted_endpoint_gets_nothing(hooks: Hooks) -> None:
    endpoint_id, _ = hooks.add_endpoint(["payment.succeeded"])
    with hooks.db.tenant_session(hooks.tenant.id) as session:
        webhook_service.delete_endpoint(session, actor=ADMIN, endpoint_id=endpoint_id,
                                        now=PAID_AT)
    hooks.emit("payment.succeeded", _payment_data())
    assert hooks.deliveries() == []
    assert [e["action"] for e in audit_events(hooks.db) if e["action"].startswith("webhook")] \
        == ["webhook_endpoint.create", "webhook_endpoint.delete"]


def test_only_subscribed_endpoints_of_the_same_organization_receive(hooks: Hooks) -> None:
    plans, _ = hooks.add_endpoint(["plan.defaulted"])
    payments, _ = hooks.add_endpoint(["payment.succeeded", "payment.refunded"])
    other = create_tenant(hooks.db)
    hooks.add_endpoint(["payment.succeeded"], tenant=other)
    hooks.emit("payment.succeeded", _payment_data())
    [delivery] = hooks.deliveries()
    assert delivery.endpoint_id == payments
    hooks.worker().drain()
    assert len(hooks.receiver.requests) == 1
    body = json.loads(hooks.receiver.requests[0].body)
    assert body["organization_id"] == str(hooks.tenant.id)
    assert plans != payments


def test_every_subscribed_endpoint_gets_its_own_delivery(hooks: Hooks) -> None:
    first, first_secret = hooks.add_endpoint(["consent.revoked"])
    second, second_secret = hooks.add_endpoint(["consent.revoked"])
    assert first_secret != second_secret
    hooks.emit("consent.revoked", {"revocation_id": uuid.uuid4(), "channel": "sms",
                                   "received_at": PAID_AT})
    assert sorted(d.endpoint_id for d in hooks.deliveries()) == sorted([first, second])
    hooks.worker().drain()
    signatures = [r.headers["carecollect-signature"] for r in hooks.receiver.requests]
    bodies = {r.body for r in hooks.receiver.requests}
    assert len(bodies) == 1
    [body] = bodies
    # Each endpoint's request verifies under its own secret only.
    assert sorted(verify_signature(s, h, body) for s in (first_secret, second_secret)
                  for h in signatures) == [False, False, True, True]


# -- payload rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"note": "Robin called"}, "'note' is not an id"),
        ({"guarantor_id": "Robin Testperson"}, "'guarantor_id' must be a UUID"),
        ({"status": "Robin Testperson"}, "'status' must be a lower-case code"),
        ({"amount_cents": 12.5}, "'amount_cents' must be an integer"),
        ({"amount_cents": "1250"}, "'amount_cents' must be an integer"),
        ({"received_at": "2026-03-02"}, "'received_at' must be a timezone-aware datetime"),
        ({"received_at": datetime(2026, 3, 2)}, "timezone-aware"),  # noqa: DTZ001
        ({"Name": "x"}, "lower-case identifiers"),
    ],
)
def test_event_data_refuses_anything_but_ids_codes_cents_and_timestamps(
    hooks: Hooks, data: dict[str, object], message: str
) -> None:
    hooks.add_endpoint()
    with pytest.raises(ValueError, match=message):
        hooks.emit("payment.succeeded", data)
    assert hooks.events() == []
    assert hooks.deliveries() == []
    assert hooks.jobs() == []


def test_unknown_event_type_is_refused(hooks: Hooks) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        hooks.emit("patient.created", {})
    assert hooks.events() == []


def test_clean_event_data_keeps_the_allowed_shapes() -> None:
    ident = uuid.uuid4()
    assert clean_event_data({"plan_id": ident, "account_id": str(ident), "misses": 2,
                             "autopay": True, "contact_point_id": None, "channel": "sms",
                             "defaulted_at": PAID_AT}) == {
        "plan_id": str(ident), "account_id": str(ident), "misses": 2, "autopay": True,
        "contact_point_id": None, "channel": "sms",
        "defaulted_at": "2026-03-02T15:00:00+00:00"}


# -- endpoints --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback_ok", "message"),
    [
        ("http://hooks.example.org/in", True, "must use https"),
        ("http://127.0.0.1:9000/in", False, "must use https"),
        ("ftp://hooks.example.org/in", True, "absolute https"),
        ("hooks.example.org/in", True, "absolute https"),
        ("https://user:pw@hooks.example.org/in", True, "credentials"),
        ("https://hooks.example.org/in#frag", True, "fragment"),
        ("https://hooks.example.org:99999/in", True, "not a valid URL"),
        ("", True, "give the endpoint URL"),
        ("https://hooks.example.org/" + "a" * 2000, True, "at most 2000"),
    ],
)
def test_bad_endpoint_urls_are_refused_and_nothing_is_stored(
    hooks: Hooks, url: str, loopback_ok: bool, message: str
) -> None:
    with pytest.raises(BadInput, match=message), \
            hooks.db.tenant_session(hooks.tenant.id) as session:
        webhook_service.create_endpoint(
            session, keys=hooks.tenant.keys, actor=ADMIN, url=url,
            event_types=["payment.succeeded"], allow_loopback_http=loopback_ok)
    assert hooks.count(WebhookEndpoint) == 0
    assert audit_events(hooks.db, "webhook_endpoint.create") == []


@pytest.mark.parametrize(
    ("event_types", "message"),
    [([], "at least one event type"), (["payment.succeeded", "patient.read"], "unknown event")],
)
def test_bad_event_types_are_refused(
    hooks: Hooks, event_types: list[str], message: str
) -> None:
    with pytest.raises(BadInput, match=message), \
            hooks.db.tenant_session(hooks.tenant.id) as session:
        webhook_service.create_endpoint(
            session, keys=hooks.tenant.keys, actor=ADMIN, url="https://hooks.example.org/in",
            event_types=event_types)
    assert hooks.count(WebhookEndpoint) == 0


def test_https_and_loopback_http_are_accepted(hooks: Hooks) -> None:
    with hooks.db.tenant_session(hooks.tenant.id) as session:
        row, _ = webhook_service.create_endpoint(
            session, keys=hooks.tenant.keys, actor=ADMIN, url=" https://hooks.example.org/in ",
            event_types=["plan.defaulted", "plan.defaulted"])
        assert (row.url, row.event_types) == ("https://hooks.example.org/in", ["plan.defaulted"])
        for url in ("http://localhost:8080/in", "http://[::1]:8080/in", "http://127.0.0.2/in"):
            webhook_service.create_endpoint(
                session, keys=hooks.tenant.keys, actor=ADMIN, url=url,
                event_types=["plan.defaulted"], allow_loopback_http=True)
    assert hooks.count(WebhookEndpoint) == 4


def test_secret_is_stored_sealed(hooks: Hooks) -> None:
    endpoint_id, secret = hooks.add_endpoint()
    with hooks.db.engine.connect() as conn:
        raw = conn.execute(text("SELECT secret FROM webhook_endpoint")).scalar_one()
    assert secret.encode() not in bytes(raw)
    with hooks.db.tenant_session(hooks.tenant.id) as session:
        row = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
        assert row is not None
        assert hooks.tenant.keys.cipher().open_row(row, "secret") == secret
    [event] = audit_events(hooks.db, "webhook_endpoint.create")
    assert secret not in json.dumps(event)
    assert event["details"] == {"event_types": sorted(
        ["payment.succeeded", "payment.refunded", "payment.charged_back", "plan.created",
         "plan.defaulted", "plan.completed", "consent.revoked", "dispute.received"])}


def test_the_verification_snippet_in_the_docs_accepts_a_real_delivery(hooks: Hooks) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "WEB.md").read_text()
    section = doc[doc.index("A receiver verifies"):]
    snippet = section[section.index("```python") + len("```python"):section.index("```\n", 10)]
    namespace: dict[str, object] = {}
    exec(compile(textwrap.dedent(snippet), "WEB.md", "exec"), namespace)  # noqa: S102
    verify = namespace["verify"]
    assert callable(verify)
    _, secret = hooks.add_endpoint(["payment.succeeded"])
    hooks.emit("payment.succeeded", _payment_data())
    hooks.worker().drain()
    [request] = hooks.receiver.requests
    header = request.headers["carecollect-signature"]
    assert verify(secret, header, request.body) is True
    assert verify(secret, header, request.body + b" ") is False
    assert verify("whsec_wrong", header, request.body) is False
