"""Synthea CSV export: patients and their patient-responsibility balances.

Synthea bills each claim line (CHARGE) to a responsible party (TRANSFERTYPE 1 = primary
payer, 2 = secondary, p = patient) and moves what a payer leaves unpaid with a TRANSFEROUT /
TRANSFERIN pair; PAYMENT rows are made by whoever is responsible at that moment, except
METHOD = COPAY, which the patient pays at the visit. Each transaction row carries the
line's OUTSTANDING amount after it.

The importer keeps, per claim line, who is responsible and the patient's running balance,
and turns what concerns the patient into ledger entries of one account per patient:

* CHARGE billed to the patient, or TRANSFERIN to the patient: a `charge`;
* COPAY: a `charge` and an equal `patient_payment` (billed and paid at the visit);
* PAYMENT while the patient is responsible: a `patient_payment`;
* ADJUSTMENT while the patient is responsible: a `write_off`; TRANSFEROUT away from the
  patient: an `adjustment` removing the amount;
* when the export's OUTSTANDING differs from the running balance while the patient is
  responsible (Synthea rounds amounts in its own way), an `adjustment` of the difference,
  so every line's patient balance equals what the export says it is, to the cent.

Every patient is their own guarantor: the export has no guarantor demographics (a minor's
guardian appears only by name in payer_transitions.csv, which is not enough to contact
anyone). The files are streamed in their order (transactions of a line appear in order).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

from carecollect.ingest import normalize as n
from carecollect.ingest.errors import FieldError, IngestError, RowError
from carecollect.ingest.records import AccountIn, AddressIn, EntryIn, GuarantorIn, PatientIn, Unit

SYSTEM = "synthea"
REQUIRED = {
    "patients.csv": {"Id", "BIRTHDATE", "DEATHDATE", "FIRST", "LAST", "GENDER", "ADDRESS",
                     "CITY", "STATE", "ZIP"},
    "claims.csv": {"Id", "PATIENTID", "SERVICEDATE"},
    "claims_transactions.csv": {"ID", "CLAIMID", "CHARGEID", "PATIENTID", "TYPE", "AMOUNT",
                                "METHOD", "FROMDATE", "PROCEDURECODE", "TRANSFERTYPE",
                                "PAYMENTS", "ADJUSTMENTS", "TRANSFERS", "OUTSTANDING"},
    "payers.csv": {"Id", "NAME"},
    "encounters.csv": {"Id", "PATIENT"},
    "organizations.csv": {"Id", "NAME"},
    "providers.csv": {"Id", "ORGANIZATION"},
}
TYPES = ("CHARGE", "PAYMENT", "ADJUSTMENT", "TRANSFERIN", "TRANSFEROUT")
csv.field_size_limit(131_072)


class SyntheaSource:
    """A Synthea CSV export directory read as units (one per patient, then per transaction)."""

    def __init__(self, directory: Path, *, practice_zone: str = "UTC") -> None:
        self.directory = directory
        self.zone = practice_zone
        self.total_rows = 0
        self.size = 0
        self._opened: dict[str, datetime] = {}

    def _reader(self, name: str) -> Iterator[dict[str, str]]:
        path = self.directory / name
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle, strict=True)
                missing = REQUIRED[name] - set(reader.fieldnames or [])
                if missing:
                    raise IngestError(
                        f"{name} is not a Synthea export file: it lacks "
                        f"{', '.join(sorted(missing)[:5])}"
                    )
                yield from reader
        except FileNotFoundError:
            raise IngestError(f"{self.directory.name} is not a Synthea CSV export: "
                              f"{name} is missing") from None
        except UnicodeDecodeError:
            raise IngestError(f"{name} is not valid UTF-8 text") from None
        except csv.Error:
            raise IngestError(f"{name} is malformed CSV (truncated file or stray quote?)") \
                from None

    def prescan(self) -> None:
        """Check every file and count rows before anything is stored."""
        if not self.directory.is_dir():
            raise IngestError(f"{self.directory.name} is not a directory of Synthea CSV files")
        counts = {}
        for name in REQUIRED:
            counts[name] = sum(1 for _ in self._reader(name))
            self.size += (self.directory / name).stat().st_size
        self.total_rows = counts["patients.csv"] + counts["claims_transactions.csv"]
        # The first service date of each patient dates the account they owe on.
        for row in self._reader("claims.csv"):
            try:
                when = n.parse_timestamp(row.get("SERVICEDATE") or "", "SERVICEDATE")
            except FieldError:
                continue
            first = self._opened.get(row["PATIENTID"])
            if first is None or when < first:
                self._opened[row["PATIENTID"]] = when

    def units(self, on_rows: Callable[[int], None] | None = None) -> Iterator[Unit | RowError]:
        number = 0
        for row in self._reader("patients.csv"):
            number += 1
            if None in row or None in row.values():
                yield RowError(number, "patients.csv:*", "has more or fewer fields than the header")
                continue
            try:
                yield self._patient(number, row)
            except FieldError as exc:
                yield RowError(number, f"patients.csv:{exc.field}", exc.reason)
        lines: dict[tuple[str, str, str], tuple[str, int]] = {}
        for row in self._reader("claims_transactions.csv"):
            number += 1
            if None in row or None in row.values():
                yield RowError(number, "claims_transactions.csv:*",
                               "has more or fewer fields than the header")
                continue
            try:
                yield self._transaction(number, row, lines)
            except FieldError as exc:
                yield RowError(number, f"claims_transactions.csv:{exc.field}", exc.reason)

    def _patient(self, number: int, row: dict[str, str]) -> Unit:
        pid = n.text_field(row["Id"], "Id", required=True) or ""
        birth = n.parse_date(row["BIRTHDATE"], "BIRTHDATE")
        first = n.text_field(row["FIRST"], "FIRST", required=True, max_length=100) or ""
        last = n.text_field(row["LAST"], "LAST", required=True, max_length=100) or ""
        zip_raw = row["ZIP"].strip()
        place = n.zip_place(zip_raw, "ZIP") if zip_raw else None
        state = n.state_code(row["STATE"], "STATE") if row["STATE"].strip() else None
        address = None
        if row["ADDRESS"].strip() and row["CITY"].strip() and state:
            address = AddressIn(row["ADDRESS"].strip(), None, row["CITY"].strip(), state, place)
        unit = Unit(number)
        unit.guarantors.append(GuarantorIn(pid, first, last, birth.isoformat(), state,
                                           address=address))
        today = date.today()  # noqa: DTZ011 - age in whole years, a calendar question
        age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
        sex = {"M": "male", "F": "female"}.get(row["GENDER"].strip().upper())
        unit.patients.append(PatientIn(pid, pid, first, last, birth.isoformat(), "self", sex,
                                       minor=age < 18))
        opened = self._opened.get(row["Id"]) or n.at_noon(birth, self.zone)
        unit.accounts.append(AccountIn(pid, pid, pid, opened, "medical"))
        if row["DEATHDATE"].strip():
            unit.noted["deceased_patients"] = 1
        return unit

    def _transaction(
        self, number: int, row: dict[str, str], lines: dict[tuple[str, str, str], tuple[str, int]]
    ) -> Unit:
        kind = row["TYPE"].strip()
        if kind not in TYPES:
            raise FieldError("TYPE", "is not a Synthea transaction type")
        tid = n.text_field(row["ID"], "ID", required=True) or ""
        patient = n.text_field(row["PATIENTID"], "PATIENTID", required=True) or ""
        posted = n.parse_timestamp(row["FROMDATE"], "FROMDATE")
        key = (row["CLAIMID"], row["PROCEDURECODE"], row["FROMDATE"])
        unit = Unit(number)

        def cents(column: str) -> int:
            raw = row[column].strip()
            return n.money_cents(raw, column) if raw else 0

        def entry(suffix: str, entry_kind: str, amount: int, text: str) -> None:
            if amount:
                unit.entries.append(EntryIn(f"{tid}{suffix}", patient, entry_kind, amount,
                                            posted, patient_source_id=patient,
                                            service_date=posted.date().isoformat(),
                                            procedure_codes=row["PROCEDURECODE"].strip() or None,
                                            description=text))

        if kind == "CHARGE":
            bucket, balance = row["TRANSFERTYPE"].strip() or "1", 0
            if bucket == "p":
                balance = cents("AMOUNT")
                entry("", "charge", balance, "billed to patient")
        else:
            if key not in lines:
                raise FieldError("CLAIMID", "transaction of a claim line with no CHARGE before it")
            bucket, balance = lines[key]
            if kind == "PAYMENT" and row["METHOD"].strip().upper() == "COPAY":
                copay = cents("PAYMENTS")
                entry("|copay-charge", "charge", copay, "copay")
                entry("", "patient_payment", -copay, "copay paid")
            elif kind == "PAYMENT" and bucket == "p":
                paid = cents("PAYMENTS")
                entry("", "patient_payment", -paid, "patient payment")
                balance -= paid
            elif kind == "ADJUSTMENT" and bucket == "p":
                adjusted = cents("ADJUSTMENTS")
                entry("", "write_off", -adjusted, "adjustment")
                balance -= adjusted
            elif kind == "TRANSFEROUT" and bucket == "p":
                moved = cents("TRANSFERS")
                entry("", "adjustment", -moved, "transferred to payer")
                balance -= moved
                bucket = "moving"
            elif kind == "TRANSFERIN":
                bucket = row["TRANSFERTYPE"].strip() or "1"
                if bucket == "p":
                    moved = cents("TRANSFERS") or cents("AMOUNT")
                    entry("", "charge", moved, "transferred to patient")
                    balance = moved
        if bucket == "p" and row["OUTSTANDING"].strip():
            stated = cents("OUTSTANDING")
            if stated != balance:
                entry("|reconcile", "adjustment", stated - balance, "balance per export")
                balance = stated
        lines[key] = (bucket, balance)
        return unit
