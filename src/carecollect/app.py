"""FastAPI application factory: middleware, routers, static files, `/healthz`, `/metrics`.

`create_app()` serves the REST API (`/api/v1`, OpenAPI at `/api/v1/openapi.json`), the
staff app (`/app`) and the package's own static files (`/static`: htmx and Chart.js are
vendored, nothing is loaded from a third party).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from carecollect.api.context import AppContext, _utcnow
from carecollect.api.metrics import Metrics, queue_collector
from carecollect.api.middleware import SecurityMiddleware
from carecollect.api.problems import install as install_problem_handlers
from carecollect.api.throttle import LoginThrottle
from carecollect.config import Settings, load_settings
from carecollect.db import Database
from carecollect.identity.service import IdentityPolicy
from carecollect.kit.crypto.keys import KeyManager, OrganizationKeys

STATIC_DIR = Path(__file__).resolve().parent / "staff_ui" / "static"


def _cookie_secure(settings: Settings) -> bool:
    # Browsers drop Secure cookies set over plain HTTP; development on loopback without
    # TLS is the one case where the flag is relaxed (docs/WEB.md). Production refuses to
    # start without TLS (config.production_problems).
    if settings.tls_enabled or settings.environment == "production":
        return True
    return settings.host not in ("127.0.0.1", "localhost", "::1")


def _mount_webhooks(app: FastAPI, context: AppContext) -> None:
    """Provider webhooks under /hooks: the payment processor (signature-verified by the
    processor's SDK), Twilio inbound and status callbacks (RequestValidator) and one-click
    e-mail unsubscribe links."""
    import base64

    from carecollect.channel.config import ChannelSettings
    from carecollect.channel.webhooks import TwilioWebhooks, make_router
    from carecollect.payment.webhooks import router as payment_router
    from carecollect.worker_resources import payment_processor

    settings = context.settings
    processor = payment_processor(settings)
    app.state.payment_processors = {settings.payment_processor: processor}
    app.state.db = context.db

    def keys_for(organization_id: uuid.UUID) -> OrganizationKeys:
        with context.db.system_session() as session:
            return context.keys.for_organization(session, organization_id)

    app.state.keys_for = keys_for
    channels = ChannelSettings()
    twilio = (
        TwilioWebhooks(context.db, context.keys, channels.twilio_auth_token,
                       callback_phone=channels.callback_phone)
        if channels.twilio_auth_token
        else None
    )
    link_secret = base64.b64decode(channels.link_secret) if channels.link_secret else None
    app.include_router(
        make_router(twilio, public_base_url=channels.public_base_url, db=context.db,
                    keys=context.keys, link_secret=link_secret)
    )
    app.include_router(payment_router)


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    keys: KeyManager | None = None,
    policy: IdentityPolicy | None = None,
    clock: Callable[[], datetime] | None = None,
    cookie_secure: bool | None = None,
) -> FastAPI:
    """Build the application. Tests pass their own database, keys, policy and clock."""
    from carecollect import all_models  # noqa: F401 - every mapper configured before use
    from carecollect.api.v1 import router as api_router
    from carecollect.integration.endpoints import router as webhook_endpoints_router
    from carecollect.portal.endpoints import router as portal_router
    from carecollect.portal.render import install as install_portal
    from carecollect.portal.self_service_endpoints import router as portal_self_router
    from carecollect.staff_ui.campaign_pages import router as campaign_router
    from carecollect.staff_ui.insights_pages import router as insights_router
    from carecollect.staff_ui.org_settings_pages import router as org_settings_router
    from carecollect.staff_ui.pages import router as staff_router
    from carecollect.staff_ui.render import html_error
    from carecollect.staff_ui.sso_pages import router as sso_router
    from carecollect.staff_ui.webhook_pages import router as webhook_pages_router
    from carecollect.staff_ui.work_pages import router as work_router

    settings = settings or load_settings()
    context = AppContext(
        settings=settings,
        db=db or Database.from_settings(settings),
        keys=keys or KeyManager.from_settings(settings),
        policy=policy or IdentityPolicy(),
        metrics=Metrics(),
        throttle=LoginThrottle(),
        clock=clock or _utcnow,
        cookie_secure=_cookie_secure(settings) if cookie_secure is None else cookie_secure,
    )
    app = FastAPI(
        title="carecollect",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI loads scripts from a CDN and needs inline script
        redoc_url=None,
    )
    app.state.context = context
    context.metrics.register(queue_collector(context.db, context.now))
    app.add_middleware(SecurityMiddleware, metrics=context.metrics)
    install_problem_handlers(app, html_error=html_error)
    app.include_router(api_router)
    app.include_router(webhook_endpoints_router)
    app.include_router(staff_router)
    app.include_router(work_router)
    app.include_router(webhook_pages_router)
    app.include_router(sso_router)
    app.include_router(insights_router)
    app.include_router(campaign_router)
    app.include_router(org_settings_router)
    app.include_router(portal_router)
    app.include_router(portal_self_router)
    _mount_webhooks(app, context)
    install_portal(app)  # portal error pages and /static/portal (before /static)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        try:
            with context.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return PlainTextResponse(
            context.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        return RedirectResponse("/app/", status_code=303)

    return app
