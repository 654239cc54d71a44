"""Authentication and authorization dependencies for the API and the staff app.

API requests authenticate with `Authorization: Bearer cck_...` (an API key with scopes);
staff pages with the server-side session cookie. Both end in a `Principal` whose
permissions come from the one matrix in `identity.permissions`. Authorization happens in
the dependency, before the handler opens its transaction, so a denied request changes
nothing and enqueues nothing.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carecollect.api.context import AppContext, get_context
from carecollect.errors import AppError, Forbidden
from carecollect.identity.models import StaffSession, StaffUser
from carecollect.identity.permissions import Permission
from carecollect.identity.service import (
    Principal,
    principal_for,
    resolve_api_key,
    resolve_session,
    split_api_token,
    split_cookie,
)

_bearer = HTTPBearer(auto_error=False, description="An API key: `cck_...`")
LOGIN_CSRF_COOKIE = "cc_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class Unauthenticated(AppError):  # noqa: N818 - reads as the state
    status_code = 401


class LoginRequired(AppError):  # noqa: N818 - reads as the state
    """A staff page without a live session: the handler redirects to the sign-in page."""

    status_code = 401

    def __init__(self, message: str = "please sign in", *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class CsrfRejected(AppError):  # noqa: N818 - reads as the event
    status_code = 403


def _denied(context: AppContext, permission: Permission, kind: str) -> Forbidden:
    context.metrics.increment(
        "carecollect_authorization_denied_total",
        "Requests refused by the permission matrix.",
        permission=permission.value,
        principal=kind,
    )
    return Forbidden("you do not have permission for this action")


# API -----------------------------------------------------------------------------------


def api_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    context = get_context(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("an API key is required (Authorization: Bearer cck_...)")
    parts = split_api_token(credentials.credentials)
    if parts is None:
        raise Unauthenticated("the API key is not valid")
    organization_id, prefix, secret = parts
    with context.session(organization_id) as session:
        principal = resolve_api_key(session, prefix=prefix, secret=secret, now=context.now())
    if principal is None or principal.organization_id != organization_id:
        raise Unauthenticated("the API key is not valid")
    return principal


def api_permission(permission: Permission) -> Any:
    """`principal: Principal = api_permission(Permission.X)` in an endpoint signature."""

    def dependency(
        request: Request, principal: Annotated[Principal, Depends(api_principal)]
    ) -> Principal:
        if not principal.can(permission):
            raise _denied(get_context(request), permission, "api_key")
        return principal

    return Depends(dependency)


# Staff sessions ------------------------------------------------------------------------


def session_cookie_name(context: AppContext) -> str:
    # The __Host- prefix pins the cookie to this host and path / and requires Secure.
    return "__Host-cc_session" if context.cookie_secure else "cc_session"


@dataclass(frozen=True)
class StaffAuth:
    principal: Principal
    session_id: uuid.UUID
    user_id: uuid.UUID
    mfa_passed: bool
    totp_enabled: bool


def _resolve(request: Request) -> tuple[StaffSession, StaffUser] | None:
    context = get_context(request)
    raw = request.cookies.get(session_cookie_name(context))
    parts = split_cookie(raw) if raw else None
    if parts is None:
        return None
    organization_id, token = parts
    with context.session(organization_id) as session:
        found = resolve_session(session, token=token, now=context.now(), policy=context.policy)
        if found is None:
            return None
        session.flush()  # the last-seen touch, before the rows leave the session
        session.expunge_all()
        return found


def staff_session(request: Request) -> StaffAuth | None:
    """The staff session of the request in any state (MFA pending or complete)."""
    found = _resolve(request)
    if found is None:
        return None
    row, user = found
    return StaffAuth(
        principal=principal_for(user, row),
        session_id=row.id,
        user_id=user.id,
        mfa_passed=row.mfa_passed,
        totp_enabled=user.totp_enabled_at is not None,
    )


def staff_auth(request: Request) -> StaffAuth:
    """A fully signed-in staff member (password and second factor), or LoginRequired."""
    had_cookie = session_cookie_name(get_context(request)) in request.cookies
    auth = staff_session(request)
    if auth is None:
        raise LoginRequired(reason="expired" if had_cookie else "")
    if not auth.mfa_passed:
        raise LoginRequired("finish signing in with your second factor", reason="mfa")
    request.state.staff = auth
    return auth


def staff_permission(permission: Permission) -> Any:
    def dependency(
        request: Request, auth: Annotated[StaffAuth, Depends(staff_auth)]
    ) -> StaffAuth:
        if not auth.principal.can(permission):
            raise _denied(get_context(request), permission, "staff")
        return auth

    return Depends(dependency)


# CSRF ----------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The token forms must echo: bound to the session cookie, or before sign-in to the
    login CSRF cookie (double-submit, signed so a planted cookie cannot be paired)."""
    context = get_context(request)
    bound = request.cookies.get(session_cookie_name(context)) or request.cookies.get(
        LOGIN_CSRF_COOKIE
    )
    if not bound:
        bound = getattr(request.state, "login_csrf", None) or ""
    return context.sign("csrf", bound) if bound else ""


def new_login_csrf(request: Request) -> str:
    value = secrets.token_urlsafe(24)
    request.state.login_csrf = value
    return value


async def csrf_protect(request: Request) -> None:
    """Reject a state-changing request to the staff app without the right token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    expected = csrf_token(request)
    if not sent or not expected or not secrets.compare_digest(sent, expected):
        raise CsrfRejected("the form expired or did not come from this site; reload and retry")
