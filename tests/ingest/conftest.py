"""Fixtures of the ingest tests: a tenant that may accept PHI, and file builders."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from carecollect.db import Database
from tests.factories import Tenant, create_tenant

AGED_HEADER = [
    "Report Date", "Account No", "Guarantor ID", "Guarantor First Name", "Guarantor Last Name",
    "Guarantor DOB", "Address 1", "Address 2", "City", "State", "Zip", "Language",
    "Home Phone", "Cell Phone", "Other Phone", "Other Phone Type", "Email", "Patient ID",
    "Patient First Name", "Patient Last Name", "Patient DOB", "Sex", "Relationship",
    "Current", "31-60", "61-90", "91-120", "Over 120",
]


def aged_row(**overrides: str) -> dict[str, str]:
    row = {
        "Report Date": "03/31/2026", "Account No": "A-1001", "Guarantor ID": "G1",
        "Guarantor First Name": "Robin", "Guarantor Last Name": "Testperson",
        "Guarantor DOB": "05/17/1980", "Address 1": "12 Elm St", "Address 2": "",
        "City": "Boston", "State": "MA", "Zip": "02118", "Language": "EN",
        "Home Phone": "", "Cell Phone": "(617) 555-0134", "Other Phone": "",
        "Other Phone Type": "", "Email": "robin@example.com", "Patient ID": "P1",
        "Patient First Name": "Robin", "Patient Last Name": "Testperson",
        "Patient DOB": "05/17/1980", "Sex": "F", "Relationship": "SELF",
        "Current": "120.50", "31-60": "", "61-90": "30.00", "91-120": "", "Over 120": "",
    }
    row.update(overrides)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None,
              delimiter: str = ",", encoding: str = "utf-8") -> Path:
    header = header or AGED_HEADER
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


@pytest.fixture
def tenant(db: Database) -> Tenant:
    """An organization that operates its own deployment (no hosting BAA needed)."""
    return create_tenant(db, operated_by_covered_entity=True)
