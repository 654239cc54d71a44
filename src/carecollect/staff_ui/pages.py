"""Routes of the staff app. Thin: authorize (one permission of the matrix), call the
service or view, render. Every form post carries the CSRF token (router dependency);
searches with PHI terms are POSTs, so no PHI ever lands in a URL."""

from __future__ import annotations

import csv
import hmac
import io
import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from carecollect.api import admin as admin_service
from carecollect.api import queries, views
from carecollect.api.context import AppContext, get_context
from carecollect.api.schemas import BusinessAssociateIn
from carecollect.audit import Subject, access_log, record
from carecollect.errors import AppError, BadInput, NotFound
from carecollect.identity import oidc
from carecollect.identity import service as identity
from carecollect.identity.auth import (
    LOGIN_CSRF_COOKIE,
    StaffAuth,
    csrf_protect,
    new_login_csrf,
    session_cookie_name,
    staff_permission,
    staff_session,
)
from carecollect.identity.models import StaffSession
from carecollect.identity.permissions import API_GRANTABLE, Permission, matrix
from carecollect.identity.repository import identity_repository
from carecollect.ledger.repository import ledger_repository
from carecollect.ledger.service import ledger_service
from carecollect.outreach.review import review_service
from carecollect.patient.service import patient_service
from carecollect.staff_ui.render import page
from carecollect.staff_ui.render import tenant_session as _tenant
from carecollect.tenant.models import Organization

router = APIRouter(
    prefix="/app", include_in_schema=False, dependencies=[Depends(csrf_protect)]
)
Context = Annotated[AppContext, Depends(get_context)]
LOGIN_MESSAGES = {
    "expired": "Your session ended (15 minutes without activity, or signed out elsewhere). "
    "Please sign in again.",
    "signed_out": "You are signed out.",
}


def _set_session_cookie(response: Response, context: AppContext, value: str) -> None:
    response.set_cookie(
        session_cookie_name(context),
        value,
        httponly=True,
        secure=context.cookie_secure,
        samesite="lax",
        path="/",
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"



# Sign-in --------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, context: Context, m: str = "") -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf(request)
    with context.session(None) as session:
        sso_providers = oidc.enabled_providers(session)
    response = page(
        request, "login.html", title="Sign in", message=LOGIN_MESSAGES.get(m, ""), error="",
        sso_providers=sso_providers,
    )
    if LOGIN_CSRF_COOKIE not in request.cookies:
        response.set_cookie(
            LOGIN_CSRF_COOKIE, cookie, httponly=True, secure=context.cookie_secure,
            samesite="strict", path="/app",
        )
    return response


def _login_error(request: Request, message: str, status: int) -> Response:
    return page(
        request, "login.html", title="Sign in", message="", error=message, status_code=status
    )


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    context: Context,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    client = _client(request)
    if context.throttle.blocked(client):
        return _login_error(request, "Too many failed sign-ins from here; wait and retry.", 429)
    now = context.now()
    error: AppError | None = None
    with context.session(None) as session:
        try:
            user = identity.authenticate_password(
                session, email=email, password=password, now=now, policy=context.policy
            )
        except (identity.LoginFailed, identity.AccountLocked) as exc:
            error = exc
        else:
            _, cookie = identity.create_session(
                session, user=user, mfa_passed=False, now=now, policy=context.policy
            )
            needs_enrollment = user.totp_enabled_at is None
    if error is not None:
        context.throttle.failure(client)
        return _login_error(request, error.message, error.status_code)
    target = "/app/login/enroll" if needs_enrollment else "/app/login/mfa"
    response = RedirectResponse(target, status_code=303)
    # A new session token at sign-in: whatever cookie came in is replaced (fixation).
    _set_session_cookie(response, context, cookie)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/app")
    return response


# OIDC single sign-on (identity/oidc.py; docs/WEB.md) -------------------------------------


def _oidc_keys(context: AppContext, session: Session) -> Any:
    return lambda organization_id: context.org_keys(session, organization_id)


def _oidc_error(request: Request, exc: oidc.OidcFailed) -> Response:
    response = _login_error(request, exc.message, exc.status_code)
    response.delete_cookie(oidc.STATE_COOKIE, path="/app/login/oidc")
    return response


@router.get("/login/oidc/callback", response_class=HTMLResponse)
def oidc_callback(
    request: Request,
    context: Context,
    code: Annotated[str, Query(max_length=2048)] = "",
    state: Annotated[str, Query(max_length=512)] = "",
    error: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    client = _client(request)
    if context.throttle.blocked(client):
        return _login_error(request, "Too many failed sign-ins from here; wait and retry.", 429)
    now = context.now()
    provider_id: uuid.UUID | None = None
    try:
        login = oidc.unpack_state(request.cookies.get(oidc.STATE_COOKIE), context.sign, now=now)
        provider_id = login.provider_id
        # RFC 6749 10.12: the state must be the one this browser's cookie holds.
        if not state or not hmac.compare_digest(state, login.state):
            raise oidc.OidcFailed("state_mismatch", status_code=400)
        if error:
            raise oidc.OidcFailed("provider_error")  # the IdP's text is never echoed
        if not code:
            raise oidc.OidcFailed("no_code", status_code=400)
        with context.session(None) as session:
            config = oidc.provider_config(session, _oidc_keys(context, session), provider_id)
        claims = oidc.fetch_claims(
            config, login=login, code=code,
            redirect_uri=oidc.redirect_uri_for(str(request.base_url)), now=now,
        )
    except oidc.OidcFailed as exc:
        with context.session(None) as session:
            oidc.record_failure(session, provider_id=provider_id, cause=exc.cause)
        context.throttle.failure(client)
        return _oidc_error(request, exc)
    failure: oidc.OidcFailed | None = None
    with context.session(config.organization_id) as session:
        try:
            result = oidc.complete_sign_in(session, provider_id=config.id, claims=claims, now=now)
        except oidc.OidcFailed as exc:
            failure = exc  # the refusal's audit event commits with this transaction
        else:
            _, cookie = identity.create_session(
                session, user=result.user, mfa_passed=result.mfa_satisfied, now=now,
                policy=context.policy,
            )
            needs_enrollment = result.user.totp_enabled_at is None
    if failure is not None:
        context.throttle.failure(client)
        return _oidc_error(request, failure)
    if result.mfa_satisfied:
        target = "/app/"
    else:
        target = "/app/login/enroll" if needs_enrollment else "/app/login/mfa"
    response = RedirectResponse(target, status_code=303)
    _set_session_cookie(response, context, cookie)  # a new token: no fixation
    response.delete_cookie(oidc.STATE_COOKIE, path="/app/login/oidc")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/app")
    return response


@router.get("/login/oidc/{provider_id}")
def oidc_start(request: Request, context: Context, provider_id: uuid.UUID) -> Response:
    """Send the browser to the provider with state, nonce and a PKCE challenge."""
    now = context.now()
    with context.session(None) as session:
        config = oidc.provider_config(session, _oidc_keys(context, session), provider_id)
    try:
        metadata = oidc.oidc_client.metadata(config.issuer)
    except oidc.OidcFailed as exc:
        return _oidc_error(request, exc)
    url, login = oidc.authorization_url(
        config, metadata, redirect_uri=oidc.redirect_uri_for(str(request.base_url)), now=now
    )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        oidc.STATE_COOKIE, oidc.pack_state(login, context.sign),
        max_age=oidc.STATE_LIFETIME_SECONDS, httponly=True, secure=context.cookie_secure,
        # Lax: the IdP's redirect back is a top-level cross-site GET navigation.
        samesite="lax", path="/app/login/oidc",
    )
    return response


def _pending(request: Request) -> StaffAuth | None:
    auth = staff_session(request)
    if auth is None:
        return None
    request.state.staff = auth
    return auth


@router.get("/login/mfa", response_class=HTMLResponse)
def mfa_form(request: Request) -> Response:
    auth = _pending(request)
    if auth is None:
        return RedirectResponse("/app/login?m=expired", status_code=303)
    if auth.mfa_passed:
        return RedirectResponse("/app/", status_code=303)
    if not auth.totp_enabled:
        return RedirectResponse("/app/login/enroll", status_code=303)
    return page(request, "mfa.html", title="Second factor", error="")


def _finish_sign_in(
    session: Session, context: AppContext, auth: StaffAuth, now: Any
) -> str:
    """Replace the pending session with a full one (new token: no fixation)."""
    pending = session.get(StaffSession, auth.session_id)
    if pending is not None:
        identity.revoke_session(session, pending, reason="mfa_passed", now=now)
    user = identity_repository.user(session, auth.user_id)
    if user is None:
        raise NotFound("no such user")
    _, cookie = identity.create_session(
        session, user=user, mfa_passed=True, now=now, policy=context.policy
    )
    return cookie


@router.post("/login/mfa", response_class=HTMLResponse)
def mfa(
    request: Request, context: Context, code: Annotated[str, Form(max_length=64)]
) -> Response:
    auth = _pending(request)
    if auth is None or auth.mfa_passed:
        return RedirectResponse("/app/login?m=expired", status_code=303)
    now = context.now()
    error: AppError | None = None
    cookie = ""
    with context.session(auth.principal.organization_id) as session:
        user = identity_repository.user(session, auth.user_id)
        if user is None:
            raise NotFound("no such user")
        keys = context.org_keys(session, user.organization_id)
        try:
            identity.verify_second_factor(
                session, keys=keys, user=user, code=code, now=now, policy=context.policy
            )
        except (identity.LoginFailed, identity.AccountLocked) as exc:
            error = exc
            if isinstance(exc, identity.AccountLocked):
                pending = session.get(StaffSession, auth.session_id)
                if pending is not None:
                    identity.revoke_session(session, pending, reason="locked", now=now)
        else:
            cookie = _finish_sign_in(session, context, auth, now)
    if error is not None:
        context.throttle.failure(_client(request))
        if isinstance(error, identity.AccountLocked):
            return _login_error(request, error.message, error.status_code)
        return page(request, "mfa.html", title="Second factor", error=error.message,
                    status_code=401)
    response = RedirectResponse("/app/", status_code=303)
    _set_session_cookie(response, context, cookie)
    return response


@router.get("/login/enroll", response_class=HTMLResponse)
def enroll_form(request: Request, context: Context) -> Response:
    auth = _pending(request)
    if auth is None:
        return RedirectResponse("/app/login?m=expired", status_code=303)
    if auth.totp_enabled:
        return RedirectResponse("/app/login/mfa", status_code=303)
    with context.session(auth.principal.organization_id) as session:
        user = identity_repository.user(session, auth.user_id)
        if user is None:
            raise NotFound("no such user")
        secret = identity.start_totp_enrollment(
            session, keys=context.org_keys(session, user.organization_id), user=user
        )
        uri = identity.totp_uri(user, secret)
    return page(request, "enroll.html", title="Set up your authenticator", secret=secret,
                uri=uri, error="")


@router.post("/login/enroll", response_class=HTMLResponse)
def enroll(
    request: Request, context: Context, code: Annotated[str, Form(max_length=64)]
) -> Response:
    auth = _pending(request)
    if auth is None or auth.totp_enabled:
        return RedirectResponse("/app/login?m=expired", status_code=303)
    now = context.now()
    with context.session(auth.principal.organization_id) as session:
        user = identity_repository.user(session, auth.user_id)
        if user is None:
            raise NotFound("no such user")
        keys = context.org_keys(session, user.organization_id)
        try:
            codes = identity.confirm_totp(session, keys=keys, user=user, code=code, now=now)
        except BadInput as exc:
            return page(request, "enroll.html", title="Set up your authenticator",
                        secret="", uri="", error=exc.message, status_code=400)
        cookie = _finish_sign_in(session, context, auth, now)
    response = page(request, "recovery_codes.html", title="Recovery codes", codes=codes)
    _set_session_cookie(response, context, cookie)
    return response


@router.post("/logout")
def logout(request: Request, context: Context) -> Response:
    auth = staff_session(request)
    if auth is not None:
        with context.session(auth.principal.organization_id) as session:
            row = session.get(StaffSession, auth.session_id)
            if row is not None:
                identity.revoke_session(session, row, reason="logout", now=context.now())
    response = RedirectResponse("/app/login?m=signed_out", status_code=303)
    response.delete_cookie(session_cookie_name(context), path="/")
    return response


# Dashboard and work lists -------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.DASHBOARD_READ),
) -> Response:
    now = context.now()
    with _tenant(context, auth) as session:
        aging = ledger_service.aging(session, as_of=now)
        accounts, total = ledger_repository.portfolio_totals(session)
        collections = queries.collections_by_month(session, since=now - timedelta(days=366))
        outcomes = queries.outreach_outcomes(session)
        review = len(review_service.queue(session))
    charts = {
        "aging": {
            "type": "bar",
            "data": {
                "labels": list(aging),
                "datasets": [{"label": "Open balance ($)",
                              "data": [round(v / 100, 2) for v in aging.values()]}],
            },
        },
        "collections": {
            "type": "line",
            "data": {
                "labels": [m for m, _ in collections],
                "datasets": [{"label": "Collected ($)",
                              "data": [round(v / 100, 2) for _, v in collections]}],
            },
        },
        "outcomes": {
            "type": "doughnut",
            "data": {
                "labels": list(outcomes),
                "datasets": [{"label": "Contacts", "data": list(outcomes.values())}],
            },
        },
    }
    return page(request, "dashboard.html", title="Dashboard", charts=charts, aging=aging,
                accounts=accounts, total=total, collections=collections, outcomes=outcomes,
                review=review)


@router.get("/work", response_class=HTMLResponse)
def work_lists(
    request: Request, context: Context, auth: StaffAuth = staff_permission(Permission.FLAG_READ)
) -> Response:
    from carecollect.staff_ui.work_pages import work_lists_view

    return work_lists_view(request, context, auth)


# Search, account page, reveal ---------------------------------------------------------


@router.get("/search", response_class=HTMLResponse)
def search_form(
    request: Request, auth: StaffAuth = staff_permission(Permission.PATIENT_SEARCH)
) -> Response:
    return page(request, "search.html", title="Find a patient", results=None, error="")


@router.post("/search", response_class=HTMLResponse)
def search(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.PATIENT_SEARCH),
    phone: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    last_name: Annotated[str, Form(max_length=100)] = "",
    date_of_birth: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        dob = date.fromisoformat(date_of_birth) if date_of_birth.strip() else None
    except ValueError:
        dob = None
    try:
        with _tenant(context, auth) as session:
            keys = context.org_keys(session, auth.principal.organization_id)
            ids = patient_service.find_guarantors(
                session,
                keys=keys,
                actor=auth.principal.actor,
                phone=phone.strip() or None,
                email=email.strip() or None,
                last_name=last_name.strip() or None,
                date_of_birth=dob,
            )
            results = views.summaries(
                session, keys=keys, principal=auth.principal, ids=ids[:100]
            )
    except BadInput as exc:
        return page(request, "search.html", title="Find a patient", results=None,
                    error=exc.message, status_code=400)
    return page(request, "search.html", title="Find a patient", results=results, error="")


@router.get("/guarantors/{guarantor_id}", response_class=HTMLResponse)
def account_page(
    request: Request,
    context: Context,
    guarantor_id: uuid.UUID,
    auth: StaffAuth = staff_permission(Permission.PATIENT_READ),
) -> Response:
    with _tenant(context, auth) as session:
        keys = context.org_keys(session, auth.principal.organization_id)
        can_audit = auth.principal.can(Permission.AUDIT_READ)
        # One event for the whole screen, the access log included (it lists who read
        # this person's record: HIPAA 164.528 accounting).
        data = views.account_page(
            session, keys=keys, principal=auth.principal, guarantor_id=guarantor_id,
            with_access_log=can_audit,
        )
        log_entries = access_log(
            session, auth.principal.organization_id, guarantor_id, limit=100
        ) if can_audit else []
        attempts = queries.attempts_of(session, guarantor_id)
        plans = queries.plans_of(session, guarantor_id)
        payments = queries.payments_of(session, guarantor_id)
        methods, enrollments = queries.autopay_of(session, guarantor_id)
    return page(request, "account.html", title="Account", access_log=log_entries,
                attempts=attempts, plans=plans, payments=payments, methods=methods,
                enrollments=enrollments, **data)


@router.get("/accounts/{account_id}")
def account_redirect(
    context: Context,
    account_id: uuid.UUID,
    auth: StaffAuth = staff_permission(Permission.PATIENT_READ),
) -> Response:
    with _tenant(context, auth) as session:
        account = ledger_repository.account(session, account_id)
        if account is None:
            raise NotFound("no such account")
        target = f"/app/guarantors/{account.guarantor_id}#account-{account.id}"
    return RedirectResponse(target, status_code=303)


@router.post("/guarantors/{guarantor_id}/reveal", response_class=HTMLResponse)
def reveal(
    request: Request,
    context: Context,
    guarantor_id: uuid.UUID,
    field: Annotated[str, Form(max_length=40)],
    auth: StaffAuth = staff_permission(Permission.PATIENT_REVEAL),
) -> Response:
    with _tenant(context, auth) as session:
        keys = context.org_keys(session, auth.principal.organization_id)
        revealed = views.reveal(
            session, keys=keys, principal=auth.principal, guarantor_id=guarantor_id, field=field
        )
    return page(request, "_reveal.html", title="", field=field, revealed=revealed)


# Compliance console ------------------------------------------------------------------


@router.get("/compliance", response_class=HTMLResponse)
def compliance(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.AUDIT_READ),
    action: str = "",
    actor_id: str = "",
    patient_id: str = "",
) -> Response:
    try:
        patient = str(uuid.UUID(patient_id)) if patient_id.strip() else None
    except ValueError:
        patient = None
    with _tenant(context, auth) as session:
        events, _ = queries.audit_events(
            session,
            organization_id=auth.principal.organization_id,
            patient_id=patient,
            action=action.strip() or None,
            actor_id=actor_id.strip() or None,
            limit=100,
        )
        record(
            session,
            actor=auth.principal.actor,
            action="audit.search",
            subject=Subject("audit_trail", None, organization_id=auth.principal.organization_id),
            details={"count": len(events), "by_patient": patient is not None},
        )
        revocations = list(queries.recent_revocations(session))
        blocks = _compliance_blocks(session, context, auth.principal.organization_id)
    return page(request, "compliance.html", title="Compliance", events=events,
                revocations=revocations, blocks=blocks,
                filters={"action": action, "actor_id": actor_id, "patient_id": patient_id})


def _compliance_blocks(session: Session, context: AppContext,
                       organization_id: uuid.UUID) -> Any:
    """Blocked and re-timed attempts by rule and channel over the last 30 days: the
    insights report of the same name (aggregates only, no PHI)."""
    from zoneinfo import ZoneInfo

    from carecollect.insight.schemas import ReportFilters
    from carecollect.insight.service import build_report

    now = context.now()
    org = session.get(Organization, organization_id)
    today = now.astimezone(ZoneInfo(org.timezone if org is not None else "UTC")).date()
    return build_report(session, organization_id=organization_id, key="compliance_blocks",
                        filters=ReportFilters(period_start=today - timedelta(days=30),
                                              period_end=today + timedelta(days=1)),
                        now=now)


@router.post("/compliance/verify", response_class=HTMLResponse)
def verify(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.AUDIT_VERIFY),
) -> Response:
    result = admin_service.verify_audit_trail(context, auth.principal)
    return page(request, "_verify.html", title="", result=result)


def _csv_safe(value: Any) -> str:
    # CSV injection (OWASP): a cell starting with = + - @ would run as a spreadsheet formula.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/compliance/consents.csv")
def consent_export(
    context: Context, auth: StaffAuth = staff_permission(Permission.CONSENT_EXPORT)
) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["consent_id", "guarantor_id", "contact_point_id", "kind", "granted_at",
                     "given_to", "method", "source", "wording_version", "evidence"])
    with _tenant(context, auth) as session:
        cipher = context.org_keys(session, auth.principal.organization_id).cipher()
        rows = queries.all_consents(session)
        for c in rows:
            writer.writerow([_csv_safe(v) for v in (
                c.id, c.guarantor_id, c.contact_point_id, c.kind, c.granted_at.isoformat(),
                c.given_to, c.method, c.source, c.wording_version,
                cipher.open_row(c, "evidence"),
            )])
        record(
            session,
            actor=auth.principal.actor,
            action="patient.export",
            subject=Subject("consent", None, organization_id=auth.principal.organization_id),
            details={"count": len(rows), "kind": "consent_evidence",
                     "guarantor_ids": sorted({str(c.guarantor_id) for c in rows})[:1000]},
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="consent-evidence.csv"'},
    )


# Administration --------------------------------------------------------------------------


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    request: Request, context: Context, auth: StaffAuth = staff_permission(Permission.USER_READ)
) -> Response:
    with _tenant(context, auth) as session:
        users = list(queries.staff_users(session))
    return page(request, "users.html", title="Users and roles", users=users, matrix=matrix(),
                created=None, error="")


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    context: Context,
    email: Annotated[str, Form(max_length=254)],
    display_name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=32)],
    auth: StaffAuth = staff_permission(Permission.USER_MANAGE),
) -> Response:
    created: dict[str, str] | None = None
    error = ""
    with _tenant(context, auth) as session:
        try:
            user, password = identity.create_user(
                session, actor=auth.principal.actor,
                organization_id=auth.principal.organization_id,
                email=email, display_name=display_name, role=role,
            )
            created = {"email": user.email, "password": password}
        except BadInput as exc:
            error = exc.message
    with _tenant(context, auth) as session:
        users = list(queries.staff_users(session))
    return page(request, "users.html", title="Users and roles", users=users, matrix=matrix(),
                created=created, error=error, status_code=400 if error else 200)


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
def update_user(
    context: Context,
    user_id: uuid.UUID,
    role: Annotated[str, Form(max_length=32)] = "",
    state: Annotated[str, Form(max_length=16)] = "",
    auth: StaffAuth = staff_permission(Permission.USER_MANAGE),
) -> Response:
    with _tenant(context, auth) as session:
        user = identity_repository.user(session, user_id)
        if user is None:
            raise NotFound("no such user")
        if user.id == auth.user_id and (state == "disabled" or (role and role != user.role)):
            raise BadInput("you cannot change your own role or disable yourself")
        identity.change_role(session, actor=auth.principal.actor, user=user,
                             role=role or None, state=state or None)
    return RedirectResponse("/app/admin/users", status_code=303)


@router.get("/admin/api-keys", response_class=HTMLResponse)
def api_keys_page(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.API_KEY_MANAGE),
) -> Response:
    with _tenant(context, auth) as session:
        keys = list(identity_repository.api_keys(session))
    return page(request, "api_keys.html", title="API keys", keys=keys, token=None,
                scopes=sorted(p.value for p in API_GRANTABLE), error="")


@router.post("/admin/api-keys", response_class=HTMLResponse)
async def create_api_key(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.API_KEY_MANAGE),
) -> Response:
    form = await request.form()
    name = str(form.get("name") or "")
    scopes = [str(s) for s in form.getlist("scopes")]
    return await _run_sync(request, context, auth, name, scopes)


async def _run_sync(
    request: Request, context: AppContext, auth: StaffAuth, name: str, scopes: list[str]
) -> Response:
    from starlette.concurrency import run_in_threadpool

    def work() -> Response:
        token: str | None = None
        error = ""
        with _tenant(context, auth) as session:
            try:
                _, token = identity.create_api_key(
                    session, actor=auth.principal.actor,
                    organization_id=auth.principal.organization_id, name=name, scopes=scopes,
                )
            except BadInput as exc:
                error = exc.message
        with _tenant(context, auth) as session:
            keys = list(identity_repository.api_keys(session))
        return page(request, "api_keys.html", title="API keys", keys=keys, token=token,
                    scopes=sorted(p.value for p in API_GRANTABLE), error=error,
                    status_code=400 if error else 200)

    return await run_in_threadpool(work)


@router.post("/admin/api-keys/{key_id}/revoke")
def revoke_api_key(
    context: Context,
    key_id: uuid.UUID,
    auth: StaffAuth = staff_permission(Permission.API_KEY_MANAGE),
) -> Response:
    with _tenant(context, auth) as session:
        identity.revoke_api_key(session, actor=auth.principal.actor, key_id=key_id,
                                now=context.now())
    return RedirectResponse("/app/admin/api-keys", status_code=303)


@router.get("/admin/baa", response_class=HTMLResponse)
def baa_page(
    request: Request, context: Context, auth: StaffAuth = staff_permission(Permission.BAA_READ)
) -> Response:
    today = context.now().date()
    with _tenant(context, auth) as session:
        rows = [admin_service.business_associate_out(b, today)
                for b in queries.business_associates(session)]
    return page(request, "baa.html", title="Business associates", rows=rows, error="")


@router.post("/admin/baa", response_class=HTMLResponse)
def baa_save(
    request: Request,
    context: Context,
    name: Annotated[str, Form(max_length=200)],
    service: Annotated[str, Form(max_length=32)],
    baa_status: Annotated[str, Form(max_length=16)] = "none",
    baa_effective_on: Annotated[str, Form(max_length=10)] = "",
    baa_expires_on: Annotated[str, Form(max_length=10)] = "",
    auth: StaffAuth = staff_permission(Permission.BAA_MANAGE),
) -> Response:
    error = ""
    try:
        data = BusinessAssociateIn.model_validate({
            "name": name, "service": service, "baa_status": baa_status,
            "baa_effective_on": baa_effective_on or None,
            "baa_expires_on": baa_expires_on or None,
        })
    except ValueError:
        error = "check the name, service, status and dates"
    if not error:
        with _tenant(context, auth) as session:
            try:
                admin_service.save_business_associate(
                    session, actor=auth.principal.actor,
                    organization_id=auth.principal.organization_id, data=data,
                    associate_id=None, now=context.now(),
                )
            except BadInput as exc:
                error = exc.message
    if not error:
        return RedirectResponse("/app/admin/baa", status_code=303)
    today = context.now().date()
    with _tenant(context, auth) as session:
        rows = [admin_service.business_associate_out(b, today)
                for b in queries.business_associates(session)]
    return page(request, "baa.html", title="Business associates", rows=rows, error=error,
                status_code=400)


@router.get("/admin/organization", response_class=HTMLResponse)
def organization_page(
    request: Request, context: Context, auth: StaffAuth = staff_permission(Permission.ORG_READ)
) -> Response:
    with _tenant(context, auth) as session:
        org = session.get(Organization, auth.principal.organization_id)
    return page(request, "organization.html", title="Organization settings", org=org, error="")


@router.post("/admin/organization", response_class=HTMLResponse)
def organization_save(
    request: Request,
    context: Context,
    billing_display_name: Annotated[str, Form(max_length=100)],
    timezone: Annotated[str, Form(max_length=64)],
    auth: StaffAuth = staff_permission(Permission.ORG_MANAGE),
) -> Response:
    error = ""
    with _tenant(context, auth) as session:
        try:
            admin_service.update_organization(
                session, actor=auth.principal.actor,
                organization_id=auth.principal.organization_id,
                billing_display_name=billing_display_name.strip() or None,
                timezone=timezone.strip() or None,
            )
        except BadInput as exc:
            error = exc.message
            session.rollback()
    if not error:
        return RedirectResponse("/app/admin/organization", status_code=303)
    with _tenant(context, auth) as session:
        org = session.get(Organization, auth.principal.organization_id)
    return page(request, "organization.html", title="Organization settings", org=org,
                error=error, status_code=400)


# Break-glass ------------------------------------------------------------------------------


@router.get("/break-glass", response_class=HTMLResponse)
def break_glass_form(
    request: Request, auth: StaffAuth = staff_permission(Permission.BREAK_GLASS)
) -> Response:
    return page(request, "break_glass.html", title="Emergency access", error="")


@router.post("/break-glass", response_class=HTMLResponse)
def break_glass(
    request: Request,
    context: Context,
    reason: Annotated[str, Form(max_length=1000)],
    auth: StaffAuth = staff_permission(Permission.BREAK_GLASS),
) -> Response:
    with _tenant(context, auth) as session:
        row = session.get(StaffSession, auth.session_id)
        if row is None:
            raise NotFound("no such session")
        try:
            identity.grant_break_glass(
                session, keys=context.org_keys(session, auth.principal.organization_id),
                principal=auth.principal, staff_session=row, reason=reason,
                now=context.now(), policy=context.policy,
            )
        except BadInput as exc:
            return page(request, "break_glass.html", title="Emergency access",
                        error=exc.message, status_code=400)
    return RedirectResponse("/app/", status_code=303)
