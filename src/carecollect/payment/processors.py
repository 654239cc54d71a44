"""Build the configured processor: `sandbox` (demo, tests) or `stripe` (needs an API key
and a webhook signing secret; the app's settings hold them as secrets)."""

from __future__ import annotations

from carecollect.errors import ConfigurationError
from carecollect.payment.processor import PaymentProcessor
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment.stripe_adapter import StripeProcessor


def build_processor(kind: str = "sandbox", *, api_key: str | None = None,
                    webhook_secret: str | None = None,
                    api_base: str | None = None) -> PaymentProcessor:
    if kind == "sandbox":
        return SandboxProcessor(webhook_secret or "whsec_sandbox_local")
    if kind == "stripe":
        if not api_key or not webhook_secret:
            raise ConfigurationError("the Stripe processor needs an API key and a webhook "
                                     "signing secret")
        if api_key.startswith("sk_live_") and api_base:
            raise ConfigurationError("a live Stripe key must talk to Stripe itself")
        return StripeProcessor(api_key, webhook_secret, api_base=api_base)
    raise ConfigurationError(f"unknown payment processor {kind!r} (sandbox or stripe)")
