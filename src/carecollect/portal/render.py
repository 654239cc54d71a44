"""Template rendering for the portal (`portal/templates/portal/*.html`) and its error page.

Jinja2 autoescapes everything. Page titles come from the message catalog by key
(`title_key`), so a title can never carry PHI; URLs carry ids at most. The portal's own
stylesheet is served from `/static/portal/` (the package's files, no CDN, no inline
script or style: the CSP of api/middleware.py applies unchanged).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from carecollect.portal.auth import PortalAuth, PortalError
from carecollect.portal.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    from_accept_language,
    normalize_language,
    translate,
)

PORTAL_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PORTAL_DIR / "templates"
STATIC_DIR = PORTAL_DIR / "static"
STATIC_URL = "/static/portal"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True

_MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"],
}


def money(cents: int | None) -> str:
    """`$1,234.56` (a leading minus for negatives)."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def long_date(value: date | datetime | None, language: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    month = _MONTHS.get(language, _MONTHS["en"])[value.month - 1]
    if language == "es":
        return f"{value.day} de {month} de {value.year}"
    return f"{month} {value.day}, {value.year}"


templates.env.filters["money"] = money


def request_language(request: Request, auth: PortalAuth | None = None) -> str:
    """The session's language, else `?lang=`, else the browser's Accept-Language."""
    if auth is not None:
        return auth.language
    query = request.query_params.get("lang")
    if query:
        return normalize_language(query)
    return from_accept_language(request.headers.get("accept-language"))


def page(
    request: Request,
    name: str,
    *,
    title_key: str,
    auth: PortalAuth | None = None,
    language: str | None = None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """Render a portal page with the layout's values: `t` (translate), `lang`,
    `languages`, `auth`, `csrf_token`, `title`, `money`, `long_date`."""
    lang = normalize_language(language) if language else request_language(request, auth)

    def t(key: str, **params: object) -> str:
        return translate(lang, key, **params)

    def fmt_date(value: date | datetime | None) -> str:
        return long_date(value, lang)

    return templates.TemplateResponse(
        request,
        name,
        {
            "t": t,
            "lang": lang,
            "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "auth": auth,
            "csrf_token": auth.csrf_token if auth else values.pop("csrf_token", ""),
            "title": t(title_key),
            "long_date": fmt_date,
            "static_url": STATIC_URL,
            "current_path": request.url.path,
            **values,
        },
        status_code=status_code,
    )


def error_page(request: Request, exc: PortalError) -> HTMLResponse:
    """The neutral portal error page (no detail beyond the catalog message)."""
    auth = None if exc.status_code in (401, 404) and exc.title_key == "title.invalid" else (
        getattr(request.state, "portal", None)
    )
    return page(
        request, "portal/message.html", title_key=exc.title_key, auth=auth,
        status_code=exc.status_code, message_key=exc.message_key,
    )


def install(app: FastAPI) -> None:
    """Register the portal's error handler and mount its static files (call from app.py
    before `/static` is mounted)."""

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PortalError)  # noqa: S101 - registered for this class only
        return error_page(request, exc)

    app.add_exception_handler(PortalError, handle)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="portal-static")


__all__: list[str] = [
    "STATIC_URL",
    "error_page",
    "install",
    "long_date",
    "money",
    "page",
    "request_language",
    "templates",
]
