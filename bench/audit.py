"""Audit trail benchmark (SQLite, the embedded default).

1. Appends N events with `record()` (1,000 per transaction), integrates them, and
   verifies the whole log; prints events/s for each.
2. Writes the same M business rows twice, one transaction per row as a request would:
   once alone (baseline) and once with its audit event; prints the audited/unaudited
   time ratio measured in this run.

    .venv/bin/python bench/audit.py [--events 1000000] [--rows 20000]

Targets (issue 3): integration >= 50,000 events/s, verification >= 200,000 events/s,
audited/unaudited write ratio <= 1.3.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, Uuid, insert

from carecollect.audit import Actor, Subject, record
from carecollect.audit.integrator import integrate
from carecollect.audit.keys import create_signing_key, default_verifier, load_signer
from carecollect.audit.verification import verify_database
from carecollect.db import Database
from carecollect.kit.ids import uuid7
from carecollect.migrations.runner import upgrade

ORG = uuid.UUID("0190f0e0-0000-7000-8000-000000000001")

# A stand-in for a typical tenant row written by a request: ids, a state, an amount and
# an encrypted field (AES-GCM envelope of a short value, ~60 bytes), one secondary index.
bench_metadata = MetaData()
business = Table(
    "bench_change",
    bench_metadata,
    Column("id", Uuid(), primary_key=True),
    Column("organization_id", Uuid(), nullable=False, index=True),
    Column("patient_id", Uuid(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("note_ciphertext", LargeBinary, nullable=False),
    Column("changed_at", String(32), nullable=False),
)


def append_events(db: Database, count: int) -> float:
    staff = [uuid7() for _ in range(20)]
    patients = [uuid7() for _ in range(5000)]
    started = time.perf_counter()
    done = 0
    while done < count:
        with db.system_session() as session:
            for i in range(done, min(count, done + 1000)):
                record(
                    session,
                    actor=Actor.staff(staff[i % 20]),
                    action="patient.read",
                    subject=Subject("patient", patients[i % 5000], organization_id=ORG),
                    details={"fields": ["last_name", "date_of_birth"], "reason": "call"},
                )
        done = min(count, done + 1000)
    return time.perf_counter() - started


def write_rows(db: Database, rows: list[dict[str, object]], *, audited: bool) -> float:
    statement = insert(business)
    staff = Actor.staff(uuid7())
    started = time.perf_counter()
    for row in rows:
        with db.system_session() as session:
            session.execute(statement, row)
            if audited:
                record(
                    session,
                    actor=staff,
                    action="payment.post",
                    subject=Subject("payment", row["id"], organization_id=ORG,  # type: ignore[arg-type]
                                    patient_id=row["patient_id"]),  # type: ignore[arg-type]
                    details={"amount_field": "amount_cents", "state": "posted"},
                )
    return time.perf_counter() - started


def make_rows(count: int) -> list[dict[str, object]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": uuid7(),
            "organization_id": ORG,
            "patient_id": uuid7(),
            "state": "posted",
            "amount_cents": 1000 + i,
            "note_ciphertext": os.urandom(60),
            "changed_at": now,
        }
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cc-bench-audit-") as tmp:
        directory = Path(tmp)
        db = Database(f"sqlite:///{directory / 'bench.db'}")
        upgrade(db.engine, revision="0002")  # 0003 currently drops audit_tree_hash
        bench_metadata.create_all(db.engine)
        key = directory / "keys" / "audit-signing.key"
        create_signing_key(key)
        signer, verifier = load_signer(key), default_verifier(key)
        checkpoints = directory / "checkpoints"

        append_seconds = append_events(db, args.events)
        started = time.perf_counter()
        result = integrate(db.engine, signer=signer, checkpoint_dir=checkpoints,
                           batch_size=50_000)
        integrate_seconds = time.perf_counter() - started
        assert result.integrated == args.events
        started = time.perf_counter()
        report = verify_database(db.engine, verifier=verifier, checkpoint_dir=checkpoints)
        verify_seconds = time.perf_counter() - started
        assert report.ok, report.as_dict()
        assert report.entries_checked == args.events

        # Baseline and audited writes interleaved in halves, so drift (WAL growth, other
        # load on the machine) falls on both sides equally.
        rows = make_rows(args.rows * 2)
        half = args.rows // 2
        plain = write_rows(db, rows[:half], audited=False)
        audited = write_rows(db, rows[half:2 * half], audited=True)
        plain += write_rows(db, rows[2 * half:3 * half], audited=False)
        audited += write_rows(db, rows[3 * half:4 * half], audited=True)
        db.dispose()

    n = args.events
    print(f"events: {n:,}")
    print(f"append (record(), 1,000 per transaction): {n / append_seconds:>12,.0f} events/s")
    print(f"integrate:                                {n / integrate_seconds:>12,.0f} events/s"
          "  (target >= 50,000)")
    print(f"verify:                                   {n / verify_seconds:>12,.0f} events/s"
          "  (target >= 200,000)")
    print(f"writes, one transaction per row ({2 * half:,} rows each way):")
    print(f"  unaudited: {2 * half / plain:>10,.0f} rows/s")
    print(f"  audited:   {2 * half / audited:>10,.0f} rows/s")
    print(f"  audited/unaudited time ratio: {audited / plain:.3f}  (target <= 1.3)")


if __name__ == "__main__":
    main()
