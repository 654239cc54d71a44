"""The sandbox processor: a deterministic, in-process stand-in for Stripe (demo, tests).

Test payment methods (docs/PAYMENTS.md lists them for people). In the sandbox the
"hosted field" is the token: the portal sends `pm_sandbox_visa`, never a card number; the
documented fake card numbers are accepted as aliases so a demo user can type them.

| token                          | fake card number   | outcome                                  |
|--------------------------------|--------------------|------------------------------------------|
| pm_sandbox_visa                | 4242 4242 4242 4242| succeeds                                 |
| pm_sandbox_mastercard          | 5555 5555 5555 4444| succeeds                                 |
| pm_sandbox_decline             | 4000 0000 0000 0002| declined: `card_declined`                |
| pm_sandbox_insufficient_funds  | 4000 0000 0000 9995| declined: `insufficient_funds`           |
| pm_sandbox_network_error       | 4000 0000 0000 0119| network error; nothing is charged        |
| pm_sandbox_lost_response       | 4000 0000 0000 3220| charged, but the first reply is lost (a  |
|                                |                    | network error); a retry with the same    |
|                                |                    | idempotency key returns the charge       |

State lives in memory, per processor instance, behind a lock: ids, charges, refunds and
an idempotency map keyed like Stripe's (same key, same result). It sends nothing off the
machine, so it needs no BAA (`offsite = False`).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from carecollect.errors import BadInput
from carecollect.kit.models import utcnow
from carecollect.payment import signing
from carecollect.payment.processor import (
    ChargeResult,
    MethodDetails,
    PaymentDeclined,
    PaymentSession,
    ProcessorError,
    ProcessorUnavailable,
    RefundResult,
    SetupSession,
    WebhookEventData,
    WebhookRejected,
)


@dataclass(frozen=True, slots=True)
class SandboxCard:
    token: str
    number: str
    brand: str
    outcome: str  # succeeded | card_declined | insufficient_funds | network_error | lost_response


TEST_CARDS: tuple[SandboxCard, ...] = (
    SandboxCard("pm_sandbox_visa", "4242424242424242", "visa", "succeeded"),
    SandboxCard("pm_sandbox_mastercard", "5555555555554444", "mastercard", "succeeded"),
    SandboxCard("pm_sandbox_decline", "4000000000000002", "visa", "card_declined"),
    SandboxCard("pm_sandbox_insufficient_funds", "4000000000009995", "visa", "insufficient_funds"),
    SandboxCard("pm_sandbox_network_error", "4000000000000119", "visa", "network_error"),
    SandboxCard("pm_sandbox_lost_response", "4000000000003220", "visa", "lost_response"),
)
_BY_TOKEN = {c.token: c for c in TEST_CARDS}
_BY_NUMBER = {c.number: c for c in TEST_CARDS}


def sandbox_card(token_or_number: str) -> SandboxCard:
    key = token_or_number.replace(" ", "").replace("-", "")
    card = _BY_TOKEN.get(key) or _BY_NUMBER.get(key)
    if card is None:
        raise BadInput("unknown sandbox test card; see docs/PAYMENTS.md for the test cards")
    return card


@dataclass
class _Charge:
    id: str
    amount_cents: int
    refunded_cents: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


class SandboxProcessor:
    """An in-memory processor with Stripe's idempotency and webhook-signing semantics."""

    name = "sandbox"
    offsite = False

    def __init__(self, webhook_secret: str = "whsec_sandbox_local",  # noqa: S107 - sandbox only
                 tolerance_seconds: int = signing.DEFAULT_TOLERANCE_SECONDS) -> None:
        self.webhook_secret = webhook_secret
        self.tolerance_seconds = tolerance_seconds
        self._lock = threading.Lock()
        self._idempotent: dict[str, Any] = {}
        self._charges: dict[str, _Charge] = {}
        self._methods: dict[str, tuple[str, SandboxCard]] = {}  # method id -> (customer, card)
        self._lost_once: set[str] = set()
        self.calls: list[tuple[str, str]] = []  # (operation, idempotency key), for tests
        self.detached: list[str] = []  # detached method ids, in order, for tests

    # -- helpers ----------------------------------------------------------------------
    @staticmethod
    def _new_id(prefix: str) -> str:
        return f"sbx_{prefix}_{secrets.token_hex(12)}"

    def _once(self, operation: str, key: str, make: Any) -> Any:
        """Stripe semantics: the first result for a key is returned for every repeat."""
        with self._lock:
            self.calls.append((operation, key))
            scoped = f"{operation}:{key}"
            if scoped in self._idempotent:
                return self._idempotent[scoped]
            result = make()
            self._idempotent[scoped] = result
            return result

    def _charge(self, card: SandboxCard, amount_cents: int, key: str,
                metadata: dict[str, str]) -> ChargeResult:
        if amount_cents <= 0:
            raise ProcessorError("invalid_amount")
        if card.outcome == "network_error":
            # Nothing reached the "bank": the same key may be retried.
            raise ProcessorUnavailable("network_error")
        if card.outcome in ("card_declined", "insufficient_funds"):
            return ChargeResult(self._new_id("pi"), "failed", amount_cents, card.outcome)
        charge = _Charge(self._new_id("pi"), amount_cents, metadata=dict(metadata))
        self._charges[charge.id] = charge
        return ChargeResult(charge.id, "succeeded", amount_cents)

    def _maybe_lose(self, card: SandboxCard, key: str) -> None:
        if card.outcome == "lost_response" and key not in self._lost_once:
            self._lost_once.add(key)
            raise ProcessorUnavailable("network_error")

    # -- the interface ----------------------------------------------------------------
    def create_customer(self, *, idempotency_key: str, metadata: dict[str, str]) -> str:
        return str(self._once("customer", idempotency_key, lambda: self._new_id("cus")))

    def create_payment(
        self,
        *,
        amount_cents: int,
        idempotency_key: str,
        metadata: dict[str, str],
        customer_id: str | None = None,
        payment_method: str | None = None,
        statement_descriptor: str | None = None,
    ) -> PaymentSession:
        if payment_method is None:
            # Like a PaymentIntent awaiting the hosted Payment Element.
            def pending() -> PaymentSession:
                pid = self._new_id("pi")
                return PaymentSession(pid, "requires_action", amount_cents,
                                      client_secret=f"{pid}_secret_{secrets.token_hex(8)}")
            result: PaymentSession = self._once("payment", idempotency_key, pending)
            return result
        card = sandbox_card(payment_method)
        charge: ChargeResult = self._once(
            "payment", idempotency_key,
            lambda: self._charge(card, amount_cents, idempotency_key, metadata))
        self._maybe_lose(card, idempotency_key)
        return PaymentSession(charge.processor_payment_id, charge.status, amount_cents,
                              failure_code=charge.failure_code)

    def save_payment_method(
        self, *, customer_id: str, idempotency_key: str, metadata: dict[str, str],
        payment_method: str | None = None,
    ) -> SetupSession:
        card = sandbox_card(payment_method or "pm_sandbox_visa")

        def make() -> SetupSession:
            method_id = self._new_id("pm")
            self._methods[method_id] = (customer_id, card)
            return SetupSession(self._new_id("seti"), customer_id, "succeeded",
                                payment_method_id=method_id)
        result: SetupSession = self._once("setup", idempotency_key, make)
        return result

    def method_details(self, processor_method_id: str) -> MethodDetails:
        with self._lock:
            found = self._methods.get(processor_method_id)
        if found is None:
            raise ProcessorError("no_such_payment_method")
        customer, card = found
        return MethodDetails(processor_method_id, customer, card.brand, card.number[-4:], 12,
                             2030)

    def detach_method(self, processor_method_id: str) -> None:
        with self._lock:
            self._methods.pop(processor_method_id, None)
            self.detached.append(processor_method_id)

    def charge_saved_method(
        self,
        *,
        customer_id: str,
        processor_method_id: str,
        amount_cents: int,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> ChargeResult:
        with self._lock:
            found = self._methods.get(processor_method_id)
        if found is None or found[0] != customer_id:
            raise ProcessorError("no_such_payment_method")
        card = found[1]
        result: ChargeResult = self._once(
            "charge", idempotency_key,
            lambda: self._charge(card, amount_cents, idempotency_key, metadata))
        self._maybe_lose(card, idempotency_key)
        if result.status == "failed":
            raise PaymentDeclined(result.failure_code or "card_declined")
        return result

    def refund(
        self, *, processor_payment_id: str, amount_cents: int, idempotency_key: str,
        reason: str = "requested_by_customer",
    ) -> RefundResult:
        def make() -> RefundResult:
            charge = self._charges.get(processor_payment_id)
            if charge is None:
                raise ProcessorError("no_such_payment")
            if amount_cents <= 0 or charge.refunded_cents + amount_cents > charge.amount_cents:
                raise ProcessorError("refund_exceeds_payment")
            charge.refunded_cents += amount_cents
            return RefundResult(self._new_id("re"), processor_payment_id, amount_cents,
                                "succeeded")
        result: RefundResult = self._once("refund", idempotency_key, make)
        return result

    # -- webhooks ---------------------------------------------------------------------
    def event_payload(self, event_type: str, obj: dict[str, Any], *,
                      event_id: str | None = None, created: int | None = None) -> bytes:
        """A webhook body shaped like Stripe's `{"id", "type", "created", "data": {...}}`."""
        body = {
            "id": event_id or self._new_id("evt"),
            "object": "event",
            "type": event_type,
            "created": created if created is not None else int(utcnow().timestamp()),
            "livemode": False,
            "data": {"object": obj},
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    def sign(self, payload: bytes, *, timestamp: int | None = None) -> str:
        return signing.sign(payload, self.webhook_secret,
                            timestamp if timestamp is not None else int(utcnow().timestamp()))

    def parse_webhook(
        self, payload: bytes, signature_header: str | None, *, now: datetime | None = None
    ) -> WebhookEventData:
        signed_at = signing.verify(payload, signature_header, self.webhook_secret,
                                   now=now or utcnow(), tolerance_seconds=self.tolerance_seconds)
        try:
            body = json.loads(payload)
        except ValueError:
            raise WebhookRejected("malformed body") from None
        return event_data(body, signed_at)


def event_data(body: Any, signed_at: datetime) -> WebhookEventData:
    """Reduce a Stripe-shaped event body to `WebhookEventData` (both adapters use it)."""
    if not isinstance(body, dict):
        raise WebhookRejected("malformed body")
    try:
        obj = body["data"]["object"]
        event_id = str(body["id"])
        event_type = str(body["type"])
        created = datetime.fromtimestamp(int(body["created"]), UTC)
    except (KeyError, TypeError, ValueError):
        raise WebhookRejected("malformed body") from None
    if not isinstance(obj, dict):
        raise WebhookRejected("malformed body")
    amount = obj.get("amount_received") or obj.get("amount") or 0
    metadata = obj.get("metadata") or {}
    payment_id = obj.get("payment_intent")
    failure = obj.get("last_payment_error") or {}
    return WebhookEventData(
        event_id=event_id,
        type=event_type,
        created_at=created,
        signed_at=signed_at,
        object_id=str(obj.get("id", "")),
        amount_cents=int(amount) if isinstance(amount, int) else 0,
        metadata={str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict)
        else {},
        payment_id=str(payment_id) if payment_id else None,
        failure_code=str(failure.get("code")) if isinstance(failure, dict) and failure.get("code")
        else None,
        livemode=bool(body.get("livemode", False)),
        raw=body,
    )
