"""Optional OpenID Connect single sign-on for staff (Authlib + joserfc).

Flow (OpenID Connect Core 1.0 section 3.1, authorization code; RFC 7636 PKCE):

1. `start` builds the authorization request with a random `state` (CSRF, RFC 6749
   10.12), `nonce` (replay, OIDC Core 3.1.2.1) and PKCE `code_verifier` (S256), which
   travel in a short-lived HttpOnly cookie signed with the session secret.
2. The callback checks `state` against the cookie, exchanges the code at the token
   endpoint (client secret + verifier) and validates the ID token: signature against the
   issuer's JWKS (from the discovery document; RS256/PS256/ES256 only, never `none` or
   HMAC), `iss`, `aud`, `azp`, `exp`/`iat` (60 s leeway), `nonce` and `at_hash`.
3. The user is found by `(issuer, subject)`. A first sign-in links to an existing user of
   the provider's organization only when the organization allows matching by e-mail and
   the IdP says the address is verified (and in the allowed domain); otherwise the
   person is refused unless provisioning is configured with a role.
4. MFA: our TOTP is still required unless the organization says the IdP enforces MFA
   *and* the ID token's `amr` (RFC 8176) names a second factor (`mfa`, `otp`, `hwk`).

Every sign-in and every failure is an audit event (`staff.login`, step `oidc`, with the
cause); nothing from the IdP but ids and codes is recorded.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import AppError, BadInput, NotFound
from carecollect.identity.models import StaffUser
from carecollect.identity.oidc_models import OidcIdentity, OidcProvider
from carecollect.identity.oidc_repository import oidc_repository
from carecollect.identity.permissions import Role
from carecollect.identity.repository import identity_repository
from carecollect.identity.service import create_user, generate_password
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7

ALGORITHMS = ("RS256", "PS256", "ES256")
# RFC 8176 values that mean a second factor was used at the IdP.
MFA_AMR_VALUES = frozenset({"mfa", "otp", "hwk"})
STATE_COOKIE = "cc_oidc"
STATE_LIFETIME_SECONDS = 600
CLOCK_LEEWAY_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 10.0
METADATA_TTL_SECONDS = 600
CALLBACK_PATH = "/app/login/oidc/callback"
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class OidcFailed(AppError):  # noqa: N818 - reads as the event
    """A sign-in that cannot proceed. `cause` is a fixed code for the audit trail; the
    message is safe to show and never says which check failed in detail."""

    status_code = 401

    def __init__(self, cause: str, message: str = "Single sign-on did not work; try again "
                 "or sign in with your password.", *, status_code: int = 401) -> None:
        super().__init__(message)
        self.cause = cause
        self.status_code = status_code


# -- configuration ----------------------------------------------------------------------


def _check_https(url: str, *, what: str, allow_loopback_http: bool) -> str:
    url = url.strip()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("https", "http") or parts.username or parts.query \
            or parts.fragment:
        raise BadInput(f"the {what} must be an https URL without query or credentials")
    if parts.scheme == "http" and not (allow_loopback_http and host in _LOOPBACK_HOSTS):
        raise BadInput(f"the {what} must use https")
    return url


def _check_role(role: str, *, what: str) -> str:
    try:
        value = Role(role)
    except ValueError:
        raise BadInput(f"unknown role {role[:40]!r} in the {what}") from None
    if value is Role.OWNER:
        # Owners are made by people, never by an IdP group membership.
        raise BadInput("single sign-on cannot provision owners")
    return value.value


def configure_provider(
    session: Session,
    *,
    keys: OrganizationKeys,
    actor: Actor,
    display_name: str,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    allowed_email_domain: str | None = None,
    link_by_verified_email: bool = False,
    allow_provisioning: bool = False,
    default_role: str | None = None,
    role_claim: str | None = None,
    role_mapping: dict[str, str] | None = None,
    idp_enforces_mfa: bool = False,
    enabled: bool = True,
    allow_loopback_http: bool = False,
) -> OidcProvider:
    """Create or replace the organization's identity provider (one per organization).
    The client secret is sealed with the organization's data key; `None` keeps the one
    already stored (so a settings form never has to show it)."""
    display_name = display_name.strip()
    if not display_name or len(display_name) > 100:
        raise BadInput("give the provider a name of 1 to 100 characters")
    issuer = _check_https(issuer, what="issuer", allow_loopback_http=allow_loopback_http)
    client_id = client_id.strip()
    if not client_id or len(client_id) > 255:
        raise BadInput("give the client id the provider issued (1 to 255 characters)")
    domain = (allowed_email_domain or "").strip().lower().lstrip("@") or None
    if domain is not None and ("." not in domain or "@" in domain or len(domain) > 253):
        raise BadInput("the allowed e-mail domain must look like example.org")
    mapping = {
        str(k)[:200]: _check_role(v, what="role mapping") for k, v in (role_mapping or {}).items()
    }
    role = _check_role(default_role, what="default role") if default_role else None
    if allow_provisioning and role is None and not (role_claim and mapping):
        raise BadInput("provisioning needs a default role or a role claim with a mapping")
    provider = oidc_repository.provider_of(session, keys.organization_id)
    if provider is None:
        provider = OidcProvider(id=uuid7(), organization_id=keys.organization_id)
        session.add(provider)
    provider.display_name = display_name
    provider.issuer = issuer
    provider.client_id = client_id
    if client_secret is not None:  # None keeps the stored secret; "" removes it
        provider.client_secret = keys.cipher().seal(
            "oidc_provider", "client_secret", provider.id, client_secret or None
        )
    provider.allowed_email_domain = domain
    provider.link_by_verified_email = link_by_verified_email
    provider.allow_provisioning = allow_provisioning
    provider.default_role = role
    provider.role_claim = (role_claim or "").strip() or None
    provider.role_mapping = mapping
    provider.idp_enforces_mfa = idp_enforces_mfa
    provider.enabled = enabled
    session.flush()
    record(
        session,
        actor=actor,
        action="config.change",
        subject=Subject("oidc_provider", provider.id, organization_id=keys.organization_id),
        details={
            "setting": "oidc_provider",
            "enabled": enabled,
            "link_by_verified_email": link_by_verified_email,
            "allow_provisioning": allow_provisioning,
            "idp_enforces_mfa": idp_enforces_mfa,
        },
    )
    return provider


def provider_of(session: Session, organization_id: uuid.UUID) -> OidcProvider | None:
    """The organization's provider, enabled or not (settings screen)."""
    return oidc_repository.provider_of(session, organization_id)


def enabled_providers(session: Session) -> list[tuple[uuid.UUID, str]]:
    """(id, display name) of every enabled provider, for the sign-in page's buttons (a
    system session: the organization is not known before sign-in)."""
    return oidc_repository.enabled_providers(session)


@dataclass(frozen=True)
class ProviderConfig:
    """What the network steps need, detached from the database session."""

    id: uuid.UUID
    organization_id: uuid.UUID
    issuer: str
    client_id: str
    client_secret: str | None


def provider_config(
    session: Session, keys_for: Any, provider_id: uuid.UUID
) -> ProviderConfig:
    """The enabled provider (system session) with its client secret opened; `keys_for`
    gives an organization's keys."""
    provider = oidc_repository.provider(session, provider_id)
    if provider is None or not provider.enabled:
        raise OidcFailed("unknown_provider", status_code=404)
    keys: OrganizationKeys = keys_for(provider.organization_id)
    return ProviderConfig(
        id=provider.id,
        organization_id=provider.organization_id,
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret=keys.cipher().open_row(provider, "client_secret"),
    )


# -- discovery and keys -----------------------------------------------------------------


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


class OidcClient:
    """Discovery, JWKS and token requests, with the discovery document and key set cached
    per issuer for ten minutes (a key not in the cached set triggers one refresh, which is
    how providers rotate keys). A signature that does not verify with a cached key also
    triggers one refresh, but only when the cached set is at least
    `bad_signature_refresh_seconds` old: a provider that re-used a key id for a new key is
    picked up, while forged tokens cannot make us fetch the key set on every attempt."""

    def __init__(self, *, timeout: float = HTTP_TIMEOUT_SECONDS,
                 ttl_seconds: float = METADATA_TTL_SECONDS,
                 bad_signature_refresh_seconds: float = 60.0) -> None:
        self.timeout = timeout
        self.ttl = ttl_seconds
        self.bad_signature_refresh_seconds = bad_signature_refresh_seconds
        self._lock = threading.Lock()
        self._metadata: dict[str, tuple[float, ProviderMetadata]] = {}
        self._jwks: dict[str, tuple[float, KeySet]] = {}

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                response = client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError):
            raise OidcFailed("provider_unavailable", "The sign-in provider is not reachable "
                             "right now; try again or sign in with your password.",
                             status_code=503) from None
        if not isinstance(data, dict):
            raise OidcFailed("provider_unavailable", status_code=503)
        return data

    def metadata(self, issuer: str) -> ProviderMetadata:
        now = time.monotonic()
        with self._lock:
            cached = self._metadata.get(issuer)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        doc = self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        # OIDC Discovery 4.3: the document's issuer must be exactly the configured one.
        if doc.get("issuer") != issuer:
            raise OidcFailed("issuer_mismatch", status_code=503)
        try:
            metadata = ProviderMetadata(
                issuer=issuer,
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
            )
        except KeyError:
            raise OidcFailed("bad_discovery_document", status_code=503) from None
        with self._lock:
            self._metadata[issuer] = (now, metadata)
        return metadata

    def key_set(self, metadata: ProviderMetadata, *, refresh: bool = False,
                min_age: float = 0.0) -> KeySet:
        """The provider's keys; `refresh` fetches them again unless the cached set is
        younger than `min_age` seconds."""
        now = time.monotonic()
        with self._lock:
            cached = self._jwks.get(metadata.issuer)
        if cached is not None and not refresh and now - cached[0] < self.ttl:
            return cached[1]
        if cached is not None and refresh and now - cached[0] < min_age:
            return cached[1]
        try:
            keys = KeySet.import_key_set(self._get_json(metadata.jwks_uri))  # type: ignore[arg-type]
        except JoseError:
            raise OidcFailed("bad_jwks", status_code=503) from None
        with self._lock:
            self._jwks[metadata.issuer] = (now, keys)
        return keys

    def exchange_code(
        self,
        metadata: ProviderMetadata,
        config: ProviderConfig,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> dict[str, Any]:
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=redirect_uri,
            code_verifier=code_verifier, client_id=config.client_id,
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"}
        if config.client_secret:
            # client_secret_basic; RFC 6749 2.3.1 form-encodes both parts first.
            pair = f"{quote(config.client_id, safe='')}:{quote(config.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                response = client.post(
                    metadata.token_endpoint, content=str(body).encode("ascii"), headers=headers
                )
        except httpx.HTTPError:
            raise OidcFailed("provider_unavailable", status_code=503) from None
        if response.status_code != 200:
            raise OidcFailed("token_request_refused")
        try:
            data = response.json()
        except ValueError:
            raise OidcFailed("token_request_refused") from None
        if not isinstance(data, dict) or not isinstance(data.get("id_token"), str):
            raise OidcFailed("no_id_token")
        return data


oidc_client = OidcClient()


# -- the authorization request ----------------------------------------------------------


@dataclass(frozen=True)
class LoginState:
    provider_id: uuid.UUID
    state: str
    nonce: str
    code_verifier: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def pack_state(login: LoginState, sign: Any) -> str:
    """The state cookie: base64url JSON and its HMAC under the session secret."""
    payload = _b64(json.dumps({
        "p": str(login.provider_id), "s": login.state, "n": login.nonce,
        "v": login.code_verifier, "e": login.expires_at,
    }, separators=(",", ":")).encode())
    return f"{payload}.{sign('oidc-state', payload)}"


def unpack_state(value: str | None, sign: Any, *, now: datetime) -> LoginState:
    if not value or value.count(".") != 1 or len(value) > 2000:
        raise OidcFailed("state_missing", status_code=400)
    payload, mac = value.split(".")
    if not hmac.compare_digest(sign("oidc-state", payload), mac):
        raise OidcFailed("state_forged", status_code=400)
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        login = LoginState(uuid.UUID(data["p"]), str(data["s"]), str(data["n"]),
                           str(data["v"]), int(data["e"]))
    except (ValueError, KeyError, TypeError):
        raise OidcFailed("state_forged", status_code=400) from None
    if login.expires_at < int(now.timestamp()):
        raise OidcFailed("state_expired", status_code=400)
    return login


def authorization_url(
    config: ProviderConfig, metadata: ProviderMetadata, *, redirect_uri: str, now: datetime,
) -> tuple[str, LoginState]:
    """The IdP URL to send the browser to, and the state to remember in the cookie."""
    login = LoginState(
        provider_id=config.id,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64),  # RFC 7636 4.1: 43 to 128 characters
        expires_at=int(now.timestamp()) + STATE_LIFETIME_SECONDS,
    )
    url = prepare_grant_uri(
        metadata.authorization_endpoint,
        config.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope="openid email profile",
        state=login.state,
        nonce=login.nonce,
        code_challenge=create_s256_code_challenge(login.code_verifier),
        code_challenge_method="S256",
    )
    return str(url), login


# -- the callback ------------------------------------------------------------------------


def validate_id_token(
    id_token: str,
    *,
    key_set: KeySet,
    refresh_keys: Any,
    issuer: str,
    client_id: str,
    nonce: str,
    access_token: str | None,
    now: datetime,
    refresh_keys_after_bad_signature: Any = None,
) -> dict[str, Any]:
    """Signature, then the claims of OIDC Core 3.1.3.7. Returns the claims; raises
    OidcFailed with the cause. `refresh_keys` gives a fresh key set when the token names
    an unknown key id; `refresh_keys_after_bad_signature` (optional, rate-limited by the
    client) one when a known key id does not verify."""
    try:
        try:
            token = jwt.decode(id_token, key_set, algorithms=list(ALGORITHMS))
        except (ValueError, JoseError) as first:
            if isinstance(first, BadSignatureError):
                if refresh_keys_after_bad_signature is None:
                    raise
                # The provider may have put a new key under the same key id.
                fresh = refresh_keys_after_bad_signature()
                if fresh is key_set:
                    raise
                token = jwt.decode(id_token, fresh, algorithms=list(ALGORITHMS))
            else:
                # An unknown key id: the provider may have rotated its keys.
                token = jwt.decode(id_token, refresh_keys(), algorithms=list(ALGORITHMS))
    except BadSignatureError:
        raise OidcFailed("bad_signature") from None
    except (ValueError, JoseError):
        raise OidcFailed("invalid_token") from None
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        },
        params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    try:
        claims.validate(now=int(now.timestamp()), leeway=CLOCK_LEEWAY_SECONDS)
    except ExpiredTokenError:
        raise OidcFailed("expired") from None
    except (InvalidClaimError, MissingClaimError) as exc:
        causes = {"nonce": "nonce_mismatch", "aud": "wrong_audience", "iss": "wrong_issuer",
                  "azp": "wrong_audience", "at_hash": "bad_at_hash"}
        raise OidcFailed(causes.get(exc.claim, f"bad_claim_{exc.claim}"[:40])) from None
    except (ClaimError, JoseError, ValueError, TypeError):
        raise OidcFailed("invalid_token") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise OidcFailed("bad_claim_sub")
    return dict(claims)


def fetch_claims(
    config: ProviderConfig,
    *,
    login: LoginState,
    code: str,
    redirect_uri: str,
    now: datetime,
    client: OidcClient = oidc_client,
) -> dict[str, Any]:
    """Exchange the code and validate the ID token (network; no database)."""
    metadata = client.metadata(config.issuer)
    tokens = client.exchange_code(metadata, config, code=code, redirect_uri=redirect_uri,
                                  code_verifier=login.code_verifier)
    access_token = tokens.get("access_token")
    return validate_id_token(
        str(tokens["id_token"]),
        key_set=client.key_set(metadata),
        refresh_keys=lambda: client.key_set(metadata, refresh=True),
        refresh_keys_after_bad_signature=lambda: client.key_set(
            metadata, refresh=True, min_age=client.bad_signature_refresh_seconds),
        issuer=config.issuer,
        client_id=config.client_id,
        nonce=login.nonce,
        access_token=access_token if isinstance(access_token, str) else None,
        now=now,
    )


@dataclass(frozen=True)
class OidcSignIn:
    user: StaffUser
    mfa_satisfied: bool
    linked: str  # "existing", "email" or "provisioned"


def _login_event(session: Session, *, provider: OidcProvider, user: StaffUser | None,
                 outcome: str, **details: Any) -> None:
    record(
        session,
        actor=Actor.staff(user.id) if user else Actor.system("anonymous"),
        action="staff.login",
        subject=(Subject("staff_user", user.id, organization_id=user.organization_id)
                 if user else Subject("oidc_provider", provider.id,
                                      organization_id=provider.organization_id)),
        outcome=outcome,
        details={"step": "oidc", "provider_id": str(provider.id), **details},
    )


def record_failure(session: Session, *, provider_id: uuid.UUID | None, cause: str) -> None:
    """Audit a failed OIDC sign-in (in a transaction of its own, so it is kept)."""
    provider = oidc_repository.provider(session, provider_id) if provider_id else None
    if provider is None:
        record(session, actor=Actor.system("anonymous"), action="staff.login",
               outcome="failure", details={"step": "oidc", "cause": cause})
        return
    _login_event(session, provider=provider, user=None, outcome="failure", cause=cause)


def _role_from_claims(provider: OidcProvider, claims: dict[str, Any]) -> str | None:
    if provider.role_claim and provider.role_mapping:
        raw = claims.get(provider.role_claim)
        values = raw if isinstance(raw, list) else [raw]
        for value in values:
            if isinstance(value, str) and value in provider.role_mapping:
                return provider.role_mapping[value]
    return provider.default_role


def _verified_email(provider: OidcProvider, claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is not True:
        return None
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        return None
    if provider.allowed_email_domain and \
            email.rsplit("@", 1)[1] != provider.allowed_email_domain:
        return None
    return email


def _provision(session: Session, provider: OidcProvider, claims: dict[str, Any], email: str,
               role: str) -> StaffUser:
    """A new user of the provider's organization (a random password nobody knows: the
    person signs in through the IdP, or an owner resets it)."""
    name = claims.get("name")
    display = name.strip()[:200] if isinstance(name, str) and name.strip() else email
    user, _ = create_user(
        session, actor=Actor.system("oidc"), organization_id=provider.organization_id,
        email=email, display_name=display, role=role, password=generate_password(),
    )
    return user


def complete_sign_in(
    session: Session,
    *,
    provider_id: uuid.UUID,
    claims: dict[str, Any],
    now: datetime,
) -> OidcSignIn:
    """Find, link or (when configured) provision the user for validated claims, in the
    provider organization's tenant session. Refusals are audited and raise OidcFailed;
    the caller commits either way so the audit event is kept."""
    provider = oidc_repository.provider(session, provider_id)
    if provider is None or not provider.enabled:
        raise NotFound("no such sign-in provider")
    subject = str(claims["sub"])
    link = oidc_repository.link(session, provider.issuer, subject)
    linked = "existing"
    user: StaffUser | None = None
    email: str | None = None
    role: str | None = None
    if link is not None and link.organization_id == provider.organization_id:
        user = identity_repository.user(session, link.user_id)
    elif link is None:
        email = _verified_email(provider, claims)
        if provider.link_by_verified_email and email is not None:
            candidate = identity_repository.user_by_email(session, email)
            if candidate is not None and candidate.organization_id == provider.organization_id:
                if oidc_repository.link_of_user(session, candidate.id, provider.id) is not None:
                    _login_event(session, provider=provider, user=None, outcome="failure",
                                 cause="already_linked")
                    raise OidcFailed("already_linked")
                user, linked = candidate, "email"
        if user is None and provider.allow_provisioning:
            role = _role_from_claims(provider, claims)
            if email is None or role is None:
                _login_event(session, provider=provider, user=None, outcome="failure",
                             cause="cannot_provision")
                raise OidcFailed("cannot_provision")
        if user is not None or provider.allow_provisioning:
            # E-mail addresses and (issuer, subject) are unique across the deployment, but
            # a tenant session sees only its own rows: a clash with another organization
            # shows up as a constraint violation, refused here without a trace of it.
            try:
                with session.begin_nested():
                    if user is None:
                        user = _provision(session, provider, claims, email or "", role or "")
                        linked = "provisioned"
                    link = OidcIdentity(id=uuid7(), organization_id=provider.organization_id,
                                        user_id=user.id, provider_id=provider.id,
                                        issuer=provider.issuer, subject=subject,
                                        created_at=now)
                    session.add(link)
                    session.flush()
            except (IntegrityError, BadInput):
                _login_event(session, provider=provider, user=None, outcome="failure",
                             cause="conflict")
                raise OidcFailed("conflict") from None
    if user is None or link is None:
        _login_event(session, provider=provider, user=None, outcome="failure",
                     cause="unknown_user")
        raise OidcFailed("unknown_user", "Your account is not set up for single sign-on "
                         "here; ask your administrator.")
    if user.locked_until is not None and user.locked_until > now:
        _login_event(session, provider=provider, user=user, outcome="denied", cause="locked")
        raise OidcFailed("locked", "too many failed sign-ins: the account is locked for a "
                         "while", status_code=423)
    if user.state != "active":
        _login_event(session, provider=provider, user=user, outcome="denied", cause="disabled")
        raise OidcFailed("disabled")
    amr = claims.get("amr")
    amr_values = {a for a in amr if isinstance(a, str)} if isinstance(amr, list) else set()
    mfa_satisfied = provider.idp_enforces_mfa and bool(amr_values & MFA_AMR_VALUES)
    link.last_login_at = now
    if mfa_satisfied:
        user.failed_login_count = 0
        user.last_login_at = now
    session.flush()
    _login_event(session, provider=provider, user=user, outcome="success", linked=linked,
                 mfa="idp_amr" if mfa_satisfied else "totp_required")
    return OidcSignIn(user=user, mfa_satisfied=mfa_satisfied, linked=linked)


def redirect_uri_for(base_url: str) -> str:
    return base_url.rstrip("/") + CALLBACK_PATH
