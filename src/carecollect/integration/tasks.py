"""Job handlers of the integration domain (outbound webhook delivery).

`integration.deliver_webhook` makes one attempt per run. A failed attempt snoozes the job
for the delivery's own exponential backoff (`service.retry_delay`) instead of using the
queue's generic retry schedule, so the attempt count and the next attempt live on the
delivery row; after `MAX_DELIVERY_ATTEMPTS` the delivery is `failed` and the job ends.
Unexpected errors (database trouble) fall back to the queue's retries.

`integration.purge_events` (daily at 07:00 UTC once `install_periodic()` has run): for
every organization (or the job's own), delete the settled events past retention
(`service.purge_events`; `retention_days` in the job's args overrides the 90 days).

Resources (optional): `webhook_http_client` (an `httpx.Client`, for connection reuse)
and `webhook_timeout_seconds` (default 10).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select

from carecollect.audit import Actor
from carecollect.integration.service import (
    DEFAULT_TIMEOUT_SECONDS,
    DELIVER_JOB,
    DELIVER_QUEUE,
    EVENT_RETENTION,
    purge_events,
    webhook_service,
)
from carecollect.kit.jobs import (
    ClaimedJob,
    JobContext,
    PeriodicSpec,
    Snooze,
    TerminalError,
    registry,
    task,
)
from carecollect.kit.jobs.registry import TaskRegistry
from carecollect.tenant.models import Organization

PURGE_JOB = "integration.purge_events"
MAX_RETENTION_DAYS = 3_650
DAILY_PURGE = PeriodicSpec(name="integration_daily_purge", kind=PURGE_JOB,
                           every=timedelta(days=1), offset=timedelta(hours=7),
                           queue=DELIVER_QUEUE)


def install_periodic(target: TaskRegistry = registry) -> None:
    """Schedule the daily purge (explicit, like the other periodic jobs)."""
    target.add_periodic(DAILY_PURGE)


@task(DELIVER_JOB, queue=DELIVER_QUEUE, max_attempts=5)
def deliver_webhook(ctx: JobContext, job: ClaimedJob) -> None:
    if job.organization_id is None or ctx.keys is None:
        raise TerminalError("no_organization")
    with ctx.db.system_session() as session:
        org = session.get(Organization, job.organization_id)
        if org is None:
            raise TerminalError("no_such_organization")
        keys = ctx.keys.for_organization(
            session, job.organization_id, blind_index_bits=org.blind_index_bits
        )
    client = ctx.resources.get("webhook_http_client")
    timeout = float(ctx.resources.get("webhook_timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
    result = webhook_service.deliver(
        ctx.db,
        keys=keys,
        delivery_id=uuid.UUID(str(job.args["delivery_id"])),
        now=ctx.clock(),
        client=client if isinstance(client, httpx.Client) else None,
        timeout=timeout,
    )
    if result.retry_in is not None:
        raise Snooze(result.retry_in)


@task(PURGE_JOB, queue=DELIVER_QUEUE, max_attempts=3)
def purge(ctx: JobContext, job: ClaimedJob) -> None:
    days = job.args.get("retention_days")
    if days is None:
        retention = EVENT_RETENTION
    elif isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= MAX_RETENTION_DAYS:
        retention = timedelta(days=days)
    else:
        raise TerminalError("bad_retention_days")  # a whole number of days, 1 to 3,650
    before = ctx.clock() - retention
    with ctx.db.system_session() as session:
        query = select(Organization.id)
        if job.organization_id is not None:
            query = query.where(Organization.id == job.organization_id)
        organizations = list(session.scalars(query))
    for organization_id in organizations:
        with ctx.db.tenant_session(organization_id) as session:
            purge_events(session, organization_id=organization_id, before=before,
                         actor=Actor.system(PURGE_JOB))
