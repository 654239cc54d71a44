"""The worker side of API imports: `ingest.import_run` runs one queued `ImportRun`
through the import pipeline and records its status, counts and row-level errors.

The sealed upload is written to a private temporary file (mode 0600, removed afterwards)
because the parsers read files; the run's `payload` is dropped once the run is final,
whether it succeeded or the file was refused. Errors are stored as the pipeline reports
them (row, field, reason; never a value) or as fixed codes.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from carecollect.audit import Actor
from carecollect.ingest.errors import BaaRequiredError, IngestError
from carecollect.ingest.import_run import (
    IMPORT_JOB,
    IMPORT_QUEUE,
    MAX_STORED_ERRORS,
    ImportRun,
    open_payload,
)
from carecollect.kit.jobs import ClaimedJob, JobContext, TerminalError, task
from carecollect.kit.logging import get_logger
from carecollect.tenant.models import Organization

log = get_logger(__name__)
_SUFFIX = {"csv": ".csv", "x12-835": ".835", "fhir": ".json"}


def _finish(ctx: JobContext, organization_id: uuid.UUID, run_id: uuid.UUID, **values: Any) -> None:
    with ctx.db.tenant_session(organization_id) as session:
        run = session.get(ImportRun, run_id)
        if run is None:
            return
        for name, value in values.items():
            setattr(run, name, value)
        run.payload = None
        run.finished_at = ctx.clock()
        run.updated_at = ctx.clock()


def _source(run: ImportRun, path: Path, zone: str) -> tuple[Any, str, Any]:
    """(source, system, units factory) for the run's format."""
    if run.format == "csv":
        from carecollect.ingest.csv_import import CsvSource
        from carecollect.ingest.mapping import load_mapping

        spec = load_mapping(run.mapping or "")
        source: Any = CsvSource(path, spec, practice_zone=zone)
        return source, spec.system, lambda db, keys: source.units()
    if run.format == "x12-835":
        from carecollect.ingest.x12 import SYSTEM as X12_SYSTEM
        from carecollect.ingest.x12 import X12Options, X12Source

        x12 = X12Source(path, X12Options(), practice_zone=zone)
        return x12, X12_SYSTEM, lambda db, keys: x12.units(db, keys)
    from carecollect.ingest.fhir import SYSTEM as FHIR_SYSTEM
    from carecollect.ingest.fhir import FhirSource

    fhir = FhirSource(path, practice_zone=zone)
    return fhir, FHIR_SYSTEM, lambda db, keys: fhir.units()


@task(IMPORT_JOB, queue=IMPORT_QUEUE, max_attempts=3)
def run_import_job(ctx: JobContext, job: ClaimedJob) -> None:
    from carecollect.ingest.errors import RowError
    from carecollect.ingest.pipeline import require_baa, run_import

    if job.organization_id is None or ctx.keys is None:
        raise TerminalError("no_organization")
    org_id = job.organization_id
    run_id = uuid.UUID(str(job.args["import_run_id"]))
    with ctx.db.system_session() as session:
        org = session.get(Organization, org_id)
        zone = org.timezone if org is not None else "UTC"
        keys = ctx.keys.for_organization(
            session, org_id, blind_index_bits=org.blind_index_bits if org is not None else None
        )
    with ctx.db.tenant_session(org_id) as session:
        run = session.get(ImportRun, run_id)
        if run is None:
            raise TerminalError("no_such_import_run")
        if run.status in ("succeeded", "failed"):
            return  # already final: a repeated job changes nothing
        content = open_payload(keys, run)
        run.status = "running"
        run.started_at = ctx.clock()
        run.updated_at = ctx.clock()
        actor = Actor(run.submitted_by_type, run.submitted_by)  # type: ignore[arg-type]
        session.flush()
        session.expunge(run)
    if content is None:
        _finish(ctx, org_id, run_id, status="failed", failure="the upload is no longer stored")
        return
    errors: list[dict[str, Any]] = []

    def on_error(error: RowError) -> None:
        if len(errors) < MAX_STORED_ERRORS:
            errors.append(error.as_dict())

    with tempfile.TemporaryDirectory(prefix="carecollect-import-") as folder:
        path = Path(folder) / f"upload{_SUFFIX.get(run.format, '.dat')}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(descriptor, "wb") as handle:
            handle.write(content)
        del content
        try:
            require_baa(ctx.db, org_id)
            source, system, units_of = _source(run, path, zone)
            source.prescan()
            units: Iterable[Any] = units_of(ctx.db, keys)
            summary = run_import(
                ctx.db,
                keys,
                units,
                format_name=run.format,
                system=system,
                actor=actor,
                on_error=on_error,
                check_baa=False,
            )
        except (IngestError, BaaRequiredError) as exc:
            _finish(ctx, org_id, run_id, status="failed", failure=exc.message[:300], errors=errors)
            return
        except Exception as exc:
            # Exception text may quote the file: store and log the type only.
            log.error("import_run.failed", import_run_id=str(run_id), error_type=type(exc).__name__)
            _finish(ctx, org_id, run_id, status="failed", failure="internal_error", errors=errors)
            raise TerminalError("import_failed") from None
    counts = summary.counts()
    unmatched = getattr(source, "unmatched", 0)
    if unmatched:
        counts["noted"] = {**counts.get("noted", {}), "claims_unmatched": unmatched}
    _finish(
        ctx,
        org_id,
        run_id,
        status="succeeded",
        counts=counts,
        errors=errors,
        pipeline_run_id=summary.run_id,
    )
