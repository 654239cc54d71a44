"""Compliance engine benchmark.

1. Scalar path: decisions per second on realistic scenarios (validated once with Pydantic,
   evaluated on plain dataclasses), single core; baseline in the same run: Pydantic
   validation of the same scenario JSON (what a send-time check must pay anyway).
2. Batch path: `evaluate_portfolio` over N accounts (default 1,000,000) with contact
   histories; baseline in the same run: a plain DuckDB scan/aggregate of the same columns
   (read in place through Arrow).
3. Batch path fed from SQLite, end to end: `--write-sqlite FILE` writes the generated
   portfolio as a portfolio file (`compliance/batch_sqlite.py`: integer keys, epoch
   microseconds, category kinds) and stops; `--sqlite FILE` reads it through ADBC/Arrow,
   evaluates it, and prints read, evaluate and total (wall and CPU), the DuckDB scan of the
   columns read and the ratios, and the load average. `--python-reader` also times
   Python's sqlite3 on the same file; `--save-out F.parquet` keeps the decisions.

Run: .venv/bin/python bench/compliance.py [--accounts N] [--seconds S]
     .venv/bin/python bench/compliance.py --write-sqlite /tmp/p.sqlite
     .venv/bin/python bench/compliance.py --skip-scalar --sqlite /tmp/p.sqlite
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from carecollect.compliance.batch import (  # noqa: E402
    ACCOUNT_SCHEMA,
    EVENT_SCHEMA,
    evaluate_portfolio,
)
from carecollect.compliance.batch_sqlite import (  # noqa: E402
    TABLES,
    decode_frame,
    read_portfolio,
    select_sql,
    write_portfolio,
)
from carecollect.compliance.engine import evaluate  # noqa: E402
from carecollect.compliance.scenario import parse_scenario  # noqa: E402

PLACES = [("NY", "12207", "America/New_York", False, "+15185550101"),
          ("NY", "10001", "America/New_York", True, "+12125550101"),
          ("MA", "02108", "America/New_York", False, "+16175550101"),
          ("FL", "33101", "America/New_York", False, "+13055550101"),
          ("TX", "75201", "America/Chicago", False, "+12145550101"),
          ("OK", "74103", "America/Chicago", False, "+19185550101"),
          ("CA", "94103", "America/Los_Angeles", False, "+14155550101"),
          ("AZ", "85004", "America/Phoenix", False, "+16025550101"),
          ("PA", "15213", "America/New_York", False, "+14125550101"),
          ("CO", "80202", "America/Denver", False, "+13035550101")]


# ---------------------------------------------------------------- scalar scenarios
def realistic_scenario(rng: random.Random, i: int) -> str:
    """A planned reminder as a practice sends it: consented cell/email, some history."""
    state, zip_code, zone, nyc, phone = rng.choice(PLACES)
    day = dt.date(2026, 3, 2) + dt.timedelta(days=rng.randrange(0, 60))
    local = dt.datetime.combine(day, dt.time(rng.randrange(7, 22), rng.choice([0, 15, 30])))
    from zoneinfo import ZoneInfo

    t = local.replace(tzinfo=ZoneInfo(zone))
    channel = rng.choice(["sms", "sms", "email", "call", "voicemail"])
    history = []
    for _ in range(rng.randrange(0, 9)):
        at = t - dt.timedelta(hours=rng.randrange(2, 30 * 24))
        ch = rng.choice(["sms", "email", "call", "letter"])
        history.append({"text": None, "at": at.isoformat(), "channel": ch,
                        "direction": "outbound", "contact_point": {
                            "sms": "cell", "call": "cell", "email": "mail",
                            "letter": "post"}[ch],
                        "person": "debtor", "debt_ids": ["D1"],
                        "dialer": "manual" if ch == "call" else None,
                        "outcome": rng.choice(["delivered", "no_answer", "voicemail_lcm"])})
    content: dict[str, Any] = {
        "template": f"{channel}_reminder", "subject": "Your statement is ready"
        if channel == "email" else None, "body_summary": "statement ready",
        "contains": ["lcm_required_only", "practice_name_neutral"] if channel == "voicemail"
        else ["practice_name_neutral", "payment_link_opaque"], "url": None,
        "includes_opt_out": True, "includes_debt_collector_disclosure": False,
        "marketing": False, "encrypted_or_portal": False}
    granted = (t - dt.timedelta(days=rng.randrange(1, 25))).isoformat()
    scenario = {
        "id": f"R{i}", "input": {
            "as_of": t.isoformat(), "policy_profile": "strict",
            "creditor": {"type": "first_party", "entity_kind": "dental_practice",
                         "display_name": "Maple Street Dental",
                         "name_indicates_debt_collection": False,
                         "hipaa_role": "covered_entity", "baa_in_place": False,
                         "provider_license_state": "PA"},
            "debtor": {"person_id": f"P{i}", "state": state, "zip": zip_code,
                       "city_is_nyc": nyc, "mailing_tz": zone, "other_known_tz": [],
                       "deceased": False, "minor": False, "designated_inconvenient": [],
                       "confidential_comm_request": None,
                       "patient_email_risk_acknowledged": False,
                       "family_payment_involvement": []},
            "debt": {"debt_ids": ["D1"], "kind": "dental", "balance_cents": 52_000,
                     "first_post_discharge_statement_date": None,
                     "placed_with_agency_at": None, "sol_expired": False,
                     "first_delinquency_date": "2025-10-01", "nsa": None},
            "contact_points": [
                {"id": "cell", "type": "phone", "value": phone, "line_type": "wireless",
                 "area_code_tz": None, "owner": "debtor", "employer_provided": False,
                 "source": "intake", "rnd_check": {"date": day.isoformat(), "result": "no"}},
                {"id": "mail", "type": "email", "value": f"p{i}@example.org",
                 "line_type": None, "area_code_tz": None, "owner": "debtor",
                 "employer_provided": False, "source": "portal", "rnd_check": None},
                {"id": "post", "type": "postal", "value": "1 Test Way", "line_type": None,
                 "area_code_tz": None, "owner": "debtor", "employer_provided": False,
                 "source": "intake", "rnd_check": None}],
            "consents": [{"contact_point": "cell", "kind": "tcpa_pec", "granted_at": granted,
                          "given_to": "creditor", "method": "intake"},
                         {"contact_point": "mail", "kind": "email_use",
                          "granted_at": granted, "given_to": "creditor", "method": "portal"}],
            "revocations": [], "contact_history": history,
            "flags": {"attorney_represented": None, "disputed": None, "bankruptcy": None,
                      "cease_requested": None, "validation": None, "fap": None,
                      "credit_reported": False},
            "proposed_action": {"channel": channel, "contact_point": {
                "sms": "cell", "call": "cell", "voicemail": "cell", "email": "mail"}[channel],
                "time": t.isoformat(), "dialer": "manual" if channel in ("call", "voicemail")
                else None, "recipient": "debtor", "debt_ids": ["D1"], "content": content}}}
    return json.dumps(scenario)


def bench_scalar(seconds: float) -> dict[str, float]:
    rng = random.Random(42)
    lines = [realistic_scenario(rng, i) for i in range(2000)]
    t0 = time.perf_counter()
    ctxs = [parse_scenario(line).input for line in lines]
    validate_rate = len(lines) / (time.perf_counter() - t0)
    decisions: dict[str, int] = {}
    for c in ctxs:
        d = evaluate(c).decision
        decisions[d] = decisions.get(d, 0) + 1
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for c in ctxs:
            evaluate(c)
        done += len(ctxs)
    rate = done / (time.perf_counter() - start)
    cpu_rate = done / (time.process_time() - cpu)
    corpus = [parse_scenario(line).input for line in
              (ROOT / "tests/compliance/scenarios.jsonl").read_text().splitlines()]
    for c in corpus:  # warm-up: the first inbound text loads the NLU tables (about 1 CPU-s)
        evaluate(c)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds / 2:
        for c in corpus:
            evaluate(c)
        done += len(corpus)
    corpus_rate = done / (time.perf_counter() - start)
    print(f"scalar: realistic mix {decisions} (load average {os.getloadavg()[0]:.1f})")
    print(f"scalar: {rate:,.0f} decisions/s wall, {cpu_rate:,.0f} per CPU-second (realistic); "
          f"{corpus_rate:,.0f}/s wall (edge-case corpus); Pydantic validation "
          f"{validate_rate:,.0f}/s; ratio evaluate/validate {rate / validate_rate:.2f}")
    return {"scalar_per_s": rate, "scalar_per_cpu_s": cpu_rate, "corpus_per_s": corpus_rate,
            "validate_per_s": validate_rate}


# ---------------------------------------------------------------- batch portfolio
def build_columns(n: int, events_per_account: int, seed: int) -> tuple[pl.DataFrame,
                                                                       pl.DataFrame]:
    rng = np.random.default_rng(seed)
    place = rng.integers(0, len(PLACES), n)
    def pick(col: int) -> np.ndarray:
        return np.array([p[col] for p in PLACES])[place]

    base = np.datetime64("2026-03-02T00:00:00", "us")
    t = base + (rng.integers(0, 60 * 86400, n) * 1_000_000).astype("timedelta64[us]")

    def before(max_days: int, p: float) -> np.ndarray:
        delta = (rng.integers(60, max_days * 86400, n) * 1_000_000).astype("timedelta64[us]")
        values = (t - delta).astype("datetime64[us]")
        return np.where(rng.random(n) < p, values, np.datetime64("NaT"))

    channel = rng.choice(np.array(["sms", "sms", "email", "call", "voicemail"]), n)
    dialer = np.where(np.isin(channel, ["call", "voicemail"]),
                      rng.choice(np.array(["manual", "autodialer", "prerecorded"]), n), "")
    revoke = before(20, 0.05)
    acc = pl.DataFrame({
        "account_id": np.char.add("A", np.arange(n).astype(str)),
        "profile": rng.choice(np.array(["strict", "strict", "legal_minimum"]), n),
        "state": pick(0), "zip": pick(1), "city_is_nyc": pick(3).astype(bool),
        "mailing_tz": pick(2), "other_tz": np.full(n, ""),
        "phone_value": pick(4),
        "line_type": rng.choice(np.array(["wireless", "wireless", "landline"]), n),
        "area_code_tz": np.full(n, ""),
        "rnd_date": (t - (rng.integers(0, 40, n) * 86400 * 1_000_000)
                     .astype("timedelta64[us]")).astype("datetime64[D]"),
        "rnd_result": rng.choice(np.array(["no", "no", "no", "no_data"]), n),
        "consent_at": before(90, 0.85), "reconsent_at": before(5, 0.02),
        "email_consent_at": before(90, 0.7), "extra_calls_consent_at": before(10, 0.02),
        "revoke_at": revoke,
        "revoke_channel": np.where(np.isnat(revoke), "", "sms"),
        "revoke_cp": np.where(np.isnat(revoke), "", "phone"),
        "deceased": rng.random(n) < 0.002,
        "bankruptcy_at": before(30, 0.005), "cease_at": before(30, 0.005),
        "attorney_at": before(30, 0.005), "nsa_status": np.full(n, ""),
        "channel": channel, "dialer": dialer, "time": t,
    }, strict=False)
    acc = acc.with_columns(pl.col(c).dt.replace_time_zone("UTC") for c, d in
                           ACCOUNT_SCHEMA.items() if d == pl.Datetime("us", "UTC"))
    acc = acc.with_columns(pl.col(pl.String).replace("", None))
    acc = acc.cast(ACCOUNT_SCHEMA, strict=False)  # type: ignore[arg-type]
    m = n * events_per_account
    owner = rng.integers(0, n, m)
    ev_channel = rng.choice(np.array(["call", "call", "sms", "email", "letter", "voicemail"]), m)
    at = t[owner] - (rng.integers(60, 30 * 86400, m) * 1_000_000).astype("timedelta64[us]")
    ev = pl.DataFrame({
        "account_id": acc.get_column("account_id").to_numpy()[owner],
        "at": at, "channel": ev_channel,
        "direction": np.where(rng.random(m) < 0.08, "inbound", "outbound"),
        "outcome": rng.choice(np.array(["no_answer", "delivered", "voicemail_lcm",
                                        "not_connected", "conversation_rpc"]), m),
        "dialer": np.where(np.isin(ev_channel, ["call", "voicemail"]), "manual", ""),
        "about_debt": rng.random(m) < 0.9,
        "cp": np.select([ev_channel == "email", ev_channel == "letter"], ["email", "mail"],
                        "phone"),
    }, strict=False).with_columns(pl.col("at").dt.replace_time_zone("UTC"),
                                  pl.col("dialer").replace("", None))
    return acc, ev.cast(EVENT_SCHEMA, strict=False)  # type: ignore[arg-type]


def with_integer_keys(acc: pl.DataFrame, ev: pl.DataFrame) -> tuple[pl.DataFrame,
                                                                     pl.DataFrame]:
    """The generated columns with the account ids "A<n>" as integer keys n."""
    key = pl.col("account_id").str.slice(1).cast(pl.Int64)
    return acc.with_columns(key), ev.with_columns(key)


def read_sqlite_python(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Baseline reader: the same portfolio file through Python's sqlite3 (`fetchall`, one
    tuple per row), then the same decoding as `read_portfolio`."""
    frames = {}
    with sqlite3.connect(path) as conn:
        for table in [*TABLES, *(f"{t}_kinds" for t in TABLES)]:
            cur = conn.execute(select_sql(table))
            names = [d[0] for d in cur.description]
            frames[table] = pl.DataFrame(cur.fetchall(), orient="row", schema={
                n: pl.String if n in ("zip", "phone_value") or (
                    table.endswith("_kinds") and n != "kind"
                    and n not in ("city_is_nyc", "deceased", "about_debt")) else pl.Int64
                for n in names})
    return (decode_frame(frames["accounts"], frames["accounts_kinds"], "accounts"),
            decode_frame(frames["events"], frames["events_kinds"], "events"))


def duckdb_scan(acc: pl.DataFrame, ev: pl.DataFrame) -> tuple[float, float]:
    """Plain DuckDB over the same columns: per-account event aggregate joined to accounts.

    DuckDB reads the Polars frames in place through Arrow (pyarrow is installed now; the
    earlier runs went through Parquet files instead)."""
    con = duckdb.connect()
    con.register("acc", acc)
    con.register("ev", ev)
    start, cpu = time.perf_counter(), time.process_time()
    con.execute("""
        SELECT a.channel, a.state, count(*), max(e.last_at), sum(e.n), sum(e.c)
        FROM acc a
        JOIN (SELECT account_id, count(*) AS n, max("at") AS last_at,
                     count(*) FILTER (WHERE outcome = 'conversation_rpc') AS c
              FROM ev GROUP BY account_id) e USING (account_id)
        GROUP BY ALL""").fetchall()
    out = time.perf_counter() - start, time.process_time() - cpu
    con.close()
    return out


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def bench_batch(n: int, events_per_account: int) -> dict[str, float]:
    """Generated columns (string account ids, as a caller builds them in memory)."""
    start = time.perf_counter()
    acc, ev = build_columns(n, events_per_account, seed=7)
    load = time.perf_counter() - start
    load_before = _load()
    start, cpu = time.perf_counter(), time.process_time()
    out = evaluate_portfolio(acc, ev)
    batch = time.perf_counter() - start
    batch_cpu = time.process_time() - cpu
    scan, scan_cpu = duckdb_scan(acc, ev)
    counts = dict(out.group_by("decision").len().iter_rows())
    with_next = out.filter(pl.col("next_allowed_at").is_not_null()).height
    print(f"batch: {acc.height:,} accounts, {ev.height:,} history events (generated in "
          f"{load:.1f} s)")
    print(f"batch: decisions {counts}, {with_next:,} with next_allowed_at")
    print(f"batch: load average (1/5/15 min) {load_before} before, {_load()} after; "
          f"Polars threads {pl.thread_pool_size()}")
    print(f"batch: evaluate_portfolio {batch:.2f} s wall, {batch_cpu:.2f} CPU-s "
          f"({acc.height / batch:,.0f} accounts/s); DuckDB scan of the same columns "
          f"{scan:.2f} s wall, {scan_cpu:.2f} CPU-s; ratio {batch / scan:.1f}x wall, "
          f"{batch_cpu / scan_cpu:.1f}x CPU")
    return {"batch_s": batch, "batch_cpu_s": batch_cpu, "duckdb_s": scan,
            "accounts": acc.height}


def write_sqlite(path: Path, n: int, events_per_account: int) -> None:
    acc, ev = with_integer_keys(*build_columns(n, events_per_account, seed=7))
    start, cpu = time.perf_counter(), time.process_time()
    write_portfolio(path, acc, ev)
    print(f"sqlite: wrote {acc.height:,} accounts and {ev.height:,} history events to {path} "
          f"({path.stat().st_size / 2**20:,.0f} MiB) in {time.perf_counter() - start:.1f} s "
          f"wall, {time.process_time() - cpu:.1f} CPU-s")


def bench_sqlite(path: Path, python_reader: bool, save_out: Path | None) -> dict[str, float]:
    """End to end from a portfolio file: read (ADBC, Arrow) + evaluate, and the DuckDB
    scan of the columns read, in the same run."""
    if python_reader:
        start, cpu = time.perf_counter(), time.process_time()
        acc, ev = read_sqlite_python(path)
        print(f"sqlite: baseline reader (Python sqlite3, fetchall) {acc.height + ev.height:,} "
              f"rows: {time.perf_counter() - start:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} CPU-s")
        del acc, ev
    load_before = _load()
    start, cpu = time.perf_counter(), time.process_time()
    acc, ev = read_portfolio(path)
    read, read_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    out = evaluate_portfolio(acc, ev)
    batch, batch_cpu = time.perf_counter() - start, time.process_time() - cpu
    load_mid = _load()
    scan, scan_cpu = duckdb_scan(acc, ev)
    counts = dict(out.group_by("decision").len().iter_rows())
    with_next = out.filter(pl.col("next_allowed_at").is_not_null()).height
    total, total_cpu = read + batch, read_cpu + batch_cpu
    print(f"sqlite: {acc.height:,} accounts, {ev.height:,} history events from {path} "
          f"({path.stat().st_size / 2**20:,.0f} MiB, page cache as left by the last use)")
    print(f"sqlite: decisions {counts}, {with_next:,} with next_allowed_at")
    print(f"sqlite: load average (1/5/15 min) {load_before} before, {load_mid} after the "
          f"evaluation, {_load()} after the DuckDB scan; Polars threads "
          f"{pl.thread_pool_size()}")
    print(f"sqlite: read (ADBC -> Arrow -> Polars) {read:.2f} s wall, {read_cpu:.2f} CPU-s")
    print(f"sqlite: evaluate_portfolio {batch:.2f} s wall, {batch_cpu:.2f} CPU-s")
    print(f"sqlite: TOTAL read + evaluate {total:.2f} s wall, {total_cpu:.2f} CPU-s "
          f"(target <= 10 s)")
    print(f"sqlite: DuckDB scan of the same columns {scan:.2f} s wall, {scan_cpu:.2f} CPU-s; "
          f"ratio evaluate/scan {batch / scan:.1f}x wall, {batch_cpu / scan_cpu:.1f}x CPU; "
          f"end to end (read+evaluate)/(read+scan) {total / (read + scan):.1f}x wall, "
          f"{total_cpu / (read_cpu + scan_cpu):.1f}x CPU")
    if save_out is not None:
        out.write_parquet(save_out)
    return {"read_s": read, "read_cpu_s": read_cpu, "batch_s": batch,
            "batch_cpu_s": batch_cpu, "total_s": total, "total_cpu_s": total_cpu,
            "duckdb_s": scan, "duckdb_cpu_s": scan_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--events-per-account", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sqlite", type=Path, default=None,
                        help="read the portfolio from this file (batch_sqlite layout)")
    parser.add_argument("--write-sqlite", type=Path, default=None,
                        help="write the generated portfolio to this file and stop")
    parser.add_argument("--python-reader", action="store_true",
                        help="with --sqlite: also time Python's sqlite3 on the same file")
    parser.add_argument("--save-out", type=Path, default=None,
                        help="with --sqlite: write the decisions to this Parquet file")
    parser.add_argument("--skip-scalar", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
    pl.Config.set_tbl_rows(5)
    if args.write_sqlite is not None:
        write_sqlite(args.write_sqlite, args.accounts, args.events_per_account)
        return
    if not args.skip_scalar:
        bench_scalar(args.seconds)
    if args.skip_batch:
        return
    if args.sqlite is not None:
        bench_sqlite(args.sqlite, args.python_reader, args.save_out)
    else:
        bench_batch(args.accounts, args.events_per_account)


if __name__ == "__main__":
    main()
