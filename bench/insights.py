"""Insights dashboard benchmark (issue 9): the headline reports on a large portfolio.

Setup (timed separately, not part of the figures): a migrated database (SQLite file or a
throwaway PostgreSQL database) with one organization, 10 locations, 1,000 guarantors,
N accounts (default 1,000,000) and about 10 ledger lines per account (10,000,000),
30 % of the accounts enrolled in one of two campaigns (10 % holdout), and
`--attempts-per-account` outreach attempts (2 % blocked, 3 % re-timed). Generated in
numpy columns (one line position at a time for 100,000 accounts at once) into Arrow
tables; bulk loaded with the ADBC SQLite driver's ingest on SQLite and pyarrow CSV + COPY
on PostgreSQL, secondary indexes dropped during the load and rebuilt after, then ANALYZE.
Sealed columns hold placeholder bytes: no report decrypts anything. Only the tables the
dashboards read are written.

Timed:
* the full rollup rebuild (`insight.rollup.refresh`), once;
* every dashboard report (`insight.service.DASHBOARD`), `--runs` times each, in a fresh
  tenant session (row-level security on PostgreSQL), period = the last 12 months;
* the whole dashboard with a location filter, `--runs` times, and compliance_blocks with
  that filter; for comparison, the direct SQL count compliance_blocks used before its
  rollup cells (whole organization and one location);
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
import io
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pa_csv  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from carecollect.db import Database  # noqa: E402
from carecollect.insight.periods import local_start  # noqa: E402
from carecollect.insight.repository import insight_repository  # noqa: E402
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


def sqlite_ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def pg_ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f+00")


# -- the synthetic portfolio ----------------------------------------------------------------
# Vectorised (numpy columns, Arrow tables): the same shape as the row-by-row generator it
# replaced (one charge first, then a random mix of kinds whose choice and amount depend on
# the running balance and patient cash, 1-40 days apart), computed one line position at a
# time for a whole batch of accounts at once.

KINDS = (("charge", 35), ("insurance_payment", 25), ("insurance_adjustment", 5),
         ("patient_payment", 28), ("write_off", 4), ("refund", 3))
KIND_NAMES = np.array([kind for kind, _ in KINDS])
KIND_TABLE = np.array([code for code, (_, weight) in enumerate(KINDS) for _ in range(weight)],
                      dtype=np.int8)
CHARGE, PATIENT_PAYMENT, REFUND = 0, 3, 5
US = 1_000_000
DAY = 86_400 * US
NOW_US = int(NOW.timestamp()) * US
BATCH_ACCOUNTS = 100_000
BLOCK_RULES = np.array(["REGF-7IN7", "TCPA-CONSENT", "REGF-TIME-8-9", "PLAT-CEASE"])
RETIME_RULES = np.array(["REGF-TIME-8-9", "REGF-7IN7"])
CHANNELS = np.array(["sms", "email", "letter", "call"])
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def portfolio(n: int, lines_per_account: int, attempts_per_account: float,
              seed: int = 9) -> dict[str, Any]:
    org = uuid.UUID(int=(0x0190_0000_0000_7000 << 64) | 0x8000_0000_0000_0001).hex
    location_ids = [uuid.UUID(int=(0x0190_0000_0001_7000 << 64) | (0x8000 << 48) | i).hex
                    for i in range(LOCATIONS)]
    guarantor_ids = [uuid.UUID(int=(0x0190_0000_0002_7000 << 64) | (0x8000 << 48) | i).hex
                     for i in range(GUARANTORS)]
    campaign_ids = [uuid.UUID(int=(0x0190_0000_0003_7000 << 64) | (0x8000 << 48) | i).hex
                    for i in range(2)]
    return {"seed": seed, "n": n, "lines": lines_per_account, "attempts": attempts_per_account,
            "org": org, "locations": location_ids, "guarantors": guarantor_ids,
            "campaigns": campaign_ids}


def fixed_strings(chars: np.ndarray) -> pa.Array:
    """An Arrow string array from an (n, width) uint8 array of ASCII characters."""
    n, width = chars.shape
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def constant(value: str, n: int) -> pa.Array:
    return fixed_strings(np.broadcast_to(np.frombuffer(value.encode(), dtype=np.uint8),
                                         (n, len(value))))


def hex_ids(prefix: int, counters: np.ndarray) -> pa.Array:
    """Time-ordered ids like the application's UUIDv7: a fixed 64-bit prefix and a counter
    (32 hex digits)."""
    n = len(counters)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, :16] = np.frombuffer(f"{prefix:016x}".encode(), dtype=np.uint8)
    values = counters.astype(np.uint64)
    for digit in range(16):
        chars[:, 31 - digit] = HEX[(values >> np.uint64(4 * digit)) & np.uint64(0xF)]
    return fixed_strings(chars)


def pick(choices: list[str], index: np.ndarray) -> pa.Array:
    """choices[index] for equal-length strings (the generated ids)."""
    table = np.frombuffer("".join(choices).encode(), dtype=np.uint8).reshape(len(choices), -1)
    return fixed_strings(table[index])


def timestamps(micros: np.ndarray, postgresql: bool) -> pa.Array:
    """UTC instants as the text each backend reads: `YYYY-MM-DD HH:MM:SS.ffffff` (the
    application's SQLite format), `+00` appended for PostgreSQL."""
    text_ = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us").astype("S26")
    chars = text_.view(np.uint8).reshape(-1, 26)
    chars[:, 10] = ord(" ")
    if postgresql:
        chars = np.concatenate(
            [chars, np.broadcast_to(np.frombuffer(b"+00", dtype=np.uint8), (len(chars), 3))],
            axis=1)
    return fixed_strings(chars)


def nullable(values: pa.Array, present: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(present), values, pa.scalar(None, values.type))


def _uniform(rng: np.random.Generator, low: np.ndarray | int, high: np.ndarray | int,
             size: int) -> np.ndarray:
    """Integers in [low, high] (inclusive, bounds may vary per element)."""
    span = np.asarray(high, dtype=np.int64) - low + 1
    return (low + np.floor(rng.random(size) * span)).astype(np.int64)


def account_batch(p: dict[str, Any], rng: np.random.Generator, first: int, m: int,
                  postgresql: bool, line_counter: list[int],
                  enrollment_counter: list[int]) -> Iterator[tuple[str, pa.Table]]:
    """Accounts [first, first + m), their ledger lines and enrollments, as Arrow tables."""
    lines_each = p["lines"]
    counts = (_uniform(rng, lines_each - 5, lines_each + 5, m) if lines_each > 5
              else np.full(m, lines_each, dtype=np.int64))
    start = (NOW_US - _uniform(rng, 30, 730, m) * DAY - _uniform(rng, 0, 86_399, m) * US)
    width = int(counts.max()) if m else 0
    kinds = np.zeros((m, width), dtype=np.int8)
    amounts = np.zeros((m, width), dtype=np.int64)
    posted = np.zeros((m, width), dtype=np.int64)
    balance = np.zeros(m, dtype=np.int64)
    paid = np.zeros(m, dtype=np.int64)
    when = start.copy()
    last = NOW_US - 3_600 * US
    for i in range(width):
        kind = (np.full(m, CHARGE, dtype=np.int8) if i == 0
                else KIND_TABLE[rng.integers(0, len(KIND_TABLE), m)])
        kind[(kind != CHARGE) & (kind != REFUND) & (balance <= 1_000)] = CHARGE
        no_refund = (kind == REFUND) & (paid < 1_000)
        kind[no_refund] = np.where(balance[no_refund] > 1_000, PATIENT_PAYMENT, CHARGE)
        charge = _uniform(rng, 5_000, 80_000, m)
        refund = -_uniform(rng, 500, np.maximum(500, np.minimum(paid, 5_000)), m)
        other = _uniform(rng, 500, np.maximum(500, balance * 6 // 10), m)
        amount = np.where(kind == CHARGE, charge, np.where(kind == REFUND, refund, other))
        signed = np.where(kind == CHARGE, amount, -amount)
        active = i < counts
        balance += np.where(active, signed, 0)
        paid += np.where(active & ((kind == PATIENT_PAYMENT) | (kind == REFUND)), amount, 0)
        kinds[:, i], amounts[:, i], posted[:, i] = kind, signed, when
        when = np.minimum(when + _uniform(rng, 1, 40, m) * DAY + _uniform(rng, 0, 3_600, m) * US,
                          last)
    index = np.arange(first, first + m, dtype=np.int64)
    created = timestamps(np.full(m, int(CREATED.timestamp()) * US), postgresql)
    org = constant(p["org"], m)
    guarantors = pick(p["guarantors"], index % GUARANTORS)
    yield "account", pa.table({
        "id": hex_ids(0x0190_0000_0010_7000, index + 1), "organization_id": org,
        "guarantor_id": guarantors, "location_id": pick(p["locations"], index % LOCATIONS),
        "opened_at": timestamps(start, postgresql), "created_at": created,
        "updated_at": created,
        "account_number": (constant("\\x00", m) if postgresql
                           else pa.array([b"\x00"] * m, pa.binary())),
        "debt_kind": constant("dental", m), "status": constant("open", m)})
    present = np.arange(width)[None, :] < counts[:, None]
    total = int(counts.sum())
    line_ids = np.arange(line_counter[0] + 1, line_counter[0] + total + 1, dtype=np.int64)
    line_counter[0] += total
    yield "ledger_entry", pa.table({
        "id": hex_ids(0x0190_0000_0020_7000, line_ids),
        "organization_id": constant(p["org"], total),
        "account_id": hex_ids(0x0190_0000_0010_7000, np.repeat(index + 1, counts)),
        "kind": pa.array(KIND_NAMES[kinds[present]]),
        "amount_cents": pa.array(amounts[present]),
        "posted_at": timestamps(posted[present], postgresql),
        "created_at": timestamps(np.full(total, int(CREATED.timestamp()) * US), postgresql)})
    enrolled = rng.random(m) < 0.3
    enrolled_at = np.minimum(start + _uniform(rng, 5, 60, m) * DAY, NOW_US)
    holdout = rng.random(m) < 0.1
    chosen = index[enrolled]
    k = len(chosen)
    enrollment_ids = np.arange(enrollment_counter[0] + 1, enrollment_counter[0] + k + 1)
    enrollment_counter[0] += k
    created_k = timestamps(np.full(k, int(CREATED.timestamp()) * US), postgresql)
    yield "campaign_enrollment", pa.table({
        "id": hex_ids(0x0190_0000_0030_7000, enrollment_ids),
        "organization_id": constant(p["org"], k),
        "campaign_id": pick(p["campaigns"], chosen % 2),
        "account_id": hex_ids(0x0190_0000_0010_7000, chosen + 1),
        "guarantor_id": pick(p["guarantors"], chosen % GUARANTORS),
        "cohort": pa.array(np.where(holdout[enrolled], "holdout", "treatment")),
        "enrolled_at": timestamps(enrolled_at[enrolled], postgresql),
        "created_at": created_k, "updated_at": created_k,
        "next_step": pa.array(np.zeros(k, dtype=np.int64)), "status": constant("active", k),
        "variant": constant("A", k)})


def attempt_batch(p: dict[str, Any], rng: np.random.Generator, first: int, k: int,
                  postgresql: bool) -> pa.Table:
    """Outreach attempts [first, first + k): 2 % blocked, 3 % re-timed, 5 % failed."""
    account = rng.integers(0, p["n"], k)
    when = NOW_US - _uniform(rng, 0, 400, k) * DAY - _uniform(rng, 0, 86_399, k) * US
    roll = rng.random(k)
    blocked = roll < 0.02
    retimed = (roll >= 0.02) & (roll < 0.05)
    failed = (roll >= 0.05) & (roll < 0.10)
    block_rule = BLOCK_RULES[rng.integers(0, len(BLOCK_RULES), k)]
    retime_rule = RETIME_RULES[rng.integers(0, len(RETIME_RULES), k)]
    channel = CHANNELS[rng.integers(0, len(CHANNELS), k)]
    rule = np.where(blocked, block_rule, retime_rule)
    reasons = np.where(blocked | retimed, np.char.add(np.char.add('["', rule), '"]'), "[]")
    state = np.where(blocked, "blocked", np.where(failed, "failed", "sent"))
    numbers = np.arange(first, first + k)
    at = timestamps(when, postgresql)
    return pa.table({
        "id": hex_ids(0x0190_0000_0040_7000, numbers + 1),
        "organization_id": constant(p["org"], k),
        "guarantor_id": pick(p["guarantors"], account % GUARANTORS),
        "account_id": hex_ids(0x0190_0000_0010_7000, account + 1),
        "channel": pa.array(channel), "template_key": constant("t", k),
        "language": constant("en", k),
        "cadence_key": pa.array(np.where(numbers % 2 == 0, "c0", "c1")),
        "step_key": constant("0:A", k),
        "idempotency_key": pa.array(np.char.add("bench-", numbers.astype(str))),
        "state": pa.array(state), "scheduled_for": at, "reasons": pa.array(reasons),
        "next_allowed_at": nullable(at, retimed),
        "send_count": pa.array(np.zeros(k, dtype=np.int64)),
        "reconcile_count": pa.array(np.zeros(k, dtype=np.int64)),
        "details": pa.array(np.where(retimed, '{"planned_outcome": "retime"}',
                                     '{"planned_outcome": "send"}')),
        "created_at": at, "updated_at": at, "sent_at": nullable(at, state == "sent")})


def batches(p: dict[str, Any], postgresql: bool) -> Iterator[tuple[str, pa.Table]]:
    """(table name, Arrow table) for every generated row: accounts with their lines and
    enrollments in batches of BATCH_ACCOUNTS, then the attempts."""
    rng = np.random.default_rng(p["seed"])
    line_counter, enrollment_counter = [0], [0]
    for first in range(0, p["n"], BATCH_ACCOUNTS):
        m = min(BATCH_ACCOUNTS, p["n"] - first)
        yield from account_batch(p, rng, first, m, postgresql, line_counter,
                                 enrollment_counter)
    total = int(p["n"] * p["attempts"])
    for first in range(0, total, 500_000):
        yield "outreach_attempt", attempt_batch(p, rng, first, min(500_000, total - first),
                                                postgresql)


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
    """Secondary indexes dropped, the small tables through sqlite3, the generated Arrow
    tables through the ADBC SQLite driver's bulk ingest (one prepared INSERT bound per
    row in C, one transaction per batch), indexes rebuilt, ANALYZE."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    dropped = []
    for table in TABLES:
        for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=? "
                "AND sql IS NOT NULL", (table,)).fetchall():
            dropped.append(sql)
            conn.execute(f'DROP INDEX "{name}"')
    conn.execute("BEGIN")
    small_tables(conn, p, sqlite_ts, "?")
    conn.execute("COMMIT")
    conn.close()
    counts = dict.fromkeys(TABLES, 0)
    bulk = adbc_sqlite.connect(str(path), autocommit=True)
    try:
        cur = bulk.cursor()
        for pragma in ("PRAGMA synchronous=OFF", "PRAGMA foreign_keys=OFF",
                       "PRAGMA cache_size=-400000"):
            cur.execute(pragma)
            cur.fetchall()
        for table, data in batches(p, postgresql=False):
            cur.adbc_ingest(table, data, mode="append")
            counts[table] += data.num_rows
        cur.close()
    finally:
        bulk.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA cache_size=-400000")
    for sql in dropped:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.close()
    return counts


def load_postgresql(url: str, p: dict[str, Any]) -> dict[str, int]:
    """Secondary indexes dropped, each generated Arrow table written as CSV (pyarrow) and
    sent with COPY, indexes rebuilt, ANALYZE."""
    import psycopg

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    cur = conn.cursor()
    # The owner loads with triggers (FK checks) off; every reference is generated valid.
    cur.execute("SET session_replication_role = replica")
    cur.execute("SET maintenance_work_mem = '512MB'")
    dropped = []
    for table in TABLES:
        cur.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT "
            "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (table,))
        for name, definition in cur.fetchall():
            dropped.append(definition)
            cur.execute(f'DROP INDEX "{name}"')
    small_tables(cur.connection, p, pg_ts, "%s")
    counts = dict.fromkeys(TABLES, 0)
    options = pa_csv.WriteOptions(include_header=False)
    for table, data in batches(p, postgresql=True):
        buffer = io.BytesIO()
        pa_csv.write_csv(data, buffer, options)
        names = ", ".join(data.column_names)
        with cur.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
            view = buffer.getbuffer()
            for start in range(0, len(view), 8 << 20):
                copy.write(view[start:start + (8 << 20)])
            del view
        counts[table] += data.num_rows
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
            # No pooled connection stays open on the file while the loader (another SQLite
            # library, in the ADBC driver) writes it.
            db.dispose()
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
        walls, cpus = measure(report("compliance_blocks", located), args.runs)
        out(line("compliance_blocks, 1 loc.", walls, cpus, baseline))
        # The previous path (before the compliance cells), same run: the flagged attempts
        # counted in SQL by (channel, state, reasons, re-timed), joined to `account` for a
        # location.
        zone = ZoneInfo("America/New_York")
        start, end = local_start(FILTERS.period_start, zone), local_start(FILTERS.period_end, zone)

        def direct(location: uuid.UUID | None) -> Callable[[], object]:
            def go() -> object:
                with db.tenant_session(organization_id) as s:
                    return insight_repository.flagged_attempt_groups(
                        s, organization_id, start=start, end=end, campaign_key=None,
                        location_id=location)
            return go

        for label, location in (("compliance SQL count, org", None),
                                ("compliance SQL count, 1 loc.", located.location_id)):
            walls, cpus = measure(direct(location), args.runs)
            out(line(label, walls, cpus, baseline))

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
