"""Job handlers of the payment domain.

`payment.send_receipt` renders the receipt (C0-C1 only) and hands it to the e-mail
sender the worker was started with (`ctx.resources["receipt_sender"]`, a callable
`(organization_id, guarantor_id, ReceiptEmail, idempotency_key) -> None`). Until the
outreach dispatcher offers a transactional e-mail entry point, a worker without that
resource retries and then discards the job; the receipt stays downloadable in the portal.
"""

from __future__ import annotations

import uuid

from carecollect.kit.jobs import ClaimedJob, JobContext, RetryableError, TerminalError, task
from carecollect.payment.models import Payment
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
