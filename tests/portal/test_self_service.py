"""Portal self-service services: contact preferences into the consent ledger, disputes and
hardship requests into the staff review queue with outreach suppressed, and the patient's
own access log. Synthetic people only (the portal world of tests/portal/conftest.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from carecollect.audit import Actor
from carecollect.audit.models import AuditEvent
from carecollect.compliance.engine import evaluate
from carecollect.consent.models import Consent, InconvenientDesignation, MediumOptOut
from carecollect.errors import BadInput, NotFound
from carecollect.identity.service import create_user
from carecollect.outreach.cadence_models import OutreachExclusion
from carecollect.outreach.context import load_debtor, with_action
from carecollect.outreach.outbox import ReviewItem
from carecollect.outreach.review import review_service
from carecollect.patient.models import Flag, Guarantor
from carecollect.patient.service import patient_service
from carecollect.payment_plan.models import PaymentPlan
from carecollect.portal.self_service import (
    AccessLine,
    PreferencesUpdate,
    activity_of,
    self_service,
)
from carecollect.tenant.models import Organization
from tests.factories import TEST_ACTOR, add_email, add_phone, audit_events
from tests.payment.world import World as PaymentWorld
from tests.payment_plan.helpers import create_plan, set_policy
from tests.portal.conftest import PortalWorld

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # Tuesday, 11:00 in Boston


def _actor(world: PortalWorld) -> Actor:
    return Actor.patient(world.alice.guarantor_id)


def _contacts(world: PortalWorld) -> None:
    with world.db.tenant_session(world.org_id) as s:
        add_email(s, world.tenant, world.alice.guarantor_id, "alicia.test@example.org")
        add_phone(s, world.tenant, world.alice.guarantor_id, "+16175550123")


def _call(world: PortalWorld, method: str, **kwargs: Any) -> Any:
    with world.db.tenant_session(world.org_id) as s:
        return getattr(self_service, method)(
            s, keys=world.tenant.keys, actor=_actor(world),
            guarantor_id=world.alice.guarantor_id, **kwargs)


def _stored(world: PortalWorld) -> dict[str, int]:
    counts = {}
    with world.db.system_session() as s:
        for model in (Consent, MediumOptOut, InconvenientDesignation, Flag, ReviewItem,
                      OutreachExclusion, AuditEvent):
            counts[model.__name__] = int(s.scalar(select(func.count()).select_from(model)) or 0)
        guarantor = s.get(Guarantor, world.alice.guarantor_id)
        assert guarantor is not None
        counts["language_es"] = int(guarantor.preferred_language == "es")
    return counts


# -- contact preferences -------------------------------------------------------------------

def test_preferences_start_open_with_masked_addresses(world: PortalWorld) -> None:
    _contacts(world)
    prefs = _call(world, "preferences")
    assert [(c.medium, c.allowed, c.available, c.masked) for c in prefs.channels] == [
        ("email", True, True, "a•••@example.org"),
        ("sms", True, True, "•••• 0123"),
        ("call", True, True, "•••• 0123"),
    ]
    assert (prefs.best_time, prefs.avoid_days, prefs.language) == (None, (), "en")
    [view] = audit_events(world.db, "portal.view")
    assert view["details"] == {"page": "preferences", "fields": ["contact_points"]}
    assert view["patient_id"] == str(world.alice.guarantor_id)


def test_preferences_without_contact_points_are_unavailable(world: PortalWorld) -> None:
    prefs = _call(world, "preferences")
    assert [(c.medium, c.available, c.masked) for c in prefs.channels] == [
        ("email", False, None), ("sms", False, None), ("call", False, None)]


def test_saving_preferences_writes_the_consent_ledger(world: PortalWorld) -> None:
    _contacts(world)
    changes = _call(world, "update_preferences", now=NOW, update=PreferencesUpdate(
        channels={"email": True, "sms": False, "call": False}, best_time_start="09:00",
        best_time_end="17:00", avoid_days=["sun"], language="es"))
    assert changes == ["off:sms", "off:call", "best_time", "day_off:sun", "language"]
    with world.db.tenant_session(world.org_id) as s:
        opt_outs = s.scalars(select(MediumOptOut).order_by(MediumOptOut.medium)).all()
        assert [(o.medium, o.method) for o in opt_outs] == [("call", "portal"),
                                                            ("sms", "portal")]
        designations = s.scalars(select(InconvenientDesignation)
                                 .order_by(InconvenientDesignation.kind)).all()
        assert [(d.kind, d.value, d.method) for d in designations] == [
            ("day", "sun", "portal"), ("time", "17:00-09:00", "portal")]
    consent_changes = [e["details"]["change"] for e in audit_events(world.db, "consent.change")]
    assert consent_changes == ["medium_opt_out", "medium_opt_out", "designate_inconvenient",
                               "designate_inconvenient"]
    [update] = audit_events(world.db, "patient.update")
    assert update["details"] == {"fields": ["preferred_language"], "via": "portal"}
    prefs = _call(world, "preferences")
    assert [(c.medium, c.allowed) for c in prefs.channels] == [
        ("email", True), ("sms", False), ("call", False)]
    assert (prefs.best_time, prefs.avoid_days, prefs.language) == (("09:00", "17:00"),
                                                                   ("sun",), "es")
    # Saving the same form again changes nothing.
    before = _stored(world)
    assert _call(world, "update_preferences", now=NOW + timedelta(hours=1),
                 update=PreferencesUpdate(channels={"email": True}, best_time_start="09:00",
                                          best_time_end="17:00", avoid_days=["sun"],
                                          language="es")) == []
    assert _stored(world) == before


def test_turning_texts_back_on_is_a_reconsent_that_leaves_calls_off(world: PortalWorld) -> None:
    _contacts(world)
    _call(world, "update_preferences", now=NOW, update=PreferencesUpdate(
        channels={"email": True}, language="en"))
    later = NOW + timedelta(days=1)
    changes = _call(world, "update_preferences", now=later, update=PreferencesUpdate(
        channels={"email": True, "sms": True}, language="en"))
    # One tcpa_pec consent re-authorizes the shared phone; calls are opted out again after.
    assert changes == ["on:sms", "off:call"]
    with world.db.tenant_session(world.org_id) as s:
        [consent] = s.scalars(select(Consent)).all()
        assert (consent.kind, consent.method, consent.source, consent.wording_version) == (
            "tcpa_pec", "portal", "reconsent", "portal-preferences-1")
    prefs = _call(world, "preferences")
    assert [(c.medium, c.allowed) for c in prefs.channels] == [
        ("email", True), ("sms", True), ("call", False)]


def test_an_email_opt_out_in_the_portal_blocks_email_outreach(world: PortalWorld) -> None:
    _contacts(world)
    _call(world, "update_preferences", now=NOW, update=PreferencesUpdate(
        channels={"sms": True, "call": True}, language="en"))
    with world.db.tenant_session(world.org_id) as s:
        org = s.get(Organization, world.org_id)
        assert org is not None
        facts = load_debtor(s, world.tenant.keys, org, world.alice.guarantor_id,
                            now=NOW + timedelta(hours=1))
        [email] = [cp for cp in facts.contact_points.values() if cp.kind == "email"]
        decision = evaluate(with_action(
            facts.context, channel="email", at=NOW + timedelta(hours=1),
            contact_point_id=email.id, template="reminder_email",
            contains=("neutral_notice",), includes_opt_out=True, subject="A message",
            url=None))
    assert decision.decision == "block"
    assert "REGF-MEDIUM-OPTOUT" in decision.reasons


@pytest.mark.parametrize(("update", "message"), [
    (PreferencesUpdate(channels={"fax": True}), "Choose among e-mail, text messages and phone "
     "calls."),
    (PreferencesUpdate(channels={}, language="fr"), "Choose English or Spanish."),
    (PreferencesUpdate(channels={}, best_time_start="09:00"),
     "Give both the start and the end of the best time to reach you, or leave both empty."),
    (PreferencesUpdate(channels={}, best_time_start="9am", best_time_end="5pm"),
     "Enter times like 09:00 and 17:00."),
    (PreferencesUpdate(channels={}, best_time_start="25:00", best_time_end="17:00"),
     "Enter times like 09:00 and 17:00."),
    (PreferencesUpdate(channels={}, best_time_start="09:00", best_time_end="09:00"),
     "The start and the end of the best time must differ."),
    (PreferencesUpdate(channels={}, avoid_days=["someday"]), "Choose days of the week."),
    (PreferencesUpdate(channels={}, avoid_days=["mon", "tue", "wed", "thu", "fri", "sat",
                                                "sun"]),
     "Leave at least one day on which we may contact you."),
])
def test_bad_preferences_are_refused_and_store_nothing(world: PortalWorld,
                                                       update: PreferencesUpdate,
                                                       message: str) -> None:
    _contacts(world)
    _call(world, "update_preferences", now=NOW, update=PreferencesUpdate(
        channels={"email": False, "sms": False, "call": False}, language="en"))
    before = _stored(world)
    with pytest.raises(BadInput) as refused:
        _call(world, "update_preferences", now=NOW + timedelta(hours=1), update=update)
    assert refused.value.message == message
    assert _stored(world) == before


@pytest.mark.parametrize(("medium", "message"), [
    ("email", "We have no e-mail address on file to use."),
    ("sms", "We have no phone number on file to use."),
])
def test_switching_on_a_medium_without_a_contact_point_is_refused(
        world: PortalWorld, medium: str, message: str) -> None:
    _call(world, "update_preferences", now=NOW, update=PreferencesUpdate(channels={}))
    before = _stored(world)
    with pytest.raises(BadInput) as refused:
        _call(world, "update_preferences", now=NOW + timedelta(hours=1),
              update=PreferencesUpdate(channels={medium: True}))
    assert refused.value.message == message
    assert _stored(world) == before


# -- disputes ------------------------------------------------------------------------------

def test_a_dispute_flags_the_account_and_enters_the_review_queue(world: PortalWorld) -> None:
    crown = world.alice.charges[1]
    charges = _call(world, "charges")
    assert [(c.description, c.service_key, c.amount_cents, c.disputed) for c in charges] == [
        ("PROPHY ADULT", "service.D1110", 11_000, False),
        ("CROWN PORC/CERAMIC", "service.D2740", 125_000, False)]
    filed = _call(world, "file_dispute", charge_entry_id=crown, reason="wrong_amount", now=NOW)
    assert filed.created
    with world.db.tenant_session(world.org_id) as s:
        flag = s.get(Flag, filed.flag_id)
        assert flag is not None
        assert (flag.kind, flag.account_id, flag.in_writing, flag.source, flag.raised_at) == (
            "dispute", world.alice.account_id, True, "portal", NOW)
        assert flag.attributes == {"origin": "portal", "reason": "wrong_amount",
                                   "charge_entry_id": str(crown)}
        [exclusion] = s.scalars(select(OutreachExclusion)).all()
        assert (exclusion.account_id, exclusion.reason, exclusion.lifted_at) == (
            world.alice.account_id, "dispute", None)
        [item] = s.scalars(select(ReviewItem)).all()
        assert (item.kind, item.flag_id, item.state, item.guarantor_id) == (
            "dispute", flag.id, "open", world.alice.guarantor_id)
        assert [f.id for f in review_service.queue(s)] == [flag.id]
    [event] = audit_events(world.db, "portal.dispute")
    assert event["details"] == {"flag_id": str(filed.flag_id), "charge_entry_id": str(crown),
                                "reason": "wrong_amount"}
    assert [c.disputed for c in _call(world, "charges")] == [False, True]
    # Filing again while the dispute is open adds nothing.
    before = _stored(world)
    again = _call(world, "file_dispute", charge_entry_id=crown, reason="other", now=NOW)
    assert (again.flag_id, again.created) == (filed.flag_id, False)
    assert _stored(world) == before


@pytest.mark.parametrize("whose", ["other_guarantor", "unknown"])
def test_disputing_a_charge_that_is_not_yours_answers_not_found(world: PortalWorld,
                                                                 whose: str) -> None:
    target = world.bob.charges[0] if whose == "other_guarantor" else uuid.uuid4()
    before = _stored(world)
    with pytest.raises(NotFound):
        _call(world, "file_dispute", charge_entry_id=target, reason="not_mine", now=NOW)
    assert _stored(world) == before


def test_a_dispute_needs_a_known_reason(world: PortalWorld) -> None:
    before = _stored(world)
    with pytest.raises(BadInput) as refused:
        _call(world, "file_dispute", charge_entry_id=world.alice.charges[0],
              reason="I just don't like it", now=NOW)
    assert refused.value.message == "Choose the reason for your dispute."
    assert _stored(world) == before


# -- financial help ------------------------------------------------------------------------

def _plan(world: PortalWorld) -> uuid.UUID:
    payment_world = PaymentWorld(world.db, world.tenant, world.alice.guarantor_id,
                                 world.alice.account_id)
    set_policy(payment_world)
    return create_plan(payment_world, now=NOW, start_on=date(2026, 3, 20), installments=6)


def test_hardship_pauses_the_plan_and_outreach_and_enters_the_queue(world: PortalWorld) -> None:
    plan_id = _plan(world)
    filed = _call(world, "request_hardship", reason="income", now=NOW)
    assert (filed.created, filed.paused_plans, filed.excluded_accounts) == (True, 1, 1)
    with world.db.tenant_session(world.org_id) as s:
        plan = s.get(PaymentPlan, plan_id)
        assert plan is not None
        assert (plan.status, plan.pause_reason, plan.paused_at) == ("paused", "hardship", NOW)
        flag = s.get(Flag, filed.flag_id)
        assert flag is not None
        assert (flag.kind, flag.account_id, flag.source) == ("hardship", None, "portal")
        [exclusion] = s.scalars(select(OutreachExclusion)).all()
        assert (exclusion.account_id, exclusion.reason) == (world.alice.account_id, "hardship")
        assert [f.id for f in review_service.queue(s)] == [flag.id]
    [event] = audit_events(world.db, "portal.hardship")
    assert event["details"] == {"flag_id": str(filed.flag_id), "reason": "income",
                                "paused_plans": 1, "excluded_accounts": 0}
    assert [e["details"]["reason"] for e in audit_events(world.db, "plan.pause")] == [
        "hardship"]
    before = _stored(world)
    again = _call(world, "request_hardship", reason="other", now=NOW)
    assert (again.flag_id, again.created) == (filed.flag_id, False)
    assert _stored(world) == before


def test_hardship_without_a_plan_excludes_the_accounts(world: PortalWorld) -> None:
    filed = _call(world, "request_hardship", reason="medical_costs", now=NOW)
    assert (filed.created, filed.paused_plans, filed.excluded_accounts) == (True, 0, 1)
    with world.db.tenant_session(world.org_id) as s:
        [exclusion] = s.scalars(select(OutreachExclusion)).all()
        assert (exclusion.account_id, exclusion.reason) == (world.alice.account_id, "hardship")


def test_hardship_needs_a_known_reason(world: PortalWorld) -> None:
    before = _stored(world)
    with pytest.raises(BadInput) as refused:
        _call(world, "request_hardship", reason="", now=NOW)
    assert refused.value.message == "Choose what best describes your situation."
    assert _stored(world) == before


# -- access log ----------------------------------------------------------------------------

def test_access_log_names_staff_and_shows_only_this_patient(world: PortalWorld) -> None:
    with world.db.tenant_session(world.org_id) as s:
        user, _ = create_user(s, actor=TEST_ACTOR, organization_id=world.org_id,
                              email="dana.staff@example.org", display_name="Dana Staff",
                              role="collector")
        for person in (world.alice, world.bob):
            patient_service.read_guarantor(s, keys=world.tenant.keys,
                                           actor=Actor.staff(user.id),
                                           guarantor_id=person.guarantor_id,
                                           purpose="payment_posting")
    _call(world, "preferences")
    lines: list[AccessLine] = _call(world, "access_log")
    newest = lines[:2]
    assert [(x.who, x.role, x.activity, x.action, x.why, x.is_self) for x in newest] == [
        ("you", None, "viewed", "portal.view", None, True),
        ("Dana Staff", "collector", "viewed", "patient.read", "payment_posting", False),
    ]
    # Bob's read is not in Alice's log; neither are ids or details of any event.
    assert sum(1 for x in lines if x.action == "patient.read") == 1
    text = repr(lines)
    for forbidden in (str(world.bob.guarantor_id), str(user.id), "Quintanilla", "Bob"):
        assert forbidden not in text
    [viewed] = audit_events(world.db, "audit.access_log")
    assert viewed["details"] == {"via": "portal", "count": len(lines)}
    assert viewed["patient_id"] == str(world.alice.guarantor_id)


@pytest.mark.parametrize(("action", "activity"), [
    ("patient.read", "viewed"), ("portal.view", "viewed"), ("patient.update", "changed"),
    ("flag.raise", "changed"), ("consent.change", "changed"), ("payment.post", "paid"),
    ("plan.pause", "paid"), ("message.send", "contacted"), ("outreach.decision", "contacted"),
    ("portal.login", "signed_in"), ("key.rotate", "other"),
])
def test_activity_words(action: str, activity: str) -> None:
    assert activity_of(action) == activity


# -- what a dispute and a hardship request do to messages -----------------------------------

class _Recording:
    """An e-mail provider that records what it would send (no vendor: no BAA needed)."""

    name = "recording"
    service = None
    honours_idempotency = True

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> Any:
        from carecollect.channel.base import SendResult

        self.sent.append(message)
        return SendResult("recording", f"r-{len(self.sent)}")

    def lookup(self, record: Any) -> Any:
        return None


def _email_consent(world: PortalWorld) -> uuid.UUID:
    from carecollect.consent.service import consent_service

    with world.db.tenant_session(world.org_id) as s:
        email = add_email(s, world.tenant, world.alice.guarantor_id, "alicia.test@example.org")
        consent_service.grant(s, keys=world.tenant.keys, actor=TEST_ACTOR,
                              guarantor_id=world.alice.guarantor_id, contact_point_id=email.id,
                              kind="email_use", granted_at=NOW - timedelta(days=30),
                              method="intake_form")
        return email.id


def test_a_portal_dispute_blocks_planned_outreach_in_the_dispatcher(world: PortalWorld) -> None:
    from carecollect.kit.jobs.worker import Worker
    from carecollect.outreach import tasks as outreach_tasks
    from carecollect.outreach.dispatch import DispatchResources, DispatchSettings, create_attempt
    from carecollect.outreach.outbox import OutreachAttempt
    from carecollect.outreach.ratelimit import RateLimiter

    assert outreach_tasks.reconcile_sweep is not None
    email_id = _email_consent(world)
    provider = _Recording()

    def attempt(key: str) -> uuid.UUID:
        with world.db.tenant_session(world.org_id) as s:
            return create_attempt(s, organization_id=world.org_id,
                                  guarantor_id=world.alice.guarantor_id, channel="email",
                                  idempotency_key=key, contact_point_id=email_id,
                                  account_id=world.alice.account_id,
                                  scheduled_for=NOW - timedelta(minutes=5)).id

    def drain() -> None:
        resources = {"outreach": DispatchResources(
            channels={"email": provider}, settings=DispatchSettings(link_secret=b"k" * 32),
            limiter=RateLimiter({}))}
        Worker(world.db, world.tenant.manager, resources=resources, clock=lambda: NOW,
               run_scheduler=False, queues=["outreach"]).drain()

    before = attempt("before-dispute")
    drain()
    assert len(provider.sent) == 1  # the control: an e-mail goes out before the dispute
    _call(world, "file_dispute", charge_entry_id=world.alice.charges[1], reason="not_mine",
          now=NOW)
    after = attempt("after-dispute")
    drain()
    assert len(provider.sent) == 1
    with world.db.tenant_session(world.org_id) as s:
        states = {a.id: (a.state, a.reasons) for a in s.scalars(select(OutreachAttempt))}
    assert states[before][0] == "sent"
    assert states[after] == ("blocked", ["PLAT-REVOKE-NLU"])


def test_hardship_holds_the_missed_payment_notice(world: PortalWorld) -> None:
    from carecollect.outreach.dispatch import DispatchResources, DispatchSettings
    from carecollect.outreach.ratelimit import RateLimiter
    from carecollect.outreach.transactional import TransactionalSender
    from carecollect.payment_plan.models import PlanInstallment
    from carecollect.payment_plan.notice import notice_content

    _email_consent(world)
    plan_id = _plan(world)
    provider = _Recording()
    sender = TransactionalSender(world.db, world.tenant.manager, DispatchResources(
        channels={"email": provider}, settings=DispatchSettings(link_secret=b"k" * 32),
        limiter=RateLimiter({})), clock=lambda: NOW)
    with world.db.tenant_session(world.org_id) as s:
        first = s.scalars(select(PlanInstallment).where(PlanInstallment.plan_id == plan_id)
                          .order_by(PlanInstallment.sequence)).first()
        assert first is not None
        email = notice_content(s, first.id, callback_phone="+1 617 555 0100")
    _call(world, "request_hardship", reason="income", now=NOW - timedelta(hours=1))
    outcome = sender.send(world.org_id, world.alice.guarantor_id, email, "notice-1")
    assert (outcome.state, outcome.reasons, outcome.code) == (
        "blocked", ("PLAT-HARDSHIP-PAUSE",), "flag_in_force")
    assert provider.sent == []
