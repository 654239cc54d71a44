"""Organization template overrides: save (linted; findings refuse and store nothing),
versions, revert to shipped, the renderer's lookup, audit and tenant isolation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from carecollect.db import Database
from carecollect.errors import BadInput, NotFound
from carecollect.outreach.org_template_models import OrganizationTemplate
from carecollect.outreach.org_templates import (
    draft_of,
    organization_template,
    overrides,
    revert_template,
    save_template,
)
from carecollect.outreach.templates import (
    Conditions,
    SurfaceContext,
    Template,
    TemplateRefused,
    render_template,
)
from tests.factories import TEST_ACTOR, Tenant, audit_events, create_tenant

PAY = "https://pay.example.org/t/" + "Zx9" * 8
GOOD_SMS = "{{ practice_name }}: a new message is waiting for you: {{ payment_url }}"


def _sms(body: str = GOOD_SMS, *, key: str = "statement_ready_sms", language: str = "en",
         verified: bool = False) -> Template:
    return Template(key, language, "sms", "", {"sms_body": body},
                    requires=Conditions(phone_verified_and_consented=verified))


def _save(db: Database, tenant: Tenant, template: Template) -> Any:
    with db.tenant_session(tenant.id) as s:
        return save_template(s, actor=TEST_ACTOR, organization_id=tenant.id, template=template)


def _lookup(db: Database, tenant: Tenant, key: str = "statement_ready_sms",
            language: str = "en") -> Template | None:
    with db.tenant_session(tenant.id) as s:
        return organization_template(s, organization_id=tenant.id, key=key, language=language)


def _rows(db: Database) -> list[tuple[Any, ...]]:
    with db.system_session() as s:
        return [tuple(r) for r in s.execute(select(
            OrganizationTemplate.organization_id, OrganizationTemplate.template_key,
            OrganizationTemplate.language, OrganizationTemplate.version,
            OrganizationTemplate.active, OrganizationTemplate.surfaces,
            OrganizationTemplate.updated_by).order_by(OrganizationTemplate.version))]


def test_no_override_means_the_shipped_template(db: Database) -> None:
    tenant = create_tenant(db)
    assert _lookup(db, tenant) is None


def test_a_saved_override_is_what_the_renderer_gets(db: Database) -> None:
    tenant = create_tenant(db)
    saved = _save(db, tenant, _sms())
    assert saved.version == 1
    found = _lookup(db, tenant)
    assert found == Template("statement_ready_sms", "en", "sms",
                             "Neutral notice that a statement is ready, with an opaque link.",
                             {"sms_body": GOOD_SMS}, Conditions())
    assert _lookup(db, tenant, language="es") is None
    rendered = render_template(found, SurfaceContext(
        channel="sms", display_name="Lakeside Billing", variables={"payment_url": PAY}))
    assert rendered.sms_body == (f"Lakeside Billing: a new message is waiting for you: {PAY} "
                                 "Reply STOP to opt out.")
    assert _rows(db) == [(tenant.id, "statement_ready_sms", "en", 1, True,
                          {"sms_body": GOOD_SMS}, uuid.UUID(TEST_ACTOR.id))]
    events = audit_events(db, "organization.template_save")
    assert [(e["details"], e["subject_type"]) for e in events] == [
        ({"template": "statement_ready_sms", "language": "en", "version": 1,
          "surfaces": ["sms_body"]}, "organization_template")]
    assert GOOD_SMS not in str(events)  # the text itself is never in the audit trail


def test_each_save_is_a_new_version_and_an_identical_save_stores_nothing(
        db: Database) -> None:
    tenant = create_tenant(db)
    _save(db, tenant, _sms())
    second = "{{ practice_name }}: please look at your new message: {{ payment_url }}"
    assert _save(db, tenant, _sms(second)).version == 2
    assert _save(db, tenant, _sms(second)).version == 2
    assert [(r[3], r[4], r[5]["sms_body"]) for r in _rows(db)] == [
        (1, False, GOOD_SMS), (2, True, second)]
    assert _lookup(db, tenant) == Template(
        "statement_ready_sms", "en", "sms",
        "Neutral notice that a statement is ready, with an opaque link.",
        {"sms_body": second})
    assert len(audit_events(db, "organization.template_save")) == 2


def test_revert_to_shipped(db: Database) -> None:
    tenant = create_tenant(db)
    _save(db, tenant, _sms())
    with db.tenant_session(tenant.id) as s:
        revert_template(s, actor=TEST_ACTOR, organization_id=tenant.id,
                        key="statement_ready_sms", language="en")
    assert _lookup(db, tenant) is None
    assert [(r[3], r[4]) for r in _rows(db)] == [(1, False)]
    assert [e["details"] for e in audit_events(db, "organization.template_revert")] == [
        {"template": "statement_ready_sms", "language": "en", "version": 1}]
    # Nothing left to revert: refused, nothing recorded.
    with pytest.raises(NotFound), db.tenant_session(tenant.id) as s:
        revert_template(s, actor=TEST_ACTOR, organization_id=tenant.id,
                        key="statement_ready_sms", language="en")
    assert len(audit_events(db, "organization.template_revert")) == 1
    # A later save starts at the next version.
    assert _save(db, tenant, _sms()).version == 2


@pytest.mark.parametrize(("template", "message"), [
    (_sms("You have a bill: {{ payment_url }}"),
     "sms_body: PLAT-NEUTRAL-NAME: surface must name {{ practice_name }}"),
    (_sms("{{ practice_name }}: you owe {{ balance_cents | money }} {{ payment_url }}"),
     "sms_body: HIPAA-CONTENT-CLASS: balance_cents is C1; sms_body allows up to C0"),
    (_sms("{{ practice_name }}: your {{ service_description }} {{ payment_url }}",
          verified=True),
     "sms_body: HIPAA-CONTENT-CLASS: service_description is C2; sms_body allows up to C1"),
    (_sms("{{ practice_name }}: this is past due {{ payment_url }}"),
     "sms_body: HIPAA-CONTENT-CLASS: literal text 'past due' may not appear on sms_body"),
    (_sms("{{ practice_name }} {{ shoe_size }}"),
     "sms_body: TEMPLATE-UNTYPED: variable 'shoe_size' has no declared type"),
    (_sms("{{ practice_name }} {% if %}"),
     "sms_body: TEMPLATE-SYNTAX: line 1: Expected an expression, got 'end of statement "
     "block'"),
    (_sms("   "), "sms_body: TEMPLATE-SURFACE: sms template lacks sms_body"),
    (Template("callback_voicemail", "en", "voicemail", "", {
        "voicemail": "{{ practice_name }} about your account, call {{ callback_phone }}"}),
     "voicemail: REGF-LCM: literal text 'account' may not appear on voicemail"),
])
def test_linter_findings_refuse_the_save_and_store_nothing(
        db: Database, template: Template, message: str) -> None:
    tenant = create_tenant(db)
    _save(db, tenant, _sms())
    before, events = _rows(db), len(audit_events(db))
    with pytest.raises(TemplateRefused) as refused:
        _save(db, tenant, template)
    assert refused.value.message == message
    assert _rows(db) == before
    assert len(audit_events(db)) == events
    assert _lookup(db, tenant) == Template(
        "statement_ready_sms", "en", "sms",
        "Neutral notice that a statement is ready, with an opaque link.",
        {"sms_body": GOOD_SMS})


@pytest.mark.parametrize(("template", "error", "message"), [
    (_sms(key="no_such_template"), NotFound, "no such template"),
    (_sms(language="fr"), BadInput, "the language is en or es"),
    (Template("statement_ready_sms", "en", "email", "", {"email_body": "x"}), BadInput,
     "template statement_ready_sms is a sms template, not email"),
    (Template("statement_ready_sms", "en", "sms", "", {
        "sms_body": GOOD_SMS, "email_subject": "Hello"}), BadInput,
     "a sms template has no surface email_subject"),
    (_sms("{{ practice_name }} " + "x" * 20_000), BadInput,
     "a surface is at most 20000 characters"),
])
def test_malformed_overrides_are_refused(db: Database, template: Template,
                                         error: type[Exception], message: str) -> None:
    tenant = create_tenant(db)
    with pytest.raises(error) as refused:
        _save(db, tenant, template)
    assert getattr(refused.value, "message", "") == message
    assert _rows(db) == []
    assert audit_events(db, "organization.template_save") == []


def test_draft_of_drops_blank_surfaces() -> None:
    draft = draft_of(key="statement_email", language="es", channel="email", surfaces={
        "email_subject": "Hola", "from_name": "{{ practice_name }}", "preheader": "  ",
        "email_body": "{{ practice_name }} {{ payment_url }}"},
        phone_verified_and_consented=False, email_risk_acknowledged=True)
    assert draft.surfaces == {"email_subject": "Hola", "from_name": "{{ practice_name }}",
                              "email_body": "{{ practice_name }} {{ payment_url }}"}
    assert draft.requires == Conditions(False, True)


def test_overrides_belong_to_one_organization(db: Database) -> None:
    a, b = create_tenant(db), create_tenant(db)
    _save(db, a, _sms())
    assert _lookup(db, b) is None
    with db.tenant_session(b.id) as s:
        assert overrides(s, organization_id=b.id) == []
        assert organization_template(s, organization_id=a.id, key="statement_ready_sms",
                                     language="en") is None
        with pytest.raises(NotFound):
            revert_template(s, actor=TEST_ACTOR, organization_id=b.id,
                            key="statement_ready_sms", language="en")
    with db.tenant_session(a.id) as s:
        listed = overrides(s, organization_id=a.id)
    assert [(o.template.id, o.template.language, o.version) for o in listed] == [
        ("statement_ready_sms", "en", 1)]


@pytest.mark.postgres
def test_concurrent_first_saves_take_versions_one_after_the_other(
        db: Database, backend: str) -> None:
    """Two managers save the same template at once: the second waits for the first's
    organization lock and takes the next version (no unique-key collision)."""
    import threading
    import time

    from sqlalchemy import text

    if backend != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter (SQLite serializes writers)")
    tenant = create_tenant(db)
    first_saved, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def first() -> None:
        with db.tenant_session(tenant.id) as s:
            results["first"] = save_template(s, actor=TEST_ACTOR, organization_id=tenant.id,
                                             template=_sms()).version
            first_saved.set()
            release.wait(30)

    def second() -> None:
        body = "{{ practice_name }}: please look at your new message: {{ payment_url }}"
        results["second"] = _save(db, tenant, _sms(body)).version

    a = threading.Thread(target=first)
    a.start()
    assert first_saved.wait(30)
    b = threading.Thread(target=second)
    b.start()
    deadline = time.monotonic() + 30
    waiting = 0
    while waiting == 0 and time.monotonic() < deadline:
        with db.engine.connect() as conn:
            waiting = int(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one())
        time.sleep(0.05)
    assert waiting == 1  # the second save waits for the first's lock
    release.set()
    a.join(30)
    b.join(30)
    assert results == {"first": 1, "second": 2}
    assert [(r[3], r[4]) for r in _rows(db)] == [(1, False), (2, True)]
