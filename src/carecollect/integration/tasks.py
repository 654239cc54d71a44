"""Job handlers of the integration domain (outbound webhook delivery).

`integration.deliver_webhook` makes one attempt per run. A failed attempt snoozes the job
for the delivery's own exponential backoff (`service.retry_delay`) instead of using the
queue's generic retry schedule, so the attempt count and the next attempt live on the
delivery row; after `MAX_DELIVERY_ATTEMPTS` the delivery is `failed` and the job ends.
Unexpected errors (database trouble) fall back to the queue's retries.

Resources (optional): `webhook_http_client` (an `httpx.Client`, for connection reuse)
and `webhook_timeout_seconds` (default 10).
"""

from __future__ import annotations

import uuid

import httpx

from carecollect.integration.service import (
    DEFAULT_TIMEOUT_SECONDS,
    DELIVER_JOB,
    DELIVER_QUEUE,
    webhook_service,
)
from carecollect.kit.jobs import ClaimedJob, JobContext, Snooze, TerminalError, task
from carecollect.tenant.models import Organization


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
