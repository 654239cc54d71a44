"""Outreach planning benchmark (issue 6): plan N accounts (default 1,000,000) on SQLite.

Setup (not timed): a migrated SQLite database with one organization, N guarantors with
phone (80 %), e-mail (60 %) and postal contact points, one account and one charge each,
TCPA consent on 60 % of phones, a sprinkling of revocations, medium opt-outs, flags,
confidential-communication requests and inconvenient-time designations, one contact
event per account in the last 30 days, and every account enrolled in a 3-channel cadence
(sms -> email -> letter, 5 % holdout) and due now. Sealed PHI columns hold random bytes:
the planner never decrypts.

Timed: `build_plan` (the SQL column loads, the planner's own rules, one compliance batch
call per channel pass, the result frame). Baseline measured in the same run: the time
spent inside `compliance.batch.evaluate_portfolio` alone (the planner reports it), so the
ratio says what the planner adds on top of the compliance engine's batch path. With
`--persist` the plan is also written (attempts, delivery jobs, audit events, enrollment
updates) and that is timed separately.

On SQLite the planner reads its columns through the ADBC reader process
(`outreach.planner_reader`); `--reader session` measures the session's DBAPI reads
instead and `--reader both` alternates the two (`--runs N` each). CPU is this process's
plus the reader process's (getrusage, children included); the load average is printed
before and after each plan.

Run: .venv/bin/python bench/outreach_plan.py [--accounts N] [--persist] [--keep FILE]
     [--db FILE] [--reader arrow|session|both] [--runs N] [--overlay]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from carecollect.audit import Actor  # noqa: E402
from carecollect.db import Database  # noqa: E402
from carecollect.kit.crypto.keyring import load_env_provider  # noqa: E402
from carecollect.kit.crypto.keys import KeyManager  # noqa: E402
from carecollect.kit.ids import uuid7  # noqa: E402
from carecollect.migrations.runner import upgrade  # noqa: E402
from carecollect.outreach.cadence import CampaignSpec, StepSpec, cadence_service  # noqa: E402
from carecollect.outreach.planner import build_plan, persist_plan  # noqa: E402
from carecollect.tenant.service import create_organization  # noqa: E402

AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)  # 06:00 in New York
PLACES = [("MA", "America/New_York", '["America/New_York"]'),
          ("NY", "America/New_York", '["America/New_York"]'),
          ("FL", "America/New_York", '["America/New_York"]'),
          ("TX", "America/Chicago", '["America/Chicago"]'),
          ("CA", "America/Los_Angeles", '["America/Los_Angeles"]'),
          ("AZ", "America/Phoenix", '["America/Phoenix"]'),
          ("CO", "America/Denver", '["America/Denver"]'),
          ("PA", "America/New_York", '["America/New_York"]')]


def ts(value: dt.datetime) -> str:
    """SQLAlchemy's SQLite storage format for a UTC timestamp."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def hexid() -> str:
    # The application's ids are UUIDv7 (time-ordered), which keeps B-tree inserts and
    # index lookups local; random UUIDv4 ids would make the database look slower.
    return uuid7().hex


def populate(path: Path, n: int, seed: int = 7) -> tuple[uuid.UUID, dict[str, int]]:
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    manager = KeyManager(load_env_provider(base64.b64encode(os.urandom(32)).decode()),
                         ttl_seconds=600, planned_rows=n)
    with db.system_session() as session:
        org = create_organization(session, keys=manager, actor=Actor.system("bench"),
                                  slug="bench", legal_name="Bench Dental Group",
                                  billing_display_name="Bench Billing",
                                  provider_license_state="MA", planned_patients=n)
        org_id = org.id
    step = StepSpec(0, ("sms", "email", "letter"), ({"name": "A", "weight": 1, "templates": {
        "sms": "statement_ready_sms", "email": "reminder_email",
        "letter": "statement_letter"}},), send_hour=10)
    with db.tenant_session(org_id) as session:
        campaign = cadence_service.create_campaign(
            session, organization_id=org_id, actor=Actor.system("bench"),
            spec=CampaignSpec(key="bench", name="bench", steps=(step, StepSpec(
                7, ("email", "letter"), step.variants)), seed="bench",
                holdout_basis_points=500, plan_status="any"))
        campaign_hex = campaign.id.hex
    db.dispose()

    rng = random.Random(seed)
    org = org_id.hex
    now = ts(AT - dt.timedelta(days=40))
    blob = os.urandom(48)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    counts: dict[str, int] = {}
    rows: dict[str, list[tuple[Any, ...]]] = {k: [] for k in (
        "guarantor", "contact_point", "account", "ledger_entry", "consent", "revocation",
        "medium_opt_out", "flag", "confidential_comm_request", "inconvenient_designation",
        "contact_event", "campaign_enrollment")}
    for i in range(n):
        g = hexid()
        state, zone, zones = PLACES[i % len(PLACES)]
        rows["guarantor"].append((g, org, blob, blob, state, zone, "[]", 0,
                                  "es" if i % 9 == 0 else "en", now, now))
        rows["contact_point"].append((hexid(), org, g, "postal", blob, 0, None, "[]", zone,
                                      "debtor", 0, 1, "import", 1, now, now))
        phone = email = None
        if rng.random() < 0.8:
            phone = hexid()
            rows["contact_point"].append((phone, org, g, "phone", blob, 0, "wireless", zones,
                                          None, "debtor", 0, 1, "import", 1, now, now))
            if rng.random() < 0.75:
                rows["consent"].append((hexid(), org, g, phone, "tcpa_pec",
                                        ts(AT - dt.timedelta(days=rng.randrange(1, 29))),
                                        "creditor", "intake_form", "import", now, now))
        if rng.random() < 0.6:
            email = hexid()
            rows["contact_point"].append((email, org, g, "email", blob, 0, None, "[]", None,
                                          "debtor", 0, 0, "import", 1, now, now))
        a = hexid()
        rows["account"].append((a, org, g, blob, "dental", "open", now, now, now))
        rows["ledger_entry"].append((hexid(), org, a, "charge",
                                     rng.randrange(2_000, 200_000), now, now))
        roll = rng.random()
        if phone and roll < 0.02:
            rows["revocation"].append((hexid(), org, g, phone, "sms",
                                       ts(AT - dt.timedelta(days=2)), "sms_keyword", now, now))
        elif email and roll < 0.03:
            rows["medium_opt_out"].append((hexid(), org, g, email, "email",
                                           ts(AT - dt.timedelta(days=3)), "free_text", now,
                                           now))
        elif roll < 0.04:
            rows["flag"].append((hexid(), org, g, rng.choice(
                ["bankruptcy", "cease_requested", "attorney_represented"]),
                ts(AT - dt.timedelta(days=5)), 1, "{}", "staff", now, now))
        elif roll < 0.045:
            rows["confidential_comm_request"].append((
                hexid(), org, g, ts(AT - dt.timedelta(days=9)), '["letter"]', "[]", "phone",
                now, now))
        elif roll < 0.05:
            rows["inconvenient_designation"].append((
                hexid(), org, g, "time", "09:00-12:00", ts(AT - dt.timedelta(days=9)), "call",
                now, now))
        if phone:
            rows["contact_event"].append((
                hexid(), org, g, phone, ts(AT - dt.timedelta(days=rng.randrange(1, 30))),
                rng.choice(["sms", "call"]), "outbound", "debtor", "manual",
                rng.choice(["delivered", "no_answer", "voicemail_lcm"]), f'["{a}"]', now))
        cohort = "holdout" if rng.random() < 0.05 else "treatment"
        rows["campaign_enrollment"].append((
            hexid(), org, campaign_hex, a, g, cohort, None if cohort == "holdout" else "A",
            ts(AT - dt.timedelta(days=1)), 0, ts(AT - dt.timedelta(hours=1)), "active", now,
            now))
    columns = {
        "guarantor": "id, organization_id, first_name, last_name, state, mailing_tz, "
                     "other_known_tz, city_is_nyc, preferred_language, created_at, "
                     "updated_at",
        "contact_point": "id, organization_id, guarantor_id, kind, value, employer_provided, "
                         "line_type, area_code_tzs, address_tz, owner, verified, is_primary, "
                         "source, active, created_at, updated_at",
        "account": "id, organization_id, guarantor_id, account_number, debt_kind, status, "
                   "opened_at, created_at, updated_at",
        "ledger_entry": "id, organization_id, account_id, kind, amount_cents, posted_at, "
                        "created_at",
        "consent": "id, organization_id, guarantor_id, contact_point_id, kind, granted_at, "
                   "given_to, method, source, created_at, updated_at",
        "revocation": "id, organization_id, guarantor_id, contact_point_id, channel, "
                      "received_at, method, created_at, updated_at",
        "medium_opt_out": "id, organization_id, guarantor_id, contact_point_id, medium, "
                          "received_at, method, created_at, updated_at",
        "flag": "id, organization_id, guarantor_id, kind, raised_at, in_writing, attributes, "
                "source, created_at, updated_at",
        "confidential_comm_request": "id, organization_id, guarantor_id, received_at, "
                                     "allowed_channels, allowed_contact_point_ids, method, "
                                     "created_at, updated_at",
        "inconvenient_designation": "id, organization_id, guarantor_id, kind, value, "
                                    "designated_at, method, created_at, updated_at",
        "contact_event": "id, organization_id, guarantor_id, contact_point_id, occurred_at, "
                         "channel, direction, person, dialer, outcome, account_ids, "
                         "created_at",
        "campaign_enrollment": "id, organization_id, campaign_id, account_id, guarantor_id, "
                               "cohort, variant, enrolled_at, next_step, next_due_at, status, "
                               "created_at, updated_at",
    }
    for table, names in columns.items():
        data = rows[table]
        if not data:
            counts[table] = 0
            continue
        marks = ", ".join("?" * len(names.split(",")))
        conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", data)  # noqa: S608
        counts[table] = len(data)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return org_id, counts


def _time_column_reads() -> dict[str, float]:
    """Time each SQL column read of `build_plan` (named by its frame's columns): wall
    seconds, and CPU seconds under the same name with a `cpu:` prefix."""
    from carecollect.outreach import planner

    timings: dict[str, float] = {}
    inner = planner._frame

    def timed(conn: Any, stmt: Any, schema: dict[str, Any]) -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(conn, stmt, schema)
        finally:
            names = [n for n in schema if n not in ("guarantor_id", "account_id")]
            key = "+".join(names[:3])
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - started
            timings["cpu:" + key] = timings.get("cpu:" + key, 0.0) + time.process_time() - cpu

    planner._frame = timed  # type: ignore[assignment]
    return timings


def _cpu(who: int | None = None) -> float:
    """CPU seconds of this process plus its waited-for children (the reader process), or
    of `who` (resource.RUSAGE_SELF / RUSAGE_CHILDREN) alone."""
    if who is None:
        return _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _plan_once(db: Database, org_id: uuid.UUID, reader: str,
               queries: dict[str, float]) -> tuple[Any, dict[str, Any]]:
    from carecollect.outreach import planner

    planner.ARROW_READS = reader == "arrow"
    queries.clear()
    with db.tenant_session(org_id) as session:
        load_before, cpu0, wall0 = os.getloadavg()[0], _cpu(), time.perf_counter()
        kids0 = _cpu(resource.RUSAGE_CHILDREN)
        plan = build_plan(session, organization_id=org_id, at=AT)
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        kids = _cpu(resource.RUSAGE_CHILDREN) - kids0
    t = plan.timings
    return plan, {
        "reader": reader, "outcomes": plan.counts(),
        "plan_s": round(wall, 2), "plan_cpu_s (incl. reader process)": round(cpu, 2),
        "reader_process_cpu_s": round(kids, 2),
        "load_average": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
        "load_sql_s": round(t["load_s"], 2),
        "batch_s (baseline: compliance batch alone)": round(t["batch_s"], 2),
        "planner_overhead_s": round(t["total_s"] - t["batch_s"], 2),
        "ratio_plan_to_batch": round(t["total_s"] / t["batch_s"], 2) if t["batch_s"]
        else None,
        "column_reads_s": {k: round(v, 2) for k, v in queries.items()},
        "target_s": 30, "meets_target": wall <= 30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--persist", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="database file to keep")
    parser.add_argument("--db", type=Path, default=None,
                        help="plan an existing (kept) database instead of building one")
    parser.add_argument("--reader", choices=["arrow", "session", "both"], default="arrow",
                        help="column reads: ADBC reader process (the default on SQLite), "
                        "the session's connection, or both alternately")
    parser.add_argument("--runs", type=int, default=1, help="plans per reader")
    parser.add_argument("--overlay", action="store_true",
                        help="also plan with an organization overlay (window 09:00-20:00, "
                        "quiet Sundays and US holidays, at most 1 contact in 7 days)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        if args.db is not None:
            path = args.db
            with sqlite3.connect(path) as conn:
                org_id = uuid.UUID(conn.execute("SELECT id FROM organization").fetchone()[0])
                counts = {"guarantor": conn.execute(
                    "SELECT count(*) FROM guarantor").fetchone()[0]}
                args.accounts = counts["guarantor"]
        else:
            path = args.keep or Path(tmp) / "plan.db"
            org_id, counts = populate(path, args.accounts)
        setup = time.perf_counter() - started
        db = Database(f"sqlite:///{path}")
        queries = _time_column_reads()
        readers = ["session", "arrow"] if args.reader == "both" else [args.reader]
        runs = []
        frames = {}
        for _ in range(args.runs):
            for reader in readers:
                plan, figures = _plan_once(db, org_id, reader, queries)
                runs.append(figures)
                frames[reader] = plan.frame.sort("enrollment_id")
        if len(frames) == 2:  # the two readers must give the very same plan
            runs.append({"same_plan_frame": frames["session"].equals(frames["arrow"])})
        result: dict[str, Any] = {"accounts": args.accounts, "setup_s": round(setup, 1),
                                  "rows": counts, "runs": runs}
        if args.overlay:
            from carecollect.compliance.overlay import OrgOverlay

            overlay = OrgOverlay(window_start=dt.time(9), window_end=dt.time(20),
                                 quiet_weekdays=frozenset({6}), holiday_country="US",
                                 max_contacts_per_7_days=1)
            with db.tenant_session(org_id) as session:
                cpu1 = _cpu()
                with_overlay = build_plan(session, organization_id=org_id, at=AT,
                                          overlay=overlay)
            result["with_overlay (same data, second plan)"] = {
                "plan_s": round(with_overlay.timings["total_s"], 2),
                "plan_cpu_s": round(_cpu() - cpu1, 2),
                "batch_and_overlay_s": round(with_overlay.timings["batch_s"], 2),
                "outcomes": with_overlay.counts()}
        if args.persist:
            with db.tenant_session(org_id) as session:
                t0 = time.perf_counter()
                result["persisted"] = persist_plan(session, plan)
                result["persist_s"] = round(time.perf_counter() - t0, 2)
        db.dispose()
        sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
