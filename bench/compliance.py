"""Compliance engine benchmark.

1. Scalar path: decisions per second on realistic scenarios (validated once with Pydantic,
   evaluated on plain dataclasses), single core; baseline in the same run: Pydantic
   validation of the same scenario JSON (what a send-time check must pay anyway).
2. Batch path: `evaluate_portfolio` over N accounts (default 1,000,000) with contact
   histories; baseline in the same run: a plain DuckDB scan/aggregate of the same columns.
   `--sqlite FILE` loads the columns from a SQLite file with Python's sqlite3 instead of
   generating them (`--write-sqlite FILE` writes the generated columns there first).

Run: .venv/bin/python bench/compliance.py [--accounts N] [--seconds S]
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


def write_sqlite(path: Path, acc: pl.DataFrame, ev: pl.DataFrame) -> None:
    with sqlite3.connect(path) as conn:
        for name, df in (("accounts", acc), ("events", ev)):
            conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute(f"CREATE TABLE {name} ({', '.join(df.columns)})")
            rows = df.with_columns(pl.col(c).cast(pl.String) for c in df.columns).rows()
            marks = ", ".join("?" * len(df.columns))
            conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)  # noqa: S608


def read_sqlite(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    out = []
    with sqlite3.connect(path) as conn:
        for name, schema in (("accounts", ACCOUNT_SCHEMA), ("events", EVENT_SCHEMA)):
            cur = conn.execute(f"SELECT {', '.join(schema)} FROM {name}")  # noqa: S608
            df = pl.DataFrame(cur.fetchall(), schema=dict.fromkeys(schema, pl.String),
                              orient="row")
            casts = []
            for col, dtype in schema.items():
                if dtype == pl.Boolean:
                    casts.append(pl.col(col).is_in(["true", "1"]).alias(col))
                elif dtype == pl.Date:
                    casts.append(pl.col(col).str.to_date())
                elif isinstance(dtype, pl.Datetime):
                    casts.append(pl.col(col).str.to_datetime(time_zone="UTC"))
            out.append(df.with_columns(casts))
    return out[0], out[1]


def duckdb_scan(acc: pl.DataFrame, ev: pl.DataFrame) -> tuple[float, float]:
    """Plain DuckDB over the same columns: per-account event aggregate joined to accounts.

    pyarrow is not installed, so the columns reach DuckDB as Parquet files written by
    Polars (DuckDB's Parquet reader is built in); the timing includes the Parquet scan.
    """
    with tempfile.TemporaryDirectory() as tmp:
        acc_path, ev_path = Path(tmp) / "acc.parquet", Path(tmp) / "ev.parquet"
        acc.write_parquet(acc_path)
        ev.write_parquet(ev_path)
        con = duckdb.connect()
        start, cpu = time.perf_counter(), time.process_time()
        con.execute(f"""
            SELECT a.channel, a.state, count(*), max(e.last_at), sum(e.n), sum(e.c)
            FROM read_parquet('{acc_path}') a
            JOIN (SELECT account_id, count(*) AS n, max("at") AS last_at,
                         count(*) FILTER (WHERE outcome = 'conversation_rpc') AS c
                  FROM read_parquet('{ev_path}') GROUP BY account_id) e USING (account_id)
            GROUP BY ALL""").fetchall()  # noqa: S608
        return time.perf_counter() - start, time.process_time() - cpu


def bench_batch(n: int, events_per_account: int, sqlite: Path | None,
                write: Path | None) -> dict[str, float]:
    start = time.perf_counter()
    if sqlite is not None and write is None:
        acc, ev = read_sqlite(sqlite)
        source = f"sqlite {sqlite}"
    else:
        acc, ev = build_columns(n, events_per_account, seed=7)
        source = "generated"
        if write is not None:
            write_sqlite(write, acc, ev)
    load = time.perf_counter() - start
    scan, scan_cpu = duckdb_scan(acc, ev)
    load_before = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    out = evaluate_portfolio(acc, ev)
    batch = time.perf_counter() - start
    batch_cpu = time.process_time() - cpu
    counts = dict(out.group_by("decision").len().iter_rows())
    with_next = out.filter(pl.col("next_allowed_at").is_not_null()).height
    print(f"batch: {acc.height:,} accounts, {ev.height:,} history events ({source}, "
          f"built/loaded in {load:.1f} s)")
    print(f"batch: decisions {counts}, {with_next:,} with next_allowed_at")
    print(f"batch: load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
          f"Polars threads {pl.thread_pool_size()}")
    print(f"batch: evaluate_portfolio {batch:.2f} s wall, {batch_cpu:.2f} CPU-s "
          f"({acc.height / batch:,.0f} accounts/s); DuckDB scan of the same columns "
          f"{scan:.2f} s wall, {scan_cpu:.2f} CPU-s; ratio {batch / scan:.1f}x wall, "
          f"{batch_cpu / scan_cpu:.1f}x CPU")
    return {"batch_s": batch, "batch_cpu_s": batch_cpu, "duckdb_s": scan,
            "accounts": acc.height}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--events-per-account", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sqlite", type=Path, default=None)
    parser.add_argument("--write-sqlite", type=Path, default=None)
    parser.add_argument("--skip-scalar", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
    pl.Config.set_tbl_rows(5)
    if not args.skip_scalar:
        bench_scalar(args.seconds)
    if not args.skip_batch:
        bench_batch(args.accounts, args.events_per_account, args.sqlite, args.write_sqlite)


if __name__ == "__main__":
    main()
