"""Campaign screens: list, builder (create, edit, add/remove steps, bad input), pause and
resume, dry run (masked and unmasked, audited), template editor and plan policy. Synthetic
people only."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from carecollect.consent.preferences import preferences_service
from carecollect.outreach.cadence_models import Campaign, CampaignEnrollment, CampaignStep
from carecollect.payment_plan.models import PlanPolicy
from tests.factories import TEST_ACTOR, audit_events
from tests.outreach.helpers import (
    bankrupt_debtor,
    email_opted_out_debtor,
    make_debtor,
    simple_campaign,
)
from tests.web.conftest import Web
from tests.web.helpers import job_count, snapshot

UTC = dt.UTC
AT = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # Monday 06:00 in New York and Boston
AT_LOCAL = "2026-05-04T06:00"


@dataclass
class Portfolio:
    ok: uuid.UUID  # e-mail consented: sent by e-mail at 10:00 local
    opted_out: uuid.UUID  # e-mail opt-out: falls back to a letter
    bankrupt: uuid.UUID  # bankruptcy flag: blocked on every channel
    designated: uuid.UUID  # inconvenient 09:00-12:30: re-timed to 12:30
    guarantors: dict[uuid.UUID, uuid.UUID]  # account -> guarantor


def seed_portfolio(web: Web) -> Portfolio:
    """Four debtors whose dry-run outcomes differ (no campaign)."""
    tenant = web.tenant
    with web.db.tenant_session(tenant.id) as s:
        ok = make_debtor(s, tenant, n=1, email_consent_at=AT - dt.timedelta(days=3))
        opted_out = email_opted_out_debtor(s, tenant, n=2, at=AT)
        bankrupt = bankrupt_debtor(s, tenant, n=3, at=AT)
        designated = make_debtor(s, tenant, n=4)
        preferences_service.designate_inconvenient(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=designated.guarantor_id,
            kind="time", value="09:00-12:30", designated_at=AT - dt.timedelta(days=1),
            method="call")
        debtors = (ok, opted_out, bankrupt, designated)
        return Portfolio(ok.account_id, opted_out.account_id, bankrupt.account_id,
                         designated.account_id,
                         {d.account_id: d.guarantor_id for d in debtors})


def _csrf(web: Web, client: Any) -> dict[str, str]:
    cookie = client.cookies.get("cc_session") or "none"
    return {"X-CSRF-Token": web.app.state.context.sign("csrf", cookie)}


def _campaign(web: Web, **kwargs: Any) -> uuid.UUID:
    with web.db.tenant_session(web.tenant.id) as s:
        return simple_campaign(s, web.tenant, **{"channels": ("email", "letter"), **kwargs})


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


BUILDER_FORM: dict[str, Any] = {
    "key": "spring_follow_up", "name": "Spring follow-up", "description": "Test cadence",
    "priority": "50", "min_balance": "25.00", "max_balance": "5,000", "min_age": "30",
    "max_age": "", "plan_status": "none", "holdout_percent": "2.5",
    "stop_on": ["paid", "promised"], "pause_on": ["replied"], "step_count": "2",
    "step-0-wait_days": "0", "step-0-send_hour": "9", "step-0-channel-0": "email",
    "step-0-channel-1": "letter", "step-0-channel-2": "",
    "step-0-variant-0-name": "A", "step-0-variant-0-weight": "70",
    "step-0-variant-0-template-email": "statement_email",
    "step-0-variant-0-template-letter": "statement_letter",
    "step-0-variant-1-name": "B", "step-0-variant-1-weight": "30",
    "step-0-variant-1-template-email": "reminder_email",
    "step-0-variant-1-template-letter": "statement_letter",
    "step-1-wait_days": "10", "step-1-send_hour": "17", "step-1-channel-0": "sms",
    "step-1-unless": ["clicked"], "step-1-variant-0-name": "A",
    "step-1-variant-0-weight": "1", "step-1-variant-0-template-sms": "statement_ready_sms",
    "action": "save",
}


def test_campaign_list_and_detail_show_exact_content(web: Web) -> None:
    campaign_id = _campaign(web, key="simple")
    seed_portfolio(web)
    client = web.login("collector")
    page = client.get("/app/campaigns")
    assert page.status_code == 200
    row = _text(re.search(r'<table class="grid" id="campaigns">.*?</table>', page.text,
                          re.S).group(0))  # type: ignore[union-attr]
    assert row == ("Priority Campaign Status Criteria Steps (primary → fallbacks) Enrolled "
                   "Paused Completed Stopped Holdout 100 simple simple active any balance; "
                   "any age; plan: any; stops on paid, promised, plan_active; pauses on "
                   "replied email → letter email → letter 0 0 0 0 0 %")
    assert "New campaign" not in page.text  # collectors read, they do not build
    detail = client.get(f"/app/campaigns/{campaign_id}")
    assert detail.status_code == 200
    assert "<title>Campaign · carecollect</title>" in detail.text
    assert 'id="dry-run-form"' in detail.text
    assert 'id="edit-campaign"' not in detail.text
    assert "pause-campaign" not in detail.text
    assert client.get(f"/app/campaigns/{uuid.uuid4()}").status_code == 404


def test_builder_creates_a_campaign_and_audits_it(web: Web) -> None:
    client = web.login("billing_manager")
    form = client.get("/app/campaigns/new")
    assert form.status_code == 200
    assert 'name="step-0-channel-0"' in form.text
    response = client.post("/app/campaigns", data=BUILDER_FORM, headers=_csrf(web, client))
    assert response.status_code == 303, response.text[:2000]
    with web.db.tenant_session(web.tenant.id) as s:
        c = s.scalars(select(Campaign)).one()
        steps = s.scalars(select(CampaignStep).order_by(CampaignStep.position)).all()
        got = (c.key, c.name, c.description, c.priority, c.min_balance_cents,
               c.max_balance_cents, c.min_age_days, c.max_age_days, c.plan_status,
               c.holdout_basis_points, c.stop_on, c.pause_on, c.active)
        step_rows = [(st.wait_days, st.send_hour, st.channels, st.condition, st.variants)
                     for st in steps]
    assert response.headers["location"] == f"/app/campaigns/{c.id}"
    assert got == ("spring_follow_up", "Spring follow-up", "Test cadence", 50, 2_500,
                   500_000, 30, None, "none", 250, ["paid", "promised"], ["replied"], True)
    assert step_rows == [
        (0, 9, ["email", "letter"], {}, [
            {"name": "A", "weight": 70, "templates": {"email": "statement_email",
                                                      "letter": "statement_letter"}},
            {"name": "B", "weight": 30, "templates": {"email": "reminder_email",
                                                      "letter": "statement_letter"}}]),
        (10, 17, ["sms"], {"unless": ["clicked"]}, [
            {"name": "A", "weight": 1, "templates": {"sms": "statement_ready_sms"}}])]
    created = [e for e in audit_events(web.db, "config.change")
               if e["details"].get("change") == "campaign_create"]
    assert [(e["details"]["key"], e["actor_id"]) for e in created] == [
        ("spring_follow_up", str(web.users["billing_manager"]))]
    page = client.get("/app/campaigns")
    assert "Spring follow-up" in page.text
    assert "balance $25.00\u2013$5,000.00; aging 30\u2013∞ days; plan: none" in _text(
        page.text)


@pytest.mark.parametrize(("changes", "message"), [
    ({"min_balance": "lots"}, "minimum balance: enter an amount in dollars, like 250.00"),
    ({"max_balance": "10.001"}, "maximum balance: at most two decimals"),
    ({"holdout_percent": "five"}, "holdout: enter a percentage, like 5 or 2.5"),
    ({"min_age": "thirty"}, "minimum age (days): enter a whole number"),
    ({"step-0-channel-0": "", "step-0-channel-1": ""}, "step 1: choose a primary channel"),
    ({"step-1-variant-0-name": "", "step-1-variant-0-template-sms": ""},
     "step 2: add at least one variant"),
    ({"step-1-variant-0-template-sms": ""}, "variant A has no sms template"),
    ({"key": "Bad Key!"}, "the key is 1-64 lowercase letters"),
    ({"min_balance": "90", "max_balance": "10"}, "the minimum balance is above the maximum"),
    ({"holdout_percent": "101"}, "holdout is between 0 and 10000 basis points"),
    ({"step-0-send_hour": "24"}, "send_hour is a local hour 0-23"),
    ({"stop_on": ["danced"]}, "unknown behaviour &#39;danced&#39;"),
])
def test_builder_refuses_bad_input_and_stores_nothing(
        web: Web, changes: dict[str, Any], message: str) -> None:
    client = web.login("owner")
    before, jobs = snapshot(web.db), job_count(web.db)
    response = client.post("/app/campaigns", data={**BUILDER_FORM, **changes},
                           headers=_csrf(web, client))
    assert response.status_code == 400
    assert 'id="form-errors"' in response.text
    assert "Nothing was saved." in response.text
    assert message in response.text
    # The form comes back with what was typed.
    assert 'value="Spring follow-up"' in response.text
    assert snapshot(web.db) == before
    assert job_count(web.db) == jobs


def test_add_step_re_renders_without_storing(web: Web) -> None:
    client = web.login("owner")
    before = snapshot(web.db)
    response = client.post("/app/campaigns", data={**BUILDER_FORM, "action": "add_step"},
                           headers=_csrf(web, client))
    assert response.status_code == 200
    assert 'name="step_count" value="3"' in response.text
    assert 'id="step-2"' in response.text
    assert 'name="step-1-variant-0-template-sms"' in response.text
    assert snapshot(web.db) == before


def test_edit_keeps_key_and_removes_a_step(web: Web) -> None:
    client = web.login("owner")
    client.post("/app/campaigns", data=BUILDER_FORM, headers=_csrf(web, client))
    with web.db.tenant_session(web.tenant.id) as s:
        campaign = s.scalars(select(Campaign)).one()
        campaign_id, seed = campaign.id, campaign.seed
    edit = client.get(f"/app/campaigns/{campaign_id}/edit")
    assert edit.status_code == 200
    assert 'name="key" value="spring_follow_up" readonly' in edit.text
    assert '<option value="statement_email" selected>' in edit.text
    form = {**BUILDER_FORM, "key": "renamed_key", "name": "Spring (shorter)",
            "step-1-remove": "1"}
    response = client.post(f"/app/campaigns/{campaign_id}", data=form,
                           headers=_csrf(web, client))
    assert response.status_code == 303
    with web.db.tenant_session(web.tenant.id) as s:
        edited = s.get(Campaign, campaign_id)
        assert edited is not None
        assert (edited.key, edited.name, edited.seed) == (
            "spring_follow_up", "Spring (shorter)", seed)
        assert s.scalar(select(func.count()).select_from(CampaignStep)) == 1
    updates = [e["details"] for e in audit_events(web.db, "config.change")
               if e["details"].get("change") == "campaign_update"]
    assert updates == [{"change": "campaign_update", "key": "spring_follow_up",
                        "fields": ["name", "steps"], "steps": 1}]
    before = snapshot(web.db)
    bad = client.post(f"/app/campaigns/{campaign_id}",
                      data={**BUILDER_FORM, "priority": "-5"}, headers=_csrf(web, client))
    assert bad.status_code == 400
    assert "priority is between 0 and 10000" in bad.text
    assert snapshot(web.db) == before


def test_pause_and_resume_from_the_campaign_page(web: Web) -> None:
    campaign_id = _campaign(web)
    portfolio = seed_portfolio(web)
    with web.db.tenant_session(web.tenant.id) as s:
        from carecollect.outreach.cadence import cadence_service

        cadence_service.enroll_eligible(s, organization_id=web.tenant.id, actor=TEST_ACTOR,
                                        at=AT)
    client = web.login("owner")
    response = client.post(f"/app/campaigns/{campaign_id}/pause", headers=_csrf(web, client))
    assert response.status_code == 303
    page = client.get(f"/app/campaigns/{campaign_id}")
    assert '<dd id="campaign-status" class="state-paused">paused</dd>' in page.text
    assert "0 active, 4 paused, 0 completed, 0 stopped" in page.text
    assert 'id="resume-campaign"' in page.text
    again = client.post(f"/app/campaigns/{campaign_id}/pause", headers=_csrf(web, client))
    assert again.status_code == 400
    assert "the campaign is already paused" in again.text
    client.post(f"/app/campaigns/{campaign_id}/resume", headers=_csrf(web, client))
    page = client.get(f"/app/campaigns/{campaign_id}")
    assert "4 active, 0 paused" in page.text
    with web.db.tenant_session(web.tenant.id) as s:
        statuses = {e.account_id: (e.status, e.status_reason)
                    for e in s.scalars(select(CampaignEnrollment))}
    assert statuses == dict.fromkeys(portfolio.guarantors, ("active", "resumed"))


def _dry_run(web: Web, client: Any, campaign_id: uuid.UUID, **form: str) -> Any:
    data = {"at": AT_LOCAL, **form}
    return client.post(f"/app/campaigns/{campaign_id}/dry-run", data=data,
                       headers={**_csrf(web, client), "HX-Request": "true"})


def test_dry_run_as_collector_is_masked_audited_and_stores_nothing(web: Web) -> None:
    campaign_id = _campaign(web)
    portfolio = seed_portfolio(web)
    client = web.login("collector")
    with web.db.tenant_session(web.tenant.id) as s:
        enrollments = s.scalar(select(func.count()).select_from(CampaignEnrollment))
    reads_before = len(audit_events(web.db, "patient.read"))
    response = _dry_run(web, client, campaign_id)
    assert response.status_code == 200, response.text[:1000]
    html = response.text
    assert "<html" not in html  # an htmx fragment
    assert "Simulated <strong id=\"dry-run-count\">4</strong> of 4 due accounts at " \
           "2026-05-04 06:00 EDT" in html
    totals = dict(re.findall(r'id="total-(\w+)">(\d+)<', html))
    assert totals == {"blocked": "1", "retime": "1", "send": "2", "holdout": "0",
                      "skipped": "0", "stopped": "0"}
    rules = _text(re.search(r'<table class="grid" id="rule-totals">.*?</table>', html,
                            re.S).group(0))  # type: ignore[union-attr]
    assert "PLAT-BANKRUPTCY 1 No collection outreach or furnishing after a known filing " \
           "11 USC 362(a)(6); 11 USC 524" in rules
    assert "REGF-MEDIUM-OPTOUT 1" in rules
    assert "REGF-TIME-DESIGNATED 1" in rules
    rows = re.findall(r'<tr class="dry-run-row outcome-row-(\w+)">(.*?)</tr>', html, re.S)
    assert [outcome for outcome, _ in rows] == ["blocked", "retime", "send", "send"]
    by_outcome = {outcome: _text(body) for outcome, body in rows[:2]}
    assert by_outcome["blocked"].startswith("T••• T••• account ")
    assert "tried again at the next planning run (2026-05-05)" in by_outcome["blocked"]
    assert "email · reminder_email 2026-05-04 12:30 EDT next allowed time " \
           "REGF-TIME-DESIGNATED" in by_outcome["retime"]
    assert "email not used: PLAT-HONOR-IMMEDIATELY , REGF-MEDIUM-OPTOUT" in _text(html)
    assert "Test1" not in html
    assert "Testperson" not in html
    # One audited read per person shown, masked; one summary event; nothing else stored.
    reads = audit_events(web.db, "patient.read")[reads_before:]
    assert sorted(e["patient_id"] for e in reads) == sorted(
        str(g) for g in portfolio.guarantors.values())
    assert {(e["details"]["purpose"], e["details"]["masked"]) for e in reads} == {
        ("campaign_dry_run", True)}
    summary = audit_events(web.db, "outreach.dry_run")
    assert [e["details"] for e in summary] == [{
        "at": "2026-05-04T10:00:00+00:00", "simulated": 4, "due": 4, "shown": 4,
        "blocked": 1, "retime": 1, "send": 2, "holdout": 0, "skipped": 0, "stopped": 0}]
    with web.db.tenant_session(web.tenant.id) as s:
        assert s.scalar(select(func.count()).select_from(CampaignEnrollment)) == enrollments
    assert job_count(web.db) == 0


def test_dry_run_unmasked_for_billing_manager_and_nameless_for_auditor(web: Web) -> None:
    campaign_id = _campaign(web)
    seed_portfolio(web)
    manager = web.login("billing_manager")
    html = _dry_run(web, manager, campaign_id, sample="2").text
    assert "Simulated <strong id=\"dry-run-count\">2</strong> of 4 due accounts" in html
    assert "(the first 2 by account id)" in html
    assert re.search(r"Test\d Testperson", html)
    reads = audit_events(web.db, "patient.read")
    assert [e["details"]["masked"] for e in reads] == [False, False]
    auditor = web.login("auditor")
    html = _dry_run(web, auditor, campaign_id).text
    assert "Testperson" not in html
    assert "T•••" not in html
    assert "/app/accounts/" not in html
    assert len(audit_events(web.db, "patient.read")) == 2  # no person shown to the auditor
    assert len(audit_events(web.db, "outreach.dry_run")) == 2


@pytest.mark.parametrize(("form", "message"), [
    ({"sample": "0"}, "the sample is 1 to 2000 accounts"),
    ({"sample": "lots"}, "the sample is 1 to 2000 accounts"),
    ({"sample": "2001"}, "the sample is 1 to 2000 accounts"),
    ({"at": "yesterday"}, "enter the instant as a date and time"),
])
def test_dry_run_bad_input(web: Web, form: dict[str, str], message: str) -> None:
    campaign_id = _campaign(web)
    seed_portfolio(web)
    client = web.login("owner")
    before = snapshot(web.db)
    response = _dry_run(web, client, campaign_id, **form)
    assert response.status_code == 400
    assert f'<p class="error" role="alert" id="dry-run-error">{message}</p>' in response.text
    assert snapshot(web.db) == before


def test_dry_run_without_htmx_is_a_full_page(web: Web) -> None:
    campaign_id = _campaign(web)
    client = web.login("owner")
    response = client.post(f"/app/campaigns/{campaign_id}/dry-run", data={"at": AT_LOCAL},
                           headers=_csrf(web, client))
    assert response.status_code == 200
    assert "<title>Dry run · carecollect</title>" in response.text
    assert "No account of this campaign is due at that instant." in response.text


def test_template_editor_lints_and_previews(web: Web) -> None:
    client = web.login("compliance_officer")
    listing = client.get("/app/templates")
    assert listing.status_code == 200
    assert len(re.findall(r'class="template-link"', listing.text)) == 12
    editor = client.get("/app/templates/statement_ready_sms/en")
    assert editor.status_code == 200
    assert 'id="lint-ok"' in editor.text
    assert ("Lakeside Billing: you have a new message about your account. View it securely: "
            "https://pay.example.org/t/SAMPLEtoken0123456789abcd Reply STOP to opt out."
            ) in editor.text
    assert client.get("/app/templates/nope/en").status_code == 404
    before = snapshot(web.db)
    bad = client.post("/app/templates/check", headers=_csrf(web, client), data={
        "template_id": "statement_ready_sms", "channel": "sms", "language": "en",
        "surface-sms_body": "Your balance of {{ balance_cents | money }} is past due"})
    assert bad.status_code == 400
    issues = [_text(m) for m in re.findall(r'<tr class="lint-issue">(.*?)</tr>', bad.text,
                                           re.S)]
    assert issues == [
        "sms_body HIPAA-CONTENT-CLASS balance_cents is C1; sms_body allows up to C0",
        "sms_body HIPAA-CONTENT-CLASS literal text &#39;past due&#39; may not appear on "
        "sms_body",
        "sms_body PLAT-NEUTRAL-NAME surface must name {{ practice_name }}"]
    assert "Your balance of $123.45 is past due Reply STOP to opt out." in bad.text
    broken = client.post("/app/templates/check", headers=_csrf(web, client), data={
        "template_id": "x", "channel": "voicemail", "language": "en",
        "surface-voicemail": "{{ practice_name }} {% if %}"})
    assert broken.status_code == 400
    assert 'id="preview-error"' in broken.text
    assert "TEMPLATE-SYNTAX" in broken.text
    unknown = client.post("/app/templates/check", headers=_csrf(web, client),
                          data={"channel": "fax", "language": "en"})
    assert unknown.status_code == 400
    assert "unknown channel" in unknown.text
    assert snapshot(web.db) == before


def test_plan_policy_page_saves_and_refuses_bad_input(web: Web) -> None:
    client = web.login("owner")
    page = client.get("/app/admin/plan-policy")
    assert page.status_code == 200
    assert ("Maximum term balances up to $500.00: 6 months; balances up to $2,000.00: 12 "
            "months; larger balances: 24 months") in _text(page.text)
    org_page = client.get("/app/admin/organization")
    assert 'href="/app/admin/plan-policy"' in org_page.text
    before = snapshot(web.db)
    for form, message in (
        ({"min_installment": "0"}, "the minimum installment must be at least one cent"),
        ({"tier-0-up_to": "900", "tier-1-up_to": "100"},
         "term tiers must have increasing upper bounds"),
        ({"tier-2-up_to": "9000"}, "the last term tier must have no upper bound"),
        ({"min_down": "ten"}, "minimum down payment: enter an amount in dollars"),
        ({"tier-0-months": "121"}, "a tier&#39;s maximum term must be 1 to 120 months"),
    ):
        data = {"min_down": "0.00", "min_down_percent": "0", "min_installment": "25.00",
                "tier-0-up_to": "500.00", "tier-0-months": "6", "tier-1-up_to": "2000.00",
                "tier-1-months": "12", "tier-2-up_to": "", "tier-2-months": "24", **form}
        response = client.post("/app/admin/plan-policy", data=data, headers=_csrf(web, client))
        assert response.status_code == 400, form
        assert message in response.text, (form, response.text[:3000])
        assert snapshot(web.db) == before
    good = client.post("/app/admin/plan-policy", headers=_csrf(web, client), data={
        "min_down": "50.00", "min_down_percent": "10", "min_installment": "40.00",
        "tier-0-up_to": "1000.00", "tier-0-months": "10", "tier-1-up_to": "",
        "tier-1-months": "18"})
    assert good.status_code == 303
    with web.db.tenant_session(web.tenant.id) as s:
        policy = s.scalars(select(PlanPolicy)).one()
        assert (policy.min_down_payment_cents, policy.min_down_payment_bps,
                policy.min_installment_cents, policy.term_tiers, policy.grace_days) == (
            5_000, 1_000, 4_000, [{"up_to_cents": 100_000, "max_months": 10},
                                  {"up_to_cents": None, "max_months": 18}], 10)
    changes = [e["details"] for e in audit_events(web.db, "config.change")
               if e["subject_type"] == "plan_policy"]
    assert changes == [{"fields": ["plan_policy"]}]
    reader = web.login("collector")
    assert 'id="plan-policy-form"' not in reader.get("/app/admin/plan-policy").text


def test_unknown_campaign_or_template_is_404_and_changes_nothing(web: Web) -> None:
    client = web.login("owner")
    before = snapshot(web.db)
    missing = uuid.uuid4()
    for method, path, data in (
        ("GET", f"/app/campaigns/{missing}/edit", None),
        ("POST", f"/app/campaigns/{missing}", BUILDER_FORM),
        ("POST", f"/app/campaigns/{missing}/pause", {}),
        ("POST", f"/app/campaigns/{missing}/resume", {}),
        ("POST", f"/app/campaigns/{missing}/dry-run", {"at": AT_LOCAL}),
        ("GET", "/app/templates/statement_ready_sms/fr", None),
    ):
        response = client.request(method, path, data=data, headers=_csrf(web, client))
        assert response.status_code == 404, (method, path)
        assert "Not found" in response.text
    assert snapshot(web.db) == before


def test_dry_run_during_break_glass_is_unmasked_and_marked(web: Web) -> None:
    campaign_id = _campaign(web)
    portfolio = seed_portfolio(web)
    client = web.login("auditor")
    assert "T•••" not in _dry_run(web, client, campaign_id).text
    granted = client.post("/app/break-glass", headers=_csrf(web, client),
                          data={"reason": "dispute call needs the campaign history"})
    assert granted.status_code == 303
    html = _dry_run(web, client, campaign_id).text
    assert re.search(r"Test\d Testperson", html)
    reads = audit_events(web.db, "patient.read")
    assert len(reads) == len(portfolio.guarantors)
    assert {(e["details"]["masked"], e["details"]["break_glass"]) for e in reads} == {
        (False, True)}
