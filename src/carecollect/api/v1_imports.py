"""`/api/v1/imports`: upload a CSV export, an X12 835 remittance or a FHIR R4 bundle
(NDJSON too) to be imported by the worker, and follow its status, counts and row errors.

The upload is the request body (the format from `format` or the content type) or a
`multipart/form-data` field `file`. It is refused before anything is stored when the
organization has no BAA with the operator (403, HIPAA-BAA), when it is empty, too large
(413), of an unknown content type (415), or a CSV without a shipped mapping (422).
Accepted, it is stored sealed with its job in one transaction (`import_run.submit_import`)
and the response is 201 with the run in state `queued`; the parsing, validation and
writing happen in the worker through the same pipeline as `carecollect import`.
Statuses, counts and errors hold no PHI (row numbers, field names, reasons).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from carecollect.api.idempotency import run_post
from carecollect.api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_RESPONSES, Problem
from carecollect.api.schemas import Page
from carecollect.api.schemas_imports import ImportErrorOut, ImportRunOut
from carecollect.api.v1_common import Context, Cursor, IdempotencyKey, Limit, page_of
from carecollect.errors import AppError, NotFound
from carecollect.identity.auth import api_permission
from carecollect.identity.permissions import Permission
from carecollect.identity.service import Principal
from carecollect.ingest.import_run import (
    IMPORT_FORMATS,
    MAX_IMPORT_BYTES,
    ImportRun,
    submit_import,
)

router = APIRouter(prefix="/api/v1", tags=["imports"], responses=PROBLEM_RESPONSES)
Format = Literal["csv", "x12-835", "fhir"]
Status = Literal["queued", "running", "succeeded", "failed"]
BY_CONTENT_TYPE = {
    "text/csv": "csv",
    "application/edi-x12": "x12-835",
    "application/fhir+json": "fhir",
    "application/json": "fhir",
    "application/fhir+ndjson": "fhir",
    "application/x-ndjson": "fhir",
}
RAW_TYPES = (*BY_CONTENT_TYPE, "text/plain", "application/octet-stream")
_STRING = {"type": "string"}
_OBJECT = {"type": "object", "description": "a FHIR R4 Bundle"}
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the file: as the body (format by `format` or the content type) or "
        "as the multipart field `file`",
        "content": {
            "text/csv": {"schema": _STRING},
            "application/edi-x12": {"schema": _STRING},
            "application/fhir+json": {"schema": _OBJECT},
            "application/json": {"schema": _OBJECT},
            "text/plain": {"schema": _STRING},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "format": {"type": "string", "enum": list(IMPORT_FORMATS)},
                        "mapping": {"type": "string"},
                    },
                    "required": ["file"],
                }
            },
        },
    }
}
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {}},
        "description": "The upload is larger than the API accepts (use the CLI)",
    },
    415: {
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {}},
        "description": "The content type names no import format",
    },
}


class UploadRefusedError(AppError):
    status_code = 422


class UploadTooLargeError(AppError):
    status_code = 413


class UnsupportedUploadError(AppError):
    status_code = 415


def run_out(row: ImportRun, *, with_errors: bool) -> ImportRunOut:
    errors = list(row.errors or [])
    return ImportRunOut(
        id=row.id,
        format=row.format,
        mapping=row.mapping,
        status=row.status,
        payload_bytes=row.payload_bytes,
        payload_sha256=row.payload_sha256,
        counts=dict(row.counts or {}),
        error_count=int((row.counts or {}).get("rows_rejected", len(errors))),
        failure=row.failure,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        errors=[ImportErrorOut(**e) for e in errors] if with_errors else None,
    )


@router.get("/imports", response_model=Page[ImportRunOut])
def list_imports(
    context: Context,
    principal: Principal = api_permission(Permission.ACCOUNT_READ),
    status: Status | None = None,
    format: Format | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    r = ImportRun
    query = select(r).order_by(r.id).limit(limit)
    if status is not None:
        query = query.where(r.status == status)
    if format is not None:
        query = query.where(r.format == format)
    if cursor is not None:
        query = query.where(r.id > cursor)
    with context.session(principal.organization_id) as session:
        rows = list(session.scalars(query))
        return page_of(
            [run_out(x, with_errors=False) for x in rows], limit, rows[-1].id if rows else None
        )


@router.get("/imports/{import_id}", response_model=ImportRunOut)
def get_import(
    context: Context,
    import_id: uuid.UUID,
    principal: Principal = api_permission(Permission.ACCOUNT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        row = session.get(ImportRun, import_id)
        if row is None:
            raise NotFound("no such import")
        return run_out(row, with_errors=True)


async def _read_upload(request: Request) -> tuple[bytes, str | None, str | None]:
    """(content, format from the form, mapping from the form), bounded in size."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_IMPORT_BYTES + 65536:
        raise UploadTooLargeError(f"an API upload is at most {MAX_IMPORT_BYTES} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise UploadRefusedError("send the file in the multipart field `file`")
        content = await upload.read(MAX_IMPORT_BYTES + 1)
        fmt, mapping = form.get("format"), form.get("mapping")
        return (
            content,
            fmt if isinstance(fmt, str) else None,
            mapping if isinstance(mapping, str) else None,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise UploadTooLargeError(f"an API upload is at most {MAX_IMPORT_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks), None, None


def _format_of(request: Request, given: str | None) -> str:
    if given is not None:
        if given not in IMPORT_FORMATS:
            raise UploadRefusedError(f"format is one of {', '.join(IMPORT_FORMATS)}")
        return given
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    found = BY_CONTENT_TYPE.get(media)
    if found is None:
        raise UnsupportedUploadError(
            "name the format (format=csv, x12-835 or fhir) or send text/csv, "
            "application/edi-x12 or application/fhir+json"
        )
    return found


def _check_mapping(format_name: str, mapping: str | None) -> str | None:
    from carecollect.ingest.mapping import builtin_mappings

    if format_name != "csv":
        if mapping is not None:
            raise UploadRefusedError("only a CSV import takes a mapping")
        return None
    shipped = builtin_mappings()
    if mapping is None:
        raise UploadRefusedError(f"a CSV import needs mapping= one of: {', '.join(shipped)}")
    if mapping not in shipped:
        raise UploadRefusedError(f"mapping is one of: {', '.join(shipped)}")
    return mapping


@router.post(
    "/imports",
    status_code=201,
    response_model=ImportRunOut,
    responses=UPLOAD_RESPONSES,
    openapi_extra=UPLOAD_BODY,
)
async def create_import(
    request: Request,
    context: Context,
    format: Format | None = Query(
        default=None, description="csv, x12-835 or fhir (default: from the content type)"
    ),
    mapping: str | None = Query(
        default=None,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="a shipped CSV mapping (`carecollect import csv --help` lists them)",
    ),
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.PATIENT_WRITE),
) -> JSONResponse:
    """Queue an import; 201 with the run (`queued`). Poll `GET /imports/{id}`."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data" and media not in RAW_TYPES:
        raise UnsupportedUploadError("send the file as the body or as multipart field `file`")
    content, form_format, form_mapping = await _read_upload(request)
    if len(content) > MAX_IMPORT_BYTES:
        raise UploadTooLargeError(f"an API upload is at most {MAX_IMPORT_BYTES} bytes")
    format_name = _format_of(request, format or form_format)
    chosen = _check_mapping(format_name, mapping or form_mapping)
    if not content.strip():
        raise UploadRefusedError("the upload is empty")

    def work() -> JSONResponse:
        import hashlib

        from carecollect.ingest.pipeline import require_baa

        require_baa(context.db, principal.organization_id, on=context.now().date())
        payload = {
            "format": format_name,
            "mapping": chosen,
            "sha256": hashlib.sha256(content).hexdigest(),
        }

        def handler(session: Session) -> tuple[int, Any]:
            keys = context.org_keys(session, principal.organization_id)
            row = submit_import(
                session,
                keys=keys,
                actor=principal.actor,
                format_name=format_name,
                mapping=chosen,
                content=content,
                now=context.now(),
            )
            return 201, run_out(row, with_errors=True)

        return run_post(
            context,
            principal,
            key=idempotency_key,
            path=request.url.path,
            payload=payload,
            handler=handler,
        )

    return await run_in_threadpool(work)


__all__ = ["router"]
