"""OIDC single sign-on against a real local provider (tests/web/oidc_provider.py, served by
uvicorn on 127.0.0.1): the whole authorization-code + PKCE flow, our TOTP still required
unless the organization trusts the IdP's MFA and `amr` says so, linking by verified
e-mail, provisioning, and every refusal (wrong nonce, wrong audience, expired token, bad
signature, unknown user, state mismatch) audited with nothing signed in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from carecollect.audit import Actor
from carecollect.errors import BadInput
from carecollect.identity import oidc
from carecollect.identity.models import StaffSession, StaffUser
from carecollect.identity.oidc_models import OidcIdentity, OidcProvider
from tests.factories import audit_events
from tests.web.conftest import Web, csrf_of
from tests.web.oidc_provider import CLIENT_ID, CLIENT_SECRET, LocalProvider, serve_provider

ADMIN = Actor.system("test")


@pytest.fixture
def idp() -> Iterator[LocalProvider]:
    with serve_provider() as provider:
        provider.user = {"sub": "idp-user-1", "email": "collector@staff.example.org",
                         "email_verified": True, "name": "Test collector", "amr": ["pwd"]}
        yield provider


def configure(web: Web, idp: LocalProvider, **options: Any) -> Any:
    settings: dict[str, Any] = {"link_by_verified_email": True}
    settings.update(options)
    with web.db.tenant_session(web.tenant.id) as session:
        provider = oidc.configure_provider(
            session, keys=web.tenant.keys, actor=ADMIN, display_name="Lakeside IdP",
            issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
            allow_loopback_http=True, **settings)
        return provider.id


def sign_in(web: Web, provider_id: Any, client: TestClient | None = None,
            tamper_state: bool = False) -> Any:
    """Browser steps: our start URL -> the IdP's authorize -> our callback."""
    client = client or web.client()
    start = client.get(f"/app/login/oidc/{provider_id}")
    assert start.status_code == 303, start.text
    with httpx.Client(follow_redirects=False) as browser:
        answer = browser.get(start.headers["location"])
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["location"])
    assert callback.path == "/app/login/oidc/callback"
    query = callback.query
    if tamper_state:
        state = parse_qs(query)["state"][0]
        query = query.replace(state, "forged" + state[6:])
    return client.get(f"{callback.path}?{query}")


def _count(web: Web, model: type) -> int:
    with web.db.system_session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _oidc_logins(web: Web) -> list[tuple[str, dict[str, Any]]]:
    return [(e["outcome"], e["details"]) for e in audit_events(web.db, "staff.login")
            if e["details"].get("step") == "oidc"]


def _live_sessions(web: Web) -> int:
    with web.db.system_session() as session:
        return int(session.scalar(select(func.count()).select_from(StaffSession).where(
            StaffSession.revoked_at.is_(None))) or 0)


# -- the login page ---------------------------------------------------------------------


def test_login_page_offers_the_button_only_when_configured(web: Web, idp: LocalProvider) -> None:
    assert "Sign in with" not in web.client().get("/app/login").text
    provider_id = configure(web, idp)
    page = web.client().get("/app/login").text
    assert f'href="/app/login/oidc/{provider_id}">Sign in with Lakeside IdP</a>' in page
    with web.db.tenant_session(web.tenant.id) as session:
        oidc.configure_provider(
            session, keys=web.tenant.keys, actor=ADMIN, display_name="Lakeside IdP",
            issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
            enabled=False, allow_loopback_http=True)
    assert "Sign in with" not in web.client().get("/app/login").text
    assert web.client().get(f"/app/login/oidc/{provider_id}").status_code == 404


def test_authorization_request_uses_state_nonce_and_pkce(web: Web, idp: LocalProvider) -> None:
    provider_id = configure(web, idp)
    client = web.client()
    start = client.get(f"/app/login/oidc/{provider_id}")
    params = parse_qs(urlsplit(start.headers["location"]).query)
    assert params["response_type"] == ["code"]
    assert params["client_id"] == [CLIENT_ID]
    assert params["redirect_uri"] == ["http://127.0.0.1/app/login/oidc/callback"]
    assert params["code_challenge_method"] == ["S256"]
    assert params["scope"] == ["openid email profile"]
    assert len(params["state"][0]) >= 40
    assert len(params["nonce"][0]) >= 40
    cookie = start.headers["set-cookie"]
    assert cookie.startswith(f"{oidc.STATE_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "Path=/app/login/oidc" in cookie
    assert "samesite=lax" in cookie.lower()
    # The verifier never leaves in the URL; only its S256 challenge does.
    assert "code_verifier" not in start.headers["location"]


# -- success ----------------------------------------------------------------------------


def test_first_sign_in_links_by_verified_email_then_still_asks_for_totp(
    web: Web, idp: LocalProvider
) -> None:
    provider_id = configure(web, idp)
    client = web.client()
    response = sign_in(web, provider_id, client)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/app/login/mfa"
    # Half signed in: the app itself is not reachable yet.
    assert client.get("/app/").headers["location"] == "/app/login/mfa"
    token = csrf_of(client.get("/app/login/mfa"))
    done = client.post("/app/login/mfa", data={"code": web.totp("collector"),
                                               "csrf_token": token})
    assert done.headers["location"] == "/app/"
    assert client.get("/app/").status_code == 200
    with web.db.system_session() as session:
        [link] = session.scalars(select(OidcIdentity)).all()
        assert (link.user_id, link.issuer, link.subject) == (
            web.users["collector"], idp.issuer, "idp-user-1")
    assert _oidc_logins(web) == [("success", {
        "step": "oidc", "provider_id": str(provider_id), "linked": "email",
        "mfa": "totp_required"})]
    # The next sign-in finds the link by (issuer, subject), even with a new address.
    idp.user["email"] = "renamed@staff.example.org"
    web.clock.advance(seconds=30)
    again = sign_in(web, provider_id)
    assert again.headers["location"] == "/app/login/mfa"
    assert _oidc_logins(web)[-1][1]["linked"] == "existing"
    assert _count(web, OidcIdentity) == 1


def test_idp_mfa_skips_totp_only_when_trusted_and_amr_says_so(
    web: Web, idp: LocalProvider
) -> None:
    idp.user["amr"] = ["pwd", "mfa"]
    untrusted = configure(web, idp)
    assert sign_in(web, untrusted).headers["location"] == "/app/login/mfa"
    trusted = configure(web, idp, idp_enforces_mfa=True)
    assert trusted == untrusted
    client = web.client()
    response = sign_in(web, trusted, client)
    assert response.headers["location"] == "/app/"
    assert client.get("/app/").status_code == 200
    assert _oidc_logins(web)[-1][1]["mfa"] == "idp_amr"
    idp.user["amr"] = ["pwd"]
    assert sign_in(web, trusted).headers["location"] == "/app/login/mfa"
    idp.user.pop("amr")
    assert sign_in(web, trusted).headers["location"] == "/app/login/mfa"


def test_provisioning_with_a_role_mapping(web: Web, idp: LocalProvider) -> None:
    idp.user.update({"sub": "idp-new-7", "email": "new.person@staff.example.org",
                     "groups": ["staff", "billing"]})
    provider_id = configure(web, idp, allow_provisioning=True, role_claim="groups",
                            role_mapping={"billing": "billing_manager"},
                            allowed_email_domain="staff.example.org")
    response = sign_in(web, provider_id)
    assert response.headers["location"] == "/app/login/enroll"  # our TOTP is set up first
    with web.db.system_session() as session:
        user = session.scalar(select(StaffUser).where(
            StaffUser.email == "new.person@staff.example.org"))
        assert user is not None
        assert (user.role, user.organization_id) == ("billing_manager", web.tenant.id)
    assert _oidc_logins(web)[-1][1]["linked"] == "provisioned"


def test_provisioning_cannot_make_owners() -> None:
    with pytest.raises(BadInput, match="cannot provision owners"):
        oidc._check_role("owner", what="default role")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"issuer": "http://idp.example.org"}, "must use https"),
        ({"issuer": "https://idp.example.org?x=1"}, "without query"),
        ({"client_id": " "}, "client id"),
        ({"allow_provisioning": True}, "needs a default role"),
        ({"default_role": "owner"}, "cannot provision owners"),
        ({"role_mapping": {"admins": "superuser"}}, "unknown role"),
        ({"allowed_email_domain": "nodot"}, "example.org"),
    ],
)
def test_bad_configuration_is_refused_and_nothing_is_stored(
    web: Web, options: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {"display_name": "IdP", "issuer": "https://idp.example.org",
                                "client_id": "abc", "client_secret": "s"}
    settings.update(options)
    with pytest.raises(BadInput, match=message), \
            web.db.tenant_session(web.tenant.id) as session:
        oidc.configure_provider(session, keys=web.tenant.keys, actor=ADMIN, **settings)
    assert _count(web, OidcProvider) == 0


def test_client_secret_is_sealed(web: Web, idp: LocalProvider) -> None:
    configure(web, idp)
    with web.db.engine.connect() as conn:
        from sqlalchemy import text

        raw = conn.execute(text("SELECT client_secret FROM oidc_provider")).scalar_one()
    assert CLIENT_SECRET.encode() not in bytes(raw)


# -- refusals -----------------------------------------------------------------------------


def _assert_refused(web: Web, response: Any, cause: str, status: int = 401,
                    outcome: str = "failure") -> None:
    assert response.status_code == status, response.text[:300]
    assert 'id="login-error"' in response.text
    assert "cc_session" not in response.headers.get("set-cookie", "")
    assert _live_sessions(web) == 0
    assert _oidc_logins(web)[-1][0] == outcome
    assert _oidc_logins(web)[-1][1]["cause"] == cause


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("wrong_nonce", "nonce_mismatch"),
        ("wrong_audience", "wrong_audience"),
        ("expired", "expired"),
        ("bad_signature", "bad_signature"),
        ("unknown_kid", "invalid_token"),
    ],
)
def test_invalid_id_tokens_are_refused(
    web: Web, idp: LocalProvider, fault: str, cause: str
) -> None:
    provider_id = configure(web, idp)
    idp.faults.add(fault)
    response = sign_in(web, provider_id)
    _assert_refused(web, response, cause)
    assert _count(web, OidcIdentity) == 0
    assert "Single sign-on did not work" in response.text


def test_a_new_key_under_the_same_key_id_is_fetched_once_the_cached_set_is_old_enough(
    web: Web, idp: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider_id = configure(web, idp)
    sign_in(web, provider_id)
    assert _oidc_logins(web)[-1][0] == "success"
    fetched = idp.jwks_requests
    # The provider signs with a new key published under the same key id "k1".
    idp.key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    # Our keys were fetched moments ago: a signature that does not verify does not make
    # us fetch them again (forged tokens cannot drive requests to the provider).
    sign_in(web, provider_id)
    assert _oidc_logins(web)[-1] == ("failure", {**_oidc_logins(web)[-1][1],
                                                 "cause": "bad_signature"})
    assert idp.jwks_requests == fetched
    # Once the cached set is old enough, one refresh picks up the new key.
    monkeypatch.setattr(oidc.oidc_client, "bad_signature_refresh_seconds", 0.0)
    sign_in(web, provider_id)
    assert _oidc_logins(web)[-1][0] == "success"
    assert idp.jwks_requests == fetched + 1
    # A token signed by a key the provider does not publish is still refused, after one
    # more fetch of the (unchanged) set.
    idp.faults.add("bad_signature")
    sign_in(web, provider_id)
    assert _oidc_logins(web)[-1][1]["cause"] == "bad_signature"
    assert idp.jwks_requests == fetched + 2


def test_unknown_user_is_refused(web: Web, idp: LocalProvider) -> None:
    idp.user.update({"sub": "stranger", "email": "stranger@staff.example.org"})
    provider_id = configure(web, idp)
    users = _count(web, StaffUser)
    response = sign_in(web, provider_id)
    _assert_refused(web, response, "unknown_user")
    assert "not set up for single sign-on" in response.text
    assert _count(web, StaffUser) == users
    assert _count(web, OidcIdentity) == 0


@pytest.mark.parametrize(
    ("claims", "options"),
    [
        ({"email_verified": False}, {}),  # an unverified address never links
        ({"email_verified": "true"}, {}),  # only a JSON true counts
        ({}, {"link_by_verified_email": False}),  # matching not allowed by the org
        ({}, {"allowed_email_domain": "elsewhere.example.org"}),
    ],
)
def test_email_matching_needs_verification_permission_and_domain(
    web: Web, idp: LocalProvider, claims: dict[str, Any], options: dict[str, Any]
) -> None:
    idp.user.update(claims)
    provider_id = configure(web, idp, **options)
    _assert_refused(web, sign_in(web, provider_id), "unknown_user")
    assert _count(web, OidcIdentity) == 0


def test_state_mismatch_is_refused_before_the_code_is_used(
    web: Web, idp: LocalProvider
) -> None:
    provider_id = configure(web, idp)
    response = sign_in(web, provider_id, tamper_state=True)
    _assert_refused(web, response, "state_mismatch", status=400)
    assert idp.token_requests == 0


def test_callback_without_the_state_cookie_is_refused(web: Web, idp: LocalProvider) -> None:
    provider_id = configure(web, idp)
    client = web.client()
    start = client.get(f"/app/login/oidc/{provider_id}")
    with httpx.Client(follow_redirects=False) as browser:
        answer = browser.get(start.headers["location"])
    callback = urlsplit(answer.headers["location"])
    other_browser = web.client()  # an attacker's link opened in the victim's browser
    response = other_browser.get(f"{callback.path}?{callback.query}")
    assert response.status_code == 400
    assert _oidc_logins(web)[-1] == ("failure", {"step": "oidc", "cause": "state_missing"})
    assert idp.token_requests == 0
    assert _live_sessions(web) == 0


def test_provider_error_is_audited_without_echoing_it(web: Web, idp: LocalProvider) -> None:
    provider_id = configure(web, idp)
    client = web.client()
    start = client.get(f"/app/login/oidc/{provider_id}")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    response = client.get("/app/login/oidc/callback", params={
        "state": state, "error": "access_denied", "error_description": "<script>x</script>"})
    _assert_refused(web, response, "provider_error")
    assert "access_denied" not in response.text
    assert "<script>x" not in response.text


def test_disabled_user_is_refused(web: Web, idp: LocalProvider) -> None:
    provider_id = configure(web, idp)
    with web.db.tenant_session(web.tenant.id) as session:
        user = session.get(StaffUser, web.users["collector"])
        assert user is not None
        user.state = "disabled"
    _assert_refused(web, sign_in(web, provider_id), "disabled", outcome="denied")


@pytest.mark.parametrize(
    ("options", "cause"),
    [({}, "unknown_user"), ({"allow_provisioning": True, "default_role": "collector"},
                            "conflict")],
)
def test_a_link_in_another_organization_is_not_used(
    web: Web, idp: LocalProvider, options: dict[str, Any], cause: str
) -> None:
    from tests.factories import create_tenant

    provider_id = configure(web, idp)
    assert sign_in(web, provider_id).status_code == 303  # links collector@ in this org
    other = create_tenant(web.db, web.tenant.manager)
    with web.db.tenant_session(other.id) as session:
        other_id = oidc.configure_provider(
            session, keys=other.keys, actor=ADMIN, display_name="Other IdP",
            issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
            link_by_verified_email=True, allow_loopback_http=True, **options).id
    users = _count(web, StaffUser)
    # The (issuer, subject) link and the address belong to the first organization: the
    # other organization's provider neither signs this person in nor copies them.
    response = sign_in(web, other_id)
    assert response.status_code == 401
    assert _oidc_logins(web)[-1] == ("failure", {"step": "oidc",
                                                 "provider_id": str(other_id),
                                                 "cause": cause})
    assert _live_sessions(web) == 1  # only the MFA-pending session of the first sign-in
    assert _count(web, StaffUser) == users
    assert _count(web, OidcIdentity) == 1


# -- the settings screen ----------------------------------------------------------------


def _sso_form(idp: LocalProvider, **overrides: str) -> dict[str, str]:
    form = {"display_name": "Lakeside IdP", "issuer": idp.issuer, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "link_by_verified_email": "on", "enabled": "on",
            "role_mapping": "", "allowed_email_domain": "staff.example.org"}
    form.update(overrides)
    return form


@pytest.mark.parametrize("actor", ["owner", "billing_manager", "collector",
                                   "compliance_officer", "auditor", "anonymous"])
def test_sso_settings_by_role(web: Web, idp: LocalProvider, actor: str) -> None:
    from tests.web.helpers import job_count, snapshot

    client = web.client() if actor == "anonymous" else web.login(actor)
    headers = {"X-CSRF-Token": web.app.state.context.sign(
        "csrf", client.cookies.get("cc_session") or "none")}
    for method, form in (("GET", None), ("POST", _sso_form(idp))):
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.request(method, "/app/admin/sso", data=form, headers=headers)
        if actor == "owner":
            assert response.status_code == 200, response.text[:300]
            continue
        if actor == "anonymous" and method == "GET":
            assert response.headers["location"].startswith("/app/login")
        else:
            assert response.status_code == 403
        assert snapshot(web.db) == before
        assert job_count(web.db) == jobs


def test_owner_configures_sso_on_the_screen_then_staff_sign_in(
    web: Web, idp: LocalProvider
) -> None:
    client = web.login("owner")
    token = csrf_of(client.get("/app/admin/sso"))
    saved = client.post("/app/admin/sso", data={**_sso_form(idp), "csrf_token": token})
    assert saved.status_code == 200
    assert 'id="sso-saved"' in saved.text
    assert CLIENT_SECRET not in saved.text
    page = client.get("/app/admin/sso").text
    assert CLIENT_SECRET not in page
    assert "stored; leave blank to keep it" in page
    # Saving again without a secret keeps the stored one.
    again = client.post("/app/admin/sso", data={**_sso_form(idp, client_secret=""),
                                                "csrf_token": token})
    assert again.status_code == 200
    with web.db.system_session() as session:
        [provider] = session.scalars(select(OidcProvider)).all()
        provider_id = provider.id
        assert web.tenant.keys.cipher().open_row(provider, "client_secret") == CLIENT_SECRET
        assert (provider.allowed_email_domain, provider.link_by_verified_email,
                provider.idp_enforces_mfa) == ("staff.example.org", True, False)
    assert f'href="/app/login/oidc/{provider_id}"' in web.client().get("/app/login").text
    assert sign_in(web, provider_id).headers["location"] == "/app/login/mfa"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"issuer": "ftp://idp.example.org"}, "https URL"),
        ({"role_mapping": "admins"}, "group=role"),
        ({"role_mapping": "admins=owner"}, "cannot provision owners"),
        ({"display_name": ""}, "name of 1 to 100"),
    ],
)
def test_sso_settings_bad_input_stores_nothing(
    web: Web, idp: LocalProvider, overrides: dict[str, str], message: str
) -> None:
    from tests.web.helpers import snapshot

    client = web.login("owner")
    token = csrf_of(client.get("/app/admin/sso"))
    before = snapshot(web.db)
    response = client.post("/app/admin/sso", data={**_sso_form(idp, **overrides),
                                                   "csrf_token": token})
    assert response.status_code == 400
    assert message in response.text
    assert snapshot(web.db) == before


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_unsigned_or_hmac_tokens_are_refused(alg: str) -> None:
    import base64
    import hashlib
    import hmac
    import json
    import time as clock
    from datetime import UTC, datetime

    from joserfc.jwk import KeySet, RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    public = KeySet([key])

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    now = int(clock.time())
    header = b64(json.dumps({"alg": alg, "kid": "k1"}).encode())
    claims = b64(json.dumps({"iss": "https://idp.example.org", "aud": CLIENT_ID, "sub": "x",
                             "iat": now, "exp": now + 300, "nonce": "n"}).encode())
    signing_input = f"{header}.{claims}".encode()
    # The classic confusion attack: HMAC keyed with the provider's public key material.
    secret = json.dumps(public.as_dict(private=False)).encode()
    signature = "" if alg == "none" else b64(hmac.new(secret, signing_input,
                                                      hashlib.sha256).digest())
    with pytest.raises(oidc.OidcFailed) as refused:
        oidc.validate_id_token(
            f"{header}.{claims}.{signature}", key_set=public, refresh_keys=lambda: public,
            issuer="https://idp.example.org", client_id=CLIENT_ID, nonce="n",
            access_token=None, now=datetime.now(UTC))
    assert refused.value.cause == "invalid_token"
    # Control: the same claims signed with RS256 by the provider's key are accepted.
    from joserfc import jwt

    good = jwt.encode({"alg": "RS256", "kid": "k1"}, json.loads(base64.urlsafe_b64decode(
        claims + "=" * (-len(claims) % 4))), key)
    assert oidc.validate_id_token(
        good, key_set=public, refresh_keys=lambda: public, issuer="https://idp.example.org",
        client_id=CLIENT_ID, nonce="n", access_token=None, now=datetime.now(UTC))["sub"] == "x"
