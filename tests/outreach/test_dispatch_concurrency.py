"""Four worker processes on PostgreSQL dispatching attempts for many debtors: never over a
cap, never one attempt sent twice, none unaccounted for; one worker is SIGKILLed mid-run.

Default scale: 100 debtors x 10 attempts (1,000 attempts; CARECOLLECT_CONCURRENCY_DEBTORS=N
changes the number of debtors).
CARECOLLECT_CONCURRENCY_FULL=1 runs the issue's full 2,000 debtors x 10 (20,000 attempts).
"""

from __future__ import annotations

import base64
import collections
import multiprocessing
import os
import signal
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from carecollect.db import Database
from carecollect.kit.crypto.keyring import load_env_provider
from carecollect.kit.crypto.keys import KeyManager
from carecollect.kit.jobs.models import Job
from carecollect.outreach.outbox import OutreachAttempt
from tests.channel.fakes import fake_twilio
from tests.channel.world import (
    BASE,
    World,
    add_vendors,
    make_worker,
    moving_clock,
    plan_many,
    seed_debtors,
    twilio_provider,
    worker_process_main,
)
from tests.factories import create_tenant

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
FULL = os.environ.get("CARECOLLECT_CONCURRENCY_FULL") == "1"
DEBTORS, PER_DEBTOR = (2000, 10) if FULL else (
    int(os.environ.get("CARECOLLECT_CONCURRENCY_DEBTORS", "100")), 10)
CAP = 2  # STATE-MA-2IN7: two texts in seven days to a Massachusetts debtor


def test_four_workers_never_exceed_caps_or_duplicate(db: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("the multi-process claim path needs PostgreSQL (SQLite runs one worker)")
    kek = base64.b64encode(os.urandom(32)).decode()
    manager = KeyManager(load_env_provider(kek), ttl_seconds=600, planned_rows=10_000)
    tenant = create_tenant(db, manager)
    add_vendors(db, tenant)
    world = World(db, tenant)
    seed_debtors(world, DEBTORS)
    ids = plan_many(world, PER_DEBTOR)
    assert len(ids) == DEBTORS * PER_DEBTOR
    ctx = multiprocessing.get_context("spawn")
    with fake_twilio() as twilio:
        procs = [ctx.Process(target=worker_process_main,
                             args=(db.url, kek, twilio.base_url, str(tenant.id)))
                 for _ in range(4)]
        for p in procs:
            p.start()
        # Kill one worker once sending is well under way (mid-batch).
        deadline = time.monotonic() + 120
        while len(twilio.messages) < DEBTORS // 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(procs[3].pid, signal.SIGKILL)  # type: ignore[arg-type]
        for p in procs:
            p.join(600)
        assert [p.exitcode for p in procs[:3]] == [0, 0, 0]
        assert procs[3].exitcode == -signal.SIGKILL
        # A later worker rescues the dead one's leases, then reconciles `unknown` attempts.
        provider = twilio_provider(twilio.base_url)
        later = BASE + timedelta(minutes=10)
        make_worker(world, {"sms": provider}, clock=moving_clock(later)).drain()
        make_worker(world, {"sms": provider},
                    clock=moving_clock(later + timedelta(minutes=15))).drain()
        messages = list(twilio.messages)

    with db.system_session() as session:
        attempts = session.execute(select(
            OutreachAttempt.guarantor_id, OutreachAttempt.state,
            OutreachAttempt.provider_message_id, OutreachAttempt.reasons)).all()
        open_jobs = session.scalar(select(func.count()).select_from(Job).where(
            Job.state.in_(("available", "running"))))
    states = collections.Counter(a.state for a in attempts)
    # None lost: every attempt is final (sent or blocked by the cap), no job is left.
    assert len(attempts) == DEBTORS * PER_DEBTOR
    assert set(states) <= {"sent", "blocked"}, states
    assert open_jobs == 0
    # Never over a cap, and with no consent problems every debtor got exactly the cap.
    sent_per_debtor = collections.Counter(a.guarantor_id for a in attempts if a.state == "sent")
    assert set(sent_per_debtor.values()) == {CAP}
    assert len(sent_per_debtor) == DEBTORS
    assert all("STATE-MA-2IN7" in a.reasons for a in attempts if a.state == "blocked")
    # Never sent twice: the provider received exactly one message per sent attempt.
    assert len(messages) == states["sent"] == DEBTORS * CAP
    sids = [a.provider_message_id for a in attempts if a.state == "sent"]
    assert sorted(sids) == sorted(m["sid"] for m in messages)  # type: ignore[type-var]
    per_number = collections.Counter(m["to"] for m in messages)
    assert set(per_number.values()) == {CAP}
