"""The planner's Arrow reader (SQLite: committed columns read through ADBC in a separate
process) gives the same plan as the session's reads, and is only used for tables the
plan's transaction has not written."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from carecollect.consent.preferences import preferences_service
from carecollect.db import Database
from carecollect.outreach import planner, planner_reader
from carecollect.outreach.cadence import cadence_service
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.outreach.service import contact_history_service
from carecollect.patient.models import Flag
from tests.factories import TEST_ACTOR, Tenant, create_tenant
from tests.outreach.helpers import (
    Debtor,
    bankrupt_debtor,
    email_opted_out_debtor,
    make_debtor,
    simple_campaign,
)

UTC = dt.UTC
AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(source kind, first column) of every column read of the planner."""
    seen: list[tuple[str, str]] = []
    inner = planner._frame

    def spy(source: Any, stmt: Any, schema: dict[str, Any]) -> Any:
        kind = "arrow" if isinstance(source, planner._ArrowReader) else "session"
        seen.append((kind, "+".join(list(schema)[:2])))
        return inner(source, stmt, schema)

    monkeypatch.setattr(planner, "_frame", spy)
    return seen


def _setup(db: Database) -> tuple[Tenant, dict[str, Debtor]]:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        simple_campaign(s, tenant, channels=("sms", "email", "letter"))
        texted = make_debtor(s, tenant, n=1, phone_consent_at=AT - dt.timedelta(days=3))
        opted_out = email_opted_out_debtor(s, tenant, n=2, at=AT)
        bankrupt = bankrupt_debtor(s, tenant, n=3, at=AT)
        confidential = make_debtor(s, tenant, n=4)
        preferences_service.request_confidential(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=confidential.guarantor_id,
            received_at=AT - dt.timedelta(days=5), method="phone",
            allowed_channels=["letter"])
        designated = make_debtor(s, tenant, n=5, phone_consent_at=AT - dt.timedelta(days=3))
        preferences_service.designate_inconvenient(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=designated.guarantor_id,
            kind="time", value="09:00-12:30", designated_at=AT - dt.timedelta(days=1),
            method="call")
        contact_history_service.record_contact(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=texted.guarantor_id,
            contact_point_id=texted.phone_id, occurred_at=AT - dt.timedelta(days=2),
            channel="sms", direction="outbound", outcome="delivered",
            account_ids=[texted.account_id])
        nothing = make_debtor(s, tenant, n=6, email=False, postal=False, phone=False)
        paid = make_debtor(s, tenant, n=7, balance_cents=0)
    return tenant, {"texted": texted, "opted_out": opted_out, "bankrupt": bankrupt,
                    "confidential": confidential, "designated": designated,
                    "nothing": nothing, "paid": paid}


def test_arrow_reader_plans_the_same_as_the_session(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, people = _setup(db)
    with db.tenant_session(tenant.id) as s:
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    monkeypatch.setattr(planner, "ARROW_MIN_GUARANTORS", 0)
    reads = _reads(monkeypatch)
    with db.tenant_session(tenant.id) as s:
        arrow = planner.build_plan(s, organization_id=tenant.id, at=AT)
    sources = {kind for kind, _ in reads}
    # Every column read through the reader on SQLite; PostgreSQL keeps the session's.
    assert sources == ({"arrow"} if db.engine.dialect.name == "sqlite" else {"session"})
    monkeypatch.setattr(planner, "ARROW_READS", False)
    reads.clear()
    with db.tenant_session(tenant.id) as s:
        plain = planner.build_plan(s, organization_id=tenant.id, at=AT)
    assert {kind for kind, _ in reads} == {"session"}
    assert arrow.frame.height == 6  # `paid` is never enrolled
    assert arrow.frame.sort("enrollment_id").equals(plain.frame.sort("enrollment_id"))
    got = {a.account_id: (a.outcome, a.channel, a.reasons) for a in arrow.attempts()}
    assert got[people["texted"].account_id] == ("send", "sms", ())
    assert got[people["opted_out"].account_id][:2] == ("send", "letter")
    assert got[people["bankrupt"].account_id][:2] == ("blocked", None)
    assert got[people["confidential"].account_id][:2] == ("send", "letter")
    assert got[people["designated"].account_id][:2] == ("retime", "sms")
    assert "REGF-TIME-DESIGNATED" in got[people["designated"].account_id][2]
    assert got[people["nothing"].account_id][0] == "blocked"


def test_uncommitted_writes_are_read_through_the_session(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, people = _setup(db)
    with db.tenant_session(tenant.id) as s:
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    monkeypatch.setattr(planner, "ARROW_MIN_GUARANTORS", 0)
    reads = _reads(monkeypatch)
    with db.tenant_session(tenant.id) as s:
        # Not committed: a second connection would not see it.
        s.add(Flag(organization_id=tenant.id, guarantor_id=people["texted"].guarantor_id,
                   kind="cease_requested", raised_at=AT - dt.timedelta(hours=2)))
        s.flush()
        plan = planner.build_plan(s, organization_id=tenant.id, at=AT)
        s.rollback()
    assert {kind for kind, _ in reads} == {"session"}
    got = {a.account_id: a for a in plan.attempts()}
    texted = got[people["texted"].account_id]
    assert texted.outcome == "blocked"
    assert "REGF-CEASE" in texted.reasons


@pytest.mark.parametrize("dry_run", [False, True], ids=["persist", "dry-run"])
def test_enrolment_in_the_same_transaction_is_read_through_the_session(
    db: Database, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    tenant, people = _setup(db)
    monkeypatch.setattr(planner, "ARROW_MIN_GUARANTORS", 0)
    reads = _reads(monkeypatch)
    with db.tenant_session(tenant.id) as s:
        plan, counts = planner.plan_and_persist(s, organization_id=tenant.id, at=AT,
                                                dry_run=dry_run)
    sources = {name: kind for kind, name in reads}
    # The enrollments were just written (uncommitted): that read goes through the session;
    # the tables enrolment did not touch through the reader (SQLite).
    assert sources["enrollment_id+account_id"] == "session"
    other = "arrow" if db.engine.dialect.name == "sqlite" else "session"
    assert sources["cp_id+guarantor_id"] == other
    assert sources["guarantor_id+at"] == other  # contact history
    assert plan.frame.height == 6
    assert (counts["send"], counts["retime"], counts["blocked"]) == (3, 1, 2)
    with db.tenant_session(tenant.id) as s:
        attempts = s.scalar(select(func.count()).select_from(OutreachAttempt))
    assert attempts == (0 if dry_run else 4)
    assert people["paid"].account_id not in {a.account_id for a in plan.attempts()}


def test_reader_connections_read_one_snapshot(tmp_path: Path) -> None:
    """The reader process's connections begin at one snapshot and keep it while another
    process commits. (Writes go through a separate process: Python's sqlite3 and the ADBC
    driver are two copies of SQLite, which must not share a file in one process.)"""
    path = tmp_path / "snap.db"

    def write(sql: str) -> None:
        script = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                  "c.execute('PRAGMA journal_mode=WAL'); c.executescript(sys.argv[2]); "
                  "c.commit(); c.close()")
        subprocess.run([sys.executable, "-c", script, str(path), sql], check=True)

    write("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
    conns = planner_reader._connections(str(path))
    try:
        assert len(conns) == planner_reader.WORKERS
        write("INSERT INTO t VALUES (2);")
        for conn in conns:
            cursor = conn.cursor()
            cursor.execute("SELECT count(*) FROM t")
            assert cursor.fetchall() == [(1,)]
            cursor.close()
    finally:
        for conn in conns:
            conn.rollback()
            conn.close()


def test_reads_sent_ahead_for_a_wide_plan_that_turns_out_narrow(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The due enrolments' count predicts a wide plan, so every read is sent to the reader
    ahead; an exclusion makes the plan narrow after all, and the narrow reads go through
    the session: the same plan as without the reader."""
    tenant, people = _setup(db)
    with db.tenant_session(tenant.id) as s:
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
        cadence_service.exclude(s, organization_id=tenant.id, actor=TEST_ACTOR,
                                account_id=people["nothing"].account_id,
                                reason="staff_hold", at=AT - dt.timedelta(hours=1))
    monkeypatch.setattr(planner, "ARROW_MIN_GUARANTORS", 0)
    # 7 guarantors, 6 due enrolments (predicted wide), 5 due after the exclusion (narrow).
    monkeypatch.setattr(planner, "WHOLE_ORG_SHARE", 6 / 7)
    reads = _reads(monkeypatch)
    with db.tenant_session(tenant.id) as s:
        ahead = planner.build_plan(s, organization_id=tenant.id, at=AT)
    if db.engine.dialect.name == "sqlite":
        assert reads[0][0] == "arrow"  # the due enrolments
        assert {kind for kind, _ in reads[2:]} == {"session"}  # narrow: due-id tables
    monkeypatch.setattr(planner, "ARROW_READS", False)
    with db.tenant_session(tenant.id) as s:
        plain = planner.build_plan(s, organization_id=tenant.id, at=AT)
    assert ahead.frame.height == 5
    assert ahead.frame.sort("enrollment_id").equals(plain.frame.sort("enrollment_id"))


def test_a_reader_that_fails_falls_back_to_the_session(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, _people = _setup(db)
    with db.tenant_session(tenant.id) as s:
        cadence_service.enroll_eligible(s, organization_id=tenant.id, actor=TEST_ACTOR, at=AT)
    with db.tenant_session(tenant.id) as s:
        plain = planner.build_plan(s, organization_id=tenant.id, at=AT)
    monkeypatch.setattr(planner, "ARROW_MIN_GUARANTORS", 0)
    monkeypatch.setattr(planner.sys, "executable", "/bin/false")  # the process ends at once
    reads = _reads(monkeypatch)
    with db.tenant_session(tenant.id) as s:
        fallen = planner.build_plan(s, organization_id=tenant.id, at=AT)
    assert {kind for kind, _ in reads[1:]} == {"session"}
    assert fallen.frame.sort("enrollment_id").equals(plain.frame.sort("enrollment_id"))
