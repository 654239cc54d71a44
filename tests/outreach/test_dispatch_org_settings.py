"""What the dispatcher takes from the organization's stored settings: its compliance
overlay (quiet days), its own template versions, and real portal links in messages."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from carecollect.compliance.overlay_settings import set_overlay
from carecollect.db import Database
from carecollect.outreach import org_templates
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.portal.models import PortalLink
from carecollect.portal.service import sha256_hex
from tests.channel.fakes import fake_twilio
from tests.channel.world import BASE, make_worker, make_world, plan, twilio_provider
from tests.factories import TEST_ACTOR, audit_events

LINK = re.compile(r"https://carecollect\.localhost/pay/([A-Za-z0-9_-]{40,100})")


def test_a_message_link_is_a_portal_link_bound_to_the_debtor(db: Database) -> None:
    world = make_world(db, 2, verified=True)
    first, second = world.debtors
    with fake_twilio() as twilio:
        plan(world, first, "sms", "sms-a", template_key="balance_reminder_sms")
        plan(world, second, "sms", "sms-b", template_key="balance_reminder_sms")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        bodies = {m["to"]: m["body"] for m in twilio.messages}
    tokens = {}
    for debtor in (first, second):
        found = LINK.search(bodies[debtor.phone])
        assert found is not None, bodies[debtor.phone]
        tokens[debtor.id] = found.group(1)
    with db.system_session() as session:
        links = {row.token_hash: row for row in session.scalars(select(PortalLink))}
    assert len(links) == 2
    for guarantor_id, token in tokens.items():
        row = links[sha256_hex(token)]  # only the hash is stored
        assert row.guarantor_id == guarantor_id
        assert row.revoked_at is None
        assert row.expires_at > BASE
        assert (row.purpose, row.created_by) == ("payment", "system:outreach.dispatch")
        assert row.expires_at - row.created_at == timedelta(days=30)  # the portal's lifetime
    # Issued with the batch, each link is still audited on its own (ids only).
    issued = audit_events(db, "portal.link_issue")
    assert sorted((e["subject_id"], str(e["patient_id"])) for e in issued) == sorted(
        (str(row.id), str(row.guarantor_id)) for row in links.values())
    assert all(set(e["details"]) == {"expires_at", "purpose"} for e in issued)


def test_the_organizations_quiet_day_blocks_the_send(db: Database) -> None:
    world = make_world(db, 1)
    with db.tenant_session(world.tenant.id) as session:
        set_overlay(session, actor=TEST_ACTOR, organization_id=world.tenant.id,
                    data={"quiet_weekdays": ["tue"]})  # BASE is a Tuesday in Boston
    with fake_twilio() as twilio:
        attempt_id = plan(world, world.debtors[0], "sms", "sms-quiet",
                          template_key="statement_ready_sms")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        assert twilio.messages == []
    with db.system_session() as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        assert attempt is not None
        assert attempt.state == "blocked"
        assert "ORG-QUIET-DAYS" in (attempt.reasons or [])
        assert attempt.next_allowed_at is not None
        assert attempt.next_allowed_at >= BASE + timedelta(hours=12)


def test_the_organizations_own_template_version_is_sent(db: Database) -> None:
    world = make_world(db, 1)
    with db.tenant_session(world.tenant.id) as session:
        draft = org_templates.draft_of(
            key="statement_ready_sms", language="en", channel="sms",
            surfaces={"sms_body": "{{ practice_name }}: your new statement is ready. "
                                  "Call us when it suits you."},
            phone_verified_and_consented=False, email_risk_acknowledged=False)
        org_templates.save_template(session, actor=TEST_ACTOR,
                                    organization_id=world.tenant.id, template=draft)
    with fake_twilio() as twilio:
        plan(world, world.debtors[0], "sms", "sms-own", template_key="statement_ready_sms")
        make_worker(world, {"sms": twilio_provider(twilio.base_url)}).drain()
        body = twilio.messages[0]["body"]
    assert body.startswith("Lakeside Billing: your new statement is ready. Call us when it "
                           "suits you.")
    assert body.endswith("Reply STOP to opt out.")
    with db.system_session() as session:  # a message without a link issues none
        assert session.scalars(select(PortalLink)).all() == []
