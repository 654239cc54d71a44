"""Every query of the integration domain. Takes the session, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carecollect.integration.models import (
    IntegrationEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)


class IntegrationRepository:
    def endpoint(self, session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        row = session.get(WebhookEndpoint, endpoint_id)
        return row if row is not None and row.deleted_at is None else None

    def endpoints(
        self, session: Session, *, after: uuid.UUID | None = None, limit: int = 200
    ) -> list[WebhookEndpoint]:
        """Endpoints not deleted, oldest first (keyset by id)."""
        query = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(WebhookEndpoint.id > after)
        return list(session.scalars(query))

    def subscribed(
        self, session: Session, organization_id: uuid.UUID, event_type: str
    ) -> list[WebhookEndpoint]:
        """Active endpoints of the organization subscribed to `event_type` (scoped by the
        organization explicitly: emitters may run in a system session). The subscription
        list is small JSON, filtered here rather than with dialect-specific operators."""
        rows = session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.organization_id == organization_id,
                WebhookEndpoint.active.is_(True),
                WebhookEndpoint.deleted_at.is_(None),
            )
        )
        return [row for row in rows if event_type in (row.event_types or [])]

    def add(self, session: Session, row: object) -> None:
        session.add(row)
        session.flush()

    def event(self, session: Session, event_id: uuid.UUID) -> IntegrationEvent | None:
        return session.get(IntegrationEvent, event_id)

    def events(self, session: Session, *, event_type: str | None = None) -> list[IntegrationEvent]:
        query = select(IntegrationEvent).order_by(IntegrationEvent.id)
        if event_type is not None:
            query = query.where(IntegrationEvent.type == event_type)
        return list(session.scalars(query))

    def delivery(
        self, session: Session, delivery_id: uuid.UUID, *, lock: bool = False
    ) -> WebhookDelivery | None:
        query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        if lock:
            query = query.with_for_update()
        return session.scalar(query)

    def deliveries(
        self, session: Session, *, endpoint_id: uuid.UUID | None = None
    ) -> Sequence[WebhookDelivery]:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        return session.scalars(query).all()

    def endpoint_deliveries(
        self,
        session: Session,
        endpoint_id: uuid.UUID,
        *,
        state: str | None = None,
        before: uuid.UUID | None = None,
        limit: int = 50,
    ) -> list[tuple[WebhookDelivery, str]]:
        """An endpoint's deliveries with their event type, newest first (keyset by id)."""
        query = (
            select(WebhookDelivery, IntegrationEvent.type)
            .join(IntegrationEvent, IntegrationEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
        if state is not None:
            query = query.where(WebhookDelivery.state == state)
        if before is not None:
            query = query.where(WebhookDelivery.id < before)
        return [(row, str(kind)) for row, kind in session.execute(query).all()]

    def delivery_counts(self, session: Session) -> dict[uuid.UUID, dict[str, int]]:
        """Deliveries per endpoint and state (for the staff screen)."""
        rows = session.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.state, func.count())
            .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.state)
        ).all()
        counts: dict[uuid.UUID, dict[str, int]] = {}
        for endpoint_id, state, number in rows:
            counts.setdefault(endpoint_id, {})[state] = int(number)
        return counts

    def attempts(self, session: Session, delivery_id: uuid.UUID) -> list[WebhookDeliveryAttempt]:
        return list(
            session.scalars(
                select(WebhookDeliveryAttempt)
                .where(WebhookDeliveryAttempt.delivery_id == delivery_id)
                .order_by(WebhookDeliveryAttempt.attempt)
            )
        )


integration_repository = IntegrationRepository()
