"""The staff screen `/app/admin/webhooks`: every route against every role and anonymous
(denials change nothing and enqueue nothing), CSRF, the secret shown once, bad input,
pause/resume and delete."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from carecollect.db import Database
from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from carecollect.integration.models import WebhookEndpoint
from carecollect.integration.service import webhook_service
from tests.factories import audit_events
from tests.integration.conftest import ADMIN
from tests.web.conftest import Web, csrf_of, make_web
from tests.web.helpers import job_count, snapshot

FORM = {"url": "https://hooks.example.org/in", "description": "ERP",
        "event_types": ["payment.succeeded", "plan.defaulted"]}


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    from carecollect.identity import service as identity

    monkeypatch.setattr(
        identity, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def web(db: Database, tmp_path: Path) -> Web:
    return make_web(db, tmp_path)


def _endpoint(web: Web) -> Any:
    with web.db.tenant_session(web.tenant.id) as session:
        row, _ = webhook_service.create_endpoint(
            session, keys=web.tenant.keys, actor=ADMIN, url="https://old.example.org/in",
            event_types=["consent.revoked"])
        return row.id


def _endpoints(web: Web) -> list[WebhookEndpoint]:
    with web.db.system_session() as session:
        return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


@pytest.mark.parametrize("actor", [r.value for r in Role] + ["anonymous"])
def test_every_route_by_role(web: Web, actor: str) -> None:
    endpoint_id = _endpoint(web)
    client = web.client() if actor == "anonymous" else web.login(actor)
    allowed = actor != "anonymous" and Permission.WEBHOOK_MANAGE in ROLE_PERMISSIONS[Role(actor)]
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/app/admin/webhooks", None),
        ("POST", "/app/admin/webhooks", FORM),
        ("POST", f"/app/admin/webhooks/{endpoint_id}/active", {"active": "false"}),
        ("POST", f"/app/admin/webhooks/{endpoint_id}/delete", {}),
    ]
    for method, path, form in routes:
        cookie = client.cookies.get("cc_session") or "none"
        headers = {"X-CSRF-Token": web.app.state.context.sign("csrf", cookie)}
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.request(method, path, data=form, headers=headers)
        if allowed:
            assert response.status_code in (200, 303), (path, response.text[:300])
            continue
        if actor == "anonymous" and method == "GET":
            assert response.status_code == 303
            assert response.headers["location"].startswith("/app/login")
        else:
            assert response.status_code == 403, (path, response.text[:300])
        assert snapshot(web.db) == before, path
        assert job_count(web.db) == jobs


def test_owner_registers_pauses_and_deletes(web: Web) -> None:
    client = web.login("owner")
    page = client.get("/app/admin/webhooks")
    assert "No endpoints." in page.text
    assert 'href="/app/admin/webhooks"' in page.text  # the navigation link
    token = csrf_of(page)
    created = client.post("/app/admin/webhooks", data={**FORM, "csrf_token": token})
    assert created.status_code == 200
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', created.text)
    assert secret is not None
    [row] = _endpoints(web)
    assert (row.url, row.event_types, row.active) == (
        FORM["url"], ["payment.succeeded", "plan.defaulted"], True)
    with web.db.tenant_session(web.tenant.id) as session:
        stored = session.get(WebhookEndpoint, row.id)
        assert web.tenant.keys.cipher().open_row(stored, "secret") == secret.group(1)
    listing = client.get("/app/admin/webhooks").text
    assert secret.group(1) not in listing  # shown once
    assert "https://hooks.example.org/in" in listing
    paused = client.post(f"/app/admin/webhooks/{row.id}/active",
                         data={"active": "false", "csrf_token": token})
    assert paused.headers["location"] == "/app/admin/webhooks"
    assert _endpoints(web)[0].active is False
    assert ">Resume<" in client.get("/app/admin/webhooks").text
    client.post(f"/app/admin/webhooks/{row.id}/active", data={"active": "true",
                                                              "csrf_token": token})
    assert _endpoints(web)[0].active is True
    client.post(f"/app/admin/webhooks/{row.id}/delete", data={"csrf_token": token})
    assert _endpoints(web)[0].deleted_at is not None
    assert "No endpoints." in client.get("/app/admin/webhooks").text
    assert [e["action"] for e in audit_events(web.db) if e["action"].startswith("webhook")] \
        == ["webhook_endpoint.create", "webhook_endpoint.update", "webhook_endpoint.update",
            "webhook_endpoint.delete"]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({**FORM, "url": "http://hooks.example.org/in"}, "must use https"),
        ({**FORM, "event_types": []}, "at least one event type"),
        ({**FORM, "event_types": ["patient.read"]}, "unknown event type"),
    ],
)
def test_bad_input_re_renders_and_stores_nothing(web: Web, form: dict[str, Any],
                                                 message: str) -> None:
    client = web.login("owner")
    token = csrf_of(client.get("/app/admin/webhooks"))
    before = snapshot(web.db)
    response = client.post("/app/admin/webhooks", data={**form, "csrf_token": token})
    assert response.status_code == 400
    assert message in response.text
    assert f'value="{form["url"]}"' in response.text  # the form keeps what was typed
    assert snapshot(web.db) == before


def test_post_without_csrf_token_is_refused(web: Web) -> None:
    client = web.login("owner")
    before = snapshot(web.db)
    response = client.post("/app/admin/webhooks", data=FORM)
    assert response.status_code == 403
    assert snapshot(web.db) == before
