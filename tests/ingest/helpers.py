"""Readers of what an import stored (decrypting through the tenant's keys)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import func, select

from carecollect.db import Database
from carecollect.ingest.csv_import import CsvSource
from carecollect.ingest.errors import RowError
from carecollect.ingest.mapping import load_mapping
from carecollect.ingest.pipeline import ImportSummary, run_import
from carecollect.ingest.records import Unit
from carecollect.ledger.models import Account, LedgerEntry
from carecollect.patient.models import ContactPoint, Guarantor, Patient
from tests.factories import TEST_ACTOR, Tenant


def import_units(
    db: Database, tenant: Tenant, units: Iterable[Unit | RowError], *, system: str,
    format_name: str = "test", **kwargs: object,
) -> ImportSummary:
    return run_import(db, tenant.keys, units, format_name=format_name, system=system,
                      actor=TEST_ACTOR, **kwargs)  # type: ignore[arg-type]


def import_csv(
    db: Database, tenant: Tenant, path: Path, mapping: str = "generic-aged-receivables",
    **kwargs: object,
) -> ImportSummary:
    spec = load_mapping(mapping)
    source = CsvSource(path, spec, practice_zone="America/New_York")
    source.prescan()
    return import_units(db, tenant, source.units(), system=spec.system, format_name="csv",
                        **kwargs)


def balances_by_account_number(db: Database, tenant: Tenant) -> dict[str, int]:
    """Account number (decrypted) -> balance in cents."""
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as session:
        accounts = session.scalars(select(Account)).all()
        sums = dict(
            session.execute(
                select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_cents)).group_by(
                    LedgerEntry.account_id
                )
            ).all()
        )
        return {
            cipher.open_row(a, "account_number") or "": int(sums.get(a.id, 0)) for a in accounts
        }


def count_rows(db: Database, tenant: Tenant) -> dict[str, int]:
    with db.tenant_session(tenant.id) as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model))
                                     or 0)
            for model in (Guarantor, Patient, ContactPoint, Account, LedgerEntry)
        }


def contact_values(
    db: Database, tenant: Tenant, guarantor_id: uuid.UUID
) -> list[tuple[str, str, bool]]:
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as session:
        points = session.scalars(
            select(ContactPoint).where(ContactPoint.guarantor_id == guarantor_id)
        ).all()
        return sorted((p.kind, cipher.open_row(p, "value") or "", p.active) for p in points)
