"""Fixtures for the integration (outbound webhook) tests: a tenant, a real receiver on
127.0.0.1, a clock that can be moved forward and a worker for the delivery queue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from carecollect.audit import Actor
from carecollect.db import Database
from carecollect.integration.models import (
    IntegrationEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from carecollect.integration.service import DELIVER_QUEUE, EVENT_TYPES, webhook_service
from carecollect.kit.jobs.models import Job
from carecollect.kit.jobs.registry import load_task_modules
from carecollect.kit.jobs.worker import Worker
from tests.factories import Tenant, create_tenant
from tests.integration.receiver import Receiver, serve_receiver

ADMIN = Actor.staff("00000000-0000-7000-8000-0000000000ad")


class MovableClock:
    """The wall clock plus an offset the test moves forward (jobs are enqueued at the real
    time, so the worker's clock must never be behind it)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Hooks:
    db: Database
    tenant: Tenant
    receiver: Receiver
    clock: MovableClock

    def add_endpoint(
        self, event_types: list[str] | None = None, url: str | None = None,
        tenant: Tenant | None = None,
    ) -> tuple[uuid.UUID, str]:
        tenant = tenant or self.tenant
        with self.db.tenant_session(tenant.id) as session:
            row, secret = webhook_service.create_endpoint(
                session,
                keys=tenant.keys,
                actor=ADMIN,
                url=url or self.receiver.url,
                event_types=event_types or list(EVENT_TYPES),
                allow_loopback_http=True,
            )
            return row.id, secret

    def emit(self, event_type: str, data: dict[str, Any], tenant: Tenant | None = None
             ) -> uuid.UUID:
        from carecollect.integration.service import emit_event

        tenant = tenant or self.tenant
        with self.db.tenant_session(tenant.id) as session:
            return emit_event(
                session, organization_id=tenant.id, type=event_type, data=data
            ).id

    def worker(self, **resources: Any) -> Worker:
        resources.setdefault("webhook_timeout_seconds", 5.0)
        return Worker(
            self.db,
            self.tenant.manager,
            registry=load_task_modules(),
            queues=[DELIVER_QUEUE],
            clock=self.clock,
            run_scheduler=False,
            resources=resources,
        )

    def deliveries(self) -> list[WebhookDelivery]:
        with self.db.system_session() as session:
            return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))

    def attempts(self) -> list[WebhookDeliveryAttempt]:
        with self.db.system_session() as session:
            return list(
                session.scalars(
                    select(WebhookDeliveryAttempt).order_by(
                        WebhookDeliveryAttempt.delivery_id, WebhookDeliveryAttempt.attempt
                    )
                )
            )

    def events(self) -> list[IntegrationEvent]:
        with self.db.system_session() as session:
            return list(session.scalars(select(IntegrationEvent).order_by(IntegrationEvent.id)))

    def jobs(self) -> list[Job]:
        with self.db.system_session() as session:
            return list(
                session.scalars(select(Job).where(Job.queue == DELIVER_QUEUE).order_by(Job.id))
            )

    def count(self, model: type) -> int:
        with self.db.system_session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def hooks(db: Database) -> Iterator[Hooks]:
    with serve_receiver() as receiver:
        yield Hooks(db, create_tenant(db), receiver, MovableClock())
