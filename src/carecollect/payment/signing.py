"""Webhook signatures in Stripe's scheme, shared by the sandbox processor.

`Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the
sandbox signs and verifies exactly as Stripe does, so one code path (and one set of
tests) covers forged, stale and future-dated events. The Stripe adapter itself verifies
with the SDK (`stripe.Webhook.construct_event`).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from carecollect.payment.processor import WebhookRejected

DEFAULT_TOLERANCE_SECONDS = 300  # Stripe's default: five minutes
FUTURE_SKEW_SECONDS = 60


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def parse_header(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise WebhookRejected("missing signature")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRejected("malformed signature header")
    return timestamp, signatures


def verify(payload: bytes, header: str | None, secret: str, *, now: datetime,
           tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> datetime:
    """Check the signature and its age; return the signing time (UTC)."""
    timestamp, signatures = parse_header(header)
    expected = sign(payload, secret, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookRejected("bad signature")
    check_age(timestamp, now=now, tolerance_seconds=tolerance_seconds)
    return datetime.fromtimestamp(timestamp, UTC)


def check_age(timestamp: int, *, now: datetime, tolerance_seconds: int) -> None:
    # A captured event re-sent later is a replay even if its id were new to us: refuse
    # anything signed outside the tolerance window, in either direction.
    age = now.timestamp() - timestamp
    if age > tolerance_seconds:
        raise WebhookRejected("stale")
    if age < -FUTURE_SKEW_SECONDS:
        raise WebhookRejected("timestamp in the future")
