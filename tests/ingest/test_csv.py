"""CSV import through a mapping: values, zones, idempotency, changed files, bad rows,
malformed files and the BAA gate."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from carecollect.db import Database
from carecollect.ingest.errors import BaaRequiredError, IngestError, RowError
from carecollect.ingest.mapping import builtin_mappings, load_mapping
from carecollect.ledger.models import LedgerEntry
from carecollect.ledger.service import ledger_service
from carecollect.patient.models import ContactPoint, Guarantor, Patient
from carecollect.tenant.models import BusinessAssociate
from tests.factories import Tenant, create_tenant
from tests.ingest.conftest import AGED_HEADER, aged_row, write_csv
from tests.ingest.helpers import (
    balances_by_account_number,
    contact_values,
    count_rows,
    import_csv,
)

KIM = {"Account No": "A-1002", "Patient ID": "P2", "Patient First Name": "Kim",
       "Patient DOB": "01/02/2015", "Sex": "M", "Relationship": "CHILD", "Current": "10.00",
       "61-90": ""}
LEE = {"Account No": "B-2001", "Guarantor ID": "G2", "Guarantor First Name": "Lee",
       "Guarantor Last Name": "Samplename", "Guarantor DOB": "1975-12-01",
       "Address 1": "5 Main St", "City": "New York", "State": "NY", "Zip": "10001-1234",
       "Cell Phone": "", "Other Phone": "212-555-0188", "Other Phone Type": "C",
       "Email": "LEE@Example.org", "Language": "Spanish", "Patient ID": "P3",
       "Patient First Name": "Lee", "Patient Last Name": "Samplename",
       "Patient DOB": "1975-12-01", "Sex": "F", "Current": "", "61-90": "",
       "Over 120": "1,234.56"}


def test_shipped_mappings_load() -> None:
    assert builtin_mappings() == [
        "generic-aged-receivables", "generic-ledger-lines", "synthea-patients"
    ]
    for name in builtin_mappings():
        assert load_mapping(name).system


def test_aged_receivables_import_stores_normalized_values(
    db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "ar.csv", [aged_row(), aged_row(**KIM), aged_row(**LEE)])
    summary = import_csv(db, tenant, path)
    assert summary.counts() == {
        "rows_read": 3, "rows_imported": 3, "rows_rejected": 0, "batches": 1,
        "created": {"account": 3, "contact_point": 6, "guarantor": 2, "ledger_entry": 4,
                    "patient": 3},
        "updated": {}, "unchanged": {}, "corrections": 0, "noted": {},
    }
    assert balances_by_account_number(db, tenant) == {
        "A-1001": 15050, "A-1002": 1000, "B-2001": 123456
    }
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as session:
        people = {cipher.open_row(g, "first_name"): g for g in session.scalars(select(Guarantor))}
        robin, lee = people["Robin"], people["Lee"]
        assert (robin.state, robin.mailing_tz, robin.city_is_nyc, robin.preferred_language) == (
            "MA", "America/New_York", False, "en")
        assert (lee.state, lee.mailing_tz, lee.city_is_nyc, lee.preferred_language) == (
            "NY", "America/New_York", True, "es")
        assert cipher.open_row(lee, "date_of_birth") == "1975-12-01"
        points = {(p.kind, cipher.open_row(p, "value")): p
                  for p in session.scalars(select(ContactPoint))}
        phone = points[("phone", "+16175550134")]
        assert (phone.line_type, phone.area_code_tzs) == ("wireless", ["America/New_York"])
        assert points[("phone", "+12125550188")].line_type == "wireless"
        assert ("email", "lee@example.org") in points
        postal = next(p for (kind, _), p in points.items() if kind == "postal"
                      and p.guarantor_id == lee.id)
        assert json.loads(cipher.open_row(postal, "value") or "") == {
            "city": "New York", "line1": "5 Main St", "line2": None, "state": "NY",
            "zip": "10001"}
        assert cipher.open_row(postal, "postal_code") == "10001"
        kim = next(p for p in session.scalars(select(Patient))
                   if cipher.open_row(p, "first_name") == "Kim")
        assert (kim.relationship_to_guarantor, kim.minor, kim.guarantor_id) == (
            "child", True, robin.id)
        assert cipher.open_row(kim, "sex") == "male"
        buckets = ledger_service.aging(session, as_of=datetime(2026, 3, 31, 23, tzinfo=UTC))
    assert buckets == {"0-30": 13050, "31-60": 0, "61-90": 3000, "91-120": 0, "120+": 123456}


def test_reimport_changes_nothing(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ar.csv", [aged_row(), aged_row(**KIM), aged_row(**LEE)])
    import_csv(db, tenant, path)
    before = count_rows(db, tenant)
    again = import_csv(db, tenant, path)
    assert (dict(again.created), dict(again.updated), again.corrections) == ({}, {}, 0)
    assert dict(again.unchanged) == {"account": 3, "guarantor": 2, "ledger_entry": 4,
                                     "patient": 3}
    assert count_rows(db, tenant) == before
    assert balances_by_account_number(db, tenant) == {
        "A-1001": 15050, "A-1002": 1000, "B-2001": 123456}


def test_changed_file_updates_what_changed(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    import_csv(db, tenant, write_csv(tmp_path / "v1.csv", [aged_row(), aged_row(**KIM)]))
    changed = {"Cell Phone": "617-555-0199", "Current": "100.50",
               "Guarantor Last Name": "Newname", "Patient Last Name": "Newname"}
    path = write_csv(tmp_path / "v2.csv", [aged_row(**changed), aged_row(**KIM, **{
        k: v for k, v in changed.items() if k != "Current"})])
    summary = import_csv(db, tenant, path)
    assert dict(summary.created) == {"contact_point": 1}
    # The correction is an appended entry, counted as an update of the original line.
    assert dict(summary.updated) == {"contact_point": 1, "guarantor": 1, "ledger_entry": 1,
                                     "patient": 2}
    assert summary.corrections == 1
    assert balances_by_account_number(db, tenant) == {"A-1001": 13050, "A-1002": 1000}
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as session:
        robin = session.scalars(select(Guarantor)).one()
        assert cipher.open_row(robin, "last_name") == "Newname"
        correction = session.scalars(
            select(LedgerEntry).where(LedgerEntry.applies_to_entry_id.is_not(None))).one()
        assert (correction.kind, correction.amount_cents) == ("adjustment", -2000)
        robin_id = robin.id
    assert [v for v in contact_values(db, tenant, robin_id) if v[0] == "phone"] == [
        ("phone", "+16175550134", False), ("phone", "+16175550199", True)]
    # The changed file again: nothing more changes.
    again = import_csv(db, tenant, path)
    assert (dict(again.created), dict(again.updated), again.corrections) == ({}, {}, 0)
    assert balances_by_account_number(db, tenant) == {"A-1001": 13050, "A-1002": 1000}


def test_bad_rows_are_reported_and_nothing_of_them_is_stored(
    db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    rows = [
        aged_row(),
        aged_row(**{**LEE, "Email": "not-an-address"}),
        aged_row(**{**KIM, "Current": "-5.00"}),
        aged_row(**{**KIM, "Account No": "A-1003", "Patient ID": "P4", "Current": "12.3.4"}),
        aged_row(**{**KIM, "Account No": "A-1005", "Patient ID": "P5", "Report Date": "31/03"}),
        aged_row(**{**KIM, "Account No": "A-1004", "Patient ID": "P6", "Zip": "1234"}),
    ]
    seen: list[RowError] = []
    summary = import_csv(db, tenant, write_csv(tmp_path / "bad.csv", rows), on_error=seen.append)
    assert [e.as_dict() for e in seen] == [
        {"row": 2, "field": "email", "reason": "is not a valid e-mail address"},
        {"row": 3, "field": "Current", "reason": "amount is negative"},
        {"row": 4, "field": "Current", "reason": "is not an amount of money"},
        {"row": 5, "field": "as_of", "reason": "is not a date in the mapped format"},
        {"row": 6, "field": "zip", "reason": "is not a 5- or 9-digit ZIP code"},
    ]
    assert (summary.rows_imported, summary.rows_rejected) == (1, 5)
    assert count_rows(db, tenant) == {"guarantor": 1, "patient": 1, "contact_point": 3,
                                      "account": 1, "ledger_entry": 2}
    assert balances_by_account_number(db, tenant) == {"A-1001": 15050}


def test_short_row_is_a_row_error(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ar.csv", [aged_row(), aged_row(**KIM)])
    content = path.read_text().rstrip("\n")
    path.write_text(content[: content.rindex(",")] + "\n")  # last row lost its last field
    seen: list[RowError] = []
    summary = import_csv(db, tenant, path, on_error=seen.append)
    assert [e.as_dict() for e in seen] == [
        {"row": 2, "field": "*", "reason": "has 27 fields, the header 28"}]
    assert summary.rows_imported == 1


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "ar.csv: malformed CSV at line 3 (truncated file, stray quote or wrong "
                      "delimiter?)"),
        ("delimiter", "ar.csv: the header has one column: wrong delimiter? (the mapping says "
                      "',')"),
        ("encoding", "ar.csv is not valid utf-8 text (line 3)"),
        ("huge", "ar.csv: a field is too large at line 3 (truncated file, stray quote or wrong "
                 "delimiter?)"),
        ("header", "ar.csv: the header lacks mapped columns: Account No"),
        ("empty", "ar.csv is empty"),
    ],
)
def test_malformed_file_stops_with_one_clear_error_and_loses_nothing(
    db: Database, tenant: Tenant, tmp_path: Path, damage: str, message: str
) -> None:
    import_csv(db, tenant, write_csv(tmp_path / "good.csv", [aged_row(**LEE)]))
    before = count_rows(db, tenant)
    path = tmp_path / "ar.csv"
    if damage == "truncated":
        write_csv(path, [aged_row(), aged_row(**{**KIM, "Address 1": 'Apt "B", 3rd floor'})])
        data = path.read_bytes()
        path.write_bytes(data[: data.index(b"Apt") + 6])  # cut inside a quoted field
    elif damage == "delimiter":
        write_csv(path, [aged_row()], delimiter=";")
    elif damage == "encoding":
        write_csv(path, [aged_row(), aged_row(**{**KIM, "City": "Peñuelas"})], encoding="latin-1")
    elif damage == "huge":
        write_csv(path, [aged_row(), aged_row(**{**KIM, "Address 2": "x" * 200_000})])
    elif damage == "header":
        write_csv(path, [{k: v for k, v in aged_row().items() if k != "Account No"}],
                  header=[h for h in AGED_HEADER if h != "Account No"])
    else:
        path.write_bytes(b"")
    with pytest.raises(IngestError) as caught:
        import_csv(db, tenant, path)
    assert caught.value.message == message
    assert caught.value.exit_code == 2
    assert count_rows(db, tenant) == before


def test_ledger_lines_mapping(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    header = ["line_id", "type", "amount", "posted", "service_date", "cpt", "description",
              "account", "guarantor_id", "guarantor_first", "guarantor_last", "guarantor_dob",
              "street", "city", "state", "zip", "phone", "phone_type", "email", "patient_id",
              "patient_first", "patient_last", "patient_dob", "relationship"]
    person = {"account": "77-100", "guarantor_id": "900", "guarantor_first": "Ana",
              "guarantor_last": "Sampleton", "guarantor_dob": "1990-02-03", "street": "1 A St",
              "city": "Miami", "state": "FL", "zip": "33130", "phone": "3055550100",
              "phone_type": "HOME", "email": "", "patient_id": "900", "patient_first": "Ana",
              "patient_last": "Sampleton", "patient_dob": "1990-02-03",
              "relationship": "SELF"}
    lines = [
        {"line_id": "T1", "type": "CHG", "amount": "250.00", "posted": "2026-01-05",
         "service_date": "2026-01-02", "cpt": "D0120", "description": "Periodic exam"},
        {"line_id": "T2", "type": "INS", "amount": "150.00", "posted": "2026-02-01"},
        {"line_id": "T3", "type": "PMT", "amount": "20.00", "posted": "2026-02-10"},
        {"line_id": "T4", "type": "XYZ", "amount": "1.00", "posted": "2026-02-11"},
    ]
    rows = [dict.fromkeys(header, "") | person | line for line in lines]
    seen: list[RowError] = []
    summary = import_csv(db, tenant, write_csv(tmp_path / "l.csv", rows, header=header),
                         mapping="generic-ledger-lines", on_error=seen.append)
    assert [e.as_dict() for e in seen] == [
        {"row": 4, "field": "kind", "reason": "code is not in the mapping's [values.kind] table"}]
    assert dict(summary.created) == {"account": 1, "contact_point": 2, "guarantor": 1,
                                     "ledger_entry": 3, "patient": 1}
    assert balances_by_account_number(db, tenant) == {"77-100": 8000}
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as session:
        charge = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "charge")).one()
        assert cipher.open_row(charge, "procedure_codes") == "D0120"
        assert cipher.open_row(charge, "service_date") == "2026-01-02"
        phone = session.scalars(select(ContactPoint).where(ContactPoint.kind == "phone")).one()
        assert (phone.line_type, phone.area_code_tzs) == ("landline", ["America/New_York"])


def test_dry_run_stores_nothing(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    summary = import_csv(db, tenant, write_csv(tmp_path / "ar.csv", [aged_row()]), dry_run=True)
    assert dict(summary.created) == {"account": 1, "contact_point": 3, "guarantor": 1,
                                     "ledger_entry": 2, "patient": 1}
    assert count_rows(db, tenant) == {"guarantor": 0, "patient": 0, "contact_point": 0,
                                      "account": 0, "ledger_entry": 0}


def test_import_is_audited_with_counts_never_values(
    db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    summary = import_csv(db, tenant, write_csv(tmp_path / "ar.csv", [aged_row()]))
    with db.system_session() as session:
        bodies = [b for (b,) in session.execute(
            text("SELECT body FROM audit_event ORDER BY ordinal")) if "import.run" in b]
    events = [json.loads(b) for b in bodies]
    assert [e["action"] for e in events] == ["import.run", "import.run"]
    assert [e["subject_id"] for e in events] == [str(summary.run_id)] * 2
    batch, final = (e["details"] for e in events)
    assert (batch["stage"], final["stage"]) == ("batch", "summary")
    assert final["created"] == {"account": 1, "contact_point": 3, "guarantor": 1,
                                "ledger_entry": 2, "patient": 1}
    for needle in ("Robin", "Testperson", "617", "robin@", "A-1001", "Elm"):
        assert needle not in "".join(bodies)


def _hosting(**overrides: object) -> BusinessAssociate:
    values: dict[str, object] = {
        "name": "Example Hosting LLC", "service": "hosting", "baa_status": "active",
        "baa_effective_on": date(2025, 1, 1), "baa_expires_on": None,
        "baa_document_sha256": "ab" * 32, "baa_signatories": "CEO; Privacy Officer",
    }
    values.update(overrides)
    return BusinessAssociate(**values)


@pytest.mark.parametrize(
    ("associate", "allowed"),
    [
        (None, False),
        ({}, True),
        ({"baa_expires_on": date(2025, 6, 30)}, False),
        ({"baa_document_sha256": None}, False),
        ({"baa_signatories": None}, False),
        ({"baa_status": "pending"}, False),
        ({"service": "sms"}, False),
    ],
)
def test_baa_gate(db: Database, tmp_path: Path, associate: dict[str, object] | None,
                  allowed: bool) -> None:
    tenant = create_tenant(db)
    if associate is not None:
        with db.tenant_session(tenant.id) as session:
            session.add(_hosting(organization_id=tenant.id, **associate))
    path = write_csv(tmp_path / "ar.csv", [aged_row()])
    if allowed:
        assert import_csv(db, tenant, path).rows_imported == 1
        return
    with pytest.raises(BaaRequiredError) as caught:
        import_csv(db, tenant, path)
    assert caught.value.message.startswith("this organization accepts no PHI yet")
    assert count_rows(db, tenant)["guarantor"] == 0
