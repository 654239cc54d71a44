"""Errors as RFC 9457 problem details (`application/problem+json`), never with PHI.

Only `AppError.message` (written to be safe to show) reaches a client. Validation errors
list the location and the kind of problem but never echo the submitted value, which may be
a name or a date of birth.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from carecollect.errors import AppError

log = structlog.get_logger("carecollect.web")
PROBLEM_MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    423: "Locked",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[ValidationIssue] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": title}
    for status, title in _TITLES.items()
    if status in (400, 401, 403, 404, 409, 422, 429)
}


def problem_response(
    status: int,
    detail: str | None,
    *,
    errors: list[ValidationIssue] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=_TITLES.get(status, "Error"), status=status, detail=detail, errors=errors
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    from carecollect.api.v1 import router as api_router

    methods: set[str] = set()
    for route in api_router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", ()) or ())
    return sorted(methods)


def _is_html(request: Request) -> bool:
    return request.url.path.startswith("/app")


def install(app: FastAPI, *, html_error: Any) -> None:
    """Register handlers. `html_error(request, status, message)` renders staff pages."""

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if _is_html(request):
            result: Response = await html_error(request, exc.status_code, exc.message, exc)
            return result
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return problem_response(exc.status_code, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        issues = [
            ValidationIssue(
                loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                msg=str(e.get("msg", "invalid")),
                type=str(e.get("type", "value_error")),
            )
            for e in exc.errors()
        ]
        if _is_html(request):
            result: Response = await html_error(request, 422, "the form has invalid values", None)
            return result
        return problem_response(422, "the request is not valid", errors=issues)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail) if exc.status_code < 500 else None
        if _is_html(request):
            result: Response = await html_error(request, exc.status_code, detail or "", None)
            return result
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # RFC 9110 15.5.6: Allow lists every method of the resource, which may be
            # served by several routes (GET and POST /accounts).
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(exc.status_code, detail, headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The exception text may quote data; log its type only (kit/logging drops PHI too).
        log.error("request.failed", error_type=type(exc).__name__)
        return problem_response(500, None)
