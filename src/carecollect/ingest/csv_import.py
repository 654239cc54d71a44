"""Generic CSV import driven by a mapping file.

The file is read twice, both times streaming: a first pass checks that it is what it
claims to be (encoding, delimiter, header, quoting, field sizes) before anything is
stored, and counts rows for the progress bar; the second pass converts rows to units.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

from carecollect.ingest import normalize as n
from carecollect.ingest.errors import FieldError, IngestError, RowError
from carecollect.ingest.mapping import Mapping
from carecollect.ingest.records import (
    AccountIn,
    AddressIn,
    EntryIn,
    GuarantorIn,
    PatientIn,
    Unit,
)
from carecollect.ledger.models import ENTRY_KINDS

FIELD_LIMIT = 131_072  # csv's default; a longer field is a broken export, not data
csv.field_size_limit(FIELD_LIMIT)


def _decoded_lines(
    raw: BinaryIO, encoding: str, name: str, on_bytes: Callable[[int], None] | None
) -> Iterator[str]:
    """Lines of text, decoded one by one so a bad byte is reported with its line."""
    for number, line in enumerate(raw, start=1):
        if on_bytes is not None:
            on_bytes(len(line))
        try:
            yield line.decode(encoding)
        except UnicodeDecodeError:
            raise IngestError(f"{name} is not valid {encoding} text (line {number})") from None


class CsvSource:
    """One CSV file read through one mapping."""

    def __init__(self, path: Path, mapping: Mapping, *, practice_zone: str = "UTC") -> None:
        self.path = path
        self.mapping = mapping
        self.zone = practice_zone
        self.total_rows = 0
        self.size = path.stat().st_size if path.is_file() else 0

    def _rows(
        self, on_bytes: Callable[[int], None] | None = None
    ) -> Iterator[tuple[int, list[str]]]:
        if not self.path.is_file():
            raise IngestError(f"{self.path.name} is not a readable file")
        m = self.mapping
        with self.path.open("rb", buffering=1 << 20) as raw:
            lines = _decoded_lines(raw, m.encoding, self.path.name, on_bytes)
            reader = csv.reader(lines, delimiter=m.delimiter, strict=True)
            try:
                for row in reader:
                    yield reader.line_num, row
            except csv.Error as exc:
                reason = "a field is too large" if "larger than" in str(exc) else "malformed CSV"
                raise IngestError(
                    f"{self.path.name}: {reason} at line {reader.line_num}"
                    " (truncated file, stray quote or wrong delimiter?)"
                ) from None

    def prescan(self) -> None:
        """Check the whole file before anything is stored; raise IngestError when it is not
        a CSV export this mapping can read."""
        rows = self._rows()
        header = self._header(rows)
        width = len(header)
        count = 0
        for _line, _row in rows:
            count += 1
        self.total_rows = count
        self._width = width

    def _header(self, rows: Iterator[tuple[int, list[str]]]) -> list[str]:
        first = next(rows, None)
        if first is None:
            raise IngestError(f"{self.path.name} is empty")
        header = [h.strip().lstrip("\ufeff") for h in first[1]]
        missing = sorted(self.mapping.columns() - set(header))
        if missing:
            if len(header) == 1 and self.mapping.delimiter not in first[1][0]:
                raise IngestError(
                    f"{self.path.name}: the header has one column: wrong delimiter? "
                    f"(the mapping says {self.mapping.delimiter!r})"
                )
            raise IngestError(
                f"{self.path.name}: the header lacks mapped columns: {', '.join(missing[:5])}"
            )
        return header

    def units(self, on_bytes: Callable[[int], None] | None = None) -> Iterator[Unit | RowError]:
        rows = self._rows(on_bytes)
        header = self._header(rows)
        index = {name: i for i, name in enumerate(header)}
        for number, (_line, row) in enumerate(rows, start=1):
            if len(row) != len(header):
                if not row or row == [""]:
                    continue
                yield RowError(number, "*", f"has {len(row)} fields, the header {len(header)}")
                continue
            try:
                yield self._unit(number, {k: row[i] for k, i in index.items()})
            except FieldError as exc:
                yield RowError(number, exc.field, exc.reason)

    # -- one row ------------------------------------------------------------------------

    def _value(self, kind: str, raw: str, field: str) -> str:
        table = self.mapping.values.get(kind)
        if table is None:
            return raw.strip()
        mapped = table.get(raw.strip().upper())
        if mapped is None:
            raise FieldError(field, f"code is not in the mapping's [values.{kind}] table")
        return mapped

    def _money(self, raw: str, field: str) -> int:
        if self.mapping.money == "cents":
            text = raw.strip()
            if not text.lstrip("-").isdigit():
                raise FieldError(field, "is not a whole number of cents")
            cents = int(text)
            if cents < 0:
                raise FieldError(field, "amount is negative")
            return cents
        return n.money_cents(raw, field)

    def _date(self, raw: str, field: str) -> date:
        return n.parse_date(raw, field, self.mapping.date_formats)

    def _unit(self, number: int, row: dict[str, str]) -> Unit:
        m = self.mapping
        g = m.guarantor

        def col(column: str | None) -> str:
            return row.get(column, "") if column else ""

        def text(key: str, section: dict[str, str], *, required: bool) -> str | None:
            return n.text_field(col(section.get(key)), key, required=required, max_length=100)

        gid = n.text_field(col(g["id"]), "guarantor.id", required=True)
        assert gid is not None  # noqa: S101 - required=True
        dob = self._date(col(g["date_of_birth"]), "guarantor.date_of_birth").isoformat() if (
            g.get("date_of_birth") and col(g["date_of_birth"]).strip()
        ) else None
        phones = []
        for spec in m.phones:
            raw = col(spec.number).strip()
            if not raw:
                continue
            line_type = spec.type
            if spec.type_column and col(spec.type_column).strip():
                line_type = self._value("phone_type", col(spec.type_column), "phone_type")
            phones.append(n.phone(raw, "phone", line_type))
        emails = [n.email(col(c), "email") for c in m.emails if col(c).strip()]
        address = None
        if g.get("address_line1") and col(g["address_line1"]).strip():
            zip_raw = col(g.get("zip")).strip()
            place = n.zip_place(zip_raw, "zip") if zip_raw else None
            state = n.state_code(col(g.get("state")), "state") if col(g.get("state")).strip() \
                else (place.state if place else None)
            if state is None:
                raise FieldError("state", "is required with an address")
            address = AddressIn(
                line1=n.text_field(col(g["address_line1"]), "address_line1", required=True)
                or "",
                line2=n.text_field(col(g.get("address_line2")), "address_line2", required=False),
                city=n.text_field(col(g.get("city")), "city", required=True) or "",
                state=state,
                place=place,
            )
        state = address.state if address else (
            n.state_code(col(g["state"]), "state") if col(g.get("state")).strip() else None
        )
        language = "en"
        if g.get("language") and col(g["language"]).strip():
            language = self._value("language", col(g["language"]), "language")
            if language not in ("en", "es"):
                raise FieldError("language", "must map to en or es")
        unit = Unit(number)
        unit.guarantors.append(
            GuarantorIn(
                source_id=gid,
                first_name=text("first_name", g, required=True) or "",
                last_name=text("last_name", g, required=True) or "",
                date_of_birth=dob,
                state=state,
                preferred_language=language,
                phones=phones,
                emails=emails,
                address=address,
            )
        )
        patient_id = self._patient(unit, row, gid, dob)
        self._account_and_ledger(unit, row, gid, patient_id)
        return unit

    def _patient(self, unit: Unit, row: dict[str, str], gid: str, g_dob: str | None) -> str | None:
        p = self.mapping.patient
        if not p:
            return None
        if p.get("same_as_guarantor"):
            g = unit.guarantors[0]
            unit.patients.append(PatientIn(gid, gid, g.first_name, g.last_name, g_dob))
            return gid
        pid = n.text_field(row.get(p["id"], ""), "patient.id", required=True) or ""
        dob_raw = row.get(p.get("date_of_birth", ""), "").strip()
        dob = self._date(dob_raw, "patient.date_of_birth") if dob_raw else None
        relationship = "self"
        if p.get("relationship") and row.get(p["relationship"], "").strip():
            relationship = self._value("relationship", row[p["relationship"]], "relationship")
            if relationship not in ("self", "child", "spouse", "dependent", "other"):
                raise FieldError("relationship", "must map to self, child, spouse, dependent "
                                 "or other")
        sex = None
        if p.get("sex") and row.get(p["sex"], "").strip():
            sex = self._value("sex", row[p["sex"]], "sex")
        minor = dob is not None and (date.today() - dob).days < 18 * 365.25  # noqa: DTZ011
        unit.patients.append(
            PatientIn(
                source_id=pid,
                guarantor_source_id=gid,
                first_name=n.text_field(row.get(p["first_name"]), "patient.first_name",
                                        required=True, max_length=100) or "",
                last_name=n.text_field(row.get(p["last_name"]), "patient.last_name",
                                       required=True, max_length=100) or "",
                date_of_birth=dob.isoformat() if dob else None,
                relationship=relationship,
                sex=sex,
                minor=minor,
            )
        )
        return pid

    def _account_and_ledger(
        self, unit: Unit, row: dict[str, str], gid: str, patient_id: str | None
    ) -> None:
        m = self.mapping
        a = m.account
        if not a:
            return
        account_id = n.text_field(row.get(a["id"]), "account.id", required=True) or ""
        number = n.text_field(row.get(a["number"]), "account.number", required=True,
                              max_length=64) or ""
        if not number.replace("-", "").replace(" ", "").isalnum():
            raise FieldError("account.number", "must be letters and digits")
        opened_raw = row.get(a.get("opened", ""), "").strip()
        opened = n.at_noon(self._date(opened_raw, "account.opened"), self.zone) if opened_raw \
            else None
        debt_kind = a.get("debt_kind", "medical")
        if a.get("debt_kind_column"):
            debt_kind = self._value("debt_kind", row.get(a["debt_kind_column"], ""), "debt_kind")
        if debt_kind not in ("medical", "dental"):
            raise FieldError("debt_kind", "must be medical or dental")
        entries = self._aging(row, account_id, patient_id) if m.aging else \
            self._line(row, account_id, patient_id)
        if opened is None:
            opened = min((e.posted_at for e in entries), default=None) or n.at_noon(
                date.today(), self.zone  # noqa: DTZ011 - a calendar date in the practice zone
            )
        unit.accounts.append(AccountIn(account_id, gid, number, opened, debt_kind))
        unit.entries.extend(entries)

    def _aging(self, row: dict[str, str], account_id: str, patient_id: str | None) -> list[EntryIn]:
        aging = self.mapping.aging
        assert aging is not None  # noqa: S101
        if aging.get("as_of_column"):
            as_of = self._date(row.get(aging["as_of_column"], ""), "as_of")
        else:
            as_of = date.fromisoformat(str(aging["as_of"]))
        entries = []
        for column, days in aging["buckets"].items():
            raw = row.get(column, "").strip()
            if not raw:
                continue
            cents = self._money(raw, column)
            if cents == 0:
                continue
            # One charge per aging bucket, dated at the bucket's start so the ledger's own
            # aging (FIFO, days since posting) puts it back in the same bucket.
            entries.append(
                EntryIn(
                    source_id=f"{account_id}|aging|{column}",
                    account_source_id=account_id,
                    kind="charge",
                    amount_cents=cents,
                    posted_at=n.at_noon(as_of - timedelta(days=days), self.zone),
                    patient_source_id=patient_id,
                    description=f"opening balance ({column})",
                )
            )
        return entries

    def _line(self, row: dict[str, str], account_id: str, patient_id: str | None) -> list[EntryIn]:
        ledger = self.mapping.ledger
        if not ledger:
            return []
        if ledger.get("kind_column"):
            kind = self._value("kind", row.get(ledger["kind_column"], ""), "kind")
        else:
            kind = str(ledger["kind"])
        if kind not in ENTRY_KINDS:
            raise FieldError("kind", "is not a ledger entry kind")
        cents = self._money(row.get(ledger["amount"], ""), "amount")
        if cents == 0:
            return []
        sign = ENTRY_KINDS[kind] or 1
        posted = n.at_noon(self._date(row.get(ledger["posted"], ""), "posted"), self.zone)
        line_id = row.get(ledger.get("id", ""), "").strip() if ledger.get("id") else ""
        if ledger.get("id") and not line_id:
            raise FieldError("ledger.id", "is required")
        service_raw = row.get(ledger.get("service_date", ""), "").strip()
        return [
            EntryIn(
                source_id=line_id or f"{account_id}|line|{posted.date()}|{kind}|{cents}",
                account_source_id=account_id,
                kind=kind,
                amount_cents=sign * cents,
                posted_at=posted,
                patient_source_id=patient_id,
                service_date=self._date(service_raw, "service_date").isoformat()
                if service_raw else None,
                procedure_codes=n.text_field(row.get(ledger.get("procedure_codes", "")),
                                             "procedure_codes", required=False),
                description=n.text_field(row.get(ledger.get("description", "")),
                                         "description", required=False),
            )
        ]
