"""Staff screen for the organization's single sign-on provider (`/app/admin/sso`,
`organization.manage`): issuer, client id and secret (write-only: never shown again),
linking and provisioning policy, and whether the IdP's MFA is trusted (docs/WEB.md,
"Single sign-on (OIDC)"). Bad input re-renders the form with a 400 and stores nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from carecollect.api.context import AppContext, get_context
from carecollect.errors import BadInput
from carecollect.identity import oidc
from carecollect.identity.auth import StaffAuth, csrf_protect, staff_permission
from carecollect.identity.permissions import Permission, Role
from carecollect.staff_ui.render import page

router = APIRouter(prefix="/app", include_in_schema=False, dependencies=[Depends(csrf_protect)])
Context = Annotated[AppContext, Depends(get_context)]
Text = Annotated[str, Form(max_length=600)]


def _mapping_text(mapping: dict[str, str]) -> str:
    return "\n".join(f"{claim}={role}" for claim, role in sorted(mapping.items()))


def _parse_mapping(text: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        claim, sep, role = line.partition("=")
        if not sep or not claim.strip() or not role.strip():
            raise BadInput("write the role mapping as one `group=role` per line")
        mapping[claim.strip()] = role.strip()
    return mapping


def _render(request: Request, form: dict[str, Any], *, has_secret: bool, error: str = "",
            saved: bool = False, status_code: int = 200) -> Response:
    roles = [r.value for r in Role if r is not Role.OWNER]
    return page(request, "sso.html", title="Single sign-on", form=form, has_secret=has_secret,
                error=error, saved=saved, roles=roles, callback=oidc.CALLBACK_PATH,
                status_code=status_code)


@router.get("/admin/sso", response_class=HTMLResponse)
def sso_page(
    request: Request, context: Context,
    auth: StaffAuth = staff_permission(Permission.ORG_MANAGE),
) -> Response:
    with context.session(auth.principal.organization_id) as session:
        provider = oidc.provider_of(session, auth.principal.organization_id)
        form: dict[str, Any] = {}
        if provider is not None:
            form = {
                "display_name": provider.display_name, "issuer": provider.issuer,
                "client_id": provider.client_id,
                "allowed_email_domain": provider.allowed_email_domain or "",
                "link_by_verified_email": provider.link_by_verified_email,
                "allow_provisioning": provider.allow_provisioning,
                "default_role": provider.default_role or "",
                "role_claim": provider.role_claim or "",
                "role_mapping": _mapping_text(provider.role_mapping),
                "idp_enforces_mfa": provider.idp_enforces_mfa, "enabled": provider.enabled,
            }
        has_secret = provider is not None and provider.client_secret is not None
    return _render(request, form, has_secret=has_secret)


@router.post("/admin/sso", response_class=HTMLResponse)
def save_sso(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.ORG_MANAGE),
    display_name: Text = "",
    issuer: Text = "",
    client_id: Text = "",
    client_secret: Annotated[str, Form(max_length=600)] = "",
    allowed_email_domain: Text = "",
    link_by_verified_email: Text = "",
    allow_provisioning: Text = "",
    default_role: Text = "",
    role_claim: Text = "",
    role_mapping: Annotated[str, Form(max_length=4000)] = "",
    idp_enforces_mfa: Text = "",
    enabled: Text = "",
) -> Response:
    form: dict[str, Any] = {
        "display_name": display_name, "issuer": issuer, "client_id": client_id,
        "allowed_email_domain": allowed_email_domain,
        "link_by_verified_email": bool(link_by_verified_email),
        "allow_provisioning": bool(allow_provisioning), "default_role": default_role,
        "role_claim": role_claim, "role_mapping": role_mapping,
        "idp_enforces_mfa": bool(idp_enforces_mfa), "enabled": bool(enabled),
    }
    try:
        with context.session(auth.principal.organization_id) as session:
            provider = oidc.configure_provider(
                session,
                keys=context.org_keys(session, auth.principal.organization_id),
                actor=auth.principal.actor,
                display_name=display_name,
                issuer=issuer,
                client_id=client_id,
                # A blank field keeps the stored secret (it is never shown again).
                client_secret=client_secret or None,
                allowed_email_domain=allowed_email_domain or None,
                link_by_verified_email=bool(link_by_verified_email),
                allow_provisioning=bool(allow_provisioning),
                default_role=default_role or None,
                role_claim=role_claim or None,
                role_mapping=_parse_mapping(role_mapping),
                idp_enforces_mfa=bool(idp_enforces_mfa),
                enabled=bool(enabled),
                allow_loopback_http=context.settings.environment != "production",
            )
            has_secret = provider.client_secret is not None
    except BadInput as exc:
        with context.session(auth.principal.organization_id) as session:
            existing = oidc.provider_of(session, auth.principal.organization_id)
            has_secret = existing is not None and existing.client_secret is not None
        return _render(request, form, has_secret=has_secret, error=exc.message,
                       status_code=400)
    return _render(request, form, has_secret=has_secret, saved=True)
