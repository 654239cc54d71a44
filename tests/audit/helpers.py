"""Builders shared by the audit tests."""

from __future__ import annotations

import uuid
from pathlib import Path

from carecollect.audit import Actor, Subject, record
from carecollect.audit.integrator import IntegrationResult, integrate
from carecollect.audit.keys import default_verifier, load_signer
from carecollect.audit.verification import verify_database
from carecollect.db import Database
from carecollect.kit.audit.verifier import VerifyReport

ORG = uuid.UUID("0190f0e0-0000-7000-8000-000000000001")


def record_events(db: Database, count: int, *, start: int = 0) -> None:
    with db.system_session() as session:
        for i in range(start, start + count):
            record(
                session,
                actor=Actor.staff(uuid.UUID(int=1000 + i % 3)),
                action="patient.read" if i % 2 else "patient.update",
                subject=Subject("patient", uuid.UUID(int=i % 5), organization_id=ORG),
                details={"fields": ["last_name"], "count": i},
            )


def key_path(data_dir: Path) -> Path:
    return data_dir / "keys" / "audit-signing.key"


def run_integrator(db: Database, data_dir: Path, **kwargs: int) -> IntegrationResult:
    return integrate(
        db.engine,
        signer=load_signer(key_path(data_dir)),
        checkpoint_dir=data_dir / "checkpoints",
        **kwargs,  # type: ignore[arg-type]
    )


def verify(db: Database, data_dir: Path, *, workers: int | None = None) -> VerifyReport:
    return verify_database(
        db.engine,
        verifier=default_verifier(key_path(data_dir)),
        checkpoint_dir=data_dir / "checkpoints",
        workers=workers,
    )
