"""The batch delivery path: a claimed batch decided in one transaction, sent concurrently,
recorded in one transaction. Its own edge cases: two attempts for one debtor in one batch,
one failing send among good ones, a crash between `sending` and `sent`, a decision that
fails for one attempt, and the bulk loaders it relies on."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from carecollect.audit import Subject
from carecollect.audit.service import PendingEvent, record_many
from carecollect.channel.base import OutboundMessage, SendResult
from carecollect.consent.preferences import preferences_service, scenario_additions
from carecollect.db import Database
from carecollect.kit.jobs import ClaimedJob, JobContext
from carecollect.kit.jobs.models import Job
from carecollect.kit.jobs.worker import Worker
from carecollect.ledger.service import ledger_service
from carecollect.outreach import dispatch
from carecollect.outreach import tasks as _tasks  # noqa: F401 - registers the handlers
from carecollect.outreach.context import _scenario_additions, load_debtor, load_debtors
from carecollect.outreach.dispatch import DispatchSettings
from carecollect.outreach.models import ContactEvent
from carecollect.outreach.outbox import ContactState, OutreachAttempt
from carecollect.outreach.templates import (
    Conditions,
    SurfaceContext,
    Template,
    TemplateRefused,
    compiled,
    default_templates,
    render,
    render_template,
)
from carecollect.patient.service import patient_service
from carecollect.tenant.models import Organization
from tests.channel.fakes import fake_twilio
from tests.channel.world import (
    BASE,
    World,
    make_worker,
    make_world,
    moving_clock,
    plan,
    twilio_provider,
)
from tests.factories import TEST_ACTOR, audit_events

LATER = BASE + timedelta(minutes=10)


def _attempts(db: Database) -> dict[uuid.UUID, OutreachAttempt]:
    with db.system_session() as session:
        return {a.id: a for a in session.scalars(select(OutreachAttempt))}


def _jobs(db: Database) -> list[Job]:
    with db.system_session() as session:
        return list(session.scalars(select(Job).where(Job.kind == dispatch.DELIVER)))


def _counted_events(db: Database) -> list[ContactEvent]:
    with db.system_session() as session:
        return list(session.scalars(select(ContactEvent).where(
            ContactEvent.direction == "outbound", ContactEvent.outcome != "undeliverable")
            .order_by(ContactEvent.occurred_at)))


class CountingBatches:
    """Wraps the registered batch handler to see how the worker grouped the jobs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from carecollect.kit.jobs.registry import registry

        self.sizes: list[int] = []
        spec = registry.tasks[dispatch.DELIVER]
        inner = spec.batch_handler
        assert inner is not None

        def handler(ctx: JobContext, jobs: list[ClaimedJob]) -> dict[Any, BaseException | None]:
            self.sizes.append(len(jobs))
            return inner(ctx, jobs)

        monkeypatch.setitem(registry.tasks, dispatch.DELIVER,
                            dataclasses.replace(spec, batch_handler=handler))


def test_two_attempts_for_one_debtor_in_one_batch_see_each_other(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # STATE-MA-2IN7 allows two texts in seven days; one was sent earlier, so of the two
    # attempts decided together in the next batch exactly one may go.
    world = make_world(db, 1)
    debtor = world.debtors[0]
    batches = CountingBatches(monkeypatch)
    with fake_twilio() as twilio:
        provider = twilio_provider(twilio.base_url)
        first = plan(world, debtor, "sms", "first")
        make_worker(world, {"sms": provider}).drain()
        both = [plan(world, debtor, "sms", "second"), plan(world, debtor, "sms", "third")]
        make_worker(world, {"sms": provider}, clock=moving_clock(BASE + timedelta(
            minutes=1))).drain()
        assert len(twilio.messages) == 2
    assert batches.sizes == [1, 2]
    rows = _attempts(db)
    assert rows[first].state == "sent"
    assert [rows[i].state for i in both] == ["sent", "blocked"]
    assert "STATE-MA-2IN7" in rows[both[1]].reasons
    assert rows[both[1]].next_allowed_at is not None
    # The second decision came strictly after the first (history counts events before the
    # decision time), and the debtor's contact state records the later one.
    events = _counted_events(db)
    assert len(events) == 2
    assert rows[both[0]].sending_at == events[1].occurred_at
    with db.system_session() as session:
        state = session.get(ContactState, debtor.id)
        assert state is not None
        assert (state.outbound_count, state.last_outbound_at) == (2, events[1].occurred_at)


def test_lagging_clock_still_counts_a_later_recorded_send(db: Database) -> None:
    # A worker whose clock is behind the debtor's latest recorded send decides after that
    # send, so the cap still counts it.
    world = make_world(db, 1)
    debtor = world.debtors[0]
    with fake_twilio() as twilio:
        provider = twilio_provider(twilio.base_url)
        plan(world, debtor, "sms", "a")
        plan(world, debtor, "sms", "b")
        make_worker(world, {"sms": provider}, clock=moving_clock(LATER)).drain()
        late = plan(world, debtor, "sms", "c")
        make_worker(world, {"sms": provider}, clock=moving_clock(BASE)).drain()
        assert len(twilio.messages) == 2
    row = _attempts(db)[late]
    assert (row.state, "STATE-MA-2IN7" in row.reasons) == ("blocked", True)


@pytest.mark.parametrize(("fault", "state", "code"), [
    ("429", "planned", "twilio_429"),
    ("drop", "unknown", "twilio_connection_dropped"),
    ("400", "failed", "twilio_400"),
])
def test_one_failing_send_in_a_batch_leaves_the_others_sent(
        db: Database, monkeypatch: pytest.MonkeyPatch, fault: str, state: str,
        code: str) -> None:
    world = make_world(db, 3)
    batches = CountingBatches(monkeypatch)
    with fake_twilio(faults=[fault]) as twilio:
        provider = twilio_provider(twilio.base_url, timeout=2)
        ids = [plan(world, d, "sms", f"k-{d.id}") for d in world.debtors]
        make_worker(world, {"sms": provider}).drain()
        assert batches.sizes == [3]
        rows = _attempts(db)
        states = sorted((rows[i].state, rows[i].error_code) for i in ids)
        assert states == sorted([("sent", None), ("sent", None), (state, code)])
        odd = next(rows[i] for i in ids if rows[i].state != "sent")
        created = len(twilio.messages)
        assert created == (3 if fault == "drop" else 2)
        # Its job: retried later (429), or done (unknown: a reconcile job settles it;
        # failed for good: nothing more to do).
        job = next(j for j in _jobs(db) if j.args["attempt_id"] == str(odd.id))
        assert (job.state, job.attempt) == (
            ("available", 1) if fault == "429" else ("completed", 1))
        # Only sends that may have happened count toward caps.
        assert len(_counted_events(db)) == (3 if fault == "drop" else 2)
        make_worker(world, {"sms": provider}, clock=moving_clock(LATER)).drain()
        rows = _attempts(db)
        final = "failed" if fault == "400" else "sent"
        assert rows[odd.id].state == final
        # Never sent twice: one provider message per sent attempt.
        assert len(twilio.messages) == sum(1 for i in ids if rows[i].state == "sent")
    sends = audit_events(db, "message.send")
    assert len(sends) == sum(1 for i in ids if rows[i].state == "sent")


def test_crash_between_sending_and_sent_is_reconciled_never_resent(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(db, 3)
    with fake_twilio() as twilio:
        provider = twilio_provider(twilio.base_url)
        for d in world.debtors:
            plan(world, d, "sms", f"k-{d.id}")

        def crash(*args: Any, **kwargs: Any) -> Any:
            raise KeyboardInterrupt  # not an Exception: nothing in the worker catches it

        with monkeypatch.context() as patch:
            patch.setattr(dispatch, "_record_outcomes", crash)
            with pytest.raises(KeyboardInterrupt):
                make_worker(world, {"sms": provider}).run_once()
        # The provider has all three; the database says `sending` for all three.
        assert len(twilio.messages) == 3
        assert {a.state for a in _attempts(db).values()} == {"sending"}
        assert len(_counted_events(db)) == 3
        survivor = make_worker(world, {"sms": provider}, clock=moving_clock(LATER))
        survivor.drain()
        assert survivor.stats.rescued == 3
        assert {a.state for a in _attempts(db).values()} == {"unknown"}
        make_worker(world, {"sms": provider},
                    clock=moving_clock(LATER + timedelta(minutes=10))).drain()
        rows = _attempts(db)
        assert {a.state for a in rows.values()} == {"sent"}
        # Found at the provider, not sent again.
        assert len(twilio.messages) == 3
        assert sorted(a.provider_message_id for a in rows.values()) == sorted(  # type: ignore[type-var]
            m["sid"] for m in twilio.messages)
    assert len(_counted_events(db)) == 3


def test_a_decision_error_falls_back_to_one_by_one(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error while deciding a batch rolls the batch back and delivers its
    jobs one by one, so only the attempt that caused it fails (and is retried)."""
    world = make_world(db, 3)
    bad = world.debtors[1]
    real = dispatch._Batch.prepare

    def flaky(self: Any, attempt: OutreachAttempt, *args: Any) -> Any:
        if attempt.guarantor_id == bad.id:
            raise RuntimeError("boom")
        return real(self, attempt, *args)

    monkeypatch.setattr(dispatch._Batch, "prepare", flaky)
    with fake_twilio() as twilio:
        ids = {d.id: plan(world, d, "sms", f"k-{d.id}") for d in world.debtors}
        worker = make_worker(world, {"sms": twilio_provider(twilio.base_url)})
        worker.run_once()
        assert sorted(m["to"] for m in twilio.messages) == sorted(
            d.phone for d in world.debtors if d.id != bad.id)
    rows = _attempts(db)
    assert rows[ids[bad.id]].state == "planned"
    assert all(rows[ids[d.id]].state == "sent" for d in world.debtors if d.id != bad.id)
    job = next(j for j in _jobs(db) if j.args["attempt_id"] == str(ids[bad.id]))
    assert (job.state, job.errors[-1]["error"]) == ("available", "RuntimeError")
    # The rolled-back batch left nothing behind: one decision event per sent attempt.
    assert len(audit_events(db, "outreach.decision")) == 2
    assert len(_counted_events(db)) == 2


def test_missing_resources_fail_every_job_of_the_batch(db: Database) -> None:
    world = make_world(db, 2)
    for d in world.debtors:
        plan(world, d, "sms", f"k-{d.id}")
    worker = Worker(db, world.tenant.manager, resources={}, clock=moving_clock(),
                    batch_size=20)
    assert worker.run_once() == 2
    assert worker.stats.discarded == 2
    assert {(j.state, j.errors[-1]["code"]) for j in _jobs(db)} == {
        ("discarded", "outreach_not_configured")}
    assert {a.state for a in _attempts(db).values()} == {"planned"}


def test_batch_size_one_decides_one_attempt_per_transaction(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(db, 3)
    chunks: list[int] = []
    real = dispatch._prepare_chunk

    def counting(ctx: JobContext, res: Any, org_id: uuid.UUID,
                 jobs: list[ClaimedJob]) -> Any:
        chunks.append(len(jobs))
        return real(ctx, res, org_id, jobs)

    monkeypatch.setattr(dispatch, "_prepare_chunk", counting)
    with fake_twilio() as twilio:
        for d in world.debtors:
            plan(world, d, "sms", f"k-{d.id}")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)},
                    settings=DispatchSettings(link_secret=b"k" * 32, batch_size=1)).drain()
        assert len(twilio.messages) == 3
    assert chunks == [1, 1, 1]


class Recording:
    """A provider that records which thread sent what (concurrency is bounded)."""

    name = "rec"
    service: str | None = "sms"
    honours_idempotency = False

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.sent: list[uuid.UUID] = []

    def send(self, message: OutboundMessage) -> SendResult:
        import time

        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
            self.sent.append(message.attempt_id)
        return SendResult("rec", f"rec-{message.attempt_id}")

    def lookup(self, record: Any) -> None:
        return None


def test_sends_of_a_batch_run_concurrently_within_the_bound(db: Database) -> None:
    world = make_world(db, 6)
    provider = Recording()
    for d in world.debtors:
        plan(world, d, "sms", f"k-{d.id}")
    make_worker(world, {"sms": provider}, settings=DispatchSettings(
        link_secret=b"k" * 32, send_concurrency=3)).drain()
    assert len(provider.sent) == 6
    assert provider.peak == 3
    rows = _attempts(db)
    assert {(a.state, a.provider_message_id) for a in rows.values()} == {
        ("sent", f"rec-{a.id}") for a in rows.values()}


# -- the bulk loaders ------------------------------------------------------------------------

def _rich_debtors(world: World) -> None:
    """Give the debtors consent-ledger additions, flags and a second account."""
    d0, d1, _ = world.debtors
    with world.db.tenant_session(world.tenant.id) as session:
        keys = world.tenant.keys
        preferences_service.opt_out_medium(
            session, keys=keys, actor=TEST_ACTOR, guarantor_id=d0.id, medium="email",
            received_at=BASE - timedelta(days=2), method="phone")
        preferences_service.designate_inconvenient(
            session, keys=keys, actor=TEST_ACTOR, guarantor_id=d0.id, kind="time",
            value="12:00-13:00", designated_at=BASE - timedelta(days=3), method="phone")
        preferences_service.request_confidential(
            session, keys=keys, actor=TEST_ACTOR, guarantor_id=d1.id,
            received_at=BASE - timedelta(days=4), method="phone", allowed_channels=["sms"])
        preferences_service.request_confidential(
            session, keys=keys, actor=TEST_ACTOR, guarantor_id=d1.id,
            received_at=BASE - timedelta(days=1), method="phone",
            allowed_channels=["letter", "sms"])
        patient_service.raise_flag(session, keys=keys, actor=TEST_ACTOR, guarantor_id=d1.id,
                                   kind="dispute", raised_at=BASE - timedelta(days=1))
        for n, debtor in enumerate((d0, d0, d1)):
            account = ledger_service.open_account(
                session, keys=keys, actor=TEST_ACTOR, guarantor_id=debtor.id,
                account_number=f"B-{n:04d}", opened_at=BASE - timedelta(days=90 - n))
            ledger_service.post(session, keys=keys, actor=TEST_ACTOR, account_id=account.id,
                                kind="charge", amount_cents=10_000 * (n + 1),
                                posted_at=BASE - timedelta(days=80))


def test_bulk_load_equals_one_debtor_at_a_time(db: Database) -> None:
    world = make_world(db, 3)
    _rich_debtors(world)
    with fake_twilio() as twilio:
        plan(world, world.debtors[0], "sms", "history")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
    now = BASE + timedelta(hours=1)
    with db.tenant_session(world.tenant.id) as session:
        org = session.get(Organization, world.tenant.id)
        assert org is not None
        from carecollect.ledger.models import Account

        accounts = {a.guarantor_id: a.id for a in session.scalars(select(Account))}
        wanted: list[tuple[uuid.UUID, uuid.UUID | None]] = [
            (d.id, None) for d in world.debtors]
        wanted.append((world.debtors[0].id, accounts[world.debtors[0].id]))
        together = load_debtors(session, world.tenant.keys, org, wanted, now=now)
        for key in wanted:
            alone = load_debtor(session, world.tenant.keys, org, key[0], now=now,
                                account_id=key[1])
            both = together[key]
            assert both.context == alone.context
            assert both.balance_cents == alone.balance_cents
            assert [a.id for a in both.accounts] == [a.id for a in alone.accounts]
            assert both.opened_values == alone.opened_values
            assert [f.id for f in both.active_flags] == [f.id for f in alone.active_flags]
        d0, d1, d2 = world.debtors
        # The loads saw what was stored: history, two accounts' balance, the additions.
        assert len(together[(d0.id, None)].context.contact_history) == 1
        assert together[(d0.id, None)].balance_cents == 30_000
        assert together[(d0.id, accounts[d0.id])].balance_cents in (10_000, 20_000)
        assert together[(d1.id, None)].context.flags.disputed is not None
        # The bulk consent-ledger additions equal the consent domain's own function.
        bulk = _scenario_additions(session, [d.id for d in world.debtors], now)
        for d in world.debtors:
            one = scenario_additions(session, guarantor_id=d.id, now=now)
            if d.id == d2.id:
                assert d.id not in bulk
                assert one == type(one)((), None, ())
            else:
                assert bulk[d.id] == one
        confidential = bulk[d1.id].confidential
        assert confidential is not None
        assert confidential.instruction == "letter and sms only"


def test_bulk_load_of_a_missing_guarantor_is_refused(db: Database) -> None:
    world = make_world(db, 1)
    with db.tenant_session(world.tenant.id) as session:
        org = session.get(Organization, world.tenant.id)
        assert org is not None
        with pytest.raises(LookupError, match="no such guarantor"):
            load_debtors(session, world.tenant.keys, org,
                         [(world.debtors[0].id, None), (uuid.uuid4(), None)], now=BASE)
        assert load_debtors(session, world.tenant.keys, org, [], now=BASE) == {}


# -- the template cache ----------------------------------------------------------------------

def test_compiled_templates_are_cached_by_content_not_only_by_id() -> None:
    template = default_templates()[("statement_ready_sms", "en")]
    ctx = SurfaceContext(channel="sms", display_name="Lakeside Billing",
                         variables={"payment_url": "https://pay.example/p/" + "a" * 32})
    first = render("statement_ready_sms", ctx)
    assert render("statement_ready_sms", ctx) == first
    assert compiled(template, Conditions()) is compiled(template, Conditions())
    edited = dataclasses.replace(template, surfaces={
        **template.surfaces, "sms_body": "{{ practice_name }}: a new version."})
    again = render_template(edited, ctx)
    assert again.sms_body == "Lakeside Billing: a new version. Reply STOP to opt out."
    assert again.sms_body != first.sms_body
    assert compiled(edited, Conditions()) is not compiled(template, Conditions())
    # Conditions are part of the key: the same template is refused for C1 content on an
    # unverified number and accepted on a verified, consented one.
    c1 = dataclasses.replace(template, surfaces={
        "sms_body": "{{ practice_name }}: {{ balance_cents | money }} due."})
    with pytest.raises(TemplateRefused, match="HIPAA-CONTENT-CLASS"):
        render_template(c1, dataclasses.replace(ctx, variables={"balance_cents": 1234}))
    ok = render_template(c1, dataclasses.replace(ctx, variables={"balance_cents": 1234},
                                                 phone_verified_and_consented=True))
    assert ok.sms_body == "Lakeside Billing: $12.34 due. Reply STOP to opt out."
    assert isinstance(template, Template)


# -- record_many -----------------------------------------------------------------------------

def test_record_many_validates_every_event_before_inserting_any(db: Database) -> None:
    world = make_world(db, 1)
    subject = Subject("outreach_attempt", uuid.uuid4(),
                               organization_id=world.tenant.id,
                               patient_id=world.debtors[0].id)
    before = len(audit_events(db))
    good = PendingEvent(dispatch.ACTOR, "outreach.decision", subject, "success",
                        {"state": "sent"})
    bad = PendingEvent(dispatch.ACTOR, "outreach.decision", subject, "success",
                       {"phone": "+16175550100"})
    with pytest.raises(ValueError, match="would hold PHI"), \
            db.tenant_session(world.tenant.id) as session:
        record_many(session, [good, bad])
    assert len(audit_events(db)) == before
    with db.tenant_session(world.tenant.id) as session:
        ids = record_many(session, [good, good])
        assert record_many(session, []) == []
    assert len(set(ids)) == 2
    events = audit_events(db)
    assert len(events) == before + 2
    assert [e["details"] for e in events[-2:]] == [{"state": "sent"}] * 2
    with db.system_session() as session:
        assert session.scalar(select(func.count()).select_from(OutreachAttempt)) == 0


def test_next_chunk_is_decided_while_the_previous_one_is_in_flight(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(db, 4)
    order: list[str] = []
    prepare, record = dispatch._prepare_chunk, dispatch._record_outcomes

    def prepare_spy(*args: Any) -> Any:
        order.append("decide")
        return prepare(*args)

    def record_spy(*args: Any) -> Any:
        order.append("record")
        return record(*args)

    monkeypatch.setattr(dispatch, "_prepare_chunk", prepare_spy)
    monkeypatch.setattr(dispatch, "_record_outcomes", record_spy)
    provider = Recording()
    ids = [plan(world, d, "sms", f"k-{d.id}") for d in world.debtors]
    make_worker(world, {"sms": provider}, settings=DispatchSettings(
        link_secret=b"k" * 32, batch_size=2, send_concurrency=2)).run_once()
    assert order == ["decide", "decide", "record", "record"]
    assert sorted(provider.sent) == sorted(ids)
    assert {a.state for a in _attempts(db).values()} == {"sent"}


class DiesOnSecond(Recording):
    """Sends the first message, then 'dies' (an exception nothing in the worker catches)."""

    calls = 0

    def send(self, message: OutboundMessage) -> SendResult:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if not first:
            raise KeyboardInterrupt
        return super().send(message)


def test_death_while_a_chunk_is_in_flight_loses_and_duplicates_nothing(
        db: Database) -> None:
    # Chunk one (two attempts) is in flight when the worker dies; chunk two was already
    # committed `sending` but never sent. Everything is settled later, each sent once.
    world = make_world(db, 4)
    settings = DispatchSettings(link_secret=b"k" * 32, batch_size=2, send_concurrency=2)
    with fake_twilio() as twilio:
        for d in world.debtors:
            plan(world, d, "sms", f"k-{d.id}")
        dying = DiesOnSecond()
        with pytest.raises(KeyboardInterrupt):
            make_worker(world, {"sms": dying}, settings=settings).run_once()
        rows = _attempts(db)
        assert sorted(a.state for a in rows.values()) == ["sending", "sending", "sending",
                                                         "sent"]
        provider = twilio_provider(twilio.base_url)
        make_worker(world, {"sms": provider}, clock=moving_clock(LATER)).drain()
        make_worker(world, {"sms": provider},
                    clock=moving_clock(LATER + timedelta(minutes=10))).drain()
        rows = _attempts(db)
        assert {a.state for a in rows.values()} == {"sent"}
        # One by the dying provider, three by Twilio after reconciliation found them absent.
        assert len(dying.sent) == 1
        assert sorted(a.provider or "" for a in rows.values()) == ["rec", "twilio", "twilio",
                                                                   "twilio"]
        assert len(twilio.messages) == 3
    assert len(_counted_events(db)) == 4


def test_an_all_accepted_chunk_records_every_sent_attempt_once(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The all-accepted path (one executemany update): provider ids, status, time and one
    `message.send` event per attempt; an attempt already settled by a status callback
    while its message was in flight is left as it is (no second event)."""
    world = make_world(db, 3)
    settled: list[uuid.UUID] = []
    inner_record = dispatch._record_outcomes

    def callback_first(ctx: JobContext, res: Any, org_id: uuid.UUID, prepared: Any,
                       results: Any) -> Any:
        first = prepared[0]
        with db.tenant_session(org_id) as session:
            attempt = session.get(OutreachAttempt, first.attempt_id)
            assert attempt is not None
            dispatch.apply_status_callback(session, attempt, provider="twilio",
                                           provider_message_id=results[0].provider_message_id,
                                           status="delivered", now=BASE)
        settled.append(first.attempt_id)
        return inner_record(ctx, res, org_id, prepared, results)

    monkeypatch.setattr(dispatch, "_record_outcomes", callback_first)
    with fake_twilio() as twilio:
        ids = [plan(world, d, "sms", f"k-{d.id}") for d in world.debtors]
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        sids = {m["to"]: m["sid"] for m in twilio.messages}
    rows = _attempts(db)
    phones = {d.id: d.phone for d in world.debtors}
    for i in ids:
        row = rows[i]
        assert (row.state, row.provider, row.error_code) == ("sent", "twilio", None)
        assert row.provider_message_id == sids[phones[row.guarantor_id]]
        assert row.sent_at is not None
        assert row.delivery_status == ("delivered" if i in settled else "queued")
    sends = audit_events(db, "message.send")
    assert sorted(e["subject_id"] for e in sends) == sorted(str(i) for i in ids)


def test_the_start_up_heap_is_frozen_once(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    calls: list[str] = []
    monkeypatch.setattr(dispatch, "_heap_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    world = make_world(db, 2)
    with fake_twilio() as twilio:
        for d in world.debtors:
            plan(world, d, "sms", f"k-{d.id}")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}, batch_size=1).drain()
    assert calls == ["freeze"]
