"""Records the campaign, outreach, plan, payment and import endpoints of `/api/v1` read
and change: one campaign, one blocked outreach attempt, a payment plan on a second
account, a sandbox payment on the seeded account, and a finished import run. Synthetic
people only (tests/factories.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from carecollect.ingest.import_run import ImportRun
from carecollect.kit.ids import uuid7
from carecollect.ledger.service import ledger_service
from carecollect.outreach.cadence import CampaignSpec, StepSpec, cadence_service
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.payment.service import payment_service
from carecollect.payment_plan.service import plan_service
from carecollect.tenant.models import Organization
from tests.factories import TEST_ACTOR
from tests.web.conftest import Seed, Web

SMS_SPEC = CampaignSpec(
    key="api_seed_sms",
    name="Seeded reminder",
    steps=(
        StepSpec(
            wait_days=0,
            channels=("sms",),
            variants=({"name": "A", "weight": 1, "templates": {"sms": "balance_reminder_sms"}},),
        ),
    ),
)


@dataclass
class ApiSeed(Seed):
    campaign_id: uuid.UUID
    attempt_id: uuid.UUID
    plan_account_id: uuid.UUID
    plan_id: uuid.UUID
    payment_id: uuid.UUID
    import_id: uuid.UUID


def covered_entity(web: Web, value: bool = True) -> None:
    """The organization operates the deployment itself: the BAA gate lets imports in."""
    with web.db.system_session() as session:
        org = session.get(Organization, web.tenant.id)
        assert org is not None
        org.operated_by_covered_entity = value


def seed_api(web: Web, ids: Seed) -> ApiSeed:
    tenant, now = web.tenant, web.clock()
    processor = web.app.state.payment_processors["sandbox"]
    with web.db.tenant_session(tenant.id) as session:
        campaign = cadence_service.create_campaign(
            session, organization_id=tenant.id, actor=TEST_ACTOR, spec=SMS_SPEC
        )
        attempt = OutreachAttempt(
            id=uuid7(),
            organization_id=tenant.id,
            guarantor_id=ids.guarantor_id,
            account_id=ids.account_id,
            contact_point_id=ids.phone_id,
            channel="sms",
            template_key="balance_reminder_sms",
            idempotency_key=f"seed:{uuid7()}",
            state="blocked",
            scheduled_for=now - timedelta(hours=2),
            reasons=["TCPA-CONSENT-WIRELESS"],
            next_allowed_at=now + timedelta(days=1),
            details={},
            created_at=now - timedelta(hours=3),
            updated_at=now - timedelta(hours=2),
        )
        session.add(attempt)
        second = ledger_service.open_account(
            session,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            guarantor_id=ids.guarantor_id,
            account_number="ACC-PLAN-7",
            opened_at=now - timedelta(days=60),
        )
        ledger_service.post(
            session,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            account_id=second.id,
            kind="charge",
            amount_cents=60_000,
            posted_at=now - timedelta(days=50),
        )
        session.flush()
        plan = plan_service.create_plan(
            session,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            account_id=second.id,
            created_by="staff",
            now=now,
            installments=6,
        )
        _, payment = payment_service.start_payment(
            session,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            processor=processor,
            account_id=ids.account_id,
            amount=2_000,
            idempotency_key=f"seed-payment:{tenant.id}",
            payment_method="pm_sandbox_visa",
            source="api",
            now=now,
        )
        assert payment is not None
        run = ImportRun(
            id=uuid7(),
            organization_id=tenant.id,
            format="fhir",
            status="succeeded",
            payload=None,
            payload_sha256="0" * 64,
            payload_bytes=10,
            submitted_by_type="system",
            submitted_by="test",
            counts={"rows_read": 2, "rows_imported": 1, "rows_rejected": 1},
            errors=[{"row": 2, "field": "birthDate", "reason": "not a date"}],
            created_at=now,
            updated_at=now,
        )
        session.add(run)
        session.flush()
        result: dict[str, Any] = dict(vars(ids))
        return ApiSeed(
            **result,
            campaign_id=campaign.id,
            attempt_id=attempt.id,
            plan_account_id=second.id,
            plan_id=plan.id,
            payment_id=payment.id,
            import_id=run.id,
        )
