"""X12 835: every shared example file parsed and posted, with the amounts read from the
files by hand (CLP03 billed, CLP04 paid, CLP05 patient responsibility, CAS by group)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from carecollect.db import Database
from carecollect.ingest.errors import IngestError, RowError
from carecollect.ingest.x12 import Claim, X12Options, X12Source, parse_835
from carecollect.ledger.models import LedgerEntry
from carecollect.ledger.service import ledger_service
from tests.factories import TEST_ACTOR, Tenant, create_guarantor
from tests.ingest.helpers import balances_by_account_number, import_units

X12 = Path(__file__).resolve().parents[3] / "shared" / "data" / "x12-835"
pytestmark = pytest.mark.skipif(not X12.is_dir(), reason="shared X12 data not present")

# (file, trace number, paid on, [(PCN, status, billed, paid, patient resp., CAS by group)])
EXPECTED = {
    "cob-contractural-adjustment.835": ("0063158ABC", date(2005, 3, 18), [
        # CAS*OA*23*516.00 and CAS*OA*94*-9.00 at service level: OA 507.00 net.
        ("0001000055", "2", 54100, 3400, 0, {"OA": 50700}),
    ]),
    "managed-care.835": ("7170066655", date(2002, 3, 14), [
        # Claim-level CAS*CO*A2*50.00, service-level CAS*PR*1*300.00 (deductible).
        ("5554555444", "1", 80000, 45000, 30000, {"CO": 5000, "PR": 30000}),
        # CAS*CO*A2*55.00 + CAS*CO*45*50.00, CAS*PR*1*600.00.
        ("8765432112", "1", 120000, 49500, 60000, {"CO": 10500, "PR": 60000}),
    ]),
    "medicare-part-a.835": ("12345", date(2002, 9, 13), [
        ("666123", "1", 21136697, 13801840, 0, {"CO": 7334857}),
        ("777777", "1", 1500000, 1198033, 0, {"CO": 301967}),
    ]),
}
# What each account owes once its 835 is posted: the patient responsibility.
OWED = {"0001000055": 0, "5554555444": 30000, "8765432112": 60000, "666123": 0, "777777": 0}


def test_the_shared_directory_holds_exactly_the_files_tested() -> None:
    assert sorted(p.name for p in X12.glob("*.835")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse(name: str) -> None:
    trace, paid_on, claims = EXPECTED[name]
    (remittance,) = parse_835((X12 / name).read_text())
    assert (remittance.trace_number, remittance.paid_on) == (trace, paid_on)
    assert [
        (c.patient_control_number, c.status, c.charge_cents, c.paid_cents,
         c.patient_responsibility_cents, c.adjustments)
        for c in remittance.claims
    ] == claims


def _accounts(db: Database, tenant: Tenant, numbers: dict[str, int]) -> None:
    """Accounts with the given numbers, each with a charge of the given cents."""
    with db.tenant_session(tenant.id) as session:
        guarantor = create_guarantor(session, tenant)
        for number, charge in numbers.items():
            account = ledger_service.open_account(
                session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=guarantor.id,
                account_number=number, opened_at=datetime(2002, 1, 1, tzinfo=UTC),
                debt_kind="medical")
            if charge:
                ledger_service.post(session, keys=tenant.keys, actor=TEST_ACTOR,
                                    account_id=account.id, kind="charge", amount_cents=charge,
                                    posted_at=datetime(2002, 1, 2, tzinfo=UTC))


def _import(db: Database, tenant: Tenant, name: str, options: X12Options | None = None,
            errors: list[RowError] | None = None) -> tuple[X12Source, object]:
    source = X12Source(X12 / name, options or X12Options())
    source.prescan()
    summary = import_units(db, tenant, source.units(db, tenant.keys), system="x12-835",
                           format_name="x12-835",
                           on_error=errors.append if errors is not None else None)
    return source, summary


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_file_posts_to_accounts_with_existing_charges(
    db: Database, tenant: Tenant, name: str
) -> None:
    claims = EXPECTED[name][2]
    _accounts(db, tenant, {c[0]: c[2] for c in claims})
    _source, summary = _import(db, tenant, name)
    assert balances_by_account_number(db, tenant) == {c[0]: OWED[c[0]] for c in claims}
    assert summary.noted == {  # type: ignore[attr-defined]
        "claims_matched": len(claims),
        **({"patient_responsibility_cents": sum(c[4] for c in claims)}
           if any(c[4] for c in claims) else {}),
    }
    again = _import(db, tenant, name)[1]
    assert (dict(again.created), dict(again.updated)) == ({}, {})  # type: ignore[attr-defined]
    assert balances_by_account_number(db, tenant) == {c[0]: OWED[c[0]] for c in claims}


def test_entries_by_group_and_kind(db: Database, tenant: Tenant) -> None:
    _accounts(db, tenant, {"5554555444": 80000, "8765432112": 120000})
    _import(db, tenant, "managed-care.835")
    with db.tenant_session(tenant.id) as session:
        rows = sorted(
            (e.kind, e.amount_cents)
            for e in session.scalars(select(LedgerEntry).where(LedgerEntry.kind != "charge"))
        )
    assert rows == [("insurance_adjustment", -10500), ("insurance_adjustment", -5000),
                    ("insurance_payment", -49500), ("insurance_payment", -45000)]


def test_charges_post_mode_for_accounts_without_charges(db: Database, tenant: Tenant) -> None:
    _accounts(db, tenant, {"0001000055": 0})
    _import(db, tenant, "cob-contractural-adjustment.835", X12Options(charges="post"))
    with db.tenant_session(tenant.id) as session:
        rows = sorted((e.kind, e.amount_cents) for e in session.scalars(select(LedgerEntry)))
    assert rows == [("charge", 54100), ("insurance_adjustment", -50700),
                    ("insurance_payment", -3400)]
    assert balances_by_account_number(db, tenant) == {"0001000055": 0}


def test_unmatched_claims_are_reported_not_dropped(db: Database, tenant: Tenant) -> None:
    _accounts(db, tenant, {"666123": 21136697})
    errors: list[RowError] = []
    source, summary = _import(db, tenant, "medicare-part-a.835", errors=errors)
    assert [e.as_dict() for e in errors] == [{
        "row": 2, "field": "claim.patient_control_number",
        "reason": "no account matches this claim (unmatched claim)"}]
    assert source.unmatched == 1
    assert summary.rows_rejected == 1  # type: ignore[attr-defined]
    assert balances_by_account_number(db, tenant) == {"666123": 0}


def test_match_by_source_id_of_another_import(
    db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    from tests.ingest.conftest import aged_row, write_csv
    from tests.ingest.helpers import import_csv

    import_csv(db, tenant, write_csv(tmp_path / "ar.csv", [
        aged_row(**{"Account No": "5554555444", "Current": "800.00", "61-90": ""}),
        aged_row(**{"Account No": "8765432112", "Patient ID": "P2", "Current": "1200.00",
                    "61-90": ""}),
    ]))
    mapping = tmp_path / "x12.toml"
    mapping.write_text('[x12]\nmatch = "source_id"\nsource_system = "generic-pm"\n')
    _import(db, tenant, "managed-care.835", X12Options.from_file(mapping))
    assert balances_by_account_number(db, tenant) == {"5554555444": 30000,
                                                      "8765432112": 60000}


def _damaged(tmp_path: Path, old: str, new: str, name: str = "managed-care.835") -> Path:
    text = (X12 / name).read_text()
    assert old in text
    path = tmp_path / "bad.835"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("SE*26*", "SE*25*", "SE says 25 segments, the transaction set has 26"),
        ("GE*1*1", "GE*2*1", "GE says 2 transaction sets, the group has 1"),
        ("IEA*1*", "IEA*3*", "IEA says 3 functional groups, the interchange has 1"),
        ("SE*26*112233", "SE*26*999", "SE control number differs from ST's"),
        ("ST*835*", "ST*837*", "transaction set 112233 is a 837, not an 835"),
        ("ISA*03", "ISB*03", "it does not start with an ISA segment"),
        ("*800.00*450.00*", "*800.00*4x0.00*", "CLP04 of segment 13 is not an amount"),
        ("CAS*PR*1*300.00", "CAS*XX*1*300.00", "CAS segment 19 has unknown group code"),
    ],
)
def test_malformed_835_is_one_clear_error(
    db: Database, tenant: Tenant, tmp_path: Path, old: str, new: str, message: str
) -> None:
    _accounts(db, tenant, {"5554555444": 80000})
    source = X12Source(_damaged(tmp_path, old, new), X12Options())
    with pytest.raises(IngestError) as caught:
        source.prescan()
    assert caught.value.message == f"not a valid X12 835: {message}"
    assert balances_by_account_number(db, tenant) == {"5554555444": 80000}


def test_truncated_835(tmp_path: Path) -> None:
    text = (X12 / "managed-care.835").read_text()
    path = tmp_path / "cut.835"
    path.write_text(text[: text.index("CLP*8765")])
    with pytest.raises(IngestError) as caught:
        X12Source(path, X12Options()).prescan()
    assert caught.value.message == (
        "not a valid X12 835: the interchange is not closed by IEA (truncated file?)")


def test_claim_that_does_not_balance_is_a_row_error(
    db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    _accounts(db, tenant, {"5554555444": 80000, "8765432112": 120000})
    path = _damaged(tmp_path, "*800.00*450.00*300.00*", "*800.00*450.00*250.00*")
    source = X12Source(path, X12Options())
    source.prescan()
    errors: list[RowError] = []
    import_units(db, tenant, source.units(db, tenant.keys), system="x12-835",
                 on_error=errors.append)
    assert [e.as_dict() for e in errors] == [{
        "row": 1, "field": "claim.patient_responsibility",
        "reason": "CLP05 does not equal the PR adjustments"}]
    assert balances_by_account_number(db, tenant) == {"5554555444": 80000,
                                                      "8765432112": 60000}


def test_claim_dataclass_is_what_the_parser_returns() -> None:
    (remittance,) = parse_835((X12 / "managed-care.835").read_text())
    assert isinstance(remittance.claims[0], Claim)
    assert remittance.claims[0].service_date == date(2002, 3, 1)
