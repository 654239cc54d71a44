"""Insights dashboard benchmark (issue 9): the headline reports on a large portfolio.

Setup (timed separately, not part of the figures): a migrated database (SQLite file or a
throwaway PostgreSQL database) with one organization, 10 locations, 1,000 guarantors,
N accounts (default 1,000,000) and about 10 ledger lines per account (10,000,000),
30 % of the accounts enrolled in one of two campaigns (10 % holdout), and
`--attempts-per-account` outreach attempts (2 % blocked, 3 % re-timed). Bulk loaded:
sqlite3 executemany on SQLite, COPY on PostgreSQL, secondary indexes dropped during the
load and rebuilt after, then ANALYZE. Sealed columns hold placeholder bytes: no report
decrypts anything. Only the tables the dashboards read are written.

Timed:
* the full rollup rebuild (`insight.rollup.refresh`), once;
* every dashboard report (`insight.service.DASHBOARD`), `--runs` times each, in a fresh
  tenant session (row-level security on PostgreSQL), period = the last 12 months;
* the whole dashboard with a location filter, `--runs` times;
* the same reports right after 1,000 new ledger lines (live correction of the touched
  accounts, before the next refresh), then the incremental refresh.
Baseline in the same run: `SELECT count(*) FROM ledger_entry` (and FROM account) `--runs`
times. Wall time and this process's CPU time are reported (on PostgreSQL the server's
CPU is not in the process figure).

Run: .venv/bin/python bench/insights.py [--backend sqlite|postgresql|both]
     [--accounts N] [--lines L] [--runs R] [--attempts-per-account F] [--keep]
     [--reuse] [--build-only] [--cache-dir DIR] [--drop-cache]

--reuse keeps the generated portfolio (SQLite file in --cache-dir, default
/tmp/cc-insights-cache; PostgreSQL database cc_bench_insights_<N>_<L>_<attempts>) with a
`.done` marker, and later runs with the same scale reuse it: they first delete what an
earlier run wrote (the 1,000 extra lines and the rollup). --build-only generates and
caches without measuring; --drop-cache deletes the cached databases of that scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine, text  # noqa: E402

from carecollect.db import Database  # noqa: E402
from carecollect.insight.rollup import refresh  # noqa: E402
from carecollect.insight.schemas import ReportFilters  # noqa: E402
from carecollect.insight.service import DASHBOARD, build_dashboard, build_report  # noqa: E402
from carecollect.migrations.runner import upgrade  # noqa: E402

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 27, 17, 0, tzinfo=UTC)  # noon in New York
CREATED = dt.datetime(2026, 1, 1, tzinfo=UTC)  # every generated row "written" long ago
FILTERS = ReportFilters(dt.date(2025, 12, 1), dt.date(2026, 12, 1))
LOCATIONS = 10
GUARANTORS = 1_000
TABLES = ("account", "ledger_entry", "campaign_enrollment", "outreach_attempt")
PG_ADMIN = os.environ.get("CARECOLLECT_TEST_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Ids:
    """Time-ordered ids like the application's UUIDv7: a fixed prefix and a counter."""

    def __init__(self, prefix: int) -> None:
        self.prefix = prefix << 64
        self.counter = 0

    def next_hex(self) -> str:
        self.counter += 1
        return f"{self.prefix | self.counter:032x}"


def sqlite_ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def pg_ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f+00")


# -- the synthetic portfolio ----------------------------------------------------------------

KINDS = (("charge", 35), ("insurance_payment", 25), ("insurance_adjustment", 5),
         ("patient_payment", 28), ("write_off", 4), ("refund", 3))
KIND_TABLE = [kind for kind, weight in KINDS for _ in range(weight)]


def ledger_lines(rng: random.Random, lines: int) -> Iterator[tuple[str, int, dt.datetime]]:
    """One account's lines: a first charge, then a random mix, in posting order."""
    start = NOW - dt.timedelta(days=rng.randint(30, 730), seconds=rng.randint(0, 86_399))
    when = start
    balance = 0
    paid = 0
    for i in range(lines):
        kind = "charge" if i == 0 else rng.choice(KIND_TABLE)
        if kind != "charge" and kind != "refund" and balance <= 1_000:
            kind = "charge"
        if kind == "refund" and paid < 1_000:
            kind = "patient_payment" if balance > 1_000 else "charge"
        if kind == "charge":
            amount = rng.randint(5_000, 80_000)
        elif kind == "refund":
            amount = -rng.randint(500, min(paid, 5_000))
        else:
            amount = rng.randint(500, max(500, balance * 6 // 10))
        signed = amount if kind == "charge" else -amount
        balance += signed
        if kind == "patient_payment":
            paid += amount
        elif kind == "refund":
            paid += amount  # amount is negative here: less paid
        yield kind, signed, when
        when = min(when + dt.timedelta(days=rng.randint(1, 40), seconds=rng.randint(0, 3_600)),
                   NOW - dt.timedelta(hours=1))


def portfolio(n: int, lines_per_account: int, attempts_per_account: float,
              seed: int = 9) -> dict[str, Any]:
    rng = random.Random(seed)
    org = uuid.UUID(int=(0x0190_0000_0000_7000 << 64) | 0x8000_0000_0000_0001).hex
    location_ids = [uuid.UUID(int=(0x0190_0000_0001_7000 << 64) | (0x8000 << 48) | i).hex
                    for i in range(LOCATIONS)]
    guarantor_ids = [uuid.UUID(int=(0x0190_0000_0002_7000 << 64) | (0x8000 << 48) | i).hex
                     for i in range(GUARANTORS)]
    campaign_ids = [uuid.UUID(int=(0x0190_0000_0003_7000 << 64) | (0x8000 << 48) | i).hex
                    for i in range(2)]
    return {"rng": rng, "n": n, "lines": lines_per_account, "attempts": attempts_per_account,
            "org": org, "locations": location_ids, "guarantors": guarantor_ids,
            "campaigns": campaign_ids}


def rows(p: dict[str, Any], fmt: Callable[[dt.datetime], str]) -> Iterator[tuple[str, Any]]:
    """(table, row tuple) for every generated row, accounts first then their lines."""
    rng: random.Random = p["rng"]
    account_ids = Ids(0x0190_0000_0010_7000)
    line_ids = Ids(0x0190_0000_0020_7000)
    enrollment_ids = Ids(0x0190_0000_0030_7000)
    org = p["org"]
    created = fmt(CREATED)
    accounts: list[tuple[str, str, dt.datetime]] = []
    for i in range(p["n"]):
        account = account_ids.next_hex()
        guarantor = p["guarantors"][i % GUARANTORS]
        location = p["locations"][i % LOCATIONS]
        count = rng.randint(p["lines"] - 5, p["lines"] + 5) if p["lines"] > 5 else p["lines"]
        lines = list(ledger_lines(rng, count))
        opened = lines[0][2]
        yield "account", (account, org, guarantor, location, fmt(opened), created, created)
        for kind, amount, posted in lines:
            yield "ledger_entry", (line_ids.next_hex(), org, account, kind, amount, fmt(posted),
                                   created)
        if rng.random() < 0.3:
            enrolled = min(opened + dt.timedelta(days=rng.randint(5, 60)), NOW)
            cohort = "holdout" if rng.random() < 0.1 else "treatment"
            yield "campaign_enrollment", (enrollment_ids.next_hex(), org, p["campaigns"][i % 2],
                                          account, guarantor, cohort, fmt(enrolled), created,
                                          created)
        accounts.append((account, guarantor, opened))
    attempt_ids = Ids(0x0190_0000_0040_7000)
    total = int(p["n"] * p["attempts"])
    for i in range(total):
        account, guarantor, opened = accounts[rng.randrange(len(accounts))]
        when = NOW - dt.timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86_399))
        roll = rng.random()
        state, reasons, outcome, next_allowed = "sent", "[]", "send", None
        if roll < 0.02:
            state, reasons = "blocked", json.dumps([rng.choice(
                ["REGF-7IN7", "TCPA-CONSENT", "REGF-TIME-8-9", "PLAT-CEASE"])])
        elif roll < 0.05:
            outcome, next_allowed = "retime", fmt(when)
            reasons = json.dumps([rng.choice(["REGF-TIME-8-9", "REGF-7IN7"])])
        elif roll < 0.10:
            state = "failed"
        channel = rng.choice(("sms", "email", "letter", "call"))
        yield "outreach_attempt", (
            attempt_ids.next_hex(), org, guarantor, account, channel, "t", "en",
            f"c{i % 2}", "0:A", f"bench-{i}", state, fmt(when), reasons, next_allowed,
            0, 0, json.dumps({"planned_outcome": outcome}), fmt(when), fmt(when),
            fmt(when) if state == "sent" else None)


COLUMNS = {
    "account": ("id", "organization_id", "guarantor_id", "location_id", "opened_at",
                "created_at", "updated_at"),
    "ledger_entry": ("id", "organization_id", "account_id", "kind", "amount_cents",
                     "posted_at", "created_at"),
    "campaign_enrollment": ("id", "organization_id", "campaign_id", "account_id",
                            "guarantor_id", "cohort", "enrolled_at", "created_at",
                            "updated_at"),
    "outreach_attempt": ("id", "organization_id", "guarantor_id", "account_id", "channel",
                         "template_key", "language", "cadence_key", "step_key",
                         "idempotency_key", "state", "scheduled_for", "reasons",
                         "next_allowed_at", "send_count", "reconcile_count", "details",
                         "created_at", "updated_at", "sent_at"),
}
# Constant columns appended to every row of a table (NOT NULL ones the generator fixes).
CONSTANTS = {
    "account": (("account_number", b"\x00"), ("debt_kind", "dental"), ("status", "open")),
    "ledger_entry": (),
    "campaign_enrollment": (("next_step", 0), ("status", "active"), ("variant", "A")),
    "outreach_attempt": (),
}


def small_tables(conn: Any, p: dict[str, Any], fmt: Callable[[dt.datetime], str],
                 placeholder: str) -> None:
    created = fmt(CREATED)
    cur = conn.cursor()

    def insert(table: str, values: dict[str, Any]) -> None:
        names = ", ".join(values)
        marks = ", ".join([placeholder] * len(values))
        cur.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608
                    tuple(values.values()))

    insert("organization", {"id": p["org"], "slug": "bench", "legal_name": "Bench Dental",
                            "billing_display_name": "Bench Billing",
                            "entity_kind": "dental_practice", "provider_license_state": "MA",
                            "timezone": "America/New_York", "operated_by_covered_entity": True,
                            "blind_index_bits": 18, "state": "active", "created_at": created,
                            "updated_at": created})
    for i, location in enumerate(p["locations"]):
        insert("location", {"id": location, "organization_id": p["org"], "name": f"Office {i}",
                            "state": "MA", "timezone": "America/New_York", "postal_code": "",
                            "created_at": created, "updated_at": created})
    for guarantor in p["guarantors"]:
        insert("guarantor", {"id": guarantor, "organization_id": p["org"],
                             "first_name": b"\x00", "last_name": b"\x00",
                             "other_known_tz": "[]", "city_is_nyc": False,
                             "preferred_language": "en", "created_at": created,
                             "updated_at": created})
    for i, campaign in enumerate(p["campaigns"]):
        insert("campaign", {"id": campaign, "organization_id": p["org"], "key": f"c{i}",
                            "name": f"Campaign {i}", "description": "", "priority": 100,
                            "active": True, "plan_status": "any", "holdout_basis_points": 1000,
                            "seed": "bench", "stop_on": "[]", "pause_on": "[]",
                            "created_at": created, "updated_at": created})


def load_sqlite(path: Path, p: dict[str, Any]) -> dict[str, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    dropped = []
    for table in TABLES:
        for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=? "
                "AND sql IS NOT NULL", (table,)).fetchall():
            dropped.append(sql)
            conn.execute(f'DROP INDEX "{name}"')
    conn.execute("BEGIN")
    small_tables(conn, p, sqlite_ts, "?")
    statements = {}
    for table, columns in COLUMNS.items():
        names = list(columns) + [c for c, _ in CONSTANTS[table]]
        statements[table] = (f"INSERT INTO {table} ({', '.join(names)}) VALUES "  # noqa: S608
                             f"({', '.join('?' * len(names))})",
                             tuple(v for _, v in CONSTANTS[table]))
    batches: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}
    counts = dict.fromkeys(COLUMNS, 0)
    for table, row in rows(p, sqlite_ts):
        batch = batches[table]
        batch.append(row + statements[table][1])
        if len(batch) >= 50_000:
            conn.executemany(statements[table][0], batch)
            counts[table] += len(batch)
            batch.clear()
    for table, batch in batches.items():
        if batch:
            conn.executemany(statements[table][0], batch)
            counts[table] += len(batch)
    conn.execute("COMMIT")
    for sql in dropped:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.close()
    return counts


def load_postgresql(url: str, p: dict[str, Any]) -> dict[str, int]:
    import psycopg

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    cur = conn.cursor()
    # The owner loads with triggers (FK checks) off; every reference is generated valid.
    cur.execute("SET session_replication_role = replica")
    dropped = []
    for table in TABLES:
        cur.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT "
            "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (table,))
        for name, definition in cur.fetchall():
            dropped.append(definition)
            cur.execute(f'DROP INDEX "{name}"')
    small_tables(cur.connection, p, pg_ts, "%s")
    counts = dict.fromkeys(COLUMNS, 0)
    copies = {}
    buffers: dict[str, list[str]] = {t: [] for t in COLUMNS}

    def cell(value: Any) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, bytes):
            return "\\\\x" + value.hex()
        return str(value)

    for table, columns in COLUMNS.items():
        names = list(columns) + [c for c, _ in CONSTANTS[table]]
        copies[table] = (f"COPY {table} ({', '.join(names)}) FROM STDIN",
                         "\t".join(cell(v) for _, v in CONSTANTS[table]))

    def flush(table: str) -> None:
        buffer = buffers[table]
        if not buffer:
            return
        with cur.copy(copies[table][0]) as copy:
            copy.write("".join(buffer))
        counts[table] += len(buffer)
        buffer.clear()

    for table, row in rows(p, pg_ts):
        suffix = copies[table][1]
        line = "\t".join(cell(v) for v in row)
        buffers[table].append(f"{line}\t{suffix}\n" if suffix else line + "\n")
        if len(buffers[table]) >= 200_000:
            flush(table)
    for table in COLUMNS:
        flush(table)
    for definition in dropped:
        cur.execute(definition)
    conn.commit()
    conn.autocommit = True
    cur.execute("ANALYZE")
    conn.close()
    return counts


# -- measuring ------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def line(label: str, walls: list[float], cpus: list[float], baseline: float) -> str:
    p50, p99 = percentile(walls, 0.5) * 1000, percentile(walls, 0.99) * 1000
    cpu50 = percentile(cpus, 0.5) * 1000
    return (f"  {label:<28} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  cpu p50 {cpu50:8.1f} ms  "
            f"x count(*) p50 {p50 / baseline:6.2f}  {'OK' if p99 < 300 else 'OVER 300 ms'}")


def cache_name(args: argparse.Namespace) -> str:
    """One cached database per generated portfolio (the generator is seeded)."""
    return f"cc_bench_insights_{args.accounts}_{args.lines}_{int(args.attempts_per_account * 100)}"


def reset_cached(db: Database, org: str, path: Path) -> None:
    """Undo what a previous measuring run wrote into a cached database: the 1,000 lines
    written after the portfolio (created after CREATED, found through the (organization,
    created_at) index) and the rollup.

    ledger_entry.applies_to_entry_id references ledger_entry without an index: with the
    foreign key checks on, each deleted line would scan all 10,000,000. The deleted lines
    are referenced by nothing, so this bench-only cleanup runs without the checks (a plain
    sqlite3 connection, where they are off by default; `session_replication_role =
    replica` on PostgreSQL)."""
    statements = ("DELETE FROM ledger_entry WHERE organization_id = {p} AND created_at > {p}",
                  "DELETE FROM insight_rollup_cell", "DELETE FROM insight_rollup_state")
    if db.engine.dialect.name == "sqlite":
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("BEGIN")
            conn.execute(statements[0].format(p="?"), (org, sqlite_ts(CREATED)))
            for statement in statements[1:]:
                conn.execute(statement)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    with db.engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql(statements[0].format(p="%s"),
                                   (str(uuid.UUID(org)), CREATED))
        for statement in statements[1:]:
            connection.exec_driver_sql(statement)


def run(backend: str, args: argparse.Namespace) -> None:
    out(f"== {backend}: {args.accounts:,} accounts, ~{args.lines} lines each, "
        f"{args.attempts_per_account} attempts per account; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    p = portfolio(args.accounts, args.lines, args.attempts_per_account)
    organization_id = uuid.UUID(p["org"])
    admin = None
    name = ""
    tmp = path = Path()
    cached = args.reuse or args.build_only
    marker = Path(args.cache_dir) / f"{cache_name(args)}.{backend}.done"
    if backend == "sqlite":
        if cached:
            tmp = Path(args.cache_dir)
            tmp.mkdir(parents=True, exist_ok=True)
            path = tmp / f"{cache_name(args)}.db"
        else:
            tmp = Path(tempfile.mkdtemp(prefix="cc-insights-"))
            path = tmp / "insights.db"
        url = f"sqlite:///{path}"
    else:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = cache_name(args) if cached else f"cc_bench_insights_{uuid.uuid4().hex[:8]}"
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    built = cached and marker.exists()
    if not built:
        marker.unlink(missing_ok=True)
        if backend == "sqlite":
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
        else:
            if admin is None:
                raise RuntimeError("no PostgreSQL admin engine")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(url)
    try:
        if built:
            out(f"  reusing the cached portfolio ({path if backend == 'sqlite' else name})")
            reset_cached(db, p["org"], path)
        else:
            upgrade(db.engine)
            wall, cpu = time.perf_counter(), time.process_time()
            counts = (load_sqlite(path, p) if backend == "sqlite" else load_postgresql(url, p))
            out(f"  generated {counts} in {time.perf_counter() - wall:.0f} s "
                f"(cpu {time.process_time() - cpu:.0f} s); load average "
                f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            if cached:
                Path(args.cache_dir).mkdir(parents=True, exist_ok=True)
                marker.write_text(json.dumps(counts))
            if args.build_only:
                return
        db.dispose()

        def count_lines() -> None:
            with db.tenant_session(organization_id) as s:
                s.execute(text("SELECT count(*) FROM ledger_entry")).scalar()

        def count_accounts() -> None:
            with db.tenant_session(organization_id) as s:
                s.execute(text("SELECT count(*) FROM account")).scalar()

        base_walls, _cpus = measure(count_lines, args.runs)
        baseline = percentile(base_walls, 0.5) * 1000
        out(f"  baseline count(*) ledger_entry p50 {baseline:.1f} ms  "
            f"p99 {percentile(base_walls, 0.99) * 1000:.1f} ms")
        walls, cpus = measure(count_accounts, args.runs)
        out(f"  baseline count(*) account      p50 {percentile(walls, 0.5) * 1000:.1f} ms  "
            f"p99 {percentile(walls, 0.99) * 1000:.1f} ms")

        wall, cpu = time.perf_counter(), time.process_time()
        with db.tenant_session(organization_id) as s:
            result = refresh(s, organization_id=organization_id, now=NOW)
        out(f"  rollup full rebuild: {time.perf_counter() - wall:.1f} s wall, "
            f"{time.process_time() - cpu:.1f} s cpu ({result.accounts:,} accounts, "
            f"{result.cells:,} cells)")

        def report(key: str, filters: ReportFilters = FILTERS) -> Callable[[], object]:
            def go() -> object:
                with db.tenant_session(organization_id) as s:
                    return build_report(s, organization_id=organization_id, key=key,
                                        filters=filters, now=NOW)
            return go

        out("  dashboard reports (period: last 12 months, whole organization):")
        for key in DASHBOARD:
            walls, cpus = measure(report(key), args.runs)
            out(line(key, walls, cpus, baseline))
        located = ReportFilters(FILTERS.period_start, FILTERS.period_end,
                                location_id=uuid.UUID(p["locations"][3]))

        def dashboard() -> object:
            with db.tenant_session(organization_id) as s:
                return build_dashboard(s, organization_id=organization_id, filters=located,
                                       now=NOW)

        walls, cpus = measure(dashboard, args.runs)
        out(line("whole dashboard, 1 location", walls, cpus, baseline))

        # 1,000 accounts get a payment after the watermark: reports correct them live.
        with db.engine.begin() as conn:
            accounts = [r[0] for r in conn.execute(text(
                "SELECT id FROM account ORDER BY id LIMIT 1000"))]
            written = dt.datetime.now(UTC)
            conn.execute(text(
                "INSERT INTO ledger_entry (id, organization_id, account_id, kind, amount_cents,"
                " posted_at, created_at) VALUES (:id, :org, :account, 'patient_payment', -100,"
                " :posted, :created)"),
                [{"id": uuid.uuid4().hex if backend == "sqlite" else str(uuid.uuid4()),
                  "org": p["org"], "account": a,
                  "posted": sqlite_ts(NOW - dt.timedelta(hours=2)) if backend == "sqlite"
                  else NOW - dt.timedelta(hours=2),
                  "created": sqlite_ts(written) if backend == "sqlite" else written}
                 for a in accounts])
        out("  after 1,000 new lines (live correction of the touched accounts):")
        for key in DASHBOARD:
            walls, cpus = measure(report(key), max(3, args.runs // 4))
            out(line(key, walls, cpus, baseline))
        wall, cpu = time.perf_counter(), time.process_time()
        with db.tenant_session(organization_id) as s:
            later = refresh(s, organization_id=organization_id,
                            now=dt.datetime.now(UTC) + dt.timedelta(minutes=10))
        out(f"  rollup refresh ({later.mode}): {time.perf_counter() - wall:.2f} s wall, "
            f"{time.process_time() - cpu:.2f} s cpu ({later.accounts:,} accounts)")
        out(f"  load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        db.dispose()
        keep = args.keep or cached
        if admin is not None:
            if not keep:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        elif not keep:
            for child in tmp.iterdir():
                child.unlink()
            tmp.rmdir()


def drop_cache(args: argparse.Namespace) -> None:
    name = cache_name(args)
    for leftover in Path(args.cache_dir).glob(f"{name}*"):
        leftover.unlink()
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    out(f"dropped {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=10, help="ledger lines per account")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--attempts-per-account", type=float, default=0.5)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the generated database in --cache-dir (SQLite) or as a "
                        "named PostgreSQL database and reuse it on the next run")
    parser.add_argument("--build-only", action="store_true",
                        help="generate (and cache) the portfolio, measure nothing")
    parser.add_argument("--cache-dir", default="/tmp/cc-insights-cache")  # noqa: S108 - a bench cache
    parser.add_argument("--drop-cache", action="store_true",
                        help="delete the cached databases of this scale and exit")
    args = parser.parse_args()
    if args.drop_cache:
        drop_cache(args)
        return
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, args)


if __name__ == "__main__":
    main()
