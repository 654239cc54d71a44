"""Template rendering for the staff app, and its error pages.

Jinja2 autoescaping is on for every template, so a value such as a patient named
`<script>` is rendered as text. Page titles never contain PHI; neither do URLs (ids only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from carecollect.api.context import AppContext, get_context
from carecollect.errors import AppError
from carecollect.identity.auth import LoginRequired, StaffAuth, csrf_token
from carecollect.identity.permissions import ROLE_LABELS, Permission, Role

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True


def _cents(value: int | None) -> str:
    if value is None:
        return ""
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}${value // 100:,}.{value % 100:02d}"


def _json_attr(value: Any) -> str:
    # For data-* attributes: autoescaping turns the quotes into entities, which the
    # browser decodes back before app.js parses the JSON.
    return json.dumps(value, separators=(",", ":"), default=str)


templates.env.filters["cents"] = _cents
templates.env.filters["json_attr"] = _json_attr
templates.env.globals["Permission"] = Permission
templates.env.globals["ROLE_LABELS"] = {r.value: label for r, label in ROLE_LABELS.items()}
templates.env.globals["ROLES"] = [r.value for r in Role]


def page(
    request: Request,
    name: str,
    *,
    title: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """Render a full page or an htmx fragment with the common values."""
    context = get_context(request)
    auth: StaffAuth | None = getattr(request.state, "staff", None)
    if auth is not None and not auth.mfa_passed:
        auth = None  # half signed in: no navigation, no identity shown
    return templates.TemplateResponse(
        request,
        name,
        {
            "title": title,
            "auth": auth,
            "principal": auth.principal if auth else None,
            "csrf_token": csrf_token(request),
            "csrf_headers": Markup(json.dumps({"X-CSRF-Token": csrf_token(request)})),  # noqa: S704 - JSON of a hex token
            "idle_seconds": int(context.policy.idle_timeout.total_seconds()),
            **values,
        },
        status_code=status_code,
    )


def login_redirect(request: Request, message: str) -> Response:
    target = "/app/login" + ("?" + urlencode({"m": message}) if message else "")
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def html_error(
    request: Request, status_code: int, message: str, exc: AppError | None
) -> Response:
    if isinstance(exc, LoginRequired):
        if exc.reason == "mfa":
            return RedirectResponse("/app/login/mfa", status_code=303)
        return login_redirect(request, "expired" if exc.reason == "expired" else "")
    titles = {403: "Not allowed", 404: "Not found", 422: "Invalid form"}
    return page(
        request,
        "error.html",
        title=titles.get(status_code, "Something went wrong"),
        status_code=status_code,
        message=message or "The request could not be completed.",
    )


def tenant_session(context: AppContext, auth: StaffAuth) -> Any:
    """The request's transaction scoped to the signed-in user's organization."""
    return context.session(auth.principal.organization_id)
