"""What the `/api/v1` routers for campaigns, outreach attempts, plans, payments and imports
share: the request context, the `Idempotency-Key` header, keyset pagination, and turning
a domain's refusal of a request (`BadInput`) into a 422 problem.

Kept apart from `api/v1.py` so the new routers can be included into its router without an
import cycle; `api/v1.py` itself uses these definitions too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Header, Query
from sqlalchemy import select

from carecollect.api import views
from carecollect.api.context import AppContext, get_context
from carecollect.errors import AppError, BadInput
from carecollect.identity.service import Principal

Context = Annotated[AppContext, Depends(get_context)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Repeat a POST safely: the first response is replayed.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[uuid.UUID | None, Query(description="`next_cursor` of the previous page")]


class UnprocessableError(AppError):
    """The request is well formed but the domain refuses it (plan terms outside the
    policy, an invalid campaign, an amount over the balance). The message is the
    domain's, written to be safe to show (no PHI)."""

    status_code = 422


@contextmanager
def refused_as_422() -> Iterator[None]:
    """Re-raise a domain `BadInput` as a 422 problem; the transaction still rolls back."""
    try:
        yield
    except UnprocessableError:
        raise
    except BadInput as exc:
        raise UnprocessableError(exc.message) from None


def page_of(items: list[Any], limit: int, last_id: Any) -> dict[str, Any]:
    return {"items": items, "next_cursor": str(last_id) if len(items) == limit else None}


def people_page(
    context: AppContext,
    principal: Principal,
    model: Any,
    *,
    to_out: Callable[[Any], Any],
    field: str,
    limit: int,
    cursor: uuid.UUID | None,
    account_id: uuid.UUID | None = None,
    guarantor_id: uuid.UUID | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """One keyset page of a per-person table (plans, payments) filtered by account,
    guarantor and status, with one audited read (`field`) per person on the page."""
    query = select(model).order_by(model.id).limit(limit)
    if account_id is not None:
        query = query.where(model.account_id == account_id)
    if guarantor_id is not None:
        query = query.where(model.guarantor_id == guarantor_id)
    if status is not None:
        query = query.where(model.status == status)
    if cursor is not None:
        query = query.where(model.id > cursor)
    with context.session(principal.organization_id) as session:
        rows = list(session.scalars(query))
        for person in sorted({r.guarantor_id for r in rows}):
            views.record_read(session, principal, person, fields=[field], purpose="api")
        return page_of([to_out(r) for r in rows], limit, rows[-1].id if rows else None)
