"""The rollup refresh job: brings every active organization's rollup up to date.

Registered when the insights service is imported (the insights task module imports it).
To schedule it, the task module's ``install_periodic`` adds ``ROLLUP_PERIODIC``; without
the schedule every report is still exact, only slower (computed live from the ledger).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from carecollect.insight.rollup import refresh
from carecollect.kit.jobs import ClaimedJob, JobContext, PeriodicSpec, task
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.kit.logging import get_logger
from carecollect.tenant.models import Organization

ROLLUP_JOB = "insight.rollup_refresh"
ROLLUP_PERIODIC = PeriodicSpec(name="insight_rollup_refresh", kind=ROLLUP_JOB,
                               every=timedelta(minutes=2), queue="default")
log = get_logger(__name__)


def install_rollup_periodic(target: TaskRegistry) -> None:
    target.add_periodic(ROLLUP_PERIODIC)


@task(ROLLUP_JOB, queue="default", max_attempts=3)
def rollup_refresh(ctx: JobContext, job: ClaimedJob) -> None:
    """One transaction per organization (a failure leaves the others refreshed)."""
    now = ctx.clock()
    with ctx.db.system_session() as session:
        query = select(Organization.id).where(Organization.state == "active")
        if job.organization_id is not None:
            query = query.where(Organization.id == job.organization_id)
        organizations: list[uuid.UUID] = list(session.scalars(query))
    for organization_id in organizations:
        with ctx.db.tenant_session(organization_id) as session:
            result = refresh(session, organization_id=organization_id, now=now)
        # Counts and ids only: nothing here is PHI.
        log.info("insight.rollup_refresh", organization_id=str(organization_id),
                 mode=result.mode, account_count=result.accounts, cell_count=result.cells)
