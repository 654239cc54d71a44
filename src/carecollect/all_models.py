"""Imports every model module so `Base.metadata` knows every table (migrations, tests)."""

from __future__ import annotations

from carecollect.audit import models as audit_models
from carecollect.compliance import models as compliance_models
from carecollect.consent import models as consent_models
from carecollect.identity import models as identity_models
from carecollect.identity import oidc_models
from carecollect.ingest import import_run as import_run_models
from carecollect.insight import models as insight_models
from carecollect.integration import models as integration_models
from carecollect.kit.crypto import models as crypto_models
from carecollect.kit.jobs import models as job_models
from carecollect.kit.models import Base
from carecollect.ledger import models as ledger_models
from carecollect.outreach import cadence_models as outreach_cadence_models
from carecollect.outreach import models as outreach_models
from carecollect.outreach import org_template_models
from carecollect.outreach import outbox as outbox_models
from carecollect.patient import models as patient_models
from carecollect.payment import models as payment_models
from carecollect.payment_plan import models as payment_plan_models
from carecollect.portal import models as portal_models
from carecollect.tenant import models as tenant_models

__all__ = [
    "Base",
    "audit_models",
    "compliance_models",
    "consent_models",
    "crypto_models",
    "identity_models",
    "import_run_models",
    "insight_models",
    "integration_models",
    "job_models",
    "ledger_models",
    "oidc_models",
    "org_template_models",
    "outbox_models",
    "outreach_cadence_models",
    "outreach_models",
    "patient_models",
    "payment_models",
    "payment_plan_models",
    "portal_models",
    "tenant_models",
]


def tenant_tables() -> list[str]:
    """Names of every tenant-owned table (those carrying organization_id under RLS)."""
    return sorted(
        mapper.class_.__tablename__
        for mapper in Base.registry.mappers
        if getattr(mapper.class_, "__tenant__", False)
    )
