"""Audit trail benchmark (SQLite, the embedded default).

1. Appends N events with `record()` (1,000 per transaction), integrates them, and
   verifies the whole log; prints events/s for each.
2. Writes the same M business rows twice, one transaction per row as a request would:
   once alone (baseline) and once with its audit event; prints the audited/unaudited
   time ratio measured in this run.

    .venv/bin/python bench/audit.py [--events 1000000] [--rows 20000] [--keep DIR]
    .venv/bin/python bench/audit.py --ratio-only [--rows 40000] [--repeat 3]   # part 2 only
    .venv/bin/python bench/audit.py --reuse DIR [--repeat 3]   # verification only

Targets (issue 3): integration >= 50,000 events/s, verification >= 200,000 events/s,
audited/unaudited write ratio <= 1.3.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
)

from carecollect.audit import Actor, Subject, record
from carecollect.audit.integrator import integrate
from carecollect.audit.keys import create_signing_key, default_verifier, load_signer
from carecollect.audit.verification import (
    _database_sources,
    _entry_batches,
    _file_sources,
    verify_database,
)
from carecollect.db import Database
from carecollect.kit.audit.checkpoint import Verifier
from carecollect.kit.audit.verifier import verify_log
from carecollect.kit.ids import uuid7
from carecollect.migrations.runner import upgrade

ORG = uuid.UUID("0190f0e0-0000-7000-8000-000000000001")

# The unaudited baseline: a row shaped like `ledger_entry` (the product's most frequent
# write) with the same indexes - UUID primary key, organization, (account, posted_at),
# unique (organization, source_key) - and three sealed (encrypted) ~60-byte fields.
bench_metadata = MetaData()
business = Table(
    "bench_ledger_entry",
    bench_metadata,
    Column("id", Uuid(), primary_key=True),
    Column("organization_id", Uuid(), nullable=False, index=True),
    Column("account_id", Uuid(), nullable=False),
    Column("patient_id", Uuid(), nullable=True),
    Column("kind", String(24), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("posted_at", String(32), nullable=False),
    Column("service_date", LargeBinary, nullable=True),
    Column("procedure_codes", LargeBinary, nullable=True),
    Column("description", LargeBinary, nullable=True),
    Column("source_key", BigInteger, nullable=True),
    Column("created_at", String(32), nullable=False),
    Index("ix_bench_ledger_account_posted", "account_id", "posted_at"),
    Index("ix_bench_ledger_org_source", "organization_id", "source_key", unique=True),
)


def machine_reference() -> float:
    """Seconds for 200,000 SHA-256 of 300 bytes: printed so figures from a loaded or slow
    machine can be put in proportion (a typical 2020s x86 core needs about 0.1 s)."""
    data = b"x" * 300
    started = time.perf_counter()
    for _ in range(200_000):
        hashlib.sha256(data).digest()
    return time.perf_counter() - started


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


def write_rows(
    db: Database, rows: list[dict[str, object]], *, audited: bool
) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to write `rows`, one transaction each."""
    statement = insert(business)
    staff = Actor.staff(uuid7())
    cpu = time.process_time()
    started = time.perf_counter()
    for row in rows:
        with db.system_session() as session:
            session.execute(statement, row)
            if audited:
                record(
                    session,
                    actor=staff,
                    action="payment.post",
                    subject=Subject(
                        "ledger_entry",
                        str(row["id"]),
                        organization_id=ORG,
                        patient_id=str(row["patient_id"]),
                    ),
                    details={"kind": "payment", "fields": ["amount_cents"]},
                )
    return time.perf_counter() - started, time.process_time() - cpu


def write_ratio(db: Database, rows: list[dict[str, object]]) -> tuple[float, float, int]:
    """(wall ratio, CPU ratio, rows each way) of audited to unaudited writes of `rows`.

    Baseline and audited writes interleave in quarters, so drift (WAL growth, other load
    on the machine) falls on both sides equally."""
    quarter = len(rows) // 4
    timings = [
        write_rows(db, rows[i * quarter : (i + 1) * quarter], audited=bool(i % 2))
        for i in range(4)
    ]
    plain = timings[0][0] + timings[2][0]
    audited = timings[1][0] + timings[3][0]
    plain_cpu = timings[0][1] + timings[2][1]
    audited_cpu = timings[1][1] + timings[3][1]
    each_way = 2 * quarter
    print(
        f"writes, one transaction per row ({each_way:,} rows each way): unaudited "
        f"{each_way / plain:,.0f} rows/s ({plain_cpu * 1e6 / each_way:.0f} CPU-us/row), "
        f"audited {each_way / audited:,.0f} rows/s ({audited_cpu * 1e6 / each_way:.0f} "
        f"CPU-us/row)",
        flush=True,
    )
    return audited / plain, audited_cpu / plain_cpu, each_way


def ratio_only(rows_each_way: int, repeat: int) -> None:
    """Only the audited/unaudited write ratio, `repeat` times, each on a fresh database
    (the same state the full run measures in); prints every run and the median."""
    results: list[tuple[float, float]] = []
    for run in range(max(1, repeat)):
        with tempfile.TemporaryDirectory(prefix="cc-bench-audit-") as tmp:
            db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
            upgrade(db.engine)
            bench_metadata.create_all(db.engine)
            rows = make_rows(rows_each_way * 2)
            load_before = os.getloadavg()
            cpu, started = cpu_now(), time.perf_counter()
            wall_ratio, cpu_ratio, _ = write_ratio(db, rows)
            seconds, cpu_seconds = time.perf_counter() - started, cpu_now() - cpu
            load_after = os.getloadavg()
            db.dispose()
        results.append((wall_ratio, cpu_ratio))
        print(
            f"run {run + 1}: audited/unaudited write ratio {wall_ratio:.3f} wall, "
            f"{cpu_ratio:.3f} CPU ({seconds:.1f} s wall, {cpu_seconds:.1f} CPU-s; load average "
            f"{load_before[0]:.2f}/{load_before[1]:.2f} before, "
            f"{load_after[0]:.2f}/{load_after[1]:.2f} after)",
            flush=True,
        )
    walls = sorted(wall for wall, _ in results)
    cpus = sorted(cpu for _, cpu in results)
    print(
        f"median of {len(results)}: {walls[len(walls) // 2]:.3f} wall, "
        f"{cpus[len(cpus) // 2]:.3f} CPU (target <= 1.3)",
        flush=True,
    )


def make_rows(count: int) -> list[dict[str, object]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": uuid7(),
            "organization_id": ORG,
            "account_id": uuid7(),
            "patient_id": uuid7(),
            "kind": "payment",
            "amount_cents": -1000 - i,
            "posted_at": now,
            "service_date": os.urandom(48),
            "procedure_codes": os.urandom(60),
            "description": os.urandom(80),
            "source_key": i,
            "created_at": now,
        }
        for i in range(count)
    ]


def cpu_now() -> float:
    """CPU seconds of this process and of its finished children (the verifier's workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed_verify(
    db: Database, verifier: Verifier, checkpoints: Path, label: str, **options: Any
) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, entries) of one verification; prints its line."""
    load = os.getloadavg()[0]
    cpu = cpu_now()
    started = time.perf_counter()
    if options.pop("streaming", False):
        # The previous verifier, kept for deep checks: one process, rows joined in Python.
        with db.engine.connect() as conn, conn.begin():
            sources = _database_sources(conn) + _file_sources(checkpoints)
            report = verify_log(_entry_batches(conn), sources, verifier)
    else:
        report = verify_database(
            db.engine, verifier=verifier, checkpoint_dir=checkpoints, **options
        )
    seconds = time.perf_counter() - started
    cpu_seconds = cpu_now() - cpu
    entries = report.entries_checked
    if not report.ok:
        raise SystemExit(f"verification failed: {report.as_dict()}")
    print(
        f"verify, {label}: {entries / seconds:,.0f} entries/s wall, "
        f"{entries / cpu_seconds:,.0f} per CPU-second ({seconds:.2f} s wall, "
        f"{cpu_seconds:.2f} CPU-s, {cpu_seconds * 1e6 / entries:.2f} CPU-s per 1M entries, "
        f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)",
        flush=True,
    )
    return seconds, cpu_seconds, entries


def verify_only(directory: Path, repeat: int) -> None:
    """Verify a database kept by --keep: the previous single-process streaming verifier
    (baseline) once, then the segment verifier with one and with two processes, `repeat`
    times alternating (the machine is shared: the best and the median show the spread)."""
    db = Database(f"sqlite:///{directory / 'bench.db'}")
    verifier = default_verifier(directory / "keys" / "audit-signing.key")
    checkpoints = directory / "checkpoints"
    _, base_cpu, entries = timed_verify(
        db, verifier, checkpoints, "previous streaming verifier", streaming=True
    )
    runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(max(1, min(repeat, 5))):
        for workers in (1, 2):
            seconds, cpu_seconds, _ = timed_verify(
                db,
                verifier,
                checkpoints,
                f"segments, {workers} process{'es' if workers > 1 else ''}",
                workers=workers,
            )
            runs[workers].append((seconds, cpu_seconds))
    db.dispose()
    print("---")
    for workers, found in runs.items():
        walls = sorted(wall for wall, _ in found)
        cpus = sorted(cpu for _, cpu in found)
        print(
            f"segments, {workers} process(es), {len(found)} run(s): wall best "
            f"{entries / walls[0]:,.0f}/s, median {entries / walls[len(walls) // 2]:,.0f}/s; "
            f"CPU-s per 1M entries best {cpus[0] * 1e6 / entries:.2f}, median "
            f"{cpus[len(cpus) // 2] * 1e6 / entries:.2f} (streaming baseline "
            f"{base_cpu * 1e6 / entries:.2f}: ratio {cpus[len(cpus) // 2] / base_cpu:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--keep", type=Path, default=None, help="build the database in this directory and keep it"
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="only verify (baseline and new verifier) a directory made by --keep",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="with --reuse: rounds of the segment verifier (at most 5); with --ratio-only: "
        "runs of the write ratio",
    )
    parser.add_argument(
        "--ratio-only",
        action="store_true",
        help="only the audited/unaudited write ratio (--rows each way), --repeat times",
    )
    args = parser.parse_args()
    if args.reuse is not None:
        verify_only(args.reuse, args.repeat)
        return
    if args.ratio_only:
        ratio_only(args.rows, args.repeat)
        return
    reference = machine_reference()
    with tempfile.TemporaryDirectory(prefix="cc-bench-audit-") as tmp:
        directory = Path(tmp) if args.keep is None else args.keep
        directory.mkdir(parents=True, exist_ok=True)
        db = Database(f"sqlite:///{directory / 'bench.db'}")
        upgrade(db.engine)
        bench_metadata.create_all(db.engine)
        key = directory / "keys" / "audit-signing.key"
        create_signing_key(key)
        signer, verifier = load_signer(key), default_verifier(key)
        checkpoints = directory / "checkpoints"

        print(
            f"machine reference: 200,000 x SHA-256(300 B) in {reference:.3f} s "
            "(about 0.1 s on an idle modern core)",
            flush=True,
        )
        # Writes first, on a fresh database, so the business table and the audit table
        # start equal.
        write_load = os.getloadavg()[0]
        wall_ratio, cpu_ratio, each_way = write_ratio(db, make_rows(args.rows * 2))
        write_load_text = f"load average {write_load:.1f} before, {os.getloadavg()[0]:.1f} after"
        print(
            f"audited/unaudited write time ratio: {wall_ratio:.3f} wall, "
            f"{cpu_ratio:.3f} CPU ({write_load_text})",
            flush=True,
        )
        # Sequence the write phase's events now, so the timed run covers exactly N.
        integrate(db.engine, signer=signer, checkpoint_dir=checkpoints)

        append_seconds = append_events(db, args.events)
        print(f"append: {args.events / append_seconds:,.0f} events/s", flush=True)
        cpu = time.process_time()
        started = time.perf_counter()
        result = integrate(db.engine, signer=signer, checkpoint_dir=checkpoints, batch_size=50_000)
        integrate_seconds = time.perf_counter() - started
        integrate_cpu = time.process_time() - cpu
        print(
            f"integrate: {args.events / integrate_seconds:,.0f} events/s "
            f"({args.events / integrate_cpu:,.0f} per CPU-second)",
            flush=True,
        )
        if result.integrated != args.events:
            raise SystemExit(f"integrated {result.integrated} of {args.events} events")
        # CPU of this process and of the verifier's worker processes (process_time() alone
        # would leave the workers out).
        cpu = cpu_now()
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        report = verify_database(db.engine, verifier=verifier, checkpoint_dir=checkpoints)
        verify_seconds = time.perf_counter() - started
        verify_cpu = cpu_now() - cpu
        verified = report.entries_checked  # N plus the write phase's events
        verify_load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        print(
            f"verify: {verified / verify_seconds:,.0f} events/s "
            f"({verified / verify_cpu:,.0f} per CPU-second, "
            f"{verify_cpu * 1e6 / verified:.2f} CPU-s per 1M; {verify_load})",
            flush=True,
        )
        if not report.ok or report.entries_checked != result.tree_size:
            raise SystemExit(f"verification failed: {report.as_dict()}")

        db.dispose()

    n = args.events
    print("---")
    print(f"events: {n:,}")
    print(f"append (record(), 1,000 per transaction): {n / append_seconds:>12,.0f} events/s")
    print(
        f"integrate:                                {n / integrate_seconds:>12,.0f} events/s"
        f"  ({n / integrate_cpu:,.0f} per CPU-second; target >= 50,000)"
    )
    print(
        f"verify ({verified:,} entries):{'':<14}{verified / verify_seconds:>12,.0f} events/s"
        f"  ({verified / verify_cpu:,.0f} per CPU-second, {verify_cpu * 1e6 / verified:.2f} "
        f"CPU-s per 1M; {verify_load}; target >= 200,000)"
    )
    print(
        f"writes, one transaction per row ({each_way:,} rows each way): audited/unaudited "
        f"time ratio {wall_ratio:.3f} wall, {cpu_ratio:.3f} CPU ({write_load_text}; "
        "target <= 1.3)"
    )


if __name__ == "__main__":
    main()
