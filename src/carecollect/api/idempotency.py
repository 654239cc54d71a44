"""`Idempotency-Key` on POST (draft-ietf-httpapi-idempotency-key-header).

The first response to a (principal, key) pair is stored, sealed because it may hold PHI,
in the same transaction as the change it describes; a retry with the same key and the
same request replays it, a retry with a different request is refused (422), and a retry
racing the first one gets 409. Records older than a day may be purged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carecollect.api.context import AppContext
from carecollect.api.problems import problem_response
from carecollect.errors import AppError
from carecollect.identity.models import IdempotencyRecord
from carecollect.identity.repository import identity_repository
from carecollect.identity.service import Principal
from carecollect.kit.ids import uuid7


class IdempotencyConflict(AppError):  # noqa: N818 - reads as the state
    status_code = 409


def _request_hash(method: str, path: str, payload: Any) -> str:
    body = json.dumps(jsonable_encoder(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


def run_post(
    context: AppContext,
    principal: Principal,
    *,
    key: str | None,
    path: str,
    payload: Any,
    handler: Callable[[Session], tuple[int, Any]],
) -> JSONResponse:
    """Run `handler` in a tenant transaction, honouring an Idempotency-Key."""
    if key is not None and (not key or len(key) > 200 or not key.isprintable()):
        return problem_response(400, "Idempotency-Key must be 1 to 200 printable characters")
    request_hash = _request_hash("POST", path, payload)
    principal_key = f"{principal.kind}:{principal.id}"
    try:
        with context.session(principal.organization_id) as session:
            keys = context.org_keys(session, principal.organization_id)
            if key is not None:
                stored = identity_repository.idempotency_record(session, principal_key, key)
                if stored is not None:
                    if stored.request_sha256 != request_hash:
                        return problem_response(
                            422, "this Idempotency-Key was used with a different request"
                        )
                    body_text = keys.cipher().open_row(stored, "response_body") or "null"
                    return JSONResponse(
                        json.loads(body_text),
                        status_code=stored.status_code,
                        headers={"Idempotent-Replayed": "true"},
                    )
            status, body = handler(session)
            encoded = jsonable_encoder(body)
            if key is not None:
                record_id = uuid7()
                session.add(
                    IdempotencyRecord(
                        id=record_id,
                        organization_id=principal.organization_id,
                        principal=principal_key,
                        key=key,
                        request_sha256=request_hash,
                        status_code=status,
                        response_body=keys.cipher().seal(
                            "idempotency_record", "response_body", record_id, json.dumps(encoded)
                        ),
                        created_at=context.now(),
                    )
                )
                session.flush()
    except IntegrityError:
        raise IdempotencyConflict(
            "the request conflicts with existing data or with a concurrent request using "
            "the same Idempotency-Key"
        ) from None
    return JSONResponse(encoded, status_code=status)
