"""The named resources every job worker gets (the `carecollect worker` command and the
embedded server's in-process worker build them the same way): outreach channels and
dispatch settings, the payment processor, the audit signer, and (given the database and
the key manager) the e-mail senders of payment receipts and missed-plan-payment notices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carecollect.config import Settings

if TYPE_CHECKING:
    from carecollect.db import Database
    from carecollect.kit.crypto.keys import KeyManager


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


def add_email_senders(resources: dict[str, Any], db: Database, keys: KeyManager) -> None:
    """`receipt_sender` and `plan_notice_sender` through the outreach e-mail channel (the
    `outreach` resource: its channels, link secret and policy profile)."""
    from carecollect.outreach.dispatch import DispatchResources
    from carecollect.outreach.transactional import TransactionalSender
    from carecollect.payment.receipts import ReceiptSender
    from carecollect.payment_plan.notice import PlanNoticeSender

    outreach = resources.get("outreach")
    if not isinstance(outreach, DispatchResources):
        return
    sender = TransactionalSender(db, keys, outreach)
    resources["receipt_sender"] = ReceiptSender(sender)
    resources["plan_notice_sender"] = PlanNoticeSender(sender)


def build_worker_resources(settings: Settings, db: Database | None = None,
                           keys: KeyManager | None = None) -> dict[str, Any]:
    from carecollect.audit.keys import load_signer
    from carecollect.audit.tasks import AuditResources
    from carecollect.channel.config import build_resources

    resources = build_resources()
    if db is not None and keys is not None:
        add_email_senders(resources, db, keys)
    resources["payment_processor"] = payment_processor(settings)
    resources["audit"] = AuditResources(
        signer=load_signer(settings.resolved_audit_signing_key_path),
        checkpoint_dir=settings.resolved_checkpoint_dir,
    )
    return resources
