"""Every API endpoint and every staff page against every role and anonymous.

The tables below name the one permission each route needs; a test fails when a route is
added without being listed. A denied request must change nothing (every table compared
before and after) and enqueue nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from tests.web.api_seed import covered_entity, seed_api
from tests.web.conftest import Seed, make_web, seed
from tests.web.helpers import job_count, snapshot

P = Permission
NOW = "2026-03-02T15:00:00Z"

API_ROUTES: list[tuple[str, str, Permission, Any]] = [
    ("GET", "/api/v1/organization", P.ORG_READ, None),
    ("PATCH", "/api/v1/organization", P.ORG_MANAGE, {"billing_display_name": "Lakeside Office"}),
    ("GET", "/api/v1/users", P.USER_READ, None),
    ("GET", "/api/v1/users/{spare_user_id}", P.USER_READ, None),
    (
        "POST",
        "/api/v1/guarantors",
        P.PATIENT_WRITE,
        {"first_name": "Alex", "last_name": "Sampleton", "date_of_birth": "1975-02-03"},
    ),
    (
        "POST",
        "/api/v1/guarantors/search",
        P.PATIENT_SEARCH,
        {"last_name": "Testperson", "date_of_birth": "1980-05-17"},
    ),
    ("GET", "/api/v1/guarantors/{guarantor_id}", P.PATIENT_READ, None),
    ("GET", "/api/v1/guarantors/{guarantor_id}/patients", P.PATIENT_READ, None),
    (
        "POST",
        "/api/v1/patients",
        P.PATIENT_WRITE,
        {"guarantor_id": "{guarantor_id}", "first_name": "Kim", "last_name": "Testperson"},
    ),
    ("GET", "/api/v1/guarantors/{guarantor_id}/contact-points", P.PATIENT_READ, None),
    (
        "POST",
        "/api/v1/contact-points",
        P.PATIENT_WRITE,
        {"guarantor_id": "{guarantor_id}", "kind": "email", "value": "robin@mail.example.org"},
    ),
    ("GET", "/api/v1/accounts", P.ACCOUNT_READ, None),
    (
        "POST",
        "/api/v1/accounts",
        P.ACCOUNT_WRITE,
        {"guarantor_id": "{guarantor_id}", "account_number": "ACC-9", "opened_at": NOW},
    ),
    ("GET", "/api/v1/accounts/{account_id}", P.ACCOUNT_READ, None),
    ("GET", "/api/v1/accounts/{account_id}/ledger", P.ACCOUNT_READ, None),
    (
        "POST",
        "/api/v1/accounts/{account_id}/ledger",
        P.ACCOUNT_WRITE,
        {"kind": "patient_payment", "amount_cents": 2500, "posted_at": NOW},
    ),
    ("GET", "/api/v1/guarantors/{guarantor_id}/consents", P.CONSENT_READ, None),
    (
        "POST",
        "/api/v1/consents",
        P.CONSENT_WRITE,
        {
            "guarantor_id": "{guarantor_id}",
            "contact_point_id": "{phone_id}",
            "kind": "tcpa_pec",
            "granted_at": NOW,
            "method": "intake_form",
        },
    ),
    (
        "POST",
        "/api/v1/revocations",
        P.CONSENT_WRITE,
        {
            "guarantor_id": "{guarantor_id}",
            "channel": "sms",
            "received_at": NOW,
            "method": "sms_keyword",
        },
    ),
    ("GET", "/api/v1/guarantors/{guarantor_id}/flags", P.FLAG_READ, None),
    (
        "POST",
        "/api/v1/flags",
        P.FLAG_WRITE,
        {"guarantor_id": "{guarantor_id}", "kind": "dispute", "raised_at": NOW},
    ),
    ("GET", "/api/v1/business-associates", P.BAA_READ, None),
    ("POST", "/api/v1/business-associates", P.BAA_MANAGE, {"name": "Mailco", "service": "email"}),
    (
        "PUT",
        "/api/v1/business-associates/{associate_id}",
        P.BAA_MANAGE,
        {
            "name": "Textline Inc",
            "service": "sms",
            "baa_status": "active",
            "baa_effective_on": "2026-01-01",
        },
    ),
    ("GET", "/api/v1/audit/events", P.AUDIT_READ, None),
    ("GET", "/api/v1/audit/access-log/{guarantor_id}", P.AUDIT_READ, None),
    ("POST", "/api/v1/audit/verify", P.AUDIT_VERIFY, None),
    # Campaigns, outreach attempts, plans, payments, imports (tests/web/api_seed.py).
    ("GET", "/api/v1/campaigns", P.CAMPAIGN_READ, None),
    ("GET", "/api/v1/campaigns/{campaign_id}", P.CAMPAIGN_READ, None),
    (
        "POST",
        "/api/v1/campaigns",
        P.CAMPAIGN_MANAGE,
        {
            "key": "api_new",
            "name": "New reminder",
            "steps": [
                {
                    "channels": ["email"],
                    "variants": [{"name": "A", "templates": {"email": "reminder_email"}}],
                }
            ],
        },
    ),
    ("POST", "/api/v1/campaigns/{campaign_id}/pause", P.CAMPAIGN_MANAGE, None),
    ("POST", "/api/v1/campaigns/{campaign_id}/activate", P.CAMPAIGN_MANAGE, None),
    ("POST", "/api/v1/campaigns/{campaign_id}/dry-run", P.CAMPAIGN_READ, {"sample": 10}),
    ("GET", "/api/v1/outreach/attempts", P.ACCOUNT_READ, None),
    ("GET", "/api/v1/outreach/attempts/{attempt_id}", P.ACCOUNT_READ, None),
    ("GET", "/api/v1/plans", P.PAYMENT_READ, None),
    ("GET", "/api/v1/plans/{plan_id}", P.PAYMENT_READ, None),
    ("POST", "/api/v1/plans/{plan_id}/cancel", P.PAYMENT_WRITE, {}),
    (
        "POST",
        "/api/v1/plans",
        P.PAYMENT_WRITE,
        {"account_id": "{plan_account_id}", "installments": 3},
    ),
    ("GET", "/api/v1/payments", P.PAYMENT_READ, None),
    ("GET", "/api/v1/payments/{payment_id}", P.PAYMENT_READ, None),
    (
        "POST",
        "/api/v1/payments",
        P.PAYMENT_WRITE,
        {"account_id": "{account_id}", "amount_cents": 1500, "payment_method": "pm_sandbox_visa"},
    ),
    ("POST", "/api/v1/payments/{payment_id}/refund", P.PAYMENT_WRITE, {"amount_cents": 500}),
    ("GET", "/api/v1/imports", P.ACCOUNT_READ, None),
    ("GET", "/api/v1/imports/{import_id}", P.ACCOUNT_READ, None),
    (
        "POST",
        "/api/v1/imports",
        P.PATIENT_WRITE,
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Patient",
                        "id": "p1",
                        "name": [{"family": "Sampleton", "given": ["Alex"]}],
                        "birthDate": "1975-02-03",
                    }
                }
            ],
        },
    ),
]

STAFF_ROUTES: list[tuple[str, str, Permission, Any]] = [
    ("GET", "/app/", P.DASHBOARD_READ, None),
    ("GET", "/app/work", P.FLAG_READ, None),
    ("GET", "/app/search", P.PATIENT_SEARCH, None),
    (
        "POST",
        "/app/search",
        P.PATIENT_SEARCH,
        {"last_name": "Testperson", "date_of_birth": "1980-05-17"},
    ),
    ("GET", "/app/guarantors/{guarantor_id}", P.PATIENT_READ, None),
    ("GET", "/app/accounts/{account_id}", P.PATIENT_READ, None),
    ("POST", "/app/guarantors/{guarantor_id}/reveal", P.PATIENT_REVEAL, {"field": "last_name"}),
    ("GET", "/app/compliance", P.AUDIT_READ, None),
    ("POST", "/app/compliance/verify", P.AUDIT_VERIFY, {}),
    ("GET", "/app/compliance/consents.csv", P.CONSENT_EXPORT, None),
    ("GET", "/app/admin/users", P.USER_READ, None),
    (
        "POST",
        "/app/admin/users",
        P.USER_MANAGE,
        {"email": "new@staff.example.org", "display_name": "New", "role": "collector"},
    ),
    ("POST", "/app/admin/users/{spare_user_id}", P.USER_MANAGE, {"role": "auditor"}),
    ("GET", "/app/admin/api-keys", P.API_KEY_MANAGE, None),
    ("POST", "/app/admin/api-keys", P.API_KEY_MANAGE, {"name": "k", "scopes": "patient.read"}),
    ("POST", "/app/admin/api-keys/{spare_key_id}/revoke", P.API_KEY_MANAGE, {}),
    ("GET", "/app/admin/baa", P.BAA_READ, None),
    ("POST", "/app/admin/baa", P.BAA_MANAGE, {"name": "Mailco", "service": "email"}),
    ("GET", "/app/admin/organization", P.ORG_READ, None),
    (
        "POST",
        "/app/admin/organization",
        P.ORG_MANAGE,
        {"billing_display_name": "Lakeside Office", "timezone": "America/New_York"},
    ),
    ("GET", "/app/break-glass", P.BREAK_GLASS, None),
    # Last: a granted break-glass changes the session's permissions.
    ("POST", "/app/break-glass", P.BREAK_GLASS, {"reason": "patient on the phone, urgent"}),
]
# Reachable without a session: the sign-in steps check their own state.
PUBLIC_STAFF = {
    ("GET", "/app/login"),
    ("POST", "/app/login"),
    ("GET", "/app/login/mfa"),
    ("POST", "/app/login/mfa"),
    ("GET", "/app/login/enroll"),
    ("POST", "/app/login/enroll"),
    ("GET", "/app/login/oidc/{provider_id}"),
    ("GET", "/app/login/oidc/callback"),
    ("POST", "/app/logout"),
}
# Answers 405 to every caller: search is a POST only.
PUBLIC_API = {
    (method, "/api/v1/guarantors/search") for method in ("GET", "PUT", "PATCH", "DELETE")
}
ACTORS = [r.value for r in Role] + ["anonymous"]


def _fill(value: Any, ids: Seed) -> Any:
    names = {k: str(v) for k, v in vars(ids).items()}
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_every_route_is_in_a_table() -> None:
    from carecollect.api.v1 import router as api_router
    from carecollect.staff_ui.pages import router as staff_router

    routes = {
        (method, route.path)
        for route in [*api_router.routes, *staff_router.routes]
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    listed = {(m, _template(p)) for m, p, _, _ in API_ROUTES + STAFF_ROUTES}
    listed |= PUBLIC_STAFF | PUBLIC_API
    assert routes == listed


def _template(path: str) -> str:
    return path.replace("{spare_user_id}", "{user_id}").replace("{spare_key_id}", "{key_id}")


def _allowed(actor: str, permission: Permission) -> bool:
    return actor != "anonymous" and permission in ROLE_PERMISSIONS[Role(actor)]


@pytest.mark.slow
@pytest.mark.parametrize("actor", [*ACTORS, "no_scopes"])
def test_api_routes(actor: str, db: Any, tmp_path: Any) -> None:
    web = make_web(db, tmp_path)
    ids = seed_api(web, seed(web))
    covered_entity(web)  # the BAA gate lets POST /imports in
    client = web.client()
    headers = {} if actor == "anonymous" else web.api("none" if actor == "no_scopes" else actor)
    for method, path, permission, body in API_ROUTES:
        url = _fill(path, ids)
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.request(method, url, json=_fill(body, ids), headers=headers)
        allowed = actor != "no_scopes" and _allowed(actor, permission)
        if allowed:
            assert response.status_code in (200, 201), (method, path, response.text)
            continue
        expected = 401 if actor == "anonymous" else 403
        assert response.status_code == expected, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert snapshot(web.db) == before, (method, path)
        assert job_count(web.db) == jobs


@pytest.mark.slow
@pytest.mark.parametrize("actor", ACTORS)
def test_staff_routes(actor: str, db: Any, tmp_path: Any) -> None:
    web = make_web(db, tmp_path)
    ids = seed(web)
    client = web.client() if actor == "anonymous" else web.login(actor)
    context = web.app.state.context
    for method, path, permission, form in STAFF_ROUTES:
        url = _fill(path, ids)
        cookie = client.cookies.get("cc_session") or "none"
        headers = {"X-CSRF-Token": context.sign("csrf", cookie)}
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.request(method, url, data=_fill(form, ids), headers=headers)
        if _allowed(actor, permission):
            assert response.status_code in (200, 303), (method, path, response.text[:300])
            if response.status_code == 303:
                assert not response.headers["location"].startswith("/app/login")
            continue
        if actor == "anonymous" and method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/app/login")
        elif actor == "anonymous":
            # No session, so no valid CSRF token: refused before anything else runs.
            assert response.status_code == 403, (method, path)
        else:
            assert response.status_code == 403, (method, path, response.text[:300])
        assert snapshot(web.db) == before, (method, path)
        assert job_count(web.db) == jobs
