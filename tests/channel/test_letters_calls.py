"""Letters (ReportLab PDFs, mail-house batch) and the staff call work list."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from carecollect.channel.calls import check_before_dial, log_outcome, voicemail_script, work_list
from carecollect.channel.letters import page_count, render_letter_pdf
from carecollect.db import Database
from carecollect.outreach.models import ContactEvent
from carecollect.outreach.outbox import OutreachAttempt
from tests.channel.world import BASE, make_worker, make_world, plan
from tests.factories import TEST_ACTOR


def test_letter_pdf_and_mail_house_batch(db: Database, tmp_path: Path) -> None:
    world = make_world(db, 3)
    spool = tmp_path / "spool"
    ids = [plan(world, d, "letter", f"l-{i}") for i, d in enumerate(world.debtors)]
    worker = make_worker(world, {}, spool=spool)
    worker.drain()
    pdf = (spool / "pending" / f"{ids[0]}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert page_count(pdf) == 1
    # Uncompressed content streams: the text is checkable without a PDF library.
    assert b"(Lakeside Billing)" in pdf
    assert b"(Robin Test0)" in pdf
    assert b"(0 Test Way)" in pdf
    assert b"Account ending in" in pdf
    spool_provider = worker.context.resources["outreach"].channels["letter"]
    batch = spool_provider.export_batch(now=BASE)
    assert batch is not None
    assert sorted(p.name for p in batch.iterdir()) == sorted(
        [f"{i}.pdf" for i in ids] + ["manifest.csv", "manifest.json"])
    manifest = json.loads((batch / "manifest.json").read_text())
    assert (manifest["count"], manifest["total_pages"]) == (3, 3)
    rows = list(csv.DictReader((batch / "manifest.csv").open()))
    assert sorted(r["attempt_id"] for r in rows) == sorted(str(i) for i in ids)
    assert {r["zip5"] for r in rows} == {"02115"}
    assert list((spool / "pending").iterdir()) == []
    assert spool_provider.export_batch(now=BASE) is None
    with db.system_session() as session:
        states = {a.state for a in session.scalars(select(OutreachAttempt))}
    assert states == {"sent"}


def test_long_letters_paginate() -> None:
    body = "\n".join(f"Line {i} of the itemized statement." for i in range(120))
    pdf = render_letter_pdf(return_name="Lakeside Billing", return_address=["1 Main St"],
                            recipient_name="Robin Test", recipient_address=["2 Elm St"],
                            body=body, reference="abc")
    assert page_count(pdf) == 3


def test_call_tasks_are_worked_and_logged_outcomes_count_toward_caps(db: Database) -> None:
    world = make_world(db, 1)
    debtor = world.debtors[0]
    for i in range(3):
        plan(world, debtor, "call", f"c-{i}")
    make_worker(world, {}).drain()
    with db.tenant_session(world.tenant.id) as session:
        items = work_list(session, now=BASE + timedelta(minutes=1))
        assert len(items) == 3
        decision = check_before_dial(session, world.tenant.keys, items[0].task_id,
                                     now=BASE + timedelta(minutes=1))
        assert decision.decision in ("allow", "allow_with_modification")
        log_outcome(session, world.tenant.keys, TEST_ACTOR, items[0].task_id,
                    outcome="conversation_rpc", occurred_at=BASE + timedelta(minutes=2))
        log_outcome(session, world.tenant.keys, TEST_ACTOR, items[1].task_id,
                    outcome="voicemail_lcm", occurred_at=BASE + timedelta(minutes=5))
    with db.tenant_session(world.tenant.id) as session:
        events = session.scalars(select(ContactEvent).order_by(ContactEvent.occurred_at)).all()
        assert [(e.channel, e.outcome, e.dialer) for e in events] == [
            ("call", "conversation_rpc", "manual"), ("voicemail", "voicemail_lcm", "manual")]
        # MA allows two initiated phone contacts in seven days: the third call is blocked.
        late = check_before_dial(session, world.tenant.keys, items[2].task_id,
                                 now=BASE + timedelta(hours=1))
        assert late.decision == "block"
        assert "STATE-MA-2IN7" in late.reasons
        assert len(work_list(session, now=BASE + timedelta(minutes=1))) == 1


def test_voicemail_script_is_limited_content() -> None:
    script = voicemail_script("Lakeside Billing", contact_person="Sam",
                              callback_phone="+1 617 555 0100")
    assert script == ("Hello, this is Sam from Lakeside Billing. Please call us back at "
                      "+1 617 555 0100. Thank you.")
    for word in ("bill", "balance", "account", "debt"):
        assert word not in script.lower().replace("billing", "")
