"""The patient's portal session as a FastAPI dependency, and CSRF for every portal form.

    from carecollect.portal.auth import PortalSession, PortalFormSession

    @router.get("/pay/bill")
    def bill(request: Request, auth: PortalSession) -> Response: ...

    @router.post("/pay/thing")
    async def thing(request: Request, auth: PortalFormSession) -> Response: ...

`PortalSession` resolves the cookie (`HttpOnly`, `Secure` per the app's rule,
`SameSite=Strict`, `Path=/pay`) to a live, verified server-side session. Without one the
request ends in `PortalLinkInvalid`, rendered as the neutral "link expired or invalid"
page, showing nothing. `PortalFormSession` additionally checks the form's `csrf_token`
field (or the `X-CSRF-Token` header) against the session's secret.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from carecollect.api.context import AppContext, get_context
from carecollect.errors import AppError
from carecollect.portal import service as portal_service
from carecollect.portal.config import PortalSettings

COOKIE_PATH = "/pay"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
VERIFY_COOKIE = "cc_portal_verify"


class PortalError(AppError):
    """A portal failure rendered as a portal page (never JSON, never the staff layout)."""

    status_code = 400
    message_key = "error.body"
    title_key = "title.error"


class PortalLinkInvalid(PortalError):  # noqa: N818 - reads as the state
    """No live session or link: one neutral page for unknown, expired and revoked."""

    status_code = 404
    message_key = "invalid.body"
    title_key = "title.invalid"

    def __init__(self, message: str = "link expired or invalid", *, expired: bool = False):
        super().__init__(message)
        if expired:
            self.message_key = "session.expired"


class PortalCsrfRejected(PortalError):  # noqa: N818 - reads as the event
    status_code = 403
    message_key = "error.csrf"


class PortalNotFound(PortalError):  # noqa: N818 - reads as the state
    status_code = 404
    message_key = "error.not_found"


@dataclass(frozen=True)
class PortalAuth:
    """The verified patient of this request (ids only)."""

    organization_id: uuid.UUID
    guarantor_id: uuid.UUID
    session_id: uuid.UUID
    language: str
    csrf_token: str


def portal_settings(request: Request) -> PortalSettings:
    """The app's portal settings (`app.state.portal_settings`, else from the environment)."""
    state = request.app.state
    settings: PortalSettings | None = getattr(state, "portal_settings", None)
    if settings is None:
        settings = PortalSettings()
        state.portal_settings = settings
    return settings


def cookie_name(context: AppContext) -> str:
    # __Secure- needs the Secure flag; __Host- would force Path=/, and the portal cookie
    # is confined to /pay so the staff app never receives it.
    return "__Secure-cc_portal" if context.cookie_secure else "cc_portal"


def set_session_cookie(response: Response, context: AppContext, value: str) -> None:
    response.set_cookie(
        cookie_name(context), value, httponly=True, secure=context.cookie_secure,
        samesite="strict", path=COOKIE_PATH,
    )


def clear_session_cookie(response: Response, context: AppContext) -> None:
    response.delete_cookie(
        cookie_name(context), path=COOKIE_PATH, secure=context.cookie_secure, httponly=True,
        samesite="strict",
    )


def csrf_for(context: AppContext, csrf_secret: str) -> str:
    return context.sign("portal-csrf", csrf_secret)


def _resolve(request: Request) -> PortalAuth | None:
    context = get_context(request)
    raw = request.cookies.get(cookie_name(context))
    parts = portal_service.split_cookie(raw) if raw else None
    if parts is None:
        return None
    organization_id, token = parts
    settings = portal_settings(request)
    with context.session(organization_id) as session:
        row = portal_service.resolve_session(
            session, token=token, now=context.now(), settings=settings
        )
        if row is None:
            return None
        return PortalAuth(
            organization_id=row.organization_id,
            guarantor_id=row.guarantor_id,
            session_id=row.id,
            language=row.language,
            csrf_token=csrf_for(context, row.csrf_secret),
        )


def optional_portal_session(request: Request) -> PortalAuth | None:
    """The verified session of this request, or None (pages shown before verification)."""
    cached: PortalAuth | None = getattr(request.state, "portal", None)
    if cached is not None:
        return cached
    auth = _resolve(request)
    if auth is not None:
        request.state.portal = auth
    return auth


def require_portal_session(request: Request) -> PortalAuth:
    """A live, verified portal session, or PortalLinkInvalid."""
    had_cookie = cookie_name(get_context(request)) in request.cookies
    auth = optional_portal_session(request)
    if auth is None:
        raise PortalLinkInvalid(expired=had_cookie)
    return auth


def check_csrf(auth: PortalAuth, sent: str | None) -> None:
    """Raise PortalCsrfRejected unless `sent` is this session's CSRF token."""
    if not sent or not secrets.compare_digest(sent, auth.csrf_token):
        raise PortalCsrfRejected("the form expired or did not come from this site")


async def sent_csrf_token(request: Request) -> str | None:
    """The CSRF token of a request: the header, else the urlencoded/multipart form field."""
    sent = request.headers.get(CSRF_HEADER)
    if sent:
        return sent
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def require_portal_form(
    request: Request, auth: Annotated[PortalAuth, Depends(require_portal_session)]
) -> PortalAuth:
    """A verified session and a matching CSRF token (every state-changing portal request)."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf(auth, await sent_csrf_token(request))
    return auth


PortalSession = Annotated[PortalAuth, Depends(require_portal_session)]
PortalFormSession = Annotated[PortalAuth, Depends(require_portal_form)]
OptionalPortalSession = Annotated[PortalAuth | None, Depends(optional_portal_session)]
