"""Provider faults and a worker killed mid-batch: afterwards no duplicate sends, no lost
attempts, every attempt final or reconcilable (ARCHITECTURE.md §6 step 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from carecollect.channel.base import OutboundMessage, SendResult
from carecollect.channel.sms import TwilioSms
from carecollect.db import Database
from carecollect.kit.jobs.models import Job
from carecollect.outreach.dispatch import DispatchSettings
from carecollect.outreach.models import ContactEvent
from carecollect.outreach.outbox import OutreachAttempt
from tests.channel.fakes import fake_twilio
from tests.channel.world import BASE, make_worker, make_world, moving_clock, plan, twilio_provider

LATER = BASE + timedelta(minutes=10)


def _state(db: Database) -> tuple[str, str | None, str | None]:
    with db.system_session() as session:
        a = session.scalars(select(OutreachAttempt)).one()
        return a.state, a.error_code, a.provider_message_id


def _counted_events(db: Database) -> int:
    with db.system_session() as session:
        return len(session.scalars(select(ContactEvent).where(
            ContactEvent.direction == "outbound", ContactEvent.outcome != "undeliverable")).all())


@pytest.mark.parametrize(
    ("fault", "first_state", "first_code"),
    [
        ("timeout", "unknown", "twilio_read_timeout"),
        ("drop", "unknown", "twilio_connection_dropped"),
        ("500_created", "unknown", "twilio_500"),
        ("500", "unknown", "twilio_500"),
    ],
)
def test_ambiguous_failures_are_reconciled_never_resent(
        db: Database, fault: str, first_state: str, first_code: str) -> None:
    world = make_world(db, 1)
    with fake_twilio(faults=[fault], slow_seconds=1.5) as twilio:
        provider = twilio_provider(twilio.base_url, timeout=0.5)
        plan(world, world.debtors[0], "sms", "k")
        make_worker(world, {"sms": provider}).drain()
        state, code, _ = _state(db)
        assert (state, code) == (first_state, first_code)
        created_before = len(twilio.messages)
        make_worker(world, {"sms": provider}, clock=moving_clock(LATER)).drain()
        state, code, sid = _state(db)
        assert state == "sent"
        assert len(twilio.messages) == 1
        assert sid == twilio.messages[0]["sid"]
        # Re-sent only when the provider proved it never had the message.
        assert created_before == (0 if fault == "500" else 1)
    assert _counted_events(db) == 1


@pytest.mark.parametrize("fault", ["429", "503"])
def test_throttling_is_retried_with_backoff(db: Database, fault: str) -> None:
    world = make_world(db, 1)
    with fake_twilio(faults=[fault]) as twilio:
        provider = twilio_provider(twilio.base_url)
        plan(world, world.debtors[0], "sms", "k")
        make_worker(world, {"sms": provider}).drain()
        assert _state(db)[:2] == ("planned", f"twilio_{fault}")
        with db.system_session() as session:
            job = session.scalars(select(Job).where(Job.kind == "outreach.deliver")).one()
            assert (job.state, job.attempt, job.errors[-1]["code"]) == (
                "available", 1, f"twilio_{fault}")
        make_worker(world, {"sms": provider}, clock=moving_clock(LATER)).drain()
        assert _state(db)[0] == "sent"
        assert len(twilio.messages) == 1
    assert _counted_events(db) == 1


def test_permanent_rejection_fails_and_stops_counting(db: Database) -> None:
    world = make_world(db, 1)
    with fake_twilio(faults=["400"]) as twilio:
        plan(world, world.debtors[0], "sms", "k")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        assert twilio.messages == []
    assert _state(db)[:2] == ("failed", "twilio_400")
    assert _counted_events(db) == 0


def test_provider_down_is_retried(db: Database) -> None:
    world = make_world(db, 1)
    plan(world, world.debtors[0], "sms", "k")
    # Nothing listens on this port: the request never left.
    make_worker(world, {"sms": twilio_provider("http://127.0.0.1:9", timeout=0.5)}).drain()
    assert _state(db)[:2] == ("planned", "twilio_connect_failed")
    with fake_twilio() as twilio:
        make_worker(world, {"sms": twilio_provider(twilio.base_url)},
                    clock=moving_clock(LATER)).drain()
        assert len(twilio.messages) == 1
    assert _state(db)[0] == "sent"


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the worker catches it."""


class DiesAfterSending:
    def __init__(self, inner: TwilioSms, *, reach_provider: bool) -> None:
        self.inner = inner
        self.reach_provider = reach_provider
        self.name, self.service, self.honours_idempotency = inner.name, inner.service, False

    def send(self, message: OutboundMessage) -> SendResult:
        if self.reach_provider:
            self.inner.send(message)
        raise Killed

    def lookup(self, record):  # type: ignore[no-untyped-def]
        return self.inner.lookup(record)


@pytest.mark.parametrize("batch_size", [1, 20])
@pytest.mark.parametrize("reached", [True, False])
def test_worker_killed_mid_batch(db: Database, reached: bool, batch_size: int) -> None:
    world = make_world(db, 3)
    settings = DispatchSettings(link_secret=b"k" * 32, batch_size=batch_size)
    with fake_twilio() as twilio:
        provider = twilio_provider(twilio.base_url)
        for d in world.debtors:
            plan(world, d, "sms", f"k-{d.id}")
        dying = make_worker(world, {"sms": DiesAfterSending(provider, reach_provider=reached)},
                            settings=settings)
        with pytest.raises(Killed):
            dying.run_once()
        with db.system_session() as session:
            states = sorted(a.state for a in session.scalars(select(OutreachAttempt)))
            running = session.scalars(select(Job).where(Job.state == "running")).all()
        if batch_size == 1:
            # One attempt at a time: the batch died on its first send, one attempt is
            # `sending`, the rest untouched.
            assert states == ["planned", "planned", "sending"]
        else:
            # One delivery batch: all three were committed `sending` before the sends.
            assert states == ["sending", "sending", "sending"]
        # Every job of the claimed batch is still leased to the dead worker.
        assert len(running) == 3
        survivor = make_worker(world, {"sms": provider}, clock=moving_clock(LATER))
        survivor.drain()
        assert survivor.stats.rescued == 3
        # After reconciliation (a later period) every attempt is sent exactly once.
        make_worker(world, {"sms": provider},
                    clock=moving_clock(LATER + timedelta(minutes=10))).drain()
        with db.system_session() as session:
            attempts = session.scalars(select(OutreachAttempt)).all()
        assert sorted(a.state for a in attempts) == ["sent", "sent", "sent"]
        assert sorted(m["to"] for m in twilio.messages) == sorted(d.phone for d in world.debtors)
    assert _counted_events(db) == 3


def test_transport_errors_without_a_fake_server_are_classified() -> None:
    """The cases the fake server cannot produce: a connect timeout and proxy failures
    (refused by the proxy: never sent; broken after connecting: may have been)."""
    from urllib3 import exceptions as u3

    from carecollect.channel.base import Ambiguous, NotSent
    from carecollect.channel.sms import classify_transport_error

    def outcome(exc: u3.HTTPError) -> tuple[str, str, bool | None]:
        got = classify_transport_error(exc)
        assert isinstance(got, NotSent | Ambiguous)
        return (type(got).__name__, got.code,
                got.retryable if isinstance(got, NotSent) else None)

    refused = u3.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    assert outcome(refused) == ("NotSent", "twilio_connect_failed", True)
    assert outcome(u3.ConnectTimeoutError(None, "slow")) == (  # type: ignore[arg-type]
        "NotSent", "twilio_connect_timeout", True)
    assert outcome(u3.ProxyError("proxy", refused)) == ("NotSent", "twilio_connect_failed", True)
    assert outcome(u3.ProxyError("proxy", OSError("reset"))) == (
        "Ambiguous", "twilio_connection_dropped", None)
    assert outcome(u3.SSLError("handshake")) == ("Ambiguous", "twilio_connection_dropped", None)
    assert outcome(u3.ReadTimeoutError(None, "/", "slow")) == (  # type: ignore[arg-type]
        "Ambiguous", "twilio_read_timeout", None)
    assert outcome(u3.DecodeError("gzip")) == ("Ambiguous", "twilio_request_error", None)
