"""The processor interface every adapter implements (ARCHITECTURE.md section 8).

Five operations: create a payment (a hosted payment page or client secret, so card
numbers are typed into the processor's own fields and never reach our servers), save a
payment method for autopay, charge a saved method, refund, and parse-and-verify a webhook.

Every call that moves money takes an `idempotency_key`: the processor returns the first
result for a repeated key instead of charging twice. That is what lets the autopay job
retry after a crash between "charge" and "record" without double-charging.

Metadata sent to a processor is ids only (organization, account, guarantor, plan,
installment): never a name, a service, a diagnosis or anything clinical. A processor
that sends data off the machine (`offsite=True`) is a business associate and is used only
while its BAA is active (HIPAA-BAA, 45 CFR 164.502(e); see `service.require_processor_baa`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from carecollect.errors import AppError

PaymentStatus = Literal["succeeded", "requires_action", "processing", "failed"]


class ProcessorError(AppError):
    """A processor refused or failed; `code` is a fixed, PHI-free word."""

    status_code = 402
    retryable = False

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code.replace("_", " "))
        self.code = code


class PaymentDeclined(ProcessorError):  # noqa: N818 - reads as the event it reports
    """The card was declined (`card_declined`, `insufficient_funds`, ...): not retryable
    now; the plan's retry schedule decides when to try again."""


class ProcessorUnavailable(ProcessorError):  # noqa: N818 - as above
    """Network trouble or a processor 5xx: the request may or may not have arrived, so it
    is retried with the same idempotency key, never with a new one."""

    status_code = 503
    retryable = True


class WebhookRejected(AppError):  # noqa: N818 - as above
    """A webhook that is forged, stale, replayed or malformed. Nothing is posted."""

    status_code = 400

    def __init__(self, reason: str) -> None:
        super().__init__(f"webhook rejected: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PaymentSession:
    """What the browser needs to collect the card on the processor's side."""

    processor_payment_id: str
    status: PaymentStatus
    amount_cents: int
    client_secret: str | None = None
    redirect_url: str | None = None  # hosted Checkout page, when used
    failure_code: str | None = None


@dataclass(frozen=True, slots=True)
class SetupSession:
    """A SetupIntent (or its sandbox equivalent) that saves a method for autopay."""

    processor_setup_id: str
    customer_id: str
    status: PaymentStatus
    client_secret: str | None = None
    payment_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class HostedSetup:
    """A processor-hosted page that saves a card for autopay (Stripe Checkout in `setup`
    mode): the patient is sent to `url`; the card is saved when the signed webhook says so.
    `processor_setup_id` is the SetupIntent when the processor created it up front."""

    processor_session_id: str
    url: str
    customer_id: str
    processor_setup_id: str | None = None


@dataclass(frozen=True, slots=True)
class MethodDetails:
    processor_method_id: str
    customer_id: str
    brand: str
    last4: str
    exp_month: int | None = None
    exp_year: int | None = None


@dataclass(frozen=True, slots=True)
class ChargeResult:
    processor_payment_id: str
    status: PaymentStatus
    amount_cents: int
    failure_code: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    processor_refund_id: str
    processor_payment_id: str
    amount_cents: int
    status: Literal["succeeded", "pending", "failed"]


@dataclass(frozen=True, slots=True)
class WebhookEventData:
    """A verified webhook, reduced to what posting needs."""

    event_id: str
    type: str
    created_at: datetime
    signed_at: datetime
    object_id: str
    amount_cents: int
    metadata: dict[str, str] = field(default_factory=dict)
    payment_id: str | None = None  # for refunds and disputes: the payment they reverse
    failure_code: str | None = None
    livemode: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


# Event types posting understands, in the processor-neutral vocabulary both adapters use
# (Stripe's own names, which the sandbox borrows).
PAYMENT_SUCCEEDED = "payment_intent.succeeded"
PAYMENT_FAILED = "payment_intent.payment_failed"
SETUP_SUCCEEDED = "setup_intent.succeeded"
CHECKOUT_COMPLETED = "checkout.session.completed"
CHECKOUT_EXPIRED = "checkout.session.expired"
REFUND_SUCCEEDED = "refund.created"
CHARGE_REFUNDED = "charge.refunded"
DISPUTE_CREATED = "charge.dispute.created"


@runtime_checkable
class PaymentProcessor(Protocol):
    """The operations, implemented by `SandboxProcessor` and `StripeProcessor`."""

    name: str
    offsite: bool

    def create_customer(self, *, idempotency_key: str, metadata: dict[str, str]) -> str: ...

    def create_payment(
        self,
        *,
        amount_cents: int,
        idempotency_key: str,
        metadata: dict[str, str],
        customer_id: str | None = None,
        payment_method: str | None = None,
        statement_descriptor: str | None = None,
    ) -> PaymentSession: ...

    def save_payment_method(
        self, *, customer_id: str, idempotency_key: str, metadata: dict[str, str],
        payment_method: str | None = None,
    ) -> SetupSession: ...

    def method_details(self, processor_method_id: str) -> MethodDetails: ...

    def detach_method(self, processor_method_id: str) -> None:
        """Detach a saved method from its customer so it can never be charged again.
        Idempotent: a method already detached (or unknown to the processor) is done."""
        ...

    def charge_saved_method(
        self,
        *,
        customer_id: str,
        processor_method_id: str,
        amount_cents: int,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> ChargeResult: ...

    def refund(
        self, *, processor_payment_id: str, amount_cents: int, idempotency_key: str,
        reason: str = "requested_by_customer",
    ) -> RefundResult: ...

    def parse_webhook(
        self, payload: bytes, signature_header: str | None, *, now: datetime | None = None
    ) -> WebhookEventData: ...
