"""Security properties of the web layer: headers, CSRF, session fixation and cookie flags,
lockout, timeouts, MFA replay and recovery codes, output escaping, problem+json without
PHI, idempotency, audited PHI reads and reveals, break-glass, metrics without PHI."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from carecollect.identity.models import StaffSession, StaffUser
from carecollect.identity.service import IdentityPolicy
from tests.factories import audit_events
from tests.web.conftest import PASSWORD, Web, csrf_of, make_web, seed
from tests.web.helpers import snapshot

XSS_NAME = "<script>alert(1)</script>"


def _post_login(web: Web, client: Any, role: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/app/login"))
    return client.post(
        "/app/login", data={"email": web.emails[role], "password": password, "csrf_token": token}
    )


def _csrf_header(web: Web, client: Any) -> dict[str, str]:
    cookie = client.cookies.get("cc_session")
    return {"X-CSRF-Token": web.app.state.context.sign("csrf", cookie)}


def test_security_headers_on_every_kind_of_response(web: Web) -> None:
    client = web.login("owner")
    responses = [
        client.get("/app/"),
        client.get("/app/login"),
        client.get("/app/nowhere"),
        client.get("/healthz"),
        client.get("/metrics"),
        client.get("/static/app.js"),
        client.get("/api/v1/organization"),
        client.get("/api/v1/organization", headers=web.api("owner")),
        client.get("/api/v1/openapi.json"),
    ]
    for response in responses:
        csp = response.headers["content-security-policy"]
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert response.headers["strict-transport-security"] == (
            "max-age=63072000; includeSubDomains"
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
    assert responses[0].headers["cache-control"] == "no-store"
    assert responses[5].headers["cache-control"] == "public, max-age=3600"


def test_pages_have_no_inline_script_or_style(web: Web) -> None:
    ids = seed(web)
    client = web.login("owner")
    for url in [
        "/app/",
        f"/app/guarantors/{ids.guarantor_id}",
        "/app/compliance",
        "/app/admin/users",
        "/app/login",
    ]:
        html = client.get(url).text
        assert "<script>" not in html
        assert "style=" not in html
        assert "<style" not in html
        assert " on" + "click=" not in html


def test_form_post_without_csrf_token_is_rejected_and_changes_nothing(web: Web) -> None:
    client = web.login("owner")
    before = snapshot(web.db)
    response = client.post(
        "/app/admin/users",
        data={"email": "x@staff.example.org", "display_name": "X", "role": "collector"},
    )
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    wrong = client.post(
        "/app/admin/users",
        data={
            "email": "x@staff.example.org",
            "display_name": "X",
            "role": "collector",
            "csrf_token": "0" * 64,
        },
    )
    assert wrong.status_code == 403
    assert snapshot(web.db) == before
    # The login form needs its token too.
    fresh = web.client()
    assert fresh.post("/app/login", data={"email": "a@b.c", "password": "x"}).status_code == 403


def test_session_fixation_and_cookie_flags(web: Web) -> None:
    client = web.client()
    client.cookies.set(
        "cc_session", f"{web.tenant.id.hex}.planted-by-attacker", domain="127.0.0.1", path="/"
    )
    response = _post_login(web, client, "collector")
    assert response.status_code == 303
    set_cookie = response.headers["set-cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie
    assert "Path=/" in set_cookie
    pending = client.cookies.get("cc_session")
    assert pending != f"{web.tenant.id.hex}.planted-by-attacker"
    # The pending (password-only) session cannot open pages.
    assert client.get("/app/").headers["location"] == "/app/login/mfa"
    token = csrf_of(client.get("/app/login/mfa"))
    done = client.post("/app/login/mfa", data={"code": web.totp("collector"), "csrf_token": token})
    assert done.status_code == 303
    full = client.cookies.get("cc_session")
    assert full != pending
    # The pending token is dead after the second factor (new token at each step).
    replay = web.client()
    replay.cookies.set("cc_session", pending)
    assert replay.get("/app/").status_code == 303
    assert client.get("/app/").status_code == 200


def test_secure_cookie_when_served_over_tls(db: Any, tmp_path: Any) -> None:
    web = make_web(db, tmp_path)
    web.app.state.context.cookie_secure = True
    from fastapi.testclient import TestClient

    client = TestClient(web.app, base_url="https://127.0.0.1", follow_redirects=False)
    response = _post_login(web, client, "owner")
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("__Host-cc_session=")
    assert "Secure" in set_cookie
    assert "HttpOnly" in set_cookie


def test_lockout_after_repeated_failures(web: Web) -> None:
    client = web.client()
    for _ in range(4):
        assert _post_login(web, client, "billing_manager", "wrong password here").status_code == 401
    fifth = _post_login(web, client, "billing_manager", "wrong password here")
    assert fifth.status_code == 423
    # Even the right password is refused while locked.
    assert _post_login(web, client, "billing_manager").status_code == 423
    events = audit_events(web.db, "staff.login")
    assert [e["outcome"] for e in events] == ["failure"] * 5 + ["denied"]
    web.clock.advance(minutes=16)
    assert _post_login(web, client, "billing_manager").status_code == 303


def test_unknown_user_gets_the_same_answer(web: Web) -> None:
    client = web.client()
    token = csrf_of(client.get("/app/login"))
    response = client.post(
        "/app/login",
        data={
            "email": "nobody@staff.example.org",
            "password": "whatever123456",
            "csrf_token": token,
        },
    )
    assert response.status_code == 401
    assert "The e-mail address or password is not correct".lower() in response.text.lower()


def test_idle_timeout_ends_the_session(web: Web) -> None:
    client = web.login("collector")
    web.clock.advance(minutes=14)
    assert client.get("/app/").status_code == 200
    web.clock.advance(minutes=15)
    response = client.get("/app/")
    assert response.status_code == 303
    assert response.headers["location"] == "/app/login?m=expired"
    with web.db.system_session() as session:
        reasons = set(session.scalars(select(StaffSession.revoke_reason)))
    assert "idle_timeout" in reasons


def test_absolute_timeout(db: Any, tmp_path: Any) -> None:
    web = make_web(
        db,
        tmp_path,
        policy=IdentityPolicy(touch_interval=timedelta(0), absolute_timeout=timedelta(hours=1)),
    )
    client = web.login("collector")
    for _ in range(5):
        web.clock.advance(minutes=10)
        assert client.get("/app/").status_code == 200
    web.clock.advance(minutes=11)
    assert client.get("/app/").status_code == 303


def test_totp_code_is_accepted_once_and_recovery_codes_work_once(web: Web) -> None:
    client = web.client()
    _post_login(web, client, "auditor")
    code = web.totp("auditor")
    token = csrf_of(client.get("/app/login/mfa"))
    assert (
        client.post("/app/login/mfa", data={"code": code, "csrf_token": token}).status_code == 303
    )
    again = web.client()
    _post_login(web, again, "auditor")
    token = csrf_of(again.get("/app/login/mfa"))
    replayed = again.post("/app/login/mfa", data={"code": code, "csrf_token": token})
    assert replayed.status_code == 401
    recovery = web.recovery["auditor"][0]
    ok = again.post("/app/login/mfa", data={"code": recovery, "csrf_token": token})
    assert ok.status_code == 303
    third = web.client()
    _post_login(web, third, "auditor")
    token = csrf_of(third.get("/app/login/mfa"))
    assert (
        third.post("/app/login/mfa", data={"code": recovery, "csrf_token": token}).status_code
        == 401
    )


def test_enrollment_at_first_sign_in(web: Web) -> None:
    import pyotp

    from carecollect.audit import Actor
    from carecollect.identity import service as identity

    with web.db.tenant_session(web.tenant.id) as session:
        _, password = identity.create_user(
            session,
            actor=Actor.system("test"),
            organization_id=web.tenant.id,
            email="newbie@staff.example.org",
            display_name="Newbie",
            role="collector",
        )
    client = web.client()
    token = csrf_of(client.get("/app/login"))
    response = client.post(
        "/app/login",
        data={"email": "newbie@staff.example.org", "password": password, "csrf_token": token},
    )
    assert response.headers["location"] == "/app/login/enroll"
    page = client.get("/app/login/enroll")
    secret = page.text.split('id="totp-secret" class="secret">')[1].split("<")[0]
    code = pyotp.TOTP(secret).at(web.clock())
    done = client.post("/app/login/enroll", data={"code": code, "csrf_token": csrf_of(page)})
    assert done.status_code == 200
    assert done.text.count("<li><code>") == 10
    assert client.get("/app/").status_code == 200


def test_script_name_renders_as_text_everywhere(web: Web) -> None:
    ids = seed(web, first_name=XSS_NAME, last_name=XSS_NAME)
    client = web.login("owner")
    page = client.get(f"/app/guarantors/{ids.guarantor_id}").text
    assert XSS_NAME not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    found = client.post(
        "/app/search",
        data={"last_name": XSS_NAME, "date_of_birth": "1980-05-17"},
        headers=_csrf_header(web, client),
    ).text
    assert XSS_NAME not in found
    assert "&lt;script&gt;" in found
    api = client.get(f"/api/v1/guarantors/{ids.guarantor_id}", headers=web.api("owner"))
    assert api.headers["content-type"] == "application/json"
    assert api.json()["first_name"] == XSS_NAME


def test_collector_sees_masked_phi_and_each_reveal_is_audited_once(web: Web) -> None:
    ids = seed(web, first_name="Robin", last_name="Testperson")
    client = web.login("collector")
    page = client.get(f"/app/guarantors/{ids.guarantor_id}").text
    assert "Testperson" not in page
    assert "T•••" in page
    assert "+16175550123" not in page
    reads = audit_events(web.db, "patient.read")
    assert len(reads) == 1
    assert reads[0]["details"]["masked"] is True
    revealed = client.post(
        f"/app/guarantors/{ids.guarantor_id}/reveal",
        data={"field": "last_name"},
        headers=_csrf_header(web, client),
    )
    assert revealed.status_code == 200
    assert '<span class="revealed" id="revealed-last_name">Testperson</span>' in revealed.text
    reveals = audit_events(web.db, "patient.reveal")
    assert len(reveals) == 1
    assert reveals[0]["details"]["fields"] == ["last_name"]
    assert reveals[0]["patient_id"] == str(ids.guarantor_id)


def test_search_is_a_post_and_audited_once(web: Web) -> None:
    ids = seed(web)
    client = web.login("billing_manager")
    response = client.post(
        "/app/search", data={"phone": "(617) 555-0123"}, headers=_csrf_header(web, client)
    )
    assert response.status_code == 200
    assert f"/app/guarantors/{ids.guarantor_id}" in response.text
    searches = audit_events(web.db, "patient.search")
    assert len(searches) == 1
    assert searches[0]["details"]["result_ids"] == [str(ids.guarantor_id)]


def test_problem_json_never_echoes_phi(web: Web) -> None:
    response = web.client().post(
        "/api/v1/guarantors",
        json={"first_name": "Zelda", "last_name": "Uniquename", "date_of_birth": "not-a-date"},
        headers=web.api("owner"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert body["title"] == "Unprocessable content"
    assert "Uniquename" not in response.text
    assert "not-a-date" not in response.text
    assert body["errors"][0]["loc"] == ["body", "date_of_birth"]
    missing = web.client().get(f"/api/v1/guarantors/{web.tenant.id}", headers=web.api("owner"))
    assert missing.status_code == 404
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "no such guarantor",
    }


def test_idempotency_key_replays_and_refuses_a_different_body(web: Web) -> None:
    client = web.client()
    headers = {**web.api("owner"), "Idempotency-Key": "create-1"}
    body = {"first_name": "Alex", "last_name": "Sampleton"}
    first = client.post("/api/v1/guarantors", json=body, headers=headers)
    second = client.post("/api/v1/guarantors", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(audit_events(web.db, "patient.create")) == 1
    other = client.post("/api/v1/guarantors", json={**body, "last_name": "Other"}, headers=headers)
    assert other.status_code == 422
    assert len(audit_events(web.db, "patient.create")) == 1


def test_pagination_walks_every_account(web: Web) -> None:
    from carecollect.ledger.service import ledger_service
    from tests.factories import TEST_ACTOR, create_guarantor

    with web.db.tenant_session(web.tenant.id) as session:
        g = create_guarantor(session, web.tenant)
        for n in range(5):
            ledger_service.open_account(
                session,
                keys=web.tenant.keys,
                actor=TEST_ACTOR,
                guarantor_id=g.id,
                account_number=f"N-{n}",
                opened_at=web.clock(),
            )
    seen: list[str] = []
    cursor = None
    client = web.client()
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/accounts", params=params, headers=web.api("owner")).json()
        seen += [a["account_number"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"N-{n}" for n in range(5)]


def test_revoked_api_key_is_refused(web: Web) -> None:
    from carecollect.identity.service import split_api_token

    client = web.login("owner")
    prefix = split_api_token(web.tokens["collector"])
    assert prefix is not None
    with web.db.system_session() as session:
        from carecollect.identity.models import ApiKey

        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix[1]))
    client.post(f"/app/admin/api-keys/{key_id}/revoke", headers=_csrf_header(web, client))
    response = web.client().get("/api/v1/organization", headers=web.api("collector"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_break_glass_is_time_limited_audited_and_alerts(web: Web) -> None:
    ids = seed(web)
    client = web.login("auditor")
    url = f"/app/guarantors/{ids.guarantor_id}"
    assert client.get(url).status_code == 403
    short = client.post("/app/break-glass", data={"reason": "x"}, headers=_csrf_header(web, client))
    assert short.status_code == 400
    granted = client.post(
        "/app/break-glass",
        data={"reason": "patient in clinic, billing error"},
        headers=_csrf_header(web, client),
    )
    assert granted.status_code == 303
    page = client.get(url)
    assert page.status_code == 200
    assert "Testperson" in page.text
    events = audit_events(web.db, "staff.break_glass")
    assert len(events) == 1
    assert events[0]["details"]["alert"] is True
    read = audit_events(web.db, "patient.read")[-1]
    assert read["details"]["break_glass"] is True
    for _ in range(3):
        web.clock.advance(minutes=10, seconds=30)
        assert client.get("/app/").status_code == 200
    assert client.get(url).status_code == 403


def test_metrics_have_route_templates_and_no_phi(web: Web) -> None:
    ids = seed(web, last_name="Metricsperson")
    client = web.login("owner")
    client.get(f"/app/guarantors/{ids.guarantor_id}")
    text = client.get("/metrics").text
    assert 'route="/app/guarantors/{guarantor_id}"' in text
    assert str(ids.guarantor_id) not in text
    assert "Metricsperson" not in text
    assert "Lakeside" not in text
    assert "carecollect_http_request_duration_seconds_bucket" in text


def test_disabled_user_loses_sessions(web: Web) -> None:
    collector = web.login("collector")
    owner = web.login("owner")
    response = owner.post(
        f"/app/admin/users/{web.users['collector']}",
        data={"state": "disabled"},
        headers=_csrf_header(web, owner),
    )
    assert response.status_code == 303
    assert collector.get("/app/").status_code == 303
    with web.db.tenant_session(web.tenant.id) as session:
        user = session.get(StaffUser, web.users["collector"])
        assert user is not None
        assert user.state == "disabled"


def test_api_search_returns_masked_rows_for_collectors(web: Web) -> None:
    seed(web)
    body = {"last_name": "Testperson", "date_of_birth": "1980-05-17"}
    masked = web.client().post("/api/v1/guarantors/search", json=body, headers=web.api("collector"))
    full = web.client().post(
        "/api/v1/guarantors/search", json=body, headers=web.api("billing_manager")
    )
    assert masked.json()["items"][0]["last_name"] == "T•••"
    assert full.json()["items"][0]["last_name"] == "Testperson"
    assert json.loads(full.text)["items"][0]["masked"] is False


def test_metrics_report_queue_depth_and_lag(web: Web) -> None:
    from carecollect.kit.jobs import enqueue

    with web.db.tenant_session(web.tenant.id) as session:
        enqueue(
            session,
            "test.kind",
            {"n": 1},
            queue="outreach",
            organization_id=web.tenant.id,
            scheduled_at=web.clock() - timedelta(seconds=90),
        )
    text = web.client().get("/metrics").text
    assert 'carecollect_queue_jobs{queue="outreach",state="available"} 1' in text
    assert 'carecollect_queue_lag_seconds{queue="outreach"} 90' in text
