"""The nightly planning job.

* `outreach.plan` (daily at 06:00 UTC once `install_periodic()` has run, i.e. 01:00-02:00
  in US Eastern time, before any local send window opens): for every active organization,
  enroll newly eligible accounts, plan the due cadence steps and persist the attempts and
  their delivery jobs, one organization per transaction (`planner.plan_and_persist`). A
  job with `organization_id` set plans that organization only.

The plan date is part of every attempt's idempotency key, so a run repeated the same day
(a retried job, two schedulers) creates nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from carecollect.kit.jobs import ClaimedJob, JobContext, PeriodicSpec, registry, task
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.logging import get_logger
from carecollect.outreach.planner import plan_and_persist
from carecollect.tenant.models import Organization

PLAN_JOB = "outreach.plan"
NIGHTLY = PeriodicSpec(name="outreach_nightly_plan", kind=PLAN_JOB, every=timedelta(days=1),
                       offset=timedelta(hours=6), queue="default")
log = get_logger(__name__)


def install_periodic(target: TaskRegistry = registry) -> None:
    """Schedule the nightly plan (explicit, like the payment-plan sweep)."""
    target.add_periodic(NIGHTLY)


@task(PLAN_JOB, queue="default", max_attempts=3)
def plan_nightly(ctx: JobContext, job: ClaimedJob) -> None:
    now = ctx.clock()
    with ctx.db.system_session() as session:
        query = select(Organization.id).where(Organization.state == "active")
        if job.organization_id is not None:
            query = query.where(Organization.id == job.organization_id)
        organizations = list(session.scalars(query))
    for organization_id in organizations:
        with ctx.db.tenant_session(organization_id) as session:
            _plan, counts = plan_and_persist(session, organization_id=organization_id, at=now)
        # Counts only (keys like "created" would collide with LogRecord attributes).
        log.info("outreach.plan", organization_id=str(organization_id),
                 **{f"{name}_count": value for name, value in counts.items()})
