"""The staff screen `/app/admin/webhooks`: every route against every role and anonymous
(denials change nothing and enqueue nothing), CSRF, the secret shown once, bad input,
pause/resume and delete."""

from __future__ import annotations

import re
import uuid
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


def _delivered(web: Web, endpoint_id: Any) -> Any:
    from carecollect.integration.models import WebhookDelivery
    from carecollect.integration.service import emit_event

    with web.db.tenant_session(web.tenant.id) as session:
        event = emit_event(session, organization_id=web.tenant.id, type="consent.revoked",
                           data={"consent_id": uuid.uuid4()})
        delivery = session.scalar(select(WebhookDelivery).where(
            WebhookDelivery.event_id == event.id, WebhookDelivery.endpoint_id == endpoint_id))
        assert delivery is not None
        delivery.state, delivery.attempts = "delivered", 1
        return delivery.id


def test_every_route_of_the_router_is_tested_by_role() -> None:
    from fastapi.routing import APIRoute

    from carecollect.staff_ui.webhook_pages import router

    routes = {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert len(routes) == 7  # the seven of test_every_route_by_role


@pytest.mark.parametrize("actor", [r.value for r in Role] + ["anonymous"])
def test_every_route_by_role(web: Web, actor: str) -> None:
    endpoint_id = _endpoint(web)
    delivery_id = _delivered(web, endpoint_id)
    client = web.client() if actor == "anonymous" else web.login(actor)
    allowed = actor != "anonymous" and Permission.WEBHOOK_MANAGE in ROLE_PERMISSIONS[Role(actor)]
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/app/admin/webhooks", None),
        ("POST", "/app/admin/webhooks", FORM),
        ("GET", f"/app/admin/webhooks/{endpoint_id}/deliveries", None),
        ("POST", f"/app/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", {}),
        ("POST", f"/app/admin/webhooks/{endpoint_id}/rotate", {}),
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


def test_rotate_and_redeliver_from_the_screens(web: Web) -> None:
    endpoint_id = _endpoint(web)
    delivery_id = _delivered(web, endpoint_id)
    client = web.login("owner")
    token = csrf_of(client.get("/app/admin/webhooks"))
    rotated = client.post(f"/app/admin/webhooks/{endpoint_id}/rotate", data={"csrf_token": token})
    assert rotated.status_code == 200
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', rotated.text)
    assert secret is not None
    with web.db.tenant_session(web.tenant.id) as session:
        stored = session.get(WebhookEndpoint, endpoint_id)
        assert web.tenant.keys.cipher().open_row(stored, "secret") == secret.group(1)
        assert stored.previous_secret is not None
    listing = client.get(f"/app/admin/webhooks/{endpoint_id}/deliveries")
    assert listing.status_code == 200
    assert "consent.revoked" in listing.text
    assert ">Send again<" in listing.text
    sent = client.post(f"/app/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
                       data={"csrf_token": token})
    assert sent.headers["location"] == f"/app/admin/webhooks/{endpoint_id}/deliveries"
    page = client.get(f"/app/admin/webhooks/{endpoint_id}/deliveries").text
    assert ">Send again<" not in page  # pending now
    before = snapshot(web.db)
    refused = client.post(
        f"/app/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
        data={"csrf_token": token})
    assert refused.status_code == 400
    assert "still pending" in refused.text
    assert snapshot(web.db) == before
    actions = [e["action"] for e in audit_events(web.db) if e["action"].startswith("webhook")]
    assert actions[-2:] == ["webhook_endpoint.rotate_secret", "webhook_delivery.redeliver"]
