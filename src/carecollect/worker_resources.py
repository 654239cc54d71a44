"""The named resources every job worker gets (the `carecollect worker` command and the
embedded server's in-process worker build them the same way): outreach channels and
dispatch settings, the payment processor, and the audit signer."""

from __future__ import annotations

from typing import Any

from carecollect.config import Settings


def payment_processor(settings: Settings) -> Any:
    from carecollect.payment.processors import build_processor

    secret = settings.stripe_webhook_secret
    key = settings.stripe_api_key
    return build_processor(
        settings.payment_processor,
        api_key=key.get_secret_value() if key else None,
        webhook_secret=secret.get_secret_value() if secret else None,
        api_base=settings.stripe_api_base,
    )


def build_worker_resources(settings: Settings) -> dict[str, Any]:
    from carecollect.audit.keys import load_signer
    from carecollect.audit.tasks import AuditResources
    from carecollect.channel.config import build_resources

    resources = build_resources()
    resources["payment_processor"] = payment_processor(settings)
    resources["audit"] = AuditResources(
        signer=load_signer(settings.resolved_audit_signing_key_path),
        checkpoint_dir=settings.resolved_checkpoint_dir,
    )
    return resources
