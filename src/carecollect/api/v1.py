"""`/api/v1`: thin endpoints (parse, authorize, call the service, return).

Authorization is a dependency naming one permission of the matrix; PHI reads go through
`api.views`, which masks by permission and records one audit event per read; POSTs honour
`Idempotency-Key`; errors are problem+json. Lists are keyset-paginated: `limit` and the
opaque `cursor` from the previous page's `next_cursor`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from carecollect.api import admin as admin_service
from carecollect.api import queries, views
from carecollect.api.idempotency import run_post
from carecollect.api.problems import PROBLEM_RESPONSES, problem_response
from carecollect.api.schemas import (
    AccountCreate,
    AccountOut,
    AuditEventOut,
    BusinessAssociateIn,
    BusinessAssociateOut,
    ConsentCreate,
    ConsentOut,
    ContactPointOut,
    FlagCreate,
    FlagOut,
    GuarantorOut,
    GuarantorSearch,
    LedgerEntryCreate,
    LedgerEntryOut,
    OrganizationOut,
    OrganizationUpdate,
    Page,
    PatientOut,
    RevocationCreate,
    UserOut,
    VerifyOut,
)
from carecollect.api.v1_common import Context, Cursor, IdempotencyKey, Limit, page_of
from carecollect.audit import Subject, access_log, record
from carecollect.consent.service import consent_service
from carecollect.errors import NotFound
from carecollect.identity.auth import api_permission
from carecollect.identity.permissions import Permission
from carecollect.identity.repository import identity_repository
from carecollect.identity.service import Principal
from carecollect.ledger.repository import ledger_repository
from carecollect.ledger.service import ledger_service
from carecollect.patient.schemas import ContactPointCreate, GuarantorCreate, PatientCreate
from carecollect.patient.service import patient_service
from carecollect.tenant.models import Organization

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
# Organization and users --------------------------------------------------------------


@router.get("/organization", response_model=OrganizationOut, tags=["organization"])
def get_organization(
    context: Context, principal: Principal = api_permission(Permission.ORG_READ)
) -> Any:
    with context.session(principal.organization_id) as session:
        org = session.get(Organization, principal.organization_id)
        if org is None:
            raise NotFound("no such organization")
        return OrganizationOut.model_validate(org, from_attributes=True)


@router.patch("/organization", response_model=OrganizationOut, tags=["organization"])
def update_organization(
    context: Context,
    body: OrganizationUpdate,
    principal: Principal = api_permission(Permission.ORG_MANAGE),
) -> Any:
    with context.session(principal.organization_id) as session:
        org = admin_service.update_organization(
            session,
            actor=principal.actor,
            organization_id=principal.organization_id,
            billing_display_name=body.billing_display_name,
            timezone=body.timezone,
        )
        return OrganizationOut.model_validate(org, from_attributes=True)


def _user_out(user: Any) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        state=user.state,
        mfa_enabled=user.totp_enabled_at is not None,
        last_login_at=user.last_login_at,
    )


@router.get("/users", response_model=Page[UserOut], tags=["users"])
def list_users(
    context: Context,
    principal: Principal = api_permission(Permission.USER_READ),
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    with context.session(principal.organization_id) as session:
        users = identity_repository.users(session, after=cursor, limit=limit)
        return page_of([_user_out(u) for u in users], limit, users[-1].id if users else None)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(
    context: Context,
    user_id: uuid.UUID,
    principal: Principal = api_permission(Permission.USER_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        user = identity_repository.user(session, user_id)
        if user is None:
            raise NotFound("no such user")
        return _user_out(user)


# Guarantors, patients, contact points ---------------------------------------------------


@router.post("/guarantors", status_code=201, response_model=GuarantorOut, tags=["patients"])
def create_guarantor(
    request: Request,
    context: Context,
    body: GuarantorCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.PATIENT_WRITE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        row = patient_service.create_guarantor(session, keys=keys, actor=principal.actor, data=body)
        return 201, views.guarantor_out(keys.cipher(), row, show=views.unmasked(principal))

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


@router.post("/guarantors/search", response_model=Page[GuarantorOut], tags=["patients"])
def search_guarantors(
    context: Context,
    body: GuarantorSearch,
    principal: Principal = api_permission(Permission.PATIENT_SEARCH),
) -> Any:
    """Find guarantors through blind indexes. Search is a POST so that no PHI ever
    appears in a URL, a proxy log or a browser history; not idempotency-keyed (a read)."""
    with context.session(principal.organization_id) as session:
        keys = context.org_keys(session, principal.organization_id)
        ids = patient_service.find_guarantors(
            session,
            keys=keys,
            actor=principal.actor,
            phone=body.phone,
            email=body.email,
            last_name=body.last_name,
            date_of_birth=body.date_of_birth,
        )
        return {
            "items": views.summaries(session, keys=keys, principal=principal, ids=ids[:200]),
            "next_cursor": None,
        }


@router.api_route(
    "/guarantors/search", methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def search_is_a_post() -> JSONResponse:
    """Search terms never go in a URL: only POST exists (and GET must not fall through to
    `/guarantors/{guarantor_id}`)."""
    return problem_response(
        405, "search with POST: terms go in the body", headers={"Allow": "POST"}
    )


@router.get("/guarantors/{guarantor_id}", response_model=GuarantorOut, tags=["patients"])
def get_guarantor(
    context: Context,
    guarantor_id: uuid.UUID,
    principal: Principal = api_permission(Permission.PATIENT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        keys = context.org_keys(session, principal.organization_id)
        return views.read_guarantor(
            session, keys=keys, principal=principal, guarantor_id=guarantor_id, purpose="api"
        )


@router.get(
    "/guarantors/{guarantor_id}/patients", response_model=list[PatientOut], tags=["patients"]
)
def list_patients(
    context: Context,
    guarantor_id: uuid.UUID,
    principal: Principal = api_permission(Permission.PATIENT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        keys = context.org_keys(session, principal.organization_id)
        views.require_guarantor(session, guarantor_id)
        from carecollect.patient.repository import patient_repository

        rows = patient_repository.patients_of(session, guarantor_id)
        result = [views.patient_out(keys.cipher(), r, show=views.unmasked(principal)) for r in rows]
        views.record_read(session, principal, guarantor_id, fields=["patients"], purpose="api")
        return result


@router.post("/patients", status_code=201, response_model=PatientOut, tags=["patients"])
def create_patient(
    request: Request,
    context: Context,
    body: PatientCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.PATIENT_WRITE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        row = patient_service.create_patient(session, keys=keys, actor=principal.actor, data=body)
        return 201, views.patient_out(keys.cipher(), row, show=views.unmasked(principal))

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


@router.get(
    "/guarantors/{guarantor_id}/contact-points",
    response_model=list[ContactPointOut],
    tags=["patients"],
)
def list_contact_points(
    context: Context,
    guarantor_id: uuid.UUID,
    principal: Principal = api_permission(Permission.PATIENT_READ),
) -> Any:
    from carecollect.patient.repository import patient_repository

    with context.session(principal.organization_id) as session:
        keys = context.org_keys(session, principal.organization_id)
        views.require_guarantor(session, guarantor_id)
        rows = patient_repository.contact_points_of(session, guarantor_id)
        show = views.unmasked(principal)
        result = [views.contact_point_out(keys.cipher(), r, show=show) for r in rows]
        views.record_read(
            session, principal, guarantor_id, fields=["contact_points"], purpose="api"
        )
        return result


@router.post("/contact-points", status_code=201, response_model=ContactPointOut, tags=["patients"])
def create_contact_point(
    request: Request,
    context: Context,
    body: ContactPointCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.PATIENT_WRITE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        row = patient_service.add_contact_point(
            session, keys=keys, actor=principal.actor, data=body
        )
        return 201, views.contact_point_out(keys.cipher(), row, show=views.unmasked(principal))

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


# Accounts and ledgers ------------------------------------------------------------------


@router.get("/accounts", response_model=Page[AccountOut], tags=["accounts"])
def list_accounts(
    context: Context,
    principal: Principal = api_permission(Permission.ACCOUNT_READ),
    guarantor_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    with context.session(principal.organization_id) as session:
        keys = context.org_keys(session, principal.organization_id)
        rows = queries.accounts_page(session, guarantor_id=guarantor_id, after=cursor, limit=limit)
        balances = queries.balances(session, [r.id for r in rows])
        show = views.unmasked(principal)
        items = [
            views.account_out(keys.cipher(), r, balance_cents=balances[r.id], show=show)
            for r in rows
        ]
        # One event per person whose account identifiers were read (HIPAA 164.312(b)).
        for person in sorted({r.guarantor_id for r in rows}):
            views.record_read(session, principal, person, fields=["accounts"], purpose="api")
        return page_of(items, limit, rows[-1].id if rows else None)


@router.post("/accounts", status_code=201, response_model=AccountOut, tags=["accounts"])
def create_account(
    request: Request,
    context: Context,
    body: AccountCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.ACCOUNT_WRITE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        views.require_guarantor(session, body.guarantor_id)
        row = ledger_service.open_account(
            session,
            keys=keys,
            actor=principal.actor,
            guarantor_id=body.guarantor_id,
            account_number=body.account_number,
            opened_at=body.opened_at,
            debt_kind=body.debt_kind,
        )
        show = views.unmasked(principal)
        return 201, views.account_out(keys.cipher(), row, balance_cents=0, show=show)

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


def _account(session: Any, account_id: uuid.UUID) -> Any:
    row = ledger_repository.account(session, account_id)
    if row is None:
        raise NotFound("no such account")
    return row


@router.get("/accounts/{account_id}", response_model=AccountOut, tags=["accounts"])
def get_account(
    context: Context,
    account_id: uuid.UUID,
    principal: Principal = api_permission(Permission.ACCOUNT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        keys = context.org_keys(session, principal.organization_id)
        row = _account(session, account_id)
        balance = ledger_service.balance_cents(session, account_id=account_id)
        view = views.account_out(
            keys.cipher(), row, balance_cents=balance, show=views.unmasked(principal)
        )
        views.record_read(
            session,
            principal,
            row.guarantor_id,
            fields=["account"],
            purpose="api",
            subject_type="account",
            subject_id=row.id,
        )
        return view


@router.get("/accounts/{account_id}/ledger", response_model=Page[LedgerEntryOut], tags=["accounts"])
def list_ledger(
    context: Context,
    account_id: uuid.UUID,
    principal: Principal = api_permission(Permission.ACCOUNT_READ),
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    with context.session(principal.organization_id) as session:
        keys = context.org_keys(session, principal.organization_id)
        account = _account(session, account_id)
        rows = queries.entries_page(session, account_id, after=cursor, limit=limit)
        show = views.unmasked(principal)
        items = [views.entry_out(keys.cipher(), r, show=show) for r in rows]
        views.record_read(
            session,
            principal,
            account.guarantor_id,
            fields=["ledger"],
            purpose="api",
            subject_type="account",
            subject_id=account.id,
        )
        return page_of(items, limit, rows[-1].id if rows else None)


@router.post(
    "/accounts/{account_id}/ledger",
    status_code=201,
    response_model=LedgerEntryOut,
    tags=["accounts"],
)
def post_ledger_entry(
    request: Request,
    context: Context,
    account_id: uuid.UUID,
    body: LedgerEntryCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.ACCOUNT_WRITE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        _account(session, account_id)
        row = ledger_service.post(
            session,
            keys=keys,
            actor=principal.actor,
            account_id=account_id,
            kind=body.kind,
            amount_cents=body.amount_cents,
            posted_at=body.posted_at,
            patient_id=body.patient_id,
            service_date=body.service_date,
            procedure_codes=body.procedure_codes,
            description=body.description,
            external_reference=body.external_reference,
        )
        return 201, views.entry_out(keys.cipher(), row, show=views.unmasked(principal))

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


# Consents and flags -------------------------------------------------------------------


@router.get(
    "/guarantors/{guarantor_id}/consents", response_model=list[ConsentOut], tags=["consents"]
)
def list_consents(
    context: Context,
    guarantor_id: uuid.UUID,
    principal: Principal = api_permission(Permission.CONSENT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        views.require_guarantor(session, guarantor_id)
        result = views.consent_ledger(session, guarantor_id)
        views.record_read(session, principal, guarantor_id, fields=["consents"], purpose="api")
        return result


def _check_point(session: Any, guarantor_id: uuid.UUID, point_id: uuid.UUID | None) -> None:
    views.require_guarantor(session, guarantor_id)
    if point_id is None:
        return
    from carecollect.patient.repository import patient_repository

    if point_id not in {p.id for p in patient_repository.contact_points_of(session, guarantor_id)}:
        raise NotFound("no such contact point for this guarantor")


@router.post("/consents", status_code=201, response_model=ConsentOut, tags=["consents"])
def grant_consent(
    request: Request,
    context: Context,
    body: ConsentCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.CONSENT_WRITE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        _check_point(session, body.guarantor_id, body.contact_point_id)
        row = consent_service.grant(
            session,
            keys=keys,
            actor=principal.actor,
            guarantor_id=body.guarantor_id,
            contact_point_id=body.contact_point_id,
            kind=body.kind,
            granted_at=body.granted_at,
            method=body.method,
            given_to=body.given_to,
            source="api",
            wording_version=body.wording_version,
        )
        return 201, ConsentOut(
            id=row.id,
            guarantor_id=row.guarantor_id,
            contact_point_id=row.contact_point_id,
            event="grant",
            kind=row.kind,
            channel=None,
            at=row.granted_at,
            method=row.method,
            given_to=row.given_to,
        )

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


@router.post("/revocations", status_code=201, response_model=ConsentOut, tags=["consents"])
def revoke_consent(
    request: Request,
    context: Context,
    body: RevocationCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.CONSENT_WRITE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        _check_point(session, body.guarantor_id, body.contact_point_id)
        row = consent_service.revoke(
            session,
            keys=keys,
            actor=principal.actor,
            guarantor_id=body.guarantor_id,
            contact_point_id=body.contact_point_id,
            channel=body.channel,
            received_at=body.received_at,
            method=body.method,
        )
        return 201, ConsentOut(
            id=row.id,
            guarantor_id=row.guarantor_id,
            contact_point_id=row.contact_point_id,
            event="revoke",
            kind=None,
            channel=row.channel,
            at=row.received_at,
            method=row.method,
            given_to=None,
        )

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


@router.get("/guarantors/{guarantor_id}/flags", response_model=list[FlagOut], tags=["flags"])
def list_flags(
    context: Context,
    guarantor_id: uuid.UUID,
    principal: Principal = api_permission(Permission.FLAG_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        views.require_guarantor(session, guarantor_id)
        result = [views.flag_out(f) for f in queries.flags_of(session, guarantor_id)]
        views.record_read(session, principal, guarantor_id, fields=["flags"], purpose="api")
        return result


@router.post("/flags", status_code=201, response_model=FlagOut, tags=["flags"])
def raise_flag(
    request: Request,
    context: Context,
    body: FlagCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.FLAG_WRITE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        views.require_guarantor(session, body.guarantor_id)
        if body.account_id is not None:
            account = ledger_repository.account(session, body.account_id)
            if account is None or account.guarantor_id != body.guarantor_id:
                raise NotFound("no such account for this guarantor")
        row = patient_service.raise_flag(
            session,
            keys=keys,
            actor=principal.actor,
            guarantor_id=body.guarantor_id,
            kind=body.kind,
            raised_at=body.raised_at,
            account_id=body.account_id,
            in_writing=body.in_writing,
            source="api",
        )
        return 201, views.flag_out(row)

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


# Business associates (BAA register) -----------------------------------------------------


@router.get("/business-associates", response_model=list[BusinessAssociateOut], tags=["compliance"])
def list_business_associates(
    context: Context, principal: Principal = api_permission(Permission.BAA_READ)
) -> Any:
    with context.session(principal.organization_id) as session:
        today = context.now().date()
        return [
            admin_service.business_associate_out(b, today)
            for b in queries.business_associates(session)
        ]


@router.post(
    "/business-associates",
    status_code=201,
    response_model=BusinessAssociateOut,
    tags=["compliance"],
)
def create_business_associate(
    request: Request,
    context: Context,
    body: BusinessAssociateIn,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.BAA_MANAGE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        row = admin_service.save_business_associate(
            session,
            actor=principal.actor,
            organization_id=principal.organization_id,
            data=body,
            associate_id=None,
            now=context.now(),
        )
        return 201, admin_service.business_associate_out(row, context.now().date())

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


@router.put(
    "/business-associates/{associate_id}",
    response_model=BusinessAssociateOut,
    tags=["compliance"],
)
def update_business_associate(
    context: Context,
    associate_id: uuid.UUID,
    body: BusinessAssociateIn,
    principal: Principal = api_permission(Permission.BAA_MANAGE),
) -> Any:
    with context.session(principal.organization_id) as session:
        row = admin_service.save_business_associate(
            session,
            actor=principal.actor,
            organization_id=principal.organization_id,
            data=body,
            associate_id=associate_id,
            now=context.now(),
        )
        return admin_service.business_associate_out(row, context.now().date())


# Audit --------------------------------------------------------------------------------


@router.get("/audit/events", response_model=Page[AuditEventOut], tags=["audit"])
def search_audit(
    context: Context,
    principal: Principal = api_permission(Permission.AUDIT_READ),
    patient_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9_.]+$")] = None,
    actor_id: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9._:/=+-]+$")] = None,
    limit: Limit = 50,
    cursor: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> Any:
    with context.session(principal.organization_id) as session:
        events, next_cursor = queries.audit_events(
            session,
            organization_id=principal.organization_id,
            patient_id=str(patient_id) if patient_id else None,
            action=action,
            actor_id=actor_id,
            before_ordinal=cursor,
            limit=limit,
        )
        record(
            session,
            actor=principal.actor,
            action="audit.search",
            subject=Subject("audit_trail", None, organization_id=principal.organization_id),
            details={"count": len(events), "by_patient": patient_id is not None},
        )
        return {
            "items": events,
            "next_cursor": None if next_cursor is None else str(next_cursor),
        }


@router.get("/audit/access-log/{guarantor_id}", response_model=list[AuditEventOut], tags=["audit"])
def patient_access_log(
    context: Context,
    guarantor_id: uuid.UUID,
    principal: Principal = api_permission(Permission.AUDIT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        entries = access_log(session, principal.organization_id, guarantor_id, limit=500)
        record(
            session,
            actor=principal.actor,
            action="audit.access_log",
            subject=Subject(
                "guarantor",
                guarantor_id,
                organization_id=principal.organization_id,
                patient_id=guarantor_id,
            ),
            details={"count": len(entries)},
        )
        return [
            AuditEventOut(
                event_id=e.event_id,
                seq=e.seq,
                recorded_at=e.recorded_at,
                actor_type=e.actor_type,
                actor_id=e.actor_id,
                action=e.action,
                outcome=e.outcome,
                subject_type=e.subject_type,
                subject_id=e.subject_id,
                patient_id=e.patient_id,
                details=e.details,
            )
            for e in entries
        ]


@router.post("/audit/verify", response_model=VerifyOut, tags=["audit"])
def verify_audit(
    context: Context, principal: Principal = api_permission(Permission.AUDIT_VERIFY)
) -> Any:
    """Integrate pending events, then recompute and check the whole signed log."""
    return admin_service.verify_audit_trail(context, principal)


__all__ = ["router"]


# Campaigns, outreach attempts, plans, payments, imports (their own modules) -------------

from carecollect.api import (  # noqa: E402 - the routers build on this module's router
    v1_attempts,
    v1_campaigns,
    v1_imports,
    v1_payments,
    v1_plans,
)

# The routes keep their full paths (`/api/v1/...`): appended, not included, so that this
# router lists every route of the API (the Allow header, the authorization table test).
for _module in (v1_campaigns, v1_attempts, v1_plans, v1_payments, v1_imports):
    router.routes.extend(_module.router.routes)
