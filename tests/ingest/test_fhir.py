"""FHIR R4: a test bundle covering every resource the importer reads (Patient,
RelatedPerson, Account, Coverage, ExplanationOfBenefit, ClaimResponse, Invoice, Consent),
the same resources as NDJSON, dangling references and malformed files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from carecollect.consent.models import Consent, Revocation
from carecollect.db import Database
from carecollect.ingest.errors import IngestError, RowError
from carecollect.ingest.fhir import FhirSource
from carecollect.patient.models import ContactPoint, Coverage, Guarantor, Patient
from tests.factories import Tenant
from tests.ingest.helpers import balances_by_account_number, count_rows, import_units

BUNDLE = Path(__file__).parent / "data" / "fhir_bundle.json"


def import_fhir(db: Database, tenant: Tenant, path: Path, errors: list[RowError] | None = None
                ) -> object:
    source = FhirSource(path, practice_zone="America/New_York")
    source.prescan()
    return import_units(db, tenant, source.units(), system="fhir", format_name="fhir",
                        on_error=errors.append if errors is not None else None)


def _as_ndjson(tmp_path: Path) -> Path:
    text = BUNDLE.read_text()
    for entry in json.loads(text)["entry"]:  # NDJSON has no fullUrl: refer by Type/id
        if "fullUrl" in entry:
            resource = entry["resource"]
            text = text.replace(entry["fullUrl"], f"{resource['resourceType']}/{resource['id']}")
    path = tmp_path / "export.ndjson"
    path.write_text("".join(json.dumps(e["resource"]) + "\n" for e in json.loads(text)["entry"]))
    return path


def _assert_bundle_stored(db: Database, tenant: Tenant) -> None:
    assert balances_by_account_number(db, tenant) == {"ACC-100": 12500, "ACC-200": 12000}
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as session:
        guarantors = {cipher.open_row(g, "first_name"): g
                      for g in session.scalars(select(Guarantor))}
        assert sorted(str(name) for name in guarantors) == ["Alex", "Jordan"]
        alex, jordan = guarantors["Alex"], guarantors["Jordan"]
        assert (alex.state, alex.mailing_tz, jordan.state) == ("MA", "America/New_York", "FL")
        patients = {cipher.open_row(p, "first_name"): p for p in session.scalars(select(Patient))}
        assert (patients["Sam"].guarantor_id, patients["Sam"].relationship_to_guarantor,
                patients["Sam"].minor) == (jordan.id, "child", True)
        assert (patients["Alex"].guarantor_id, patients["Alex"].relationship_to_guarantor) == (
            alex.id, "self")
        points = sorted((p.guarantor_id == alex.id, p.kind, cipher.open_row(p, "value") or "",
                         p.line_type) for p in session.scalars(select(ContactPoint))
                        if p.kind != "postal")
        assert points == [
            (False, "email", "jordan@example.org", None),
            (False, "phone", "+13055550177", "wireless"),
            (True, "email", "alex.f@example.com", None),
            (True, "phone", "+16175550142", "wireless"),  # the ended home phone is skipped
        ]
        consent = session.scalars(select(Consent)).one()
        phone = session.get(ContactPoint, consent.contact_point_id)
        assert phone is not None
        assert (consent.kind, consent.guarantor_id, phone.kind, consent.granted_at) == (
            "tcpa_pec", alex.id, "phone", datetime(2025, 11, 3, 14, tzinfo=UTC))
        revocation = session.scalars(select(Revocation)).one()
        email = session.get(ContactPoint, revocation.contact_point_id)
        assert email is not None
        assert (revocation.channel, revocation.guarantor_id, email.kind) == (
            "email", jordan.id, "email")
        coverage = session.scalars(select(Coverage)).one()
        assert (coverage.patient_id, coverage.status, coverage.relationship,
                coverage.priority) == (patients["Sam"].id, "active", "child", 1)
        assert [cipher.open_row(coverage, column) for column in (
            "payer_name", "member_id", "group_number", "period_start", "period_end")] == [
            "Example Health Plan", "XPH-4417-02", "GRP-88120", "2025-01-01", "2026-12-31"]


def test_bundle_with_every_resource(db: Database, tenant: Tenant) -> None:
    summary = import_fhir(db, tenant, BUNDLE)
    assert summary.counts() == {  # type: ignore[attr-defined]
        "rows_read": 12, "rows_imported": 12, "rows_rejected": 0, "batches": 1,
        "created": {"account": 2, "consent": 1, "contact_point": 6, "coverage": 1,
                    "guarantor": 2, "ledger_entry": 3, "patient": 2, "revocation": 1},
        "updated": {}, "unchanged": {}, "corrections": 0,
        "noted": {"unsupported_resources": 1},
    }
    _assert_bundle_stored(db, tenant)
    again = import_fhir(db, tenant, BUNDLE)
    assert (dict(again.created), dict(again.updated)) == ({}, {})  # type: ignore[attr-defined]
    assert dict(again.unchanged) == {  # type: ignore[attr-defined]
        "account": 2, "consent": 1, "coverage": 1, "guarantor": 2, "ledger_entry": 3,
        "patient": 2, "revocation": 1}
    _assert_bundle_stored(db, tenant)


def test_changed_coverage_is_updated_in_place(db: Database, tenant: Tenant,
                                              tmp_path: Path) -> None:
    import_fhir(db, tenant, BUNDLE)
    bundle = json.loads(BUNDLE.read_text())
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["id"] == "cov1":
            resource["status"] = "cancelled"
            resource["subscriberId"] = "XPH-9000-01"
            resource["payor"] = [{"display": "Second Health Plan"}]
            del resource["period"]
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(bundle))
    summary = import_fhir(db, tenant, path)
    assert dict(summary.updated) == {"coverage": 1}  # type: ignore[attr-defined]
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as session:
        coverage = session.scalars(select(Coverage)).one()
        assert coverage.status == "cancelled"
        assert [cipher.open_row(coverage, column) for column in (
            "payer_name", "member_id", "period_start", "period_end")] == [
            "Second Health Plan", "XPH-9000-01", None, None]


def test_coverage_without_a_payer_name_is_rejected(db: Database, tenant: Tenant,
                                                   tmp_path: Path) -> None:
    bundle = json.loads(BUNDLE.read_text())
    for entry in bundle["entry"]:
        if entry["resource"]["id"] == "cov1":
            entry["resource"]["payor"] = [{"identifier": {"value": "X1"}}]
    path = tmp_path / "nameless.json"
    path.write_text(json.dumps(bundle))
    errors: list[RowError] = []
    import_fhir(db, tenant, path, errors)
    assert [e.as_dict() for e in errors] == [
        {"row": 7, "field": "Coverage.payor", "reason": "a coverage needs a payer with a "
         "name (display or an Organization in the file)"}]
    with db.tenant_session(tenant.id) as session:
        assert session.scalars(select(Coverage)).all() == []


def test_ndjson_gives_the_same_result(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    import_fhir(db, tenant, _as_ndjson(tmp_path))
    _assert_bundle_stored(db, tenant)


def test_dangling_references_are_reported(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    bundle = json.loads(BUNDLE.read_text())
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["id"] == "acc-child":
            resource["subject"] = [{"reference": "Patient/nobody"}]
        if resource["id"] == "cov1":
            resource["payor"] = [{"reference": "Organization/nowhere"}]
    path = tmp_path / "dangling.json"
    path.write_text(json.dumps(bundle))
    errors: list[RowError] = []
    summary = import_fhir(db, tenant, path, errors)
    assert [e.as_dict() for e in errors] == [
        {"row": 6, "field": "Account.reference", "reason": "refers to a Patient not in the file"},
        {"row": 7, "field": "Coverage.reference",
         "reason": "refers to a Organization/Patient/RelatedPerson not in the file"},
        {"row": 9, "field": "ClaimResponse.patient",
         "reason": "the patient needs exactly one Account in the file to post this amount to"},
    ]
    assert summary.rows_rejected == 3  # type: ignore[attr-defined]
    assert balances_by_account_number(db, tenant) == {"ACC-100": 12500}


def test_invalid_resource_is_a_row_error(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    bundle = json.loads(BUNDLE.read_text())
    bundle["entry"][9]["resource"]["totalNet"] = {"value": "eighty"}
    bundle["entry"][7]["resource"]["total"][2]["amount"]["value"] = -45
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    errors: list[RowError] = []
    import_fhir(db, tenant, path, errors)
    assert [e.as_dict() for e in errors] == [
        {"row": 8, "field": "ExplanationOfBenefit.total", "reason": "amount is negative"},
        {"row": 10, "field": "Invoice", "reason": "is not a valid FHIR R4 resource"},
    ]
    assert balances_by_account_number(db, tenant) == {"ACC-100": 0, "ACC-200": 12000}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"resourceType": "Bundle", "entry": [', "x.json is not JSON (truncated file?)"),
        (b'{"resourceType": "Patient"}\n{"resource', "x.json is not NDJSON: line 2 is not JSON"),
        (b"[1, 2]", "x.json is not a FHIR Bundle or NDJSON file"),
        (b'{"resourceType": "Patient"}\n[3]', "x.json: line 2 is not a FHIR resource"),
        (b"\xff\xfe{}", "x.json is not UTF-8 JSON"),
        (b'{"resourceType": "Bundle", "entry": [{"x": 1}]}',
         "x.json: Bundle entry 1 has no resource"),
    ],
)
def test_malformed_fhir_file(db: Database, tenant: Tenant, tmp_path: Path, content: bytes,
                             message: str) -> None:
    import_fhir(db, tenant, BUNDLE)
    before = count_rows(db, tenant)
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(IngestError) as caught:
        import_fhir(db, tenant, path)
    assert caught.value.message == message
    assert count_rows(db, tenant) == before
