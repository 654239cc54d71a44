"""Outreach dispatch benchmark (issue 6): sends per second through the outbox on PostgreSQL
to a local fake provider (a Twilio-compatible HTTP server driven by the official SDK), with
one and with two worker processes.

Setup (not timed): a fresh PostgreSQL database, one organization with active BAAs, N + M
Massachusetts debtors with a consented mobile number. Each round plans one SMS attempt per
debtor of its set (MA allows two texts in seven days: the N debtors get two rounds, the
M debtors of the one-at-a-time round one).

Timed: from starting the worker processes (spawned, `carecollect worker`'s loop with
`until_idle`) until every attempt of the round is final. Each delivery is the full path:
claim, lock the attempts and the debtors' contact-state rows, load the debtors' stored
state (decrypting the phone), render the template, evaluate the engine, check the BAA,
record contact history and audit events, commit `sending`, call the provider through the
SDK, record `sent` and its audit event.

Rounds: one attempt at a time (`batch_size` 1: the pre-batch behaviour, M sends), then
the batch path with one and with two worker processes (N sends each). CPU seconds of the
worker processes (getrusage of the children, including spawn and imports; and inside the
worker loop alone), of this process (the fake server's threads) and of the local
PostgreSQL backends serving the bench database (from /proc) are reported next to wall
time, with the load average.

Baseline measured in the same run: the raw provider rate, i.e. the same SDK calls to the
same fake server from this process with no database at all, sequentially and from as many
threads as the dispatcher keeps in flight.

Run: .venv/bin/python bench/outreach.py [--debtors N] [--single-debtors M] [--claim C]
[--batch B] [--concurrency K] [--pg-url URL]

The issue's other outreach figure, planning 1,000,000 accounts on SQLite with the ratio to
the compliance batch evaluation alone, is `bench/outreach_plan.py`;
`bench/outreach.py plan [ARGS]` runs it with ARGS (e.g. `plan --accounts 1000000`).
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import resource
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.channel.fakes import fake_twilio  # noqa: E402
from tests.channel.world import (  # noqa: E402
    BASE,
    Debtor,
    World,
    add_vendors,
    moving_clock,
    seed_debtors,
    twilio_provider,
)
from tests.factories import create_tenant  # noqa: E402

from carecollect.channel.base import OutboundMessage  # noqa: E402
from carecollect.db import Database  # noqa: E402
from carecollect.kit.crypto.keyring import load_env_provider  # noqa: E402
from carecollect.kit.crypto.keys import KeyManager  # noqa: E402
from carecollect.migrations.runner import upgrade  # noqa: E402
from carecollect.outreach.dispatch import create_attempt  # noqa: E402
from carecollect.outreach.outbox import OutreachAttempt  # noqa: E402


def plan_round(world: World, debtors: list[Debtor], round_no: int) -> int:
    with world.db.tenant_session(world.tenant.id) as session:
        for d in debtors:
            create_attempt(session, organization_id=world.tenant.id, guarantor_id=d.id,
                           channel="sms", idempotency_key=f"bench:{round_no}:{d.id}",
                           contact_point_id=d.phone_id,
                           scheduled_for=BASE - timedelta(hours=1))
    return len(debtors)


def pending(db: Database) -> int:
    with db.system_session() as session:
        return int(session.scalar(select(func.count()).select_from(OutreachAttempt).where(
            OutreachAttempt.state.in_(("planned", "sending")))) or 0)


def sent(db: Database) -> int:
    with db.system_session() as session:
        return int(session.scalar(select(func.count()).select_from(OutreachAttempt).where(
            OutreachAttempt.state == "sent")) or 0)


def bench_worker_main(url: str, kek: str, twilio_url: str, tenant_id: str, claim: int,
                      batch_size: int, concurrency: int, report: Any) -> None:
    """A spawned worker process: `carecollect worker`'s loop with `until_idle`, claiming
    `claim` jobs at a time, delivering them in batches of `batch_size` (1: one attempt at
    a time) with `concurrency` provider calls in flight."""
    from tests.factories import Tenant

    from carecollect.kit.jobs.worker import Worker
    from carecollect.outreach.dispatch import DispatchResources, DispatchSettings
    from carecollect.outreach.ratelimit import RateLimiter
    from carecollect.tenant.models import Organization

    db = Database(url, pool_size=2)
    manager = KeyManager(load_env_provider(kek), ttl_seconds=600, planned_rows=10_000)
    with db.system_session() as session:
        org = session.get(Organization, uuid.UUID(tenant_id))
        if org is None:
            raise SystemExit(2)
        keys = manager.for_organization(session, org.id)
    world = World(db, Tenant(org.id, keys, manager))
    settings = DispatchSettings(link_secret=b"k" * 32, batch_size=batch_size,
                                send_concurrency=concurrency)
    resources = {"outreach": DispatchResources(
        channels={"sms": twilio_provider(twilio_url, timeout=10)}, settings=settings,
        limiter=RateLimiter({}))}
    # Only the outreach handlers (other domains' task modules are not needed here).
    import carecollect.outreach.tasks  # noqa: F401
    from carecollect.kit.jobs.registry import registry

    worker = Worker(world.db, manager, resources=resources, clock=moving_clock(BASE),
                    batch_size=claim, poll_interval=0.05, registry=registry,
                    run_scheduler=False)
    cpu0 = time.process_time()
    worker.run(until_idle=True)
    report.put(time.process_time() - cpu0)
    db.dispose()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class BackendCpu:
    """CPU seconds of the local PostgreSQL backends serving database `name` (the process
    title names it), sampled every 0.1 s while a round runs, so a backend whose worker
    process has exited still counts with its last sample. Other sessions' backends on the
    shared server are not counted. Reads nothing (0 s) when the server is not local."""

    def __init__(self, name: str) -> None:
        self.name = name.encode()
        self.seen: dict[int, tuple[float, float]] = {}  # pid: (first, last) CPU seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read()
                if not title.startswith(b"postgres:") or self.name not in title:
                    continue
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            cpu = (int(fields[11]) + int(fields[12])) / self.tick
            first = self.seen.get(int(pid), (cpu, cpu))[0]
            self.seen[int(pid)] = (first, cpu)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            self.sample()

    def __enter__(self) -> BackendCpu:
        self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()

    @property
    def seconds(self) -> float:
        return sum(last - first for first, last in self.seen.values())


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_workers(world: World, kek: str, twilio_url: str, processes: int, claim: int,
                batch_size: int, concurrency: int) -> tuple[float, float, float, float]:
    """(wall seconds, workers' CPU seconds in all, of which inside the worker loop, this
    process's CPU seconds: the fake server)."""
    ctx = multiprocessing.get_context("spawn")
    report = ctx.Queue()
    procs = [ctx.Process(target=bench_worker_main,
                         args=(world.db.url, kek, twilio_url, str(world.tenant.id), claim,
                               batch_size, concurrency, report))
             for _ in range(processes)]
    cpu0, own0 = children_cpu(), self_cpu()
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit("a worker process failed")
    in_loop = sum(report.get(timeout=10) for _ in procs)
    return elapsed, children_cpu() - cpu0, in_loop, self_cpu() - own0


def raw_rate(twilio_url: str, n: int, threads: int = 1) -> tuple[float, float]:
    """Raw SDK sends to the fake server, no database: (sends/s, client CPU-s per send is
    not separable from the in-process server, so this returns (rate, CPU s of both))."""
    provider = twilio_provider(twilio_url)
    message = OutboundMessage(attempt_id=uuid.uuid4(), organization_id=uuid.uuid4(),
                              idempotency_key="raw", channel="sms", to="+16172999999",
                              from_name="Bench", sms_body="Bench: a neutral message. "
                              "Reply STOP to opt out.")
    cpu0 = self_cpu()
    start = time.perf_counter()
    if threads == 1:
        for _ in range(n):
            provider.send(message)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _: provider.send(message), range(n)))
    return n / (time.perf_counter() - start), self_cpu() - cpu0


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    if sys.argv[1:2] == ["plan"]:  # the planning half of the benchmark
        script = str(Path(__file__).with_name("outreach_plan.py"))
        os.execv(sys.executable, [sys.executable, script, *sys.argv[2:]])  # noqa: S606
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debtors", type=int, default=5000,
                        help="debtors (= sends per round) for the batch rounds")
    parser.add_argument("--single-debtors", type=int, default=300,
                        help="sends of the one-attempt-at-a-time round (0: skip it)")
    parser.add_argument("--claim", type=int, default=200, help="jobs claimed at a time")
    parser.add_argument("--batch", type=int, default=100, help="attempts per delivery batch")
    parser.add_argument("--concurrency", type=int, default=8, help="sends in flight")
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
        seed_debtors(world, args.debtors + args.single_debtors)
        batch_set = world.debtors[:args.debtors]
        single_set = world.debtors[args.debtors:]
        print(f"setup: {len(world.debtors)} debtors in {time.perf_counter() - t0:.1f} s; "
              f"load average {load()}")
        with fake_twilio() as twilio:
            for threads in (1, args.concurrency):
                rate, cpu = raw_rate(twilio.base_url, min(1000, args.debtors), threads)
                print(f"baseline: raw SDK sends to the fake provider, no database, {threads} "
                      f"thread(s): {rate:,.0f} sends/s ({cpu / min(1000, args.debtors) * 1e3:.2f}"
                      f" ms CPU per send, client and fake server together)")
                if threads == 1:
                    baseline = rate
            twilio.messages.clear()
            rounds = []
            if args.single_debtors:
                rounds.append(("one attempt at a time", single_set, 1, 1, 25, 1))
            rounds += [("batch", batch_set, 1, args.batch, args.claim, args.concurrency),
                       ("batch", batch_set, 2, args.batch, args.claim, args.concurrency)]
            total = 0
            for round_no, (label, debtors, processes, batch, claim, conc) in enumerate(
                    rounds, start=1):
                before = sent(db)
                n = plan_round(world, debtors, round_no)
                before_load = load()
                with BackendCpu(name) as backends:
                    elapsed, cpu, loop_cpu, fake_cpu = run_workers(
                        world, kek, twilio.base_url, processes, claim, batch, conc)
                pg_cpu = backends.seconds
                done = sent(db) - before
                total += done
                if pending(db) or done != n:
                    raise SystemExit(f"round {round_no}: {done} of {n} sent")
                rate = done / elapsed
                print(f"dispatch, {label}, {processes} worker process(es) (claim {claim}, "
                      f"batch {batch}, {conc} in flight): {done} sends in {elapsed:.2f} s = "
                      f"{rate:,.0f} sends/s ({rate / processes:,.0f} per worker; ratio to raw "
                      f"baseline {rate / processes / baseline:.3f}); workers' CPU {cpu:.1f} s, "
                      f"{loop_cpu:.1f} s of it in the worker loop = {done / loop_cpu:,.0f} sends "
                      f"per worker CPU-second ({loop_cpu / done * 1e3:.2f} ms per send); fake "
                      f"server CPU {fake_cpu:.1f} s; PostgreSQL backends' CPU {pg_cpu:.1f} s "
                      f"({pg_cpu / done * 1e3:.2f} ms per send); load average {before_load} -> "
                      f"{load()}; "
                      f"target >= 500 per worker")
            if len(twilio.messages) != total:
                raise SystemExit("provider message count differs from sent attempts")
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
