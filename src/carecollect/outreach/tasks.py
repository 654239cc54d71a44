"""Outreach job handlers and periodic jobs, registered with the worker's task registry."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from carecollect.kit.jobs import ClaimedJob, JobContext, PeriodicSpec, registry
from carecollect.kit.jobs.queue import enqueue_many
from carecollect.outreach import dispatch
from carecollect.outreach.outbox import OutreachAttempt

registry.register(dispatch.DELIVER, dispatch.deliver, queue=dispatch.QUEUE, max_attempts=8,
                  batch_handler=dispatch.deliver_batch)
registry.register(dispatch.RECONCILE, dispatch.reconcile, queue=dispatch.QUEUE, max_attempts=3)


def reconcile_sweep(ctx: JobContext, job: ClaimedJob) -> None:
    """Periodic safety net: every `unknown` attempt has a pending reconcile job."""
    with ctx.db.system_session() as session:
        rows = session.execute(select(OutreachAttempt.id, OutreachAttempt.organization_id,
                                      OutreachAttempt.reconcile_count)
                               .where(OutreachAttempt.state == "unknown")).all()
        enqueue_many(session, [
            {"kind": dispatch.RECONCILE, "args": {"attempt_id": str(a)}, "queue": dispatch.QUEUE,
             "organization_id": org, "max_attempts": 3,
             "unique_key": f"reconcile:{a}:{n}"} for a, org, n in rows])


registry.register("outreach.reconcile_sweep", reconcile_sweep, queue=dispatch.QUEUE,
                  max_attempts=3)
registry.add_periodic(PeriodicSpec("outreach.reconcile_sweep", "outreach.reconcile_sweep",
                                   every=timedelta(minutes=15), queue=dispatch.QUEUE))
