"""The audit integrator as a periodic job of the worker.

`audit.integrate` runs every minute on whichever worker claims it (on PostgreSQL the
integrator itself also takes `pg_try_advisory_lock`, so two never run at once). Its
resources — the Ed25519 signer and the checkpoint directory — come from the worker's
`resources["audit"]`, built from settings by `carecollect.worker_resources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from carecollect.audit.integrator import integrate
from carecollect.kit.audit.checkpoint import Signer
from carecollect.kit.jobs import ClaimedJob, JobContext, PeriodicSpec, registry, task
from carecollect.kit.jobs.registry import TaskRegistry

INTEGRATE_JOB = "audit.integrate"
EVERY_MINUTE = PeriodicSpec(name="audit_integrate", kind=INTEGRATE_JOB,
                            every=timedelta(minutes=1), queue="default")


@dataclass(frozen=True)
class AuditResources:
    signer: Signer
    checkpoint_dir: Path


def install_periodic(target: TaskRegistry = registry) -> None:
    target.add_periodic(EVERY_MINUTE)


@task(INTEGRATE_JOB, queue="default", max_attempts=5)
def integrate_pending(ctx: JobContext, job: ClaimedJob) -> None:
    resources = ctx.resources.get("audit")
    if not isinstance(resources, AuditResources):
        # Fail closed and visibly: a worker without the signing key cannot sign.
        raise RuntimeError("the worker has no audit signing key configured")
    integrate(ctx.db.engine, signer=resources.signer, checkpoint_dir=resources.checkpoint_dir)
