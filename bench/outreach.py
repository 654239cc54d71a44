"""Outreach dispatch benchmark (issue 6): sends per second through the outbox on PostgreSQL
to a local fake provider (a Twilio-compatible HTTP server driven by the official SDK), with
one and with two worker processes.

Setup (not timed): a fresh PostgreSQL database, one organization with active BAAs, N
Massachusetts debtors with a consented mobile number, and per run one planned SMS attempt
per debtor (MA allows two texts in seven days, so every attempt is sendable).

Timed: from starting the worker processes until every attempt of the run is final. Each
delivery is the full path: claim, lock the debtor's contact-state row, rebuild the compliance
context from stored state (decrypting the phone), render the template, evaluate the engine,
check the BAA, record contact history and audit events, commit `sending`, call the provider
through the SDK, record `sent`.

Baseline measured in the same run: the raw provider rate, i.e. the same SDK calls to the
same fake server from one process with no database at all; the ratio says how much of a
send's cost the outbox adds.

Run: .venv/bin/python bench/outreach.py [--debtors N] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.channel.fakes import fake_twilio  # noqa: E402
from tests.channel.world import (  # noqa: E402
    BASE,
    World,
    add_vendors,
    seed_debtors,
    twilio_provider,
    worker_process_main,
)
from tests.factories import create_tenant  # noqa: E402

from carecollect.channel.base import OutboundMessage  # noqa: E402
from carecollect.db import Database  # noqa: E402
from carecollect.kit.crypto.keyring import load_env_provider  # noqa: E402
from carecollect.kit.crypto.keys import KeyManager  # noqa: E402
from carecollect.migrations.runner import upgrade  # noqa: E402
from carecollect.outreach.dispatch import create_attempt  # noqa: E402
from carecollect.outreach.outbox import OutreachAttempt  # noqa: E402


def plan_round(world: World, round_no: int) -> int:
    with world.db.tenant_session(world.tenant.id) as session:
        for d in world.debtors:
            create_attempt(session, organization_id=world.tenant.id, guarantor_id=d.id,
                           channel="sms", idempotency_key=f"bench:{round_no}:{d.id}",
                           contact_point_id=d.phone_id,
                           scheduled_for=BASE - timedelta(hours=1))
    return len(world.debtors)


def pending(db: Database) -> int:
    with db.system_session() as session:
        return int(session.scalar(select(func.count()).select_from(OutreachAttempt).where(
            OutreachAttempt.state.in_(("planned", "sending")))) or 0)


def sent(db: Database) -> int:
    with db.system_session() as session:
        return int(session.scalar(select(func.count()).select_from(OutreachAttempt).where(
            OutreachAttempt.state == "sent")) or 0)


def run_workers(world: World, kek: str, twilio_url: str, processes: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker_process_main,
                         args=(world.db.url, kek, twilio_url, str(world.tenant.id), 25))
             for _ in range(processes)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit("a worker process failed")
    return elapsed


def raw_rate(twilio_url: str, n: int) -> float:
    provider = twilio_provider(twilio_url)
    message = OutboundMessage(attempt_id=uuid.uuid4(), organization_id=uuid.uuid4(),
                              idempotency_key="raw", channel="sms", to="+16172999999",
                              from_name="Bench", sms_body="Bench: a neutral message. "
                              "Reply STOP to opt out.")
    start = time.perf_counter()
    for _ in range(n):
        provider.send(message)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debtors", type=int, default=1000)
    parser.add_argument("--pg-url", default=os.environ.get(
        "CARECOLLECT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    name = f"cc_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = args.pg_url.rpartition("/")
    db = Database(f"{base}/{name}")
    try:
        upgrade(db.engine)
        kek = base64.b64encode(os.urandom(32)).decode()
        manager = KeyManager(load_env_provider(kek), ttl_seconds=600, planned_rows=100_000)
        world = World(db, create_tenant(db, manager))
        add_vendors(db, world.tenant)
        t0 = time.perf_counter()
        seed_debtors(world, args.debtors)
        print(f"setup: {args.debtors} debtors in {time.perf_counter() - t0:.1f} s")
        with fake_twilio() as twilio:
            baseline = raw_rate(twilio.base_url, min(500, args.debtors))
            twilio.messages.clear()
            print(f"baseline: raw SDK sends to the fake provider, no database: "
                  f"{baseline:,.0f} sends/s")
            results = []
            for round_no, processes in enumerate((1, 2), start=1):
                before = sent(db)
                n = plan_round(world, round_no)
                elapsed = run_workers(world, kek, twilio.base_url, processes)
                done = sent(db) - before
                if pending(db) or done != n:
                    raise SystemExit(f"round {round_no}: {done} of {n} sent")
                rate = done / elapsed
                results.append((processes, done, elapsed, rate))
                print(f"dispatch, {processes} worker process(es): {done} sends in "
                      f"{elapsed:.2f} s = {rate:,.0f} sends/s ({rate / processes:,.0f} per "
                      f"worker; ratio to raw baseline {rate / processes / baseline:.3f}; "
                      f"target >= 500 per worker)")
            if len(twilio.messages) != sum(r[1] for r in results):
                raise SystemExit("provider message count differs from sent attempts")
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
