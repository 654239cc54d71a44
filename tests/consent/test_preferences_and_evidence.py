from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from carecollect.consent.evidence import FORMAT, export_evidence
from carecollect.consent.models import ConfidentialCommunicationRequest, MediumOptOut
from carecollect.consent.preferences import (
    designation_blocks,
    next_clear,
    parse_window,
    preferences_service,
)
from carecollect.consent.service import consent_service
from carecollect.db import Database
from carecollect.errors import BadInput
from carecollect.outreach.service import contact_history_service
from tests.consent.pdftext import page_count, pdf_text
from tests.factories import (
    TEST_ACTOR,
    add_email,
    add_phone,
    audit_events,
    create_guarantor,
    create_tenant,
)

T0 = dt.datetime(2026, 5, 4, 14, 0, tzinfo=dt.UTC)


def test_parse_window_and_designation_matching() -> None:
    assert parse_window("18:00-21:00") == (dt.time(18), dt.time(21))
    with pytest.raises(BadInput):
        parse_window("6pm-9pm")
    ny = dt.timezone(dt.timedelta(hours=-4))
    monday_7pm = dt.datetime(2026, 5, 4, 19, 0, tzinfo=ny)
    assert designation_blocks("time", "18:00-21:00", monday_7pm) is True
    assert designation_blocks("time", "18:00-19:00", monday_7pm) is False
    assert designation_blocks("time", "22:00-07:00", monday_7pm.replace(hour=6)) is True
    assert designation_blocks("day", "mon", monday_7pm) is True
    assert designation_blocks("day", "sun", monday_7pm) is False
    assert next_clear([("time", "18:00-21:00")], monday_7pm) == monday_7pm.replace(hour=21)
    assert next_clear([("day", "mon")], monday_7pm) == dt.datetime(2026, 5, 5, 0, 0,
                                                                   tzinfo=ny)


def test_opt_out_reconsent_confidential_and_designation_are_recorded(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g = create_guarantor(s, tenant)
        phone = add_phone(s, tenant, g.id, "+16175550123")
        email = add_email(s, tenant, g.id, "robin@example.org")
        consent_service.grant(s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id,
                              contact_point_id=phone.id, kind="tcpa_pec",
                              granted_at=T0 - dt.timedelta(days=30), method="intake_form",
                              wording_version="v3", captured_by="front-desk",
                              evidence="Signed intake form page 2")
        preferences_service.opt_out_medium(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id, medium="sms",
            contact_point_id=phone.id, received_at=T0, method="free_text",
            text="please stop texting me")
        assert consent_service.is_consented(s, contact_point_id=phone.id, kind="tcpa_pec",
                                            channel="sms", at=T0) is True  # opt-out != TCPA
        preferences_service.reconsent(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id,
            contact_point_id=phone.id, medium="sms", granted_at=T0 + dt.timedelta(days=2),
            method="sms_keyword", evidence="START")
        preferences_service.request_confidential(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id, received_at=T0,
            method="phone", allowed_channels=["letter", "email"],
            allowed_contact_point_ids=[email.id], instruction="Only e-mail, never home phone")
        preferences_service.request_confidential(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id,
            received_at=T0 + dt.timedelta(days=1), method="portal",
            allowed_channels=["letter"])
        preferences_service.designate_inconvenient(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id, kind="time",
            value="18:00-21:00", designated_at=T0, method="call")
        with pytest.raises(BadInput):
            preferences_service.designate_inconvenient(
                s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id, kind="day",
                value="someday", designated_at=T0, method="call")
        contact_history_service.record_contact(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id,
            contact_point_id=phone.id, occurred_at=T0 - dt.timedelta(days=1), channel="sms",
            direction="outbound", outcome="delivered")
        gid = g.id
    with db.tenant_session(tenant.id) as s:
        requests = list(s.scalars(select(ConfidentialCommunicationRequest)
                                  .order_by(ConfidentialCommunicationRequest.received_at)))
        assert [(r.allowed_channels, r.withdrawn_at) for r in requests] == [
            (["email", "letter"], T0 + dt.timedelta(days=1)), (["letter"], None)]
        assert [o.medium for o in s.scalars(select(MediumOptOut))] == ["sms"]
    changes = [e["details"]["change"] for e in audit_events(db, "consent.change")]
    assert changes == ["grant", "medium_opt_out", "grant", "confidential_request",
                       "confidential_request", "designate_inconvenient"]

    with db.tenant_session(tenant.id) as s:
        files = export_evidence(s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=gid,
                                generated_at=T0 + dt.timedelta(days=3))
    doc = json.loads(files["json"])
    assert doc["format"] == FORMAT
    assert doc["guarantor"]["name"] == "Robin Testperson"
    assert [c["value"] for c in doc["contact_points"]] == ["+16175550123",
                                                           "robin@example.org"]
    assert [(c["kind"], c["source"], c["method"], c["evidence"]) for c in doc["consents"]] == [
        ("tcpa_pec", "staff", "intake_form", "Signed intake form page 2"),
        ("tcpa_pec", "reconsent", "sms_keyword", "START")]
    assert doc["consents"][0]["wording_version"] == "v3"
    assert doc["consents"][0]["captured_by"] == "front-desk"
    assert doc["medium_opt_outs"][0]["text"] == "please stop texting me"
    assert doc["confidential_requests"][0]["instruction"] == "Only e-mail, never home phone"
    assert doc["inconvenient_designations"][0]["value"] == "18:00-21:00"
    assert [(e["channel"], e["outcome"]) for e in doc["contact_history"]] == [
        ("sms", "delivered")]
    assert files["pdf"].startswith(b"%PDF-")
    text = pdf_text(files["pdf"])
    assert page_count(files["pdf"]) >= 1
    assert "Consent and contact evidence" in text
    assert "please stop texting me" in text
    exports = audit_events(db, "consent.export")
    assert len(exports) == 1
    assert exports[0]["details"]["formats"] == ["json", "pdf"]
    assert exports[0]["details"]["consents"] == 2
    assert exports[0]["patient_id"] is not None


def test_scenario_additions_for_the_send_time_context(db: Database) -> None:
    from carecollect.compliance import scenario as sc
    from carecollect.consent.preferences import scenario_additions

    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g = create_guarantor(s, tenant)
        email = add_email(s, tenant, g.id, "robin@example.org")
        preferences_service.opt_out_medium(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id, medium="email",
            contact_point_id=email.id, received_at=T0, method="free_text")
        preferences_service.request_confidential(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id, received_at=T0,
            method="phone", allowed_channels=["letter", "email"])
        row = preferences_service.designate_inconvenient(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id, kind="day", value="sun",
            designated_at=T0, method="call")
        got = scenario_additions(s, guarantor_id=g.id, now=T0 + dt.timedelta(hours=1))
        assert got.designations == (sc.Designation(kind="day", value="sun", at=T0),)
        assert got.confidential == sc.ConfidentialRequest(at=T0,
                                                          instruction="email and letter only")
        assert got.opt_outs == (sc.Revocation(contact_point=str(email.id), channel="email",
                                              received_at=T0, method="free_text"),)
        assert scenario_additions(s, guarantor_id=g.id, now=T0 - dt.timedelta(hours=1)) == \
            type(got)((), None, ())
        preferences_service.revoke_designation(s, keys=tenant.keys, actor=TEST_ACTOR,
                                               designation_id=row.id,
                                               at=T0 + dt.timedelta(minutes=5))
        later = scenario_additions(s, guarantor_id=g.id, now=T0 + dt.timedelta(hours=1))
        assert later.designations == ()
