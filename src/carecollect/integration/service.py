"""Signed outbound webhooks: endpoint registration, the event outbox and delivery.

* `emit_event(session, organization_id=..., type=..., data=...)` writes the event (the
  outbox row), one delivery per subscribed active endpoint and one delivery job each, in
  the caller's transaction: the event exists exactly when the change it reports commits
  (ARCHITECTURE.md section 6, "side effects via jobs").
* Payloads carry ids, codes, amounts in cents and timestamps only, never PHI: `data` is
  checked key by key (`*_id`, `*_cents`, `*_at`, `*_count`, booleans and a few code
  fields with lower-case code values), so a name or an address cannot slip in.
* The delivery job POSTs the JSON body with `Carecollect-Signature: t=<unix>,v1=<hex>`,
  the HMAC-SHA256 under the endpoint's secret of `"<t>.<body>"` (the Stripe scheme;
  docs/WEB.md has a verification snippet), and `Carecollect-Event-Id`, the same on every
  attempt so receivers can drop duplicates. Delivery is at least once.
* A non-2xx answer, a timeout or a connection error is retried with exponential backoff
  (`retry_delay`) through the job queue; after `MAX_DELIVERY_ATTEMPTS` the delivery is
  marked `failed`. Every attempt is recorded with its status code, never the body.
* `rotate_secret` issues a new signing secret; the old one keeps signing beside it (a
  second `v1=` in the header) for a grace period, so receivers switch without a gap.
* `redeliver` sends a delivered, failed or cancelled delivery again (same event id, so
  receivers can still drop duplicates) with a fresh attempt budget.
* `purge_events` deletes events older than the retention period (90 days by default)
  whose deliveries are all final (delivered, failed or cancelled), with their deliveries
  and attempts; an event with a delivery still pending is kept however old it is. The
  daily `integration.purge_events` job runs it for every organization.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.db import Database
from carecollect.errors import BadInput, NotFound
from carecollect.integration.models import (
    IntegrationEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)
from carecollect.integration.repository import integration_repository
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs import enqueue
from carecollect.kit.jobs.sessions import write_locked_session
from carecollect.kit.models import utcnow

log = structlog.get_logger("carecollect.integration")

DELIVER_JOB = "integration.deliver_webhook"
DELIVER_QUEUE = "integrations"
SIGNATURE_HEADER = "Carecollect-Signature"
EVENT_ID_HEADER = "Carecollect-Event-Id"
EVENT_TYPE_HEADER = "Carecollect-Event-Type"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_DELIVERY_ATTEMPTS = 12
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 6 * 3600.0
# How long the previous secret keeps signing after a rotation (default and bounds).
ROTATION_GRACE_HOURS = 24
MAX_ROTATION_GRACE_HOURS = 7 * 24
DEFAULT_TIMEOUT_SECONDS = 10.0
# Receivers should refuse signatures older than this (replay window), as Stripe does.
SIGNATURE_TOLERANCE_SECONDS = 300

EVENT_TYPES: dict[str, str] = {
    "payment.succeeded": "a payment was posted to an account",
    "payment.refunded": "a payment was refunded (in part or in full)",
    "payment.charged_back": "a card payment was reversed by a chargeback",
    "plan.created": "a payment plan was created",
    "plan.defaulted": "a payment plan defaulted after missed installments",
    "plan.completed": "a payment plan was paid in full",
    "consent.revoked": "a consent to be contacted was revoked",
    "dispute.received": "a debt dispute was recorded (FDCPA 1692g(b))",
}

# Payload rules: the only shapes a value may take (no free text, so no PHI).
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_CODE_KEYS = frozenset(
    {"kind", "status", "channel", "method", "reason", "source", "processor", "created_by"}
)
_CODE_RE = re.compile(r"^[a-z0-9_]{1,40}$")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


# -- payload and signature ----------------------------------------------------------------


def _clean_value(key: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if key.endswith("_id") or key == "id":
        if isinstance(value, uuid.UUID):
            return str(value)
        if value is None:
            return None
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise ValueError(f"event data {key!r} must be a UUID") from None
    if key.endswith(("_cents", "_count")) or key in ("misses", "installments"):
        if type(value) is not int:
            raise ValueError(f"event data {key!r} must be an integer")
        return value
    if key.endswith("_at"):
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"event data {key!r} must be a timezone-aware datetime")
        return value.isoformat()
    if key in _CODE_KEYS:
        if value is None:
            return None
        if not isinstance(value, str) or not _CODE_RE.match(value):
            raise ValueError(f"event data {key!r} must be a lower-case code")
        return value
    raise ValueError(f"event data key {key!r} is not an id, amount, timestamp or code")


def clean_event_data(data: dict[str, Any]) -> dict[str, Any]:
    """Validate an event's data (ids, cents, counts, timestamps, booleans and codes only)
    and return its JSON form; ValueError names the offending key, never its value."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not _KEY_RE.match(key):
            raise ValueError("event data keys are lower-case identifiers")
        out[key] = _clean_value(key, value)
    return out


def payload_bytes(event: IntegrationEvent) -> bytes:
    """The body POSTed for an event: deterministic (sorted keys, compact), identical on
    every attempt and for every endpoint."""
    body = {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "organization_id": str(event.organization_id),
        "data": event.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature_header(secret: str, body: bytes, timestamp: int, *extra_secrets: str) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the endpoint secret, and one
    more `v1=` per extra secret (the previous secret during a rotation's grace period)."""
    message = str(timestamp).encode("ascii") + b"." + body
    signatures = [
        "v1=" + hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()
        for key in (secret, *extra_secrets)
    ]
    return ",".join([f"t={timestamp}", *signatures])


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: parse the header, refuse a stale timestamp, compare every
    `v1` in constant time (several may be present while a secret is rotated)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature_header(secret, body, timestamp).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, c) for c in candidates)


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before the attempt after `attempt` failures: 30 s doubling each time, capped
    at 6 hours, plus up to 10 % jitter (failures of one outage do not retry in lockstep)."""
    base = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * (1 << min(30, max(0, attempt - 1))))
    jitter: float = (rng or random).uniform(0, base * 0.1)
    return base + jitter


# -- endpoints ----------------------------------------------------------------------------


def validate_url(url: str, *, allow_loopback_http: bool) -> str:
    """An https URL (or, in development, http on a loopback host), without credentials or
    fragment. Production refuses plain http: the payload is signed, not encrypted."""
    url = url.strip()
    if not url or len(url) > 2000:
        raise BadInput("give the endpoint URL (at most 2000 characters)")
    try:
        parts = urlsplit(url)
        _ = parts.port  # an out-of-range port raises here
    except ValueError:
        raise BadInput("the endpoint URL is not a valid URL") from None
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("https", "http"):
        raise BadInput("the endpoint URL must be an absolute https:// URL")
    if parts.username or parts.password:
        raise BadInput("the endpoint URL must not carry credentials")
    if parts.fragment:
        raise BadInput("the endpoint URL must not have a fragment")
    if parts.scheme == "http":
        loopback = host in _LOOPBACK_HOSTS
        if not loopback:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
        if not (allow_loopback_http and loopback):
            raise BadInput("the endpoint URL must use https (http only on loopback in development)")
    return url


def _check_event_types(event_types: list[str]) -> list[str]:
    chosen = sorted(set(event_types))
    if not chosen:
        raise BadInput("subscribe the endpoint to at least one event type")
    unknown = [t for t in chosen if t not in EVENT_TYPES]
    if unknown:
        raise BadInput(f"unknown event type {unknown[0][:64]!r}")
    return chosen


@dataclass(frozen=True)
class DeliveryResult:
    """What one run of the delivery job did; `retry_in` is set when it must run again."""

    outcome: str
    status_code: int | None = None
    retry_in: float | None = None


class WebhookService:
    def create_endpoint(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        url: str,
        event_types: list[str],
        description: str = "",
        allow_loopback_http: bool = False,
    ) -> tuple[WebhookEndpoint, str]:
        """Register an endpoint; returns it and its signing secret (shown once)."""
        clean_url = validate_url(url, allow_loopback_http=allow_loopback_http)
        chosen = _check_event_types(event_types)
        description = description.strip()
        if len(description) > 200:
            raise BadInput("the description is at most 200 characters")
        endpoint_id = uuid7()
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            organization_id=keys.organization_id,
            url=clean_url,
            description=description,
            secret=keys.cipher().seal("webhook_endpoint", "secret", endpoint_id, secret),
            event_types=chosen,
            active=True,
            created_by=f"{actor.type}:{actor.id}"[:64],
        )
        integration_repository.add(session, endpoint)
        record(
            session,
            actor=actor,
            action="webhook_endpoint.create",
            subject=Subject("webhook_endpoint", endpoint_id, organization_id=keys.organization_id),
            details={"event_types": chosen},
        )
        return endpoint, secret

    def set_active(
        self, session: Session, *, actor: Actor, endpoint_id: uuid.UUID, active: bool
    ) -> WebhookEndpoint:
        """Pause or resume an endpoint; a paused endpoint gets no new deliveries and its
        pending ones are cancelled when their job runs."""
        endpoint = integration_repository.endpoint(session, endpoint_id)
        if endpoint is None:
            raise NotFound("no such webhook endpoint")
        endpoint.active = active
        session.flush()
        record(
            session,
            actor=actor,
            action="webhook_endpoint.update",
            subject=Subject(
                "webhook_endpoint", endpoint.id, organization_id=endpoint.organization_id
            ),
            details={"active": active},
        )
        return endpoint

    def delete_endpoint(
        self, session: Session, *, actor: Actor, endpoint_id: uuid.UUID, now: datetime
    ) -> None:
        """Soft delete: the row stays for its delivery history, nothing is sent again."""
        endpoint = integration_repository.endpoint(session, endpoint_id)
        if endpoint is None:
            raise NotFound("no such webhook endpoint")
        endpoint.active = False
        endpoint.deleted_at = now
        session.flush()
        record(
            session,
            actor=actor,
            action="webhook_endpoint.delete",
            subject=Subject(
                "webhook_endpoint", endpoint.id, organization_id=endpoint.organization_id
            ),
        )

    def rotate_secret(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        endpoint_id: uuid.UUID,
        now: datetime,
        grace_hours: int = ROTATION_GRACE_HOURS,
    ) -> tuple[WebhookEndpoint, str]:
        """Issue a new signing secret (returned, shown once). The current secret becomes
        the previous one and keeps signing beside the new one for `grace_hours` (0 ends it
        at once, e.g. after a leak); a secret from an earlier rotation is dropped."""
        if not 0 <= grace_hours <= MAX_ROTATION_GRACE_HOURS:
            raise BadInput(
                f"the grace period is 0 to {MAX_ROTATION_GRACE_HOURS} hours"
            )
        endpoint = integration_repository.endpoint(session, endpoint_id)
        if endpoint is None:
            raise NotFound("no such webhook endpoint")
        cipher = keys.cipher()
        current = cipher.open_row(endpoint, "secret") or ""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        sealed = cipher.seal("webhook_endpoint", "secret", endpoint.id, secret)
        assert sealed is not None  # noqa: S101 - seal returns None only for None
        endpoint.secret = sealed
        if grace_hours:
            endpoint.previous_secret = cipher.seal(
                "webhook_endpoint", "previous_secret", endpoint.id, current
            )
            endpoint.previous_secret_expires_at = now + timedelta(hours=grace_hours)
        else:
            endpoint.previous_secret = None
            endpoint.previous_secret_expires_at = None
        endpoint.secret_rotated_at = now
        session.flush()
        record(
            session,
            actor=actor,
            action="webhook_endpoint.rotate_secret",
            subject=Subject(
                "webhook_endpoint", endpoint.id, organization_id=endpoint.organization_id
            ),
            details={"grace_hours": grace_hours},
        )
        return endpoint, secret

    def redeliver(
        self,
        session: Session,
        *,
        actor: Actor,
        delivery_id: uuid.UUID,
        now: datetime,
        max_attempts: int = MAX_DELIVERY_ATTEMPTS,
    ) -> WebhookDelivery:
        """Queue a finished delivery (delivered, failed or cancelled) again, to an endpoint
        that is still active, with `max_attempts` more attempts. A pending delivery is
        already on its way and is refused."""
        delivery = integration_repository.delivery(session, delivery_id, lock=True)
        if delivery is None:
            raise NotFound("no such webhook delivery")
        if delivery.state == "pending":
            raise BadInput("this delivery is still pending: it will be retried on its own")
        endpoint = integration_repository.endpoint(session, delivery.endpoint_id)
        if endpoint is None or not endpoint.active:
            raise BadInput("the endpoint is paused or deleted: resume it first")
        previous = delivery.state
        delivery.state = "pending"
        delivery.attempt_limit = delivery.attempts + max_attempts
        delivery.next_attempt_at = now
        delivery.failed_at = None
        delivery.delivered_at = None
        delivery.last_error = None
        session.flush()
        enqueue(
            session,
            DELIVER_JOB,
            {"delivery_id": str(delivery.id)},
            queue=DELIVER_QUEUE,
            organization_id=delivery.organization_id,
            max_attempts=5,
            unique_key=f"webhook-delivery:{delivery.id}:{delivery.attempts}",
        )
        record(
            session,
            actor=actor,
            action="webhook_delivery.redeliver",
            subject=Subject("webhook_delivery", delivery.id,
                            organization_id=delivery.organization_id),
            details={"previous_state": previous},
        )
        return delivery

    # -- emitting ---------------------------------------------------------------------

    def emit(
        self,
        session: Session,
        *,
        organization_id: uuid.UUID,
        type: str,
        data: dict[str, Any],
    ) -> IntegrationEvent:
        """The outbox row, a delivery per subscribed endpoint and its job, in the caller's
        transaction."""
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}")
        event = IntegrationEvent(
            id=uuid7(),
            organization_id=organization_id,
            type=type,
            data=clean_event_data(data),
            created_at=utcnow(),
        )
        integration_repository.add(session, event)
        for endpoint in integration_repository.subscribed(session, organization_id, type):
            delivery = WebhookDelivery(
                id=uuid7(),
                organization_id=organization_id,
                event_id=event.id,
                endpoint_id=endpoint.id,
                state="pending",
                attempts=0,
                next_attempt_at=event.created_at,
                created_at=event.created_at,
            )
            integration_repository.add(session, delivery)
            enqueue(
                session,
                DELIVER_JOB,
                {"delivery_id": str(delivery.id)},
                queue=DELIVER_QUEUE,
                organization_id=organization_id,
                max_attempts=5,
                unique_key=f"webhook-delivery:{delivery.id}",
            )
        return event

    # -- delivering -------------------------------------------------------------------

    def deliver(
        self,
        db: Database,
        *,
        keys: OrganizationKeys,
        delivery_id: uuid.UUID,
        now: datetime,
        client: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = MAX_DELIVERY_ATTEMPTS,
    ) -> DeliveryResult:
        """One delivery attempt. A delivery that is no longer pending (delivered, failed,
        cancelled) is left alone, so a re-run of the job never POSTs twice."""
        organization_id = keys.organization_id
        with write_locked_session(db, organization_id) as session:
            delivery = integration_repository.delivery(session, delivery_id)
            if delivery is None:
                return DeliveryResult("missing")
            if delivery.state != "pending":
                return DeliveryResult(f"already_{delivery.state}")
            endpoint = integration_repository.endpoint(session, delivery.endpoint_id)
            event = integration_repository.event(session, delivery.event_id)
            if endpoint is None or event is None or not endpoint.active:
                delivery.state = "cancelled"
                delivery.next_attempt_at = None
                return DeliveryResult("cancelled")
            url = endpoint.url
            cipher = keys.cipher()
            secret = cipher.open_row(endpoint, "secret") or ""
            extra: tuple[str, ...] = ()
            expires = endpoint.previous_secret_expires_at
            if endpoint.previous_secret is not None and expires is not None and now < expires:
                extra = (cipher.open_row(endpoint, "previous_secret") or "",)
            body = payload_bytes(event)
            event_id, event_type = str(event.id), event.type
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "carecollect-webhooks/1",
            EVENT_ID_HEADER: event_id,
            EVENT_TYPE_HEADER: event_type,
            SIGNATURE_HEADER: signature_header(secret, body, int(now.timestamp()), *extra),
        }
        status: int | None = None
        started = time.monotonic()
        try:
            if client is None:
                with httpx.Client(timeout=timeout, follow_redirects=False) as own:
                    status = own.post(url, content=body, headers=headers).status_code
            else:
                status = client.post(
                    url, content=body, headers=headers, timeout=timeout
                ).status_code
            outcome = "delivered" if 200 <= status < 300 else "http_status"
        except httpx.TimeoutException:
            outcome = "timeout"
        except httpx.HTTPError:
            outcome = "connection_error"
        duration_ms = int((time.monotonic() - started) * 1000)
        return self._record_attempt(
            db, organization_id, delivery_id, now=now, status=status, outcome=outcome,
            duration_ms=duration_ms, max_attempts=max_attempts,
        )

    @staticmethod
    def _record_attempt(
        db: Database,
        organization_id: uuid.UUID,
        delivery_id: uuid.UUID,
        *,
        now: datetime,
        status: int | None,
        outcome: str,
        duration_ms: int,
        max_attempts: int,
    ) -> DeliveryResult:
        with write_locked_session(db, organization_id) as session:
            delivery = integration_repository.delivery(session, delivery_id, lock=True)
            if delivery is None:
                return DeliveryResult("missing")
            delivery.attempts += 1
            integration_repository.add(
                session,
                WebhookDeliveryAttempt(
                    id=uuid7(),
                    organization_id=organization_id,
                    delivery_id=delivery_id,
                    attempt=delivery.attempts,
                    attempted_at=now,
                    status_code=status,
                    outcome=outcome,
                    duration_ms=duration_ms,
                ),
            )
            delivery.last_status_code = status
            if delivery.state != "pending":
                # Another run finished this delivery meanwhile: keep its verdict.
                return DeliveryResult(outcome, status)
            if outcome == "delivered":
                delivery.state = "delivered"
                delivery.delivered_at = now
                delivery.last_error = None
                delivery.next_attempt_at = None
                return DeliveryResult(outcome, status)
            delivery.last_error = outcome
            if delivery.attempts >= max(max_attempts, delivery.attempt_limit or 0):
                delivery.state = "failed"
                delivery.failed_at = now
                delivery.next_attempt_at = None
                # Ids and codes only (the URL is the practice's, but logs stay uniform).
                log.warning("webhook.delivery_failed", delivery_id=str(delivery_id),
                            endpoint_id=str(delivery.endpoint_id), outcome=outcome,
                            status_code=status, attempts=delivery.attempts)
                return DeliveryResult("failed", status)
            # A redelivered delivery backs off from 30 s again, not from where it failed.
            base = delivery.attempt_limit - max_attempts if delivery.attempt_limit else 0
            delay = retry_delay(delivery.attempts - max(0, base))
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            return DeliveryResult(outcome, status, retry_in=delay)


webhook_service = WebhookService()

EVENT_RETENTION = timedelta(days=90)
PURGE_BATCH = 2_000


def purge_events(
    session: Session,
    *,
    organization_id: uuid.UUID,
    before: datetime,
    actor: Actor,
    batch_size: int = PURGE_BATCH,
) -> int:
    """Delete the organization's integration events created before `before` whose
    deliveries are all final, with their deliveries and delivery attempts, in batches of
    `batch_size` events; returns how many events were deleted (audited when any were)."""
    deleted = 0
    settled = ~exists().where(WebhookDelivery.event_id == IntegrationEvent.id,
                              WebhookDelivery.state == "pending")
    while True:
        ids = list(session.scalars(
            select(IntegrationEvent.id)
            .where(IntegrationEvent.organization_id == organization_id,
                   IntegrationEvent.created_at < before, settled)
            .order_by(IntegrationEvent.created_at)
            .limit(batch_size)))
        if not ids:
            break
        deliveries = select(WebhookDelivery.id).where(WebhookDelivery.event_id.in_(ids))
        session.execute(delete(WebhookDeliveryAttempt)
                        .where(WebhookDeliveryAttempt.delivery_id.in_(deliveries)))
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(ids)))
        session.execute(delete(IntegrationEvent).where(IntegrationEvent.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch_size:
            break
    if deleted:
        record(session, actor=actor, action="integration_event.purge",
               subject=Subject("organization", organization_id,
                               organization_id=organization_id),
               details={"events": deleted, "before": before.isoformat()})
    log.info("integration.purge", organization_id=str(organization_id), events=deleted)
    return deleted


def emit_event(
    session: Session,
    *,
    organization_id: uuid.UUID,
    type: str,
    data: dict[str, Any],
) -> IntegrationEvent:
    """Record an integration event for the organization's webhook endpoints, in the
    caller's transaction (the module-level entry point other domains call)."""
    return webhook_service.emit(session, organization_id=organization_id, type=type, data=data)
