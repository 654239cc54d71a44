"""Job handlers of the payment-plan domain.

* `payment_plan.sweep` (every 15 minutes once `install_periodic()` has run): enqueue due
  autopay charges in each plan's local time and mark installments missed after grace.
* `payment_plan.charge`: charge one installment exactly once (`plan_service`), with the
  processor from `ctx.resources["payment_processor"]`. A network error is retried with
  the same idempotency key; a decline follows the plan's retry schedule.
* `payment_plan.missed_notice`: hands the missed-payment notice to
  `ctx.resources["plan_notice_sender"]` (a callable `(organization_id, guarantor_id,
  installment_id, idempotency_key)`); the outreach dispatcher owns delivery and consent.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from carecollect.kit.jobs import (
    ClaimedJob,
    JobContext,
    PeriodicSpec,
    RetryableError,
    TerminalError,
    registry,
    task,
)
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.payment.processor import PaymentProcessor, ProcessorUnavailable
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.payment_plan.service import (
    CHARGE_JOB,
    NOTICE_JOB,
    SWEEP_JOB,
    plan_service,
)
from carecollect.tenant.models import Organization

SWEEP_SCHEDULE = PeriodicSpec(name="payment_plan_sweep", kind=SWEEP_JOB,
                              every=timedelta(minutes=15), queue="payments")


def install_periodic(target: TaskRegistry = registry) -> None:
    """Schedule the sweep. Explicit rather than at import, so that importing the handlers
    (TASK_MODULES) does not add a periodic job to every worker a test builds."""
    target.add_periodic(SWEEP_SCHEDULE)


@task(SWEEP_JOB, queue="payments", max_attempts=3)
def sweep(ctx: JobContext, job: ClaimedJob) -> None:
    plan_service.sweep(ctx.db, now=ctx.clock())


@task(CHARGE_JOB, queue="payments", max_attempts=10)
def charge(ctx: JobContext, job: ClaimedJob) -> None:
    if job.organization_id is None or ctx.keys is None:
        raise TerminalError("no_organization")
    processor = ctx.resources.get("payment_processor")
    if not isinstance(processor, PaymentProcessor):
        raise RetryableError("payment_processor_not_configured")
    with ctx.db.system_session() as session:
        org = session.get(Organization, job.organization_id)
        keys = ctx.keys.for_organization(
            session, job.organization_id,
            blind_index_bits=org.blind_index_bits if org is not None else None)
    try:
        plan_service.charge_installment(ctx.db, keys=keys, processor=processor,
                                        installment_id=uuid.UUID(str(job.args["installment_id"])),
                                        now=ctx.clock())
    except ProcessorUnavailable as exc:
        raise RetryableError("processor_unavailable") from exc


@task(NOTICE_JOB, queue="outreach", max_attempts=8)
def missed_notice(ctx: JobContext, job: ClaimedJob) -> None:
    if job.organization_id is None:
        raise TerminalError("no_organization")
    installment_id = uuid.UUID(str(job.args["installment_id"]))
    with ctx.db.tenant_session(job.organization_id) as session:
        inst = session.get(PlanInstallment, installment_id)
        plan = session.get(PaymentPlan, inst.plan_id) if inst else None
        if plan is None:
            raise TerminalError("no_such_installment")
        guarantor_id = plan.guarantor_id
    sender = ctx.resources.get("plan_notice_sender")
    if sender is None:
        raise RetryableError("plan_notice_sender_not_configured")
    sender(job.organization_id, guarantor_id, installment_id, f"plan-missed:{installment_id}")
