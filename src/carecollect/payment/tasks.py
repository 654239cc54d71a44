"""Job handlers of the payment domain.

`payment.send_receipt` renders the receipt (C0-C1 only) and hands it to the e-mail
sender the worker was started with (`ctx.resources["receipt_sender"]`, a callable
`(organization_id, guarantor_id, ReceiptEmail, idempotency_key) -> None`). Until the
outreach dispatcher offers a transactional e-mail entry point, a worker without that
resource retries and then discards the job; the receipt stays downloadable in the portal.

`payment.detach_method` detaches a card retired from autopay (`autopay._attach` queues it
when a replacement makes the old card unused) at the processor that saved it. It runs
outside any transaction, is idempotent at the processor, and is retried while the
processor is unreachable; a card that is in use again by then is left alone.
"""

from __future__ import annotations

import uuid

from carecollect.audit import Actor, Subject, record
from carecollect.kit.jobs import ClaimedJob, JobContext, RetryableError, TerminalError, task
from carecollect.payment.autopay import DETACH_JOB
from carecollect.payment.models import Payment, SavedPaymentMethod
from carecollect.payment.processor import PaymentProcessor, ProcessorError, ProcessorUnavailable
from carecollect.payment.receipts import receipt_content
from carecollect.payment.service import RECEIPT_JOB


@task(RECEIPT_JOB, queue="outreach", max_attempts=8)
def send_receipt(ctx: JobContext, job: ClaimedJob) -> None:
    if job.organization_id is None:
        raise TerminalError("no_organization")
    payment_id = uuid.UUID(str(job.args["payment_id"]))
    with ctx.db.tenant_session(job.organization_id) as session:
        payment = session.get(Payment, payment_id)
        if payment is None:
            raise TerminalError("no_such_payment")
        email = receipt_content(session, payment_id)
        guarantor_id = payment.guarantor_id
    sender = ctx.resources.get("receipt_sender")
    if sender is None:
        raise RetryableError("receipt_sender_not_configured")
    sender(job.organization_id, guarantor_id, email, f"receipt:{payment_id}")


@task(DETACH_JOB, queue="payments", max_attempts=12)
def detach_method(ctx: JobContext, job: ClaimedJob) -> None:
    if job.organization_id is None:
        raise TerminalError("no_organization")
    try:
        method_id = uuid.UUID(str(job.args["payment_method_id"]))
    except (KeyError, ValueError):
        raise TerminalError("bad_arguments") from None
    with ctx.db.tenant_session(job.organization_id) as session:
        method = session.get(SavedPaymentMethod, method_id)
        if method is None:
            raise TerminalError("no_such_payment_method")
        if method.status != "removed":
            return  # in use again (re-saved): nothing to retire
        processor_name, processor_method_id = method.processor, method.processor_method_id
        guarantor_id = method.guarantor_id
    processor = ctx.resources.get("payment_processor")
    if not isinstance(processor, PaymentProcessor):
        raise RetryableError("payment_processor_not_configured")
    if processor.name != processor_name:
        # Saved by another processor than the one this worker talks to: wait for a worker
        # that has it (retried, then discarded and visible in the job list).
        raise RetryableError("payment_processor_mismatch")
    try:
        processor.detach_method(processor_method_id)
    except ProcessorUnavailable as exc:
        raise RetryableError("processor_unavailable") from exc
    except ProcessorError as exc:
        raise TerminalError(exc.code) from exc
    with ctx.db.tenant_session(job.organization_id) as session:
        record(
            session,
            actor=Actor.system("payment.detach_method"),
            action="payment_method.detach",
            subject=Subject("saved_payment_method", method_id,
                            organization_id=job.organization_id, patient_id=guarantor_id),
            details={"processor": processor_name},
        )
