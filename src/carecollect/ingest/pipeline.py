"""The shared import pipeline: parse -> validate -> normalize -> seal -> write per batch.

Parsers yield `Unit`s (or `RowError`s for rows they could not read). The pipeline groups
units into batches and writes each batch in one tenant transaction: existing records are
found by their source key (a keyed hash of the source id, `sourcekey.py`), new ones are
sealed and inserted with `executemany`, changed ones are updated, and one `import.run`
audit event with counts (never values) is recorded in the same transaction
(CONVENTIONS.md rule 4). A batch that fails as a whole rolls back as a whole, so an import
killed mid-file leaves every committed batch complete and nothing partial; re-running it
skips what is already there.

Ledger entries are append-only (ledger/models.py): when a re-imported line's amount
changed, a correcting `adjustment` entry pointing at the original is appended, so the
balance follows the file and the history shows the change.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.consent.models import Consent, Revocation
from carecollect.db import Database
from carecollect.ingest.errors import BaaRequiredError, RowError
from carecollect.ingest.records import (
    AccountIn,
    ConsentIn,
    CoverageIn,
    EntryIn,
    GuarantorIn,
    PatientIn,
    Unit,
)
from carecollect.ingest.sourcekey import SourceKeys
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.crypto.types import Sealed
from carecollect.kit.ids import uuid7
from carecollect.kit.logging import get_logger
from carecollect.kit.models import utcnow
from carecollect.ledger.models import ENTRY_KINDS, Account, LedgerEntry
from carecollect.patient.models import ContactPoint, Coverage, Guarantor, Patient
from carecollect.tenant.models import BusinessAssociate, Organization

log = get_logger(__name__)
DEFAULT_BATCH_SIZE = 2000
_IN_CHUNK = 900  # bound parameters per IN (...) query, well under every backend's limit
ENTITIES = ("guarantor", "patient", "contact_point", "account", "ledger_entry", "consent",
            "coverage")

T = TypeVar("T")


# The BAA gate ------------------------------------------------------------------------


def require_baa(db: Database, organization_id: uuid.UUID, *, on: date | None = None) -> None:
    """Refuse PHI until the organization may hand it to whoever operates this deployment.

    HIPAA 45 CFR 164.502(e)/164.504(e) (RULES.md HIPAA-BAA): either the covered entity
    operates the deployment itself, or a hosting business associate's BAA is recorded
    (effective date, signatories, document hash) and in force today. Fails closed.
    """
    today = on or datetime.now(UTC).date()
    with db.system_session() as session:
        org = session.get(Organization, organization_id)
        if org is None:
            raise BaaRequiredError("no such organization")
        if org.operated_by_covered_entity:
            return
        associates = session.scalars(
            select(BusinessAssociate).where(
                BusinessAssociate.organization_id == organization_id,
                BusinessAssociate.service == "hosting",
            )
        ).all()
    for associate in associates:
        if (
            associate.baa_is_active(today)
            and associate.baa_document_sha256
            and associate.baa_signatories
        ):
            return
    raise BaaRequiredError(
        "this organization accepts no PHI yet: record the hosting operator's business "
        "associate agreement (date, signatories, document hash) or mark the deployment as "
        "operated by the covered entity"
    )


# Results -----------------------------------------------------------------------------


ErrorSink = Callable[[RowError], None]


@dataclass
class ImportSummary:
    """What an import did, in counts only (safe to print, log and audit)."""

    format: str
    run_id: uuid.UUID
    dry_run: bool = False
    rows_read: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    batches: int = 0
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    corrections: int = 0
    noted: Counter[str] = field(default_factory=Counter)
    first_errors: list[RowError] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "rows_rejected": self.rows_rejected,
            "batches": self.batches,
            "created": dict(sorted(self.created.items())),
            "updated": dict(sorted(self.updated.items())),
            "unchanged": dict(sorted(self.unchanged.items())),
            "corrections": self.corrections,
            "noted": dict(sorted(self.noted.items())),
        }

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "run_id": str(self.run_id), "dry_run": self.dry_run,
                **self.counts()}

    def lines(self) -> list[str]:
        def fmt(counter: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()) if v) or "none"

        out = [
            f"{'dry run: ' if self.dry_run else ''}{self.format} import: {self.rows_read} rows "
            f"read, {self.rows_imported} imported, {self.rows_rejected} rejected "
            f"in {self.batches} batches",
            f"created: {fmt(self.created)}",
            f"updated: {fmt(self.updated)}",
            f"unchanged: {fmt(self.unchanged)}",
        ]
        if self.corrections:
            out.append(f"ledger corrections appended: {self.corrections}")
        if self.noted:
            out.append(f"noted: {fmt(self.noted)}")
        return out


@dataclass
class _BatchCounts:
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    corrections: int = 0


# The writer ----------------------------------------------------------------------------


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows with one driver-level executemany on the session's connection.

    Each column's bind processor (the same SQLAlchemy would apply: UTC normalisation,
    ciphertext bytes, UUID and JSON encoding for the dialect) runs over the column at
    once; SQLAlchemy's per-row parameter handling, which cost more than the inserts
    themselves, is skipped.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    table = model.__table__
    names = list(rows[0])
    columns = []
    for name in names:
        values = [row[name] for row in rows]
        processor = table.c[name].type._cached_bind_processor(dialect)
        if processor is not None:
            values = [processor(v) for v in values]
        columns.append(values)
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    # Table and column names come from the mapped model (checked against it just above
    # by `table.c[name]`), never from the file; values travel as bound parameters.
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608
        f"VALUES ({', '.join([marker] * len(names))})"
    )
    connection.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class BatchWriter:
    """Writes batches of units for one organization and one source system."""

    def __init__(
        self,
        db: Database,
        keys: OrganizationKeys,
        *,
        system: str,
        actor: Actor,
        format_name: str,
        run_id: uuid.UUID,
        dry_run: bool = False,
    ) -> None:
        self.db = db
        self.keys = keys
        self.org = keys.organization_id
        self.cipher = keys.cipher()
        self.blind = keys.blind()
        self.sk = SourceKeys(keys, system)
        self.actor = actor
        self.format_name = format_name
        self.run_id = run_id
        self.dry_run = dry_run

    # -- lookups ------------------------------------------------------------------------

    def _existing(self, session: Session, model: Any, keys: Iterable[int]) -> dict[int, uuid.UUID]:
        wanted = sorted(set(keys))
        found: dict[int, uuid.UUID] = {}
        table = model.__table__
        connection = session.connection()  # Core: the organization filter is explicit here
        for chunk in _chunks(wanted, _IN_CHUNK):
            rows = connection.execute(
                select(table.c.source_key, table.c.id).where(
                    table.c.organization_id == self.org, table.c.source_key.in_(chunk)
                )
            )
            found.update({int(k): i for k, i in rows})
        return found

    def _load(self, session: Session, model: Any, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Any]:
        wanted = list(set(ids))
        loaded: dict[uuid.UUID, Any] = {}
        for chunk in _chunks(wanted, _IN_CHUNK):
            for row in session.scalars(select(model).where(model.id.in_(chunk))):
                loaded[row.id] = row
        return loaded

    # -- the batch ----------------------------------------------------------------------

    def write(self, units: Sequence[Unit]) -> tuple[list[Unit], list[RowError], _BatchCounts]:
        """Write one batch in one transaction; returns (written units, rejected, counts)."""
        session = self.db.new_session(self.org)
        try:
            result = self._write(session, units)
            if self.dry_run:
                session.rollback()
            else:
                session.commit()
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _write(
        self, session: Session, units: Sequence[Unit]
    ) -> tuple[list[Unit], list[RowError], _BatchCounts]:
        sk = self.sk
        g_keys = {sk("guarantor", g.source_id) for u in units for g in u.guarantors}
        g_keys |= {sk("guarantor", r.guarantor_source_id) for u in units for r in u.patients}
        g_keys |= {sk("guarantor", a.guarantor_source_id) for u in units for a in u.accounts}
        g_keys |= {sk("guarantor", c.guarantor_source_id) for u in units for c in u.consents}
        p_keys = {sk("patient", p.source_id) for u in units for p in u.patients}
        p_keys |= {
            sk("patient", e.patient_source_id) for u in units for e in u.entries
            if e.patient_source_id
        }
        p_keys |= {sk("patient", c.patient_source_id) for u in units for c in u.coverages}
        a_keys = {sk("account", a.source_id) for u in units for a in u.accounts}
        a_keys |= {
            sk("account", e.account_source_id) for u in units for e in u.entries
            if e.account_id is None
        }
        e_keys = {sk("entry", e.source_id) for u in units for e in u.entries}
        c_keys = {sk("coverage", c.source_id) for u in units for c in u.coverages}

        g_ids = self._existing(session, Guarantor, g_keys)
        p_ids = self._existing(session, Patient, p_keys)
        a_ids = self._existing(session, Account, a_keys)
        e_ids = self._existing(session, LedgerEntry, e_keys)
        c_ids = self._existing(session, Coverage, c_keys)

        # Resolve units in file order: a unit is valid when everything it refers to exists
        # in the database, earlier in this batch, or in the unit itself.
        known_g, known_p, known_a = set(g_ids), set(p_ids), set(a_ids)
        accepted: list[Unit] = []
        rejected: list[RowError] = []
        for unit in units:
            error = self._dangling(unit, known_g, known_p, known_a)
            if error is not None:
                rejected.append(RowError(unit.row, error[0], error[1]))
                continue
            accepted.append(unit)
            known_g |= {sk("guarantor", g.source_id) for g in unit.guarantors}
            known_p |= {sk("patient", p.source_id) for p in unit.patients}
            known_a |= {sk("account", a.source_id) for a in unit.accounts}

        # Last occurrence of a record wins (an export repeats the guarantor on every line).
        guarantors = {sk("guarantor", g.source_id): g for u in accepted for g in u.guarantors}
        patients = {sk("patient", p.source_id): p for u in accepted for p in u.patients}
        accounts = {sk("account", a.source_id): a for u in accepted for a in u.accounts}
        entries = {sk("entry", e.source_id): e for u in accepted for e in u.entries}
        consents = [c for u in accepted for c in u.consents]
        coverages = {sk("coverage", c.source_id): c for u in accepted for c in u.coverages}

        counts = _BatchCounts()
        now = utcnow()
        self._guarantors(session, guarantors, g_ids, counts, now)
        self._patients(session, patients, g_ids, p_ids, counts, now)
        self._accounts(session, accounts, g_ids, a_ids, counts, now)
        self._entries(session, entries, a_ids, p_ids, e_ids, counts, now)
        self._consents(session, consents, g_ids, counts)
        self._coverages(session, coverages, p_ids, c_ids, counts, now)
        record(
            session,
            actor=self.actor,
            action="import.run",
            subject=Subject("import", self.run_id, organization_id=self.org),
            details={
                "format": self.format_name,
                "stage": "batch",
                "rows": len(units),
                "rows_imported": len(accepted),
                "rows_rejected": len(rejected),
                "created": dict(counts.created),
                "updated": dict(counts.updated),
                "corrections": counts.corrections,
            },
        )
        return accepted, rejected, counts

    def _dangling(
        self, unit: Unit, known_g: set[int], known_p: set[int], known_a: set[int]
    ) -> tuple[str, str] | None:
        sk = self.sk
        own_g = {sk("guarantor", g.source_id) for g in unit.guarantors}
        own_p = {sk("patient", p.source_id) for p in unit.patients}
        own_a = {sk("account", a.source_id) for a in unit.accounts}
        missing = "refers to a {} found neither in the file nor stored"
        for source_id in [p.guarantor_source_id for p in unit.patients] + [
            a.guarantor_source_id for a in unit.accounts
        ] + [c.guarantor_source_id for c in unit.consents]:
            key = sk("guarantor", source_id)
            if key not in own_g and key not in known_g:
                return "guarantor", missing.format("guarantor")
        for e in unit.entries:
            if e.account_id is None:
                key = sk("account", e.account_source_id)
                if key not in own_a and key not in known_a:
                    return "account", missing.format("account")
            if e.patient_source_id:
                key = sk("patient", e.patient_source_id)
                if key not in own_p and key not in known_p:
                    return "patient", missing.format("patient")
        for c in unit.coverages:
            key = sk("patient", c.patient_source_id)
            if key not in own_p and key not in known_p:
                return "patient", missing.format("patient")
        return None

    # -- people -------------------------------------------------------------------------

    def _guarantors(
        self,
        session: Session,
        records: dict[int, GuarantorIn],
        ids: dict[int, uuid.UUID],
        counts: _BatchCounts,
        now: datetime,
    ) -> None:
        cipher, table = self.cipher, Guarantor.__tablename__
        new = [(k, g) for k, g in records.items() if k not in ids]
        rows: list[dict[str, Any]] = []
        points: list[dict[str, Any]] = []
        if new:
            row_ids = [uuid7() for _ in new]
            people = [g for _, g in new]
            firsts = cipher.seal_many(table, "first_name", row_ids, [g.first_name for g in people])
            lasts = cipher.seal_many(table, "last_name", row_ids, [g.last_name for g in people])
            dobs = cipher.seal_many(
                table, "date_of_birth", row_ids, [g.date_of_birth for g in people]
            )
            for index, (key, g) in enumerate(new):
                gid = row_ids[index]
                ids[key] = gid
                place = g.address.place if g.address else None
                rows.append(
                    {
                        "id": gid,
                        "organization_id": self.org,
                        "first_name": Sealed(firsts[index] or b""),
                        "last_name": Sealed(lasts[index] or b""),
                        "date_of_birth": Sealed(d) if (d := dobs[index]) else None,
                        "name_dob_bidx": self._name_dob(g.last_name, g.date_of_birth),
                        "state": g.state or (place.state if place else None),
                        "mailing_tz": place.zone if place else None,
                        "other_known_tz": [],
                        "city_is_nyc": place.nyc if place else False,
                        "preferred_language": g.preferred_language,
                        "source_key": key,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                points.extend(self._points(gid, g, now))
            _insert(session, Guarantor, rows)
            counts.created["guarantor"] += len(rows)
        new_keys = {k for k, _ in new}
        existing = {k: g for k, g in records.items() if k not in new_keys}
        if existing:
            loaded = self._load(session, Guarantor, (ids[k] for k in existing))
            current_points: dict[uuid.UUID, list[ContactPoint]] = {}
            for chunk in _chunks(list(loaded), _IN_CHUNK):
                for point in session.scalars(
                    select(ContactPoint).where(ContactPoint.guarantor_id.in_(chunk))
                ):
                    current_points.setdefault(point.guarantor_id, []).append(point)
            for key, g in existing.items():
                row = loaded[ids[key]]
                changed = self._update_guarantor(row, g)
                added, retired = self._reconcile_points(row, g, current_points.get(row.id, []),
                                                        points, now)
                if changed or added or retired:
                    counts.updated["guarantor"] += 1
                else:
                    counts.unchanged["guarantor"] += 1
                counts.updated["contact_point"] += retired
        if points:
            _insert(session, ContactPoint, points)
            counts.created["contact_point"] += len(points)
        session.flush()

    def _name_dob(self, last_name: str, dob: str | None) -> int | None:
        return self.blind.name_dob(last_name, dob) if dob else None

    def _update_guarantor(self, row: Guarantor, g: GuarantorIn) -> bool:
        cipher, changed = self.cipher, False
        for column, value in (
            ("first_name", g.first_name),
            ("last_name", g.last_name),
            ("date_of_birth", g.date_of_birth),
        ):
            if cipher.open_row(row, column) != value:
                setattr(row, column, cipher.seal("guarantor", column, row.id, value))
                changed = True
        if changed:
            row.name_dob_bidx = self._name_dob(g.last_name, g.date_of_birth)
        place = g.address.place if g.address else None
        plain: dict[str, Any] = {"preferred_language": g.preferred_language}
        if g.state or place:
            plain["state"] = g.state or (place.state if place else None)
        if place:
            plain |= {"mailing_tz": place.zone, "city_is_nyc": place.nyc}
        for column, value in plain.items():
            if getattr(row, column) != value:
                setattr(row, column, value)
                changed = True
        return changed

    def _point_values(self, g: GuarantorIn) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, plaintext value, extra columns) of every contact point of a record."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        for index, p in enumerate(g.phones):
            out.append(("phone", p.e164, {"line_type": p.line_type,
                                          "area_code_tzs": list(p.zones),
                                          "is_primary": index == 0}))
        for index, address in enumerate(g.emails):
            out.append(("email", address, {"is_primary": index == 0}))
        if g.address:
            a = g.address
            text = json.dumps(
                {"line1": a.line1, "line2": a.line2, "city": a.city, "state": a.state,
                 "zip": a.place.zip5 if a.place else None},
                sort_keys=True,
            )
            out.append(("postal", text, {"address_tz": a.place.zone if a.place else None,
                                         "is_primary": True,
                                         "zip5": a.place.zip5 if a.place else None}))
        return out

    def _points(self, gid: uuid.UUID, g: GuarantorIn, now: datetime) -> list[dict[str, Any]]:
        return [self._point_row(gid, kind, value, extra, now)
                for kind, value, extra in self._point_values(g)]

    def _point_row(
        self, gid: uuid.UUID, kind: str, value: str, extra: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        cipher, table = self.cipher, ContactPoint.__tablename__
        pid = uuid7()
        zip5 = extra.get("zip5")
        bidx = None
        if kind == "phone":
            bidx = self.blind.value("phone", value)
        elif kind == "email":
            bidx = self.blind.value("email", value)
        return {
            "id": pid,
            "organization_id": self.org,
            "guarantor_id": gid,
            "kind": kind,
            "value": cipher.seal(table, "value", pid, value),
            "value_bidx": bidx,
            "postal_code": cipher.seal(table, "postal_code", pid, zip5) if zip5 else None,
            "line_type": extra.get("line_type"),
            "area_code_tzs": extra.get("area_code_tzs", []),
            "address_tz": extra.get("address_tz"),
            "owner": "debtor",
            "employer_provided": False,
            "verified": False,
            "is_primary": extra.get("is_primary", False),
            "source": "import",
            "active": True,
            "created_at": now,
            "updated_at": now,
        }

    def _reconcile_points(
        self,
        row: Guarantor,
        g: GuarantorIn,
        current: list[ContactPoint],
        out: list[dict[str, Any]],
        now: datetime,
    ) -> tuple[int, int]:
        """Add contact points the file has and the guarantor lacks; deactivate imported
        points the file no longer has (staff-entered points are never touched)."""
        wanted = self._point_values(g)
        have: dict[tuple[str, str], ContactPoint] = {}
        for point in current:
            have[(point.kind, self.cipher.open_row(point, "value") or "")] = point
        added = 0
        wanted_keys = set()
        for kind, value, extra in wanted:
            wanted_keys.add((kind, value))
            found = have.get((kind, value))
            if found is None:
                out.append(self._point_row(row.id, kind, value, extra, now))
                added += 1
            elif not found.active:
                found.active = True
                added += 1
            elif kind == "phone" and extra["line_type"] and found.line_type != extra["line_type"]:
                found.line_type = extra["line_type"]
                added += 1
        retired = 0
        for key, point in have.items():
            if key not in wanted_keys and point.source == "import" and point.active:
                point.active = False
                retired += 1
        return added, retired

    def _patients(
        self,
        session: Session,
        records: dict[int, PatientIn],
        g_ids: dict[int, uuid.UUID],
        ids: dict[int, uuid.UUID],
        counts: _BatchCounts,
        now: datetime,
    ) -> None:
        cipher, table, sk = self.cipher, Patient.__tablename__, self.sk
        new = [(k, p) for k, p in records.items() if k not in ids]
        if new:
            row_ids = [uuid7() for _ in new]
            people = [p for _, p in new]
            firsts = cipher.seal_many(table, "first_name", row_ids, [p.first_name for p in people])
            lasts = cipher.seal_many(table, "last_name", row_ids, [p.last_name for p in people])
            dobs = cipher.seal_many(table, "date_of_birth", row_ids,
                                    [p.date_of_birth for p in people])
            sexes = cipher.seal_many(table, "sex", row_ids, [p.sex for p in people])
            rows = []
            for index, (key, p) in enumerate(new):
                ids[key] = row_ids[index]
                rows.append(
                    {
                        "id": row_ids[index],
                        "organization_id": self.org,
                        "guarantor_id": g_ids[sk("guarantor", p.guarantor_source_id)],
                        "relationship_to_guarantor": p.relationship,
                        "first_name": Sealed(firsts[index] or b""),
                        "last_name": Sealed(lasts[index] or b""),
                        "date_of_birth": Sealed(d) if (d := dobs[index]) else None,
                        "name_dob_bidx": self._name_dob(p.last_name, p.date_of_birth),
                        "sex": Sealed(s) if (s := sexes[index]) else None,
                        "minor": p.minor,
                        "source_key": key,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            _insert(session, Patient, rows)
            counts.created["patient"] += len(rows)
        new_keys = {k for k, _ in new}
        existing = {k: p for k, p in records.items() if k not in new_keys}
        if existing:
            loaded = self._load(session, Patient, (ids[k] for k in existing))
            for key, p in existing.items():
                row = loaded[ids[key]]
                changed = False
                for column, value in (("first_name", p.first_name), ("last_name", p.last_name),
                                      ("date_of_birth", p.date_of_birth), ("sex", p.sex)):
                    if cipher.open_row(row, column) != value:
                        setattr(row, column, cipher.seal(table, column, row.id, value))
                        changed = True
                if changed:
                    row.name_dob_bidx = self._name_dob(p.last_name, p.date_of_birth)
                guarantor_id = g_ids[sk("guarantor", p.guarantor_source_id)]
                for column, plain in (("guarantor_id", guarantor_id),
                                      ("relationship_to_guarantor", p.relationship),
                                      ("minor", p.minor)):
                    if getattr(row, column) != plain:
                        setattr(row, column, plain)
                        changed = True
                if changed:
                    counts.updated["patient"] += 1
                else:
                    counts.unchanged["patient"] += 1
            session.flush()

    _COVERAGE_SEALED = ("payer_name", "member_id", "group_number", "period_start",
                        "period_end")

    def _coverages(
        self,
        session: Session,
        records: dict[int, CoverageIn],
        p_ids: dict[int, uuid.UUID],
        ids: dict[int, uuid.UUID],
        counts: _BatchCounts,
        now: datetime,
    ) -> None:
        """Insert new coverages, update changed ones (sealed fields compared decrypted)."""
        cipher, table, sk = self.cipher, Coverage.__tablename__, self.sk
        rows = []
        for key, c in records.items():
            if key in ids:
                continue
            row_id = uuid7()
            ids[key] = row_id
            sealed = {column: cipher.seal(table, column, row_id, getattr(c, column))
                      for column in self._COVERAGE_SEALED}
            rows.append(
                {
                    "id": row_id,
                    "organization_id": self.org,
                    "patient_id": p_ids[sk("patient", c.patient_source_id)],
                    "status": c.status,
                    **sealed,
                    "relationship": c.relationship,
                    "priority": c.priority,
                    "source_key": key,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        _insert(session, Coverage, rows)
        counts.created["coverage"] += len(rows)
        created = {row["source_key"] for row in rows}
        existing = {k: c for k, c in records.items() if k not in created}
        if not existing:
            return
        loaded = self._load(session, Coverage, (ids[k] for k in existing))
        for key, c in existing.items():
            row = loaded[ids[key]]
            changed = False
            for column in self._COVERAGE_SEALED:
                value = getattr(c, column)
                if cipher.open_row(row, column) != value:
                    setattr(row, column, cipher.seal(table, column, row.id, value)
                            if value is not None else None)
                    changed = True
            for column, plain in (("patient_id", p_ids[sk("patient", c.patient_source_id)]),
                                  ("status", c.status), ("relationship", c.relationship),
                                  ("priority", c.priority)):
                if getattr(row, column) != plain:
                    setattr(row, column, plain)
                    changed = True
            if changed:
                row.updated_at = now
                counts.updated["coverage"] += 1
            else:
                counts.unchanged["coverage"] += 1
        session.flush()

    # -- money --------------------------------------------------------------------------

    def _accounts(
        self,
        session: Session,
        records: dict[int, AccountIn],
        g_ids: dict[int, uuid.UUID],
        ids: dict[int, uuid.UUID],
        counts: _BatchCounts,
        now: datetime,
    ) -> None:
        cipher, sk = self.cipher, self.sk
        new = [(k, a) for k, a in records.items() if k not in ids]
        if new:
            row_ids = [uuid7() for _ in new]
            numbers = cipher.seal_many("account", "account_number", row_ids,
                                       [a.account_number for _, a in new])
            rows = []
            for index, (key, a) in enumerate(new):
                ids[key] = row_ids[index]
                rows.append(
                    {
                        "id": row_ids[index],
                        "organization_id": self.org,
                        "guarantor_id": g_ids[sk("guarantor", a.guarantor_source_id)],
                        "location_id": None,
                        "account_number": Sealed(numbers[index] or b""),
                        "account_number_bidx": self.blind.account_number(a.account_number),
                        "debt_kind": a.debt_kind,
                        "status": "open",
                        "opened_at": a.opened_at,
                        "first_delinquency_at": None,
                        "source_key": key,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            _insert(session, Account, rows)
            counts.created["account"] += len(rows)
        new_keys = {k for k, _ in new}
        existing = {k: a for k, a in records.items() if k not in new_keys}
        if existing:
            loaded = self._load(session, Account, (ids[k] for k in existing))
            for key, a in existing.items():
                row = loaded[ids[key]]
                changed = False
                if cipher.open_row(row, "account_number") != a.account_number:
                    row.account_number = cipher.seal(
                        "account", "account_number", row.id, a.account_number
                    )
                    row.account_number_bidx = self.blind.account_number(a.account_number)
                    changed = True
                guarantor_id = g_ids[sk("guarantor", a.guarantor_source_id)]
                for column, plain in (("guarantor_id", guarantor_id), ("debt_kind", a.debt_kind)):
                    if getattr(row, column) != plain:
                        setattr(row, column, plain)
                        changed = True
                if changed:
                    counts.updated["account"] += 1
                else:
                    counts.unchanged["account"] += 1
            session.flush()

    def _entries(
        self,
        session: Session,
        records: dict[int, EntryIn],
        a_ids: dict[int, uuid.UUID],
        p_ids: dict[int, uuid.UUID],
        ids: dict[int, uuid.UUID],
        counts: _BatchCounts,
        now: datetime,
    ) -> None:
        cipher, sk, table = self.cipher, self.sk, LedgerEntry.__tablename__
        rows: list[dict[str, Any]] = []
        new = [(k, e) for k, e in records.items() if k not in ids]
        if new:
            row_ids = [uuid7() for _ in new]
            entries = [e for _, e in new]
            dates = cipher.seal_many(table, "service_date", row_ids,
                                     [e.service_date for e in entries])
            codes = cipher.seal_many(table, "procedure_codes", row_ids,
                                     [e.procedure_codes for e in entries])
            texts = cipher.seal_many(table, "description", row_ids,
                                     [e.description for e in entries])
            for index, (key, e) in enumerate(new):
                ids[key] = row_ids[index]
                rows.append(
                    self._entry_row(
                        row_ids[index], key, e, a_ids, p_ids, now,
                        service_date=dates[index], procedure_codes=codes[index],
                        description=texts[index],
                    )
                )
            counts.created["ledger_entry"] += len(rows)
        new_keys = {k for k, _ in new}
        existing = {k: e for k, e in records.items() if k not in new_keys}
        if existing:
            original_ids = [ids[k] for k in existing]
            effective: dict[uuid.UUID, int] = {}
            corrections: dict[uuid.UUID, int] = {}
            for chunk in _chunks(original_ids, _IN_CHUNK):
                for entry_id, amount in session.execute(
                    select(LedgerEntry.id, LedgerEntry.amount_cents).where(
                        LedgerEntry.id.in_(chunk)
                    )
                ):
                    effective[entry_id] = int(amount)
                for target, total, number in session.execute(
                    select(
                        LedgerEntry.applies_to_entry_id,
                        func.sum(LedgerEntry.amount_cents),
                        func.count(LedgerEntry.id),
                    )
                    .where(
                        LedgerEntry.applies_to_entry_id.in_(chunk),
                        LedgerEntry.kind == "adjustment",
                        LedgerEntry.source_key.is_not(None),
                    )
                    .group_by(LedgerEntry.applies_to_entry_id)
                ):
                    if target is not None:
                        effective[target] += int(total)
                        corrections[target] = int(number)
            for key, e in existing.items():
                original = ids[key]
                difference = e.amount_cents - effective[original]
                if difference == 0:
                    counts.unchanged["ledger_entry"] += 1
                    continue
                # Append-only ledger: the change is a new entry pointing at the original.
                number = corrections.get(original, 0) + 1
                correction_key = sk("entry", f"{e.source_id}#correction#{number}")
                correction = EntryIn(
                    source_id=e.source_id, account_source_id=e.account_source_id,
                    kind="adjustment", amount_cents=difference, posted_at=now,
                    patient_source_id=e.patient_source_id,
                    description="import correction", account_id=e.account_id,
                )
                row_id = uuid7()
                rows.append(
                    self._entry_row(
                        row_id, correction_key, correction, a_ids, p_ids, now,
                        service_date=None, procedure_codes=None,
                        description=cipher.seal_many(table, "description", [row_id],
                                                     [correction.description])[0],
                        applies_to=original,
                    )
                )
                counts.corrections += 1
                counts.updated["ledger_entry"] += 1
        if rows:
            _insert(session, LedgerEntry, rows)

    def _entry_row(
        self,
        row_id: uuid.UUID,
        key: int,
        e: EntryIn,
        a_ids: dict[int, uuid.UUID],
        p_ids: dict[int, uuid.UUID],
        now: datetime,
        *,
        service_date: bytes | None,
        procedure_codes: bytes | None,
        description: bytes | None,
        applies_to: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        if e.kind not in ENTRY_KINDS:
            raise ValueError("unknown ledger entry kind")  # parsers validate kinds first
        sk = self.sk
        return {
            "id": row_id,
            "organization_id": self.org,
            "account_id": e.account_id or a_ids[sk("account", e.account_source_id)],
            "patient_id": (
                p_ids.get(sk("patient", e.patient_source_id)) if e.patient_source_id else None
            ),
            "kind": e.kind,
            "amount_cents": e.amount_cents,
            "posted_at": e.posted_at,
            "service_date": Sealed(service_date) if service_date else None,
            "procedure_codes": Sealed(procedure_codes) if procedure_codes else None,
            "description": Sealed(description) if description else None,
            "applies_to_entry_id": applies_to,
            "external_reference": None,
            "source_key": key,
            "created_at": now,
        }

    # -- consent ------------------------------------------------------------------------

    def _consents(
        self,
        session: Session,
        records: list[ConsentIn],
        g_ids: dict[int, uuid.UUID],
        counts: _BatchCounts,
    ) -> None:
        if not records:
            return
        session.flush()
        sk = self.sk
        for c in records:
            gid = g_ids[sk("guarantor", c.guarantor_source_id)]
            query = select(ContactPoint.id).where(
                ContactPoint.guarantor_id == gid, ContactPoint.active.is_(True)
            )
            if c.contact_kind:
                query = query.where(ContactPoint.kind == c.contact_kind)
            point_ids: list[uuid.UUID | None] = list(session.scalars(query)) or [None]
            for point_id in point_ids:
                if c.permit:
                    exists = session.scalar(
                        select(Consent.id).where(
                            Consent.guarantor_id == gid, Consent.contact_point_id == point_id,
                            Consent.kind == c.kind, Consent.granted_at == c.at,
                        )
                    )
                    if exists is None:
                        session.add(Consent(
                            id=uuid7(), organization_id=self.org, guarantor_id=gid,
                            contact_point_id=point_id, kind=c.kind, granted_at=c.at,
                            method=c.method, source="import",
                        ))
                        counts.created["consent"] += 1
                    else:
                        counts.unchanged["consent"] += 1
                else:
                    exists = session.scalar(
                        select(Revocation.id).where(
                            Revocation.guarantor_id == gid,
                            Revocation.contact_point_id == point_id,
                            Revocation.channel == c.channel, Revocation.received_at == c.at,
                        )
                    )
                    if exists is None:
                        session.add(Revocation(
                            id=uuid7(), organization_id=self.org, guarantor_id=gid,
                            contact_point_id=point_id, channel=c.channel, received_at=c.at,
                            method=c.method,
                        ))
                        counts.created["revocation"] += 1
                    else:
                        counts.unchanged["revocation"] += 1
        session.flush()


# The driver ------------------------------------------------------------------------------


def _batches(items: Iterable[Unit | RowError], size: int) -> Iterator[list[Unit | RowError]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def run_import(
    db: Database,
    keys: OrganizationKeys,
    units: Iterable[Unit | RowError],
    *,
    format_name: str,
    system: str,
    actor: Actor,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_error: ErrorSink | None = None,
    on_batch: Callable[[ImportSummary], None] | None = None,
    check_baa: bool = True,
) -> ImportSummary:
    """Stream `units` into the database in batches; returns the summary.

    Memory is bounded by one batch: units are consumed lazily and nothing of a written
    batch is kept. Row errors go to `on_error` as they happen (the CLI writes them to the
    report file the user asked for) and the first hundred are kept in the summary.
    """
    if check_baa:
        require_baa(db, keys.organization_id)
    summary = ImportSummary(format=format_name, run_id=uuid7(), dry_run=dry_run)
    writer = BatchWriter(db, keys, system=system, actor=actor, format_name=format_name,
                         run_id=summary.run_id, dry_run=dry_run)

    def report(error: RowError) -> None:
        summary.rows_rejected += 1
        if len(summary.first_errors) < 100:
            summary.first_errors.append(error)
        if on_error is not None:
            on_error(error)

    for batch in _batches(units, batch_size):
        good: list[Unit] = []
        for item in batch:
            summary.rows_read += 1
            if isinstance(item, RowError):
                report(item)
            else:
                good.append(item)
        if good:
            accepted, rejected, counts = writer.write(good)
            for error in rejected:
                report(error)
            summary.rows_imported += len(accepted)
            summary.created.update(counts.created)
            summary.updated.update(counts.updated)
            summary.unchanged.update(counts.unchanged)
            summary.corrections += counts.corrections
            for unit in accepted:
                summary.noted.update(unit.noted)
            summary.batches += 1
            # Counts and ids only: "log ids, never values" (kit/logging.py).
            log.info("import.batch", run_id=str(summary.run_id), batch=summary.batches,
                     rows_count=len(batch), rejected_count=summary.rows_rejected)
        if on_batch is not None:
            on_batch(summary)
    for counter in (summary.created, summary.updated, summary.unchanged, summary.noted):
        for key in [k for k, v in counter.items() if not v]:
            del counter[key]
    _record_summary(db, keys.organization_id, actor, summary)
    return summary


def _record_summary(
    db: Database, organization_id: uuid.UUID, actor: Actor, summary: ImportSummary
) -> None:
    if summary.dry_run:
        return
    with db.tenant_session(organization_id) as session:
        record(
            session,
            actor=actor,
            action="import.run",
            subject=Subject("import", summary.run_id, organization_id=organization_id),
            details={"format": summary.format, "stage": "summary", **summary.counts()},
        )
