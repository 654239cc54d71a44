"""Imports submitted through the REST API: an `ImportRun` row per upload, processed by
the worker (`ingest.import_run` job, `import_run_tasks.py`) through the same pipeline
as `carecollect import` (parse -> validate -> normalize -> seal -> write per batch).

The uploaded file is PHI: it is kept sealed (`payload`) only until the worker has run
it, then dropped, so the table keeps counts, row-level errors (row number, field, reason;
reasons never quote a value, `ingest/errors.py`) and hashes only. The BAA gate
(`pipeline.require_baa`) is checked when the upload is accepted and again by the worker.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Uuid
from sqlalchemy.orm import Mapped, Session, mapped_column

from carecollect.audit import Actor, Subject, record
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs.queue import enqueue
from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime

IMPORT_FORMATS = ("csv", "x12-835", "fhir")
IMPORT_STATES = ("queued", "running", "succeeded", "failed")
IMPORT_JOB = "ingest.import_run"
IMPORT_QUEUE = "default"
MAX_IMPORT_BYTES = 8 * 1024 * 1024  # one API upload; bigger files go through the CLI
MAX_STORED_ERRORS = 100


class ImportRun(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "import_run"
    __table_args__ = (Index("ix_import_run_org_status", "organization_id", "status"),)

    format: Mapped[str] = mapped_column(String(16))  # csv | x12-835 | fhir
    mapping: Mapped[str | None] = mapped_column(String(64), nullable=True)  # CSV mapping name
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # The upload, sealed, until the worker has run it (then None).
    payload: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    payload_bytes: Mapped[int] = mapped_column(BigInteger)
    submitted_by_type: Mapped[str] = mapped_column(String(16))
    submitted_by: Mapped[str] = mapped_column(String(80))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    pipeline_run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    # Counts of `ImportSummary.counts()` (never values).
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The first row-level errors: [{"row": 3, "field": "date_of_birth", "reason": ...}].
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Why the whole file was refused (IngestError messages name a field or a line, never
    # a value) or a fixed code.
    failure: Mapped[str | None] = mapped_column(String(300), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


def submit_import(
    session: Session,
    *,
    keys: OrganizationKeys,
    actor: Actor,
    format_name: str,
    mapping: str | None,
    content: bytes,
    now: datetime,
) -> ImportRun:
    """Store the upload sealed and queue the job that imports it, in the caller's
    transaction (the job exists exactly when the run does). Recorded as `import.queue`
    with the size and hash only."""
    if format_name not in IMPORT_FORMATS:
        raise ValueError("unknown import format")
    run_id = uuid7()
    digest = hashlib.sha256(content).hexdigest()
    run = ImportRun(
        id=run_id,
        organization_id=keys.organization_id,
        format=format_name,
        mapping=mapping,
        status="queued",
        payload=keys.cipher().seal(
            "import_run", "payload", run_id, base64.b64encode(content).decode("ascii")
        ),
        payload_sha256=digest,
        payload_bytes=len(content),
        submitted_by_type=actor.type,
        submitted_by=actor.id[:80],
        counts={},
        errors=[],
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    run.job_id = enqueue(
        session,
        IMPORT_JOB,
        {"import_run_id": str(run_id)},
        queue=IMPORT_QUEUE,
        organization_id=keys.organization_id,
        max_attempts=3,
        unique_key=f"import_run:{run_id}",
    )
    session.flush()
    record(
        session,
        actor=actor,
        action="import.queue",
        subject=Subject("import", run_id, organization_id=keys.organization_id),
        details={"format": format_name, "bytes": len(content), "sha256": digest},
    )
    return run


def open_payload(keys: OrganizationKeys, run: ImportRun) -> bytes | None:
    """The upload's bytes (None once the worker has dropped it)."""
    text = keys.cipher().open_row(run, "payload")
    return None if text is None else base64.b64decode(text)
