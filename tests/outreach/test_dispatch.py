"""The dispatcher end to end on loopback: Twilio SDK against a local server, aiosmtpd,
the letter spool and the call work list; compliance re-check, BAA gate, caps, STOP."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from carecollect.consent.service import consent_service
from carecollect.db import Database
from carecollect.kit.jobs.models import Job
from carecollect.outreach.dispatch import create_attempt
from carecollect.outreach.inbound import handle_inbound_sms
from carecollect.outreach.models import ContactEvent
from carecollect.outreach.outbox import CallTask, OutreachAttempt
from carecollect.tenant.models import BusinessAssociate, Organization
from tests.channel.fakes import fake_twilio, smtp_server
from tests.channel.world import (
    BASE,
    make_worker,
    make_world,
    plan,
    smtp_provider,
    twilio_provider,
)
from tests.factories import TEST_ACTOR, audit_events


def _attempts(db: Database) -> dict[uuid.UUID, OutreachAttempt]:
    with db.system_session() as session:
        return {a.id: a for a in session.scalars(select(OutreachAttempt))}


def test_every_channel_is_delivered_once_with_audit(db: Database, tmp_path: Path) -> None:
    world = make_world(db, 2)
    d0, d1 = world.debtors
    with fake_twilio() as twilio, smtp_server() as (controller, inbox):
        sms = plan(world, d0, "sms", "sms-1")
        email = plan(world, d0, "email", "email-1")
        letter = plan(world, d1, "letter", "letter-1")
        call = plan(world, d1, "call", "call-1")
        worker = make_worker(world, {"sms": twilio_provider(twilio.base_url),
                                     "email": smtp_provider(controller.port)},
                             spool=tmp_path / "spool")
        worker.drain()
        assert [m["to"] for m in twilio.messages] == [d0.phone]
        assert [rcpt for _, rcpt, _ in inbox.messages] == [[d0.email]]
    attempts = _attempts(db)
    assert {k: (a.state, a.provider) for k, a in attempts.items()} == {
        sms: ("sent", "twilio"), email: ("sent", "smtp"), letter: ("sent", "mail_house"),
        call: ("sent", "worklist")}
    assert attempts[sms].provider_message_id == twilio.messages[0]["sid"]
    body = twilio.messages[0]["body"]
    assert body.startswith("Lakeside Billing: you have a new message about your account.")
    assert body.endswith("Reply STOP to opt out.")
    assert (tmp_path / "spool" / "pending" / f"{letter}.pdf").exists()
    with db.system_session() as session:
        task = session.scalar(select(CallTask))
        assert task is not None
        assert str(task.id) == attempts[call].provider_message_id
        events = session.scalars(select(ContactEvent).where(
            ContactEvent.direction == "outbound")).all()
    # Calls count when staff log the outcome, not when the task is queued.
    assert sorted(e.channel for e in events) == ["email", "letter", "sms"]
    sends = audit_events(db, "message.send")
    assert sorted(e["details"]["channel"] for e in sends) == ["email", "letter", "sms"]
    assert all(e["patient_id"] in (str(d0.id), str(d1.id)) for e in sends)


def test_create_attempt_is_idempotent_and_enqueues_one_job(db: Database) -> None:
    world = make_world(db, 1)
    first = plan(world, world.debtors[0], "sms", "same-key")
    second = plan(world, world.debtors[0], "sms", "same-key")
    assert first == second
    with db.system_session() as session:
        jobs = session.scalars(select(Job).where(Job.kind == "outreach.deliver")).all()
    assert [j.unique_key for j in jobs] == [f"deliver:{first}"]


def test_no_consent_is_blocked_with_rule_ids_and_nothing_sent(db: Database) -> None:
    world = make_world(db, 1, consent=False)
    with fake_twilio() as twilio:
        attempt = plan(world, world.debtors[0], "sms", "k")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        assert twilio.messages == []
    row = _attempts(db)[attempt]
    assert row.state == "blocked"
    assert "TCPA-CONSENT-AUTODIALED" in row.reasons or any(
        r.startswith("TCPA") for r in row.reasons)
    decisions = audit_events(db, "outreach.decision")
    assert decisions[-1]["details"]["state"] == "blocked"


def test_frequency_cap_holds_across_queued_attempts(db: Database) -> None:
    # STATE-MA-2IN7: at most two texts about a debt in seven days to a Massachusetts debtor.
    world = make_world(db, 1)
    with fake_twilio() as twilio:
        ids = [plan(world, world.debtors[0], "sms", f"k{i}") for i in range(5)]
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        assert len(twilio.messages) == 2
    states = [_attempts(db)[i].state for i in ids]
    assert sorted(states) == ["blocked", "blocked", "blocked", "sent", "sent"]
    blocked = [a for a in _attempts(db).values() if a.state == "blocked"]
    assert all("STATE-MA-2IN7" in a.reasons for a in blocked)
    assert all(a.next_allowed_at is not None for a in blocked)


def test_no_active_baa_refuses_egress_with_audit(db: Database) -> None:
    world = make_world(db, 1, vendors=False)
    with db.tenant_session(world.tenant.id) as session:
        session.add(BusinessAssociate(organization_id=world.tenant.id, name="old sms",
                                      service="sms", baa_status="active",
                                      baa_effective_on=date(2024, 1, 1),
                                      baa_expires_on=date(2025, 12, 31)))
    with fake_twilio() as twilio:
        attempt = plan(world, world.debtors[0], "sms", "k")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        assert twilio.messages == []
    row = _attempts(db)[attempt]
    assert (row.state, row.error_code) == ("failed", "baa_inactive")
    denied = [e for e in audit_events(db, "outreach.decision") if e["outcome"] == "denied"]
    assert [e["details"]["code"] for e in denied] == ["baa_inactive"]
    assert denied[0]["details"]["service"] == "sms"
    with db.system_session() as session:
        job = session.scalar(select(Job).where(Job.kind == "outreach.deliver"))
    assert job is not None
    assert (job.state, job.errors[-1]["code"]) == ("discarded", "baa_inactive")


def test_stop_while_queued_stops_later_messages_and_start_resumes(db: Database) -> None:
    world = make_world(db, 1)
    debtor = world.debtors[0]
    with fake_twilio() as twilio:
        queued = [plan(world, debtor, "sms", f"q{i}") for i in range(3)]
        with db.tenant_session(world.tenant.id) as session:
            org = session.get(Organization, world.tenant.id)
            assert org is not None
            result = handle_inbound_sms(session, world.tenant.keys, org,
                                        from_number=debtor.phone, body="STOP",
                                        received_at=BASE - timedelta(minutes=30))
        assert result.actions == ["revoke:phone"]
        assert result.reply is not None
        assert "unsubscribed" in result.reply
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        assert twilio.messages == []
        assert {_attempts(db)[i].state for i in queued} == {"blocked"}
        # A second STOP gets no second confirmation text (TCPA-REVOKE-CONFIRM).
        with db.tenant_session(world.tenant.id) as session:
            org = session.get(Organization, world.tenant.id)
            assert org is not None
            again = handle_inbound_sms(session, world.tenant.keys, org,
                                       from_number=debtor.phone, body="stop",
                                       received_at=BASE - timedelta(minutes=20))
            assert again.reply is None
            back = handle_inbound_sms(session, world.tenant.keys, org,
                                      from_number=debtor.phone, body="START",
                                      received_at=BASE - timedelta(minutes=10))
        assert back.actions == ["grant"]
        resumed = plan(world, debtor, "sms", "after-start")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        assert [m["to"] for m in twilio.messages] == [debtor.phone]
    assert _attempts(db)[resumed].state == "sent"


def test_dispute_text_raises_flag_and_review_item_that_suppress(db: Database) -> None:
    world = make_world(db, 1)
    debtor = world.debtors[0]
    with db.tenant_session(world.tenant.id) as session:
        org = session.get(Organization, world.tenant.id)
        assert org is not None
        result = handle_inbound_sms(session, world.tenant.keys, org, from_number=debtor.phone,
                                    body="I dispute this bill, it is not mine",
                                    received_at=BASE - timedelta(hours=2))
    assert "review:dispute" in result.actions
    with fake_twilio() as twilio, smtp_server() as (controller, inbox):
        ids = [plan(world, debtor, "sms", "a"), plan(world, debtor, "email", "b")]
        make_worker(world, {"sms": twilio_provider(twilio.base_url),
                            "email": smtp_provider(controller.port)}).drain()
        assert twilio.messages == []
        assert inbox.messages == []
    assert [_attempts(db)[i].reasons for i in ids] == [["PLAT-REVOKE-NLU"]] * 2


def test_unconfigured_channel_fails_the_attempt(db: Database) -> None:
    world = make_world(db, 1)
    attempt = plan(world, world.debtors[0], "email", "k")
    make_worker(world, {}).drain()
    row = _attempts(db)[attempt]
    assert (row.state, row.error_code) == ("failed", "channel_not_configured")


def test_rate_limit_snoozes_without_using_attempts(db: Database) -> None:
    world = make_world(db, 2)
    with fake_twilio() as twilio:
        for d in world.debtors:
            plan(world, d, "sms", f"k-{d.id}")
        worker = make_worker(world, {"sms": twilio_provider(twilio.base_url)},
                             rates={"sms": 0.001})
        worker.drain()
        assert len(twilio.messages) == 1
    assert worker.stats.snoozed == 1
    with db.system_session() as session:
        waiting = session.scalar(select(Job).where(Job.state == "available",
                                                   Job.kind == "outreach.deliver"))
    assert waiting is not None
    assert waiting.attempt == 0


def test_attempt_for_wrong_contact_point_kind_fails(db: Database) -> None:
    world = make_world(db, 1)
    d = world.debtors[0]
    with db.tenant_session(world.tenant.id) as session:
        bad = create_attempt(session, organization_id=world.tenant.id, guarantor_id=d.id,
                             channel="sms", idempotency_key="bad", contact_point_id=d.email_id,
                             scheduled_for=BASE)
        bad_id = bad.id
    make_worker(world, {}).drain()
    assert _attempts(db)[bad_id].state == "failed"


def test_revoked_email_consent_blocks_email(db: Database) -> None:
    world = make_world(db, 1)
    d = world.debtors[0]
    with db.tenant_session(world.tenant.id) as session:
        consent_service.revoke(session, keys=world.tenant.keys, actor=TEST_ACTOR,
                               guarantor_id=d.id, contact_point_id=d.email_id, channel="email",
                               received_at=BASE - timedelta(days=1), method="list_unsubscribe")
    with smtp_server() as (controller, inbox):
        attempt = plan(world, d, "email", "k")
        make_worker(world, {"email": smtp_provider(controller.port)}).drain()
        assert inbox.messages == []
    assert _attempts(db)[attempt].state == "blocked"


def test_send_time_check_honours_medium_opt_out_and_confidential_request(db: Database) -> None:
    """The consent-ledger additions the planner applies are applied again at send time:
    an SMS opt-out recorded after planning and a 'letters only' request both block."""
    from carecollect.consent.preferences import preferences_service

    world = make_world(db, 2)
    opted, confidential = world.debtors
    with fake_twilio() as twilio:
        first = plan(world, opted, "sms", "k1")
        second = plan(world, confidential, "sms", "k2")
        with db.tenant_session(world.tenant.id) as session:
            preferences_service.opt_out_medium(
                session, keys=world.tenant.keys, actor=TEST_ACTOR, guarantor_id=opted.id,
                medium="sms", received_at=BASE - timedelta(minutes=5), method="phone")
            preferences_service.request_confidential(
                session, keys=world.tenant.keys, actor=TEST_ACTOR,
                guarantor_id=confidential.id, received_at=BASE - timedelta(minutes=5),
                method="phone", allowed_channels=["letter"])
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        assert twilio.messages == []
    rows = _attempts(db)
    assert rows[first].state == "blocked"
    assert "REGF-MEDIUM-OPTOUT" in rows[first].reasons
    assert rows[second].state == "blocked"
    assert "HIPAA-CONF-COMM" in rows[second].reasons
