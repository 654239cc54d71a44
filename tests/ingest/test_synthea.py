"""Synthea CSV export: every patient's imported balance equals what the export's
transactions imply, to the cent.

How the expected figure is computed, independently of the importer (which replays every
transaction into ledger entries): for each claim line (CLAIMID, PROCEDURECODE, FROMDATE)
take its transactions in CHARGEID order; the responsible party at the end is the
TRANSFERTYPE of the line's last CHARGE or TRANSFERIN row, and what the line still owes is
the OUTSTANDING column of its last row (the CHARGE's AMOUNT when nothing followed it).
A patient owes the sum of what their lines owe when the patient ("p") is responsible;
lines a payer is responsible for owe the patient nothing. Amounts are read with Decimal.
"""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from carecollect.db import Database
from carecollect.ingest.errors import IngestError
from carecollect.ingest.synthea import SyntheaSource
from carecollect.ledger.models import Account, LedgerEntry
from carecollect.patient.models import Guarantor, Patient
from tests.factories import Tenant
from tests.ingest.helpers import count_rows, import_units

SYNTHEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea"
pytestmark = pytest.mark.skipif(not SYNTHEA.is_dir(), reason="shared Synthea data not present")


def expected_balances(directory: Path) -> dict[str, int]:
    lines: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
    with (directory / "claims_transactions.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            lines[(row["CLAIMID"], row["PROCEDURECODE"], row["FROMDATE"])].append(row)
    owed: dict[str, Decimal] = defaultdict(Decimal)
    with (directory / "patients.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            owed[row["Id"]] = Decimal(0)
    for rows in lines.values():
        rows.sort(key=lambda r: int(r["CHARGEID"]))
        responsible = [r["TRANSFERTYPE"] for r in rows if r["TYPE"] in ("CHARGE", "TRANSFERIN")][-1]
        last = rows[-1]
        outstanding = Decimal(last["OUTSTANDING"] or last["AMOUNT"] or "0")
        if responsible == "p":
            owed[last["PATIENTID"]] += outstanding
    return {patient: int(amount * 100) for patient, amount in owed.items()}


def imported_balances(db: Database, tenant: Tenant) -> dict[str, int]:
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as session:
        sums = dict(session.execute(
            select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_cents))
            .group_by(LedgerEntry.account_id)).all())
        return {cipher.open_row(a, "account_number") or "": int(sums.get(a.id, 0))
                for a in session.scalars(select(Account))}


def import_synthea(db: Database, tenant: Tenant, directory: Path) -> object:
    source = SyntheaSource(directory, practice_zone="America/New_York")
    source.prescan()
    return import_units(db, tenant, source.units(), system="synthea", format_name="synthea")


def test_every_patient_balance_reconciles_to_the_cent(db: Database, tenant: Tenant) -> None:
    summary = import_synthea(db, tenant, SYNTHEA)
    expected = expected_balances(SYNTHEA)
    assert len(expected) == 27
    assert imported_balances(db, tenant) == expected
    # This export's patients have paid everything they were billed: all balances are 0,
    # while the ledger holds every patient charge and payment (totals read from the file).
    assert set(expected.values()) == {0}
    assert summary.rows_rejected == 0  # type: ignore[attr-defined]
    assert dict(summary.created) == {  # type: ignore[attr-defined]
        "account": 27, "contact_point": 27, "guarantor": 27, "ledger_entry": 3318, "patient": 27}
    with db.tenant_session(tenant.id) as session:
        by_kind = dict(session.execute(
            select(LedgerEntry.kind, func.sum(LedgerEntry.amount_cents))
            .group_by(LedgerEntry.kind)).all())
        minors = session.scalar(select(func.count()).where(Patient.minor.is_(True)))
        zones = set(session.scalars(select(Guarantor.mailing_tz)))
    assert by_kind["charge"] == -(by_kind["patient_payment"] + by_kind.get("adjustment", 0))
    assert by_kind["charge"] == expected_patient_charges(SYNTHEA)
    assert minors == expected_minors(SYNTHEA)
    assert zones == {"America/New_York", None}  # 12 patients have no ZIP in the export


def expected_minors(directory: Path) -> int:
    today = date.today()  # noqa: DTZ011 - ages in whole years
    with (directory / "patients.csv").open(newline="") as handle:
        births = [date.fromisoformat(r["BIRTHDATE"]) for r in csv.DictReader(handle)]
    return sum(
        1 for b in births
        if today.year - b.year - ((today.month, today.day) < (b.month, b.day)) < 18
    )


def expected_patient_charges(directory: Path) -> int:
    """What was billed to patients: copays, charges billed to them, transfers to them."""
    total = Decimal(0)
    with (directory / "claims_transactions.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["TYPE"] == "PAYMENT" and row["METHOD"] == "COPAY":
                total += Decimal(row["PAYMENTS"])
            elif row["TYPE"] in ("CHARGE", "TRANSFERIN") and row["TRANSFERTYPE"] == "p":
                total += Decimal(row["TRANSFERS"] or row["AMOUNT"])
    return int(total * 100)


def _unpaid_copy(tmp_path: Path, drop: int) -> Path:
    """The export with the patient's final payment removed from the first `drop` lines
    that end in one: those lines are left owing."""
    target = tmp_path / "synthea"
    shutil.copytree(SYNTHEA, target)
    with (SYNTHEA / "claims_transactions.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        rows = list(reader)
    kept, dropped = [], 0
    for index, row in enumerate(rows):
        previous = rows[index - 1] if index else None
        if (dropped < drop and row["TYPE"] == "PAYMENT" and previous is not None
                and previous["TYPE"] == "TRANSFERIN" and previous["TRANSFERTYPE"] == "p"
                and previous["CLAIMID"] == row["CLAIMID"]):
            dropped += 1
            continue
        kept.append(row)
    with (target / "claims_transactions.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    return target


def test_unpaid_lines_reconcile_to_the_cent(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    directory = _unpaid_copy(tmp_path, drop=40)
    import_synthea(db, tenant, directory)
    expected = expected_balances(directory)
    assert sum(expected.values()) == 13026044
    assert sum(1 for v in expected.values() if v) == 5
    assert imported_balances(db, tenant) == expected


def _changed_copy(tmp_path: Path) -> Path:
    """The export with the first patient payment one dollar short (and its OUTSTANDING
    saying so), and the first patient renamed."""
    target = tmp_path / "changed"
    shutil.copytree(SYNTHEA, target)
    path = target / "claims_transactions.csv"
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        rows = list(reader)
    payment = next(i for i, r in enumerate(rows) if r["TYPE"] == "PAYMENT" and i
                   and rows[i - 1]["TYPE"] == "TRANSFERIN" and rows[i - 1]["TRANSFERTYPE"] == "p")
    paid = Decimal(rows[payment]["PAYMENTS"])
    rows[payment]["PAYMENTS"] = str(paid - 1)
    rows[payment]["OUTSTANDING"] = "1.00"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    people = (target / "patients.csv").read_text().splitlines()
    people[1] = people[1].replace("Mosciski958", "Renamed")
    (target / "patients.csv").write_text("\n".join(people) + "\n")
    return target


def test_reimport_and_changed_export(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    import_synthea(db, tenant, SYNTHEA)
    before = count_rows(db, tenant)
    again = import_synthea(db, tenant, SYNTHEA)
    assert (dict(again.created), dict(again.updated)) == ({}, {})  # type: ignore[attr-defined]
    assert count_rows(db, tenant) == before
    directory = _changed_copy(tmp_path)
    changed = import_synthea(db, tenant, directory)
    assert dict(changed.created) == {}  # type: ignore[attr-defined]
    assert dict(changed.updated) == {  # type: ignore[attr-defined]
        "guarantor": 1, "ledger_entry": 1, "patient": 1}
    assert changed.corrections == 1  # type: ignore[attr-defined]
    expected = expected_balances(directory)
    assert sorted(v for v in expected.values() if v) == [100]
    assert imported_balances(db, tenant) == expected
    # The changed export again: nothing more changes.
    third = import_synthea(db, tenant, directory)
    assert (dict(third.created), dict(third.updated)) == ({}, {})  # type: ignore[attr-defined]
    assert imported_balances(db, tenant) == expected


def test_directory_that_is_not_a_synthea_export(
    db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    target = tmp_path / "export"
    shutil.copytree(SYNTHEA, target)
    (target / "payers.csv").unlink()
    with pytest.raises(IngestError) as caught:
        import_synthea(db, tenant, target)
    assert caught.value.message == "export is not a Synthea CSV export: payers.csv is missing"
    (target / "payers.csv").write_text("Id;NAME\n1;x\n")
    with pytest.raises(IngestError) as caught:
        import_synthea(db, tenant, target)
    assert caught.value.message == "payers.csv is not a Synthea export file: it lacks Id, NAME"
    assert count_rows(db, tenant)["guarantor"] == 0
