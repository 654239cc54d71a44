"""The Stripe adapter, on the official `stripe` SDK (`StripeClient`, API v1).

* One-off payments are PaymentIntents with automatic payment methods: the browser
  confirms them with Stripe's Payment Element using the client secret, or the patient is
  sent to a hosted Checkout page (`create_checkout`). Card numbers are typed into
  Stripe's own iframe or page and never reach our servers (PCI DSS SAQ A scope).
* Autopay saves a method with a SetupIntent (`usage=off_session`) and charges it with an
  off-session PaymentIntent (`confirm=True, off_session=True`).
* Every money-moving request carries our idempotency key, so a retry after a timeout
  returns Stripe's first result instead of charging again.
* Webhooks are verified by the SDK (`stripe.Webhook.construct_event`): HMAC-SHA256 over
  `"<t>.<body>"` and a timestamp tolerance; replays by event id are refused by the
  payment service, which records every accepted event id.

Only ids go in `metadata` (organization, account, guarantor, plan, installment): Stripe
is a business associate of the practice, and the service refuses to call it without an
active BAA anyway (HIPAA-BAA, 45 CFR 164.502(e)). The statement descriptor is the
organization's neutral billing name (PLAT-NEUTRAL-NAME), never a specialty.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import stripe

from carecollect.kit.models import utcnow
from carecollect.payment import signing
from carecollect.payment.processor import (
    ChargeResult,
    HostedSetup,
    MethodDetails,
    PaymentDeclined,
    PaymentSession,
    PaymentStatus,
    ProcessorError,
    ProcessorUnavailable,
    RefundResult,
    SetupSession,
    WebhookEventData,
    WebhookRejected,
)
from carecollect.payment.sandbox import event_data

_STATUS: dict[str, PaymentStatus] = {
    "succeeded": "succeeded",
    "processing": "processing",
    "requires_action": "requires_action",
    "requires_payment_method": "requires_action",
    "requires_confirmation": "requires_action",
    "requires_capture": "processing",
    "canceled": "failed",
}


def _translate(exc: stripe.StripeError) -> ProcessorError:
    """Map SDK errors to ours with a fixed code; the SDK's message is never kept (it can
    echo request parameters)."""
    if isinstance(exc, stripe.CardError):
        return PaymentDeclined(str(exc.code or "card_declined"))
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return ProcessorUnavailable("network_error")
    if exc.http_status == 409:
        # The same idempotency key is still in flight (another worker): retry later.
        return ProcessorUnavailable("idempotency_conflict")
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500:
        return ProcessorUnavailable("processor_error")
    return ProcessorError(str(exc.code or "processor_error"))


class StripeProcessor:
    name = "stripe"
    offsite = True

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        http_client: stripe.HTTPClient | None = None,
        tolerance_seconds: int = signing.DEFAULT_TOLERANCE_SECONDS,
        currency: str = "usd",
    ) -> None:
        options: dict[str, Any] = {"max_network_retries": 0}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        if http_client is not None:
            options["http_client"] = http_client
        self.client = stripe.StripeClient(api_key, **options)
        self.webhook_secret = webhook_secret
        self.tolerance_seconds = tolerance_seconds
        self.currency = currency

    def _call(self, fn: Any, params: dict[str, Any], key: str | None) -> Any:
        try:
            return fn(params, {"idempotency_key": key} if key else None)
        except stripe.StripeError as exc:
            raise _translate(exc) from None

    # -- the interface ----------------------------------------------------------------
    def create_customer(self, *, idempotency_key: str, metadata: dict[str, str]) -> str:
        customer = self._call(self.client.v1.customers.create, {"metadata": metadata},
                              idempotency_key)
        return str(customer.id)

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
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": self.currency,
            "metadata": metadata,
            "automatic_payment_methods": {"enabled": True},
        }
        if customer_id:
            params["customer"] = customer_id
        if statement_descriptor:
            params["statement_descriptor_suffix"] = statement_descriptor[:22]
        if payment_method:
            params["payment_method"] = payment_method
            params["confirm"] = True
            params["automatic_payment_methods"] = {"enabled": True,
                                                   "allow_redirects": "never"}
        intent = self._call(self.client.v1.payment_intents.create, params, idempotency_key)
        return PaymentSession(
            processor_payment_id=str(intent.id),
            status=_STATUS.get(str(intent.status), "failed"),
            amount_cents=int(intent.amount),
            client_secret=intent.client_secret,
        )

    def create_checkout(
        self, *, amount_cents: int, idempotency_key: str, metadata: dict[str, str],
        success_url: str, cancel_url: str, product_name: str,
    ) -> PaymentSession:
        """A hosted Checkout page (the alternative to the Payment Element). `product_name`
        must be neutral ("Account payment"): it is shown on Stripe's page and receipt."""
        session = self._call(self.client.v1.checkout.sessions.create, {
            "mode": "payment",
            "success_url": success_url,
            "cancel_url": cancel_url,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": self.currency, "unit_amount": amount_cents,
                "product_data": {"name": product_name}}}],
            "payment_intent_data": {"metadata": metadata},
            "metadata": metadata,
        }, idempotency_key)
        return PaymentSession(
            processor_payment_id=str(session.payment_intent or session.id),
            status="requires_action",
            amount_cents=amount_cents,
            redirect_url=session.url,
        )

    def save_payment_method(
        self, *, customer_id: str, idempotency_key: str, metadata: dict[str, str],
        payment_method: str | None = None,
    ) -> SetupSession:
        params: dict[str, Any] = {
            "customer": customer_id,
            "usage": "off_session",
            "metadata": metadata,
            "automatic_payment_methods": {"enabled": True},
        }
        if payment_method:
            params["payment_method"] = payment_method
            params["confirm"] = True
            params["automatic_payment_methods"] = {"enabled": True,
                                                   "allow_redirects": "never"}
        intent = self._call(self.client.v1.setup_intents.create, params, idempotency_key)
        method = intent.payment_method
        return SetupSession(
            processor_setup_id=str(intent.id),
            customer_id=customer_id,
            status=_STATUS.get(str(intent.status), "failed"),
            client_secret=intent.client_secret,
            payment_method_id=str(method) if isinstance(method, str) else
            (str(method.id) if method is not None else None),
        )

    def create_setup_checkout(
        self, *, customer_id: str, idempotency_key: str, metadata: dict[str, str],
        success_url: str, cancel_url: str,
    ) -> HostedSetup:
        """A hosted Checkout page in `setup` mode that saves a card for off-session use
        (autopay) on the guarantor's Customer. Cards only: bank debits are not offered for
        autopay (see the module docstring). Metadata (ids only) goes on the session and on
        its SetupIntent, so either webhook finds the enrollment."""
        session = self._call(self.client.v1.checkout.sessions.create, {
            "mode": "setup",
            "customer": customer_id,
            "payment_method_types": ["card"],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "setup_intent_data": {"metadata": metadata},
        }, idempotency_key)
        setup = session.setup_intent
        setup_id = setup if isinstance(setup, str) else (
            str(setup.id) if setup is not None else None)
        url = session.url
        if not isinstance(url, str):
            raise ProcessorError("no_checkout_url")
        return HostedSetup(processor_session_id=str(session.id), url=url,
                           customer_id=customer_id, processor_setup_id=setup_id)

    def setup_result(self, processor_setup_id: str) -> SetupSession:
        """Retrieve a SetupIntent: its status, customer and saved payment method (what
        the setup webhooks are checked against, rather than trusting the event body)."""
        intent = self._call(lambda params, _opts: self.client.v1.setup_intents.retrieve(
            processor_setup_id), {}, None)
        method = intent.payment_method
        customer = intent.customer
        return SetupSession(
            processor_setup_id=str(intent.id),
            customer_id=customer if isinstance(customer, str) else (
                str(customer.id) if customer is not None else ""),
            status=_STATUS.get(str(intent.status), "failed"),
            payment_method_id=method if isinstance(method, str) else (
                str(method.id) if method is not None else None),
        )

    def method_details(self, processor_method_id: str) -> MethodDetails:
        method = self._call(lambda params, _opts: self.client.v1.payment_methods.retrieve(
            processor_method_id), {}, None)
        card = method.card
        return MethodDetails(
            processor_method_id=str(method.id),
            customer_id=str(method.customer or ""),
            brand=str(card.brand) if card is not None else str(method.type),
            last4=str(card.last4) if card is not None else "",
            exp_month=int(card.exp_month) if card is not None else None,
            exp_year=int(card.exp_year) if card is not None else None,
        )

    def detach_method(self, processor_method_id: str) -> None:
        try:
            self._call(lambda params, _opts: self.client.v1.payment_methods.detach(
                processor_method_id), {}, None)
        except ProcessorUnavailable:
            raise
        except ProcessorError as exc:
            if exc.code == "resource_missing":
                return  # nothing to detach
            # Stripe refuses to detach a method that is no longer attached: done already
            # (e.g. a retry after a lost response). Anything else is a real refusal.
            method = self._call(lambda params, _opts: self.client.v1.payment_methods.retrieve(
                processor_method_id), {}, None)
            if method.customer:
                raise

    def charge_saved_method(
        self,
        *,
        customer_id: str,
        processor_method_id: str,
        amount_cents: int,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> ChargeResult:
        intent = self._call(self.client.v1.payment_intents.create, {
            "amount": amount_cents,
            "currency": self.currency,
            "customer": customer_id,
            "payment_method": processor_method_id,
            "off_session": True,
            "confirm": True,
            "metadata": metadata,
        }, idempotency_key)
        if str(intent.status) != "succeeded":
            # Off-session, only an immediate success counts: a card that needs the
            # cardholder (3-D Secure) is a decline for autopay and the patient is asked to
            # pay in the portal; asynchronous methods (bank debits) are not offered for
            # autopay, because an idempotent replay would keep answering "processing".
            error = intent.last_payment_error
            code = getattr(error, "code", None) or (
                "authentication_required" if str(intent.status) == "requires_action"
                else "card_declined")
            raise PaymentDeclined(str(code))
        return ChargeResult(str(intent.id), "succeeded", int(intent.amount))

    def refund(
        self, *, processor_payment_id: str, amount_cents: int, idempotency_key: str,
        reason: str = "requested_by_customer",
    ) -> RefundResult:
        refund = self._call(self.client.v1.refunds.create, {
            "payment_intent": processor_payment_id,
            "amount": amount_cents,
            "reason": reason,
        }, idempotency_key)
        status = str(refund.status)
        return RefundResult(
            processor_refund_id=str(refund.id),
            processor_payment_id=processor_payment_id,
            amount_cents=int(refund.amount),
            status="succeeded" if status == "succeeded" else
            ("failed" if status in ("failed", "canceled") else "pending"),
        )

    def parse_webhook(
        self, payload: bytes, signature_header: str | None, *, now: datetime | None = None
    ) -> WebhookEventData:
        try:
            stripe.Webhook.construct_event(payload, signature_header, self.webhook_secret,
                                           tolerance=self.tolerance_seconds)
        except stripe.SignatureVerificationError as exc:
            stale = "tolerance" in str(exc)
            raise WebhookRejected("stale" if stale else "bad signature") from None
        except ValueError:
            raise WebhookRejected("malformed body") from None
        timestamp, _ = signing.parse_header(signature_header)
        # The SDK checks only the past side of the window; refuse future-dated ones too.
        signing.check_age(timestamp, now=now or utcnow(), tolerance_seconds=self.tolerance_seconds)
        return event_data(json.loads(payload), datetime.fromtimestamp(timestamp, UTC))
